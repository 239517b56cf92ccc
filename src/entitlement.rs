//! Entitlement records: what a caller has paid for, as stored in Workers KV.
//!
//! A record is JSON of this shape (unknown members are ignored):
//!
//! ```json
//! {"plan": "pro", "status": "active", "features": ["reports"], "expires_at": 1798761600, "grace_until": null}
//! ```

use std::fmt;

use serde::Deserialize;

/// One caller's record as stored.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct Record {
    pub plan: String,
    pub status: String,
    #[serde(default)]
    pub features: Vec<String>,
    /// Unix time (seconds) at which the features stop being granted; `None` never.
    #[serde(default)]
    pub expires_at: Option<u64>,
    /// Unix time (seconds) until which a `past_due` record still grants its features.
    #[serde(default)]
    pub grace_until: Option<u64>,
}

/// A stored value that is not a valid record. The text describes what is wrong with it
/// and never quotes the value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordError(pub String);

impl fmt::Display for RecordError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Parses a record read from the store.
pub fn parse_record(text: &str) -> Result<Record, RecordError> {
    // The error names the position only: serde_json's own message can quote values.
    let record: Record = serde_json::from_str(text).map_err(|error| {
        let kind = match error.classify() {
            serde_json::error::Category::Syntax | serde_json::error::Category::Eof => "not valid JSON",
            _ => "not of the record shape (plan, status, features, expires_at, grace_until)",
        };
        RecordError(format!("{kind} at line {} column {}", error.line(), error.column()))
    })?;
    if let Some(feature) = record.features.iter().find(|feature| feature.is_empty() || feature.contains(',')) {
        return Err(RecordError(format!("feature name {feature:?} is empty or contains a comma")));
    }
    // Plan and features are sent to the origin as header values.
    let texts = std::iter::once(&record.plan).chain(&record.features);
    if texts.into_iter().any(|text| text.chars().any(char::is_control)) {
        return Err(RecordError("plan or a feature name contains a control character".into()));
    }
    Ok(record)
}

/// What a caller is granted at one instant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entitlement {
    /// The plan name, `none` when there is no record.
    pub plan: String,
    /// The subscription status, `none` when there is no record.
    pub status: String,
    /// The features granted now; empty when the status or an expiry grants nothing.
    pub features: Vec<String>,
}

impl Entitlement {
    /// The entitlement of a caller without a record: plan `none`, no features.
    pub fn none() -> Self {
        Entitlement { plan: "none".into(), status: "none".into(), features: Vec::new() }
    }

    /// Evaluates `record` at unix time `now` (seconds).
    ///
    /// `active` and `trialing` grant the features until `expires_at`; `past_due` grants
    /// them until `grace_until` (and never past `expires_at`); any other status grants
    /// nothing.
    pub fn evaluate(record: &Record, now: u64) -> Self {
        let not_expired = record.expires_at.is_none_or(|expires_at| now < expires_at);
        let in_grace = record.grace_until.is_some_and(|grace_until| now < grace_until);
        let grants = match record.status.as_str() {
            "active" | "trialing" => not_expired,
            "past_due" => not_expired && in_grace,
            _ => false,
        };

        Entitlement {
            plan: record.plan.clone(),
            status: record.status.clone(),
            features: if grants { record.features.clone() } else { Vec::new() },
        }
    }

    pub fn grants(&self, feature: &str) -> bool {
        self.features.iter().any(|granted| granted == feature)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: u64 = 1_800_000_000;

    fn record(status: &str, expires_at: Option<u64>, grace_until: Option<u64>) -> Record {
        Record {
            plan: "pro".into(),
            status: status.into(),
            features: vec!["reports".into()],
            expires_at,
            grace_until,
        }
    }

    fn grants_reports(record: &Record) -> bool {
        Entitlement::evaluate(record, NOW).grants("reports")
    }

    #[test]
    fn evaluate_active_grants_features() {
        assert!(grants_reports(&record("active", None, None)));
        assert!(grants_reports(&record("trialing", None, None)));
    }

    #[test]
    fn evaluate_active_expiry_honoured() {
        assert!(grants_reports(&record("active", Some(NOW + 1), None)));
        assert!(!grants_reports(&record("active", Some(NOW), None)));
        assert!(!grants_reports(&record("trialing", Some(NOW - 1), None)));
    }

    #[test]
    fn evaluate_past_due_only_in_grace() {
        assert!(grants_reports(&record("past_due", None, Some(NOW + 60))));
        assert!(!grants_reports(&record("past_due", None, Some(NOW))));
        assert!(!grants_reports(&record("past_due", None, None)));
        assert!(!grants_reports(&record("past_due", Some(NOW - 1), Some(NOW + 60))));
    }

    #[test]
    fn evaluate_canceled_and_unknown_grant_nothing() {
        assert!(!grants_reports(&record("canceled", None, None)));
        assert!(!grants_reports(&record("paused", None, None)));
        assert!(!grants_reports(&record("ACTIVE", None, None)));
    }

    #[test]
    fn evaluate_keeps_plan_and_status() {
        let entitlement = Entitlement::evaluate(&record("canceled", None, None), NOW);
        assert_eq!(entitlement.plan, "pro");
        assert_eq!(entitlement.status, "canceled");
        assert!(entitlement.features.is_empty());
    }

    #[test]
    fn none_has_no_features() {
        let entitlement = Entitlement::none();
        assert_eq!(entitlement.plan, "none");
        assert!(!entitlement.grants("reports"));
    }

    #[test]
    fn parse_record_full_example() {
        let text = r#"{"plan": "pro", "status": "active", "features": ["reports", "exports"], "expires_at": 1798761600, "grace_until": null, "note": "x"}"#;
        let record = parse_record(text).unwrap();
        assert_eq!(record.plan, "pro");
        assert_eq!(record.features, vec!["reports", "exports"]);
        assert_eq!(record.expires_at, Some(1_798_761_600));
        assert_eq!(record.grace_until, None);
    }

    #[test]
    fn parse_record_malformed_rejected() {
        let cases = [
            "not json",
            "null",
            "[]",
            r#"{"status": "active"}"#,
            r#"{"plan": "pro"}"#,
            r#"{"plan": 1, "status": "active"}"#,
            r#"{"plan": "pro", "status": "active", "features": "reports"}"#,
            r#"{"plan": "pro", "status": "active", "features": [1]}"#,
            r#"{"plan": "pro", "status": "active", "expires_at": "soon"}"#,
            r#"{"plan": "pro", "status": "active", "expires_at": -1}"#,
            r#"{"plan": "pro", "status": "active", "features": ["a,b"]}"#,
            r#"{"plan": "pro\r\nX-Injected: 1", "status": "active"}"#,
            r#"{"plan": "pro", "status": "active", "features": ["a\nb"]}"#,
        ];
        for text in cases {
            assert!(parse_record(text).is_err(), "accepted {text}");
        }
    }

    #[test]
    fn parse_record_error_never_quotes_value() {
        let error = parse_record(r#"{"plan": "pro", "status": "secret-value", "expires_at": "secret-value"}"#).unwrap_err();
        assert!(!error.0.contains("secret-value"), "{error}");
    }
}
