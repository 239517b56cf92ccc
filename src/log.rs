//! The one structured log line written per request.
//!
//! The fields explain the decision without ever containing a token, a key, a secret or
//! an `Authorization` value. The path is logged without its query, where an
//! `access_token` could be, and of the token only its `kid` header is kept.

use std::borrow::Cow;

use serde::Serialize;

/// The requests that get a log line (`LOG_REQUESTS`). Configuration errors and key-set
/// fetches are logged whatever the setting.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogRequests {
    /// Every request, forwarded ones included.
    All,
    /// Every request the gateway responds to itself: 4xx and 5xx. The runtime's own
    /// invocation logs already record each request's URL and status.
    Denials,
    /// Only the gateway's own 5xx responses: its configuration, KV, keys or the origin at fault.
    Errors,
}

impl LogRequests {
    /// Tells whether a request with this decision and status gets a line.
    pub fn wants(self, decision: &str, status: u16) -> bool {
        match self {
            LogRequests::All => true,
            LogRequests::Denials => decision == "deny",
            LogRequests::Errors => decision == "deny" && status >= 500,
        }
    }
}

/// The source of the entitlement record.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum RecordSource {
    /// The isolate's own cache.
    Cache,
    /// A KV read (which KV may itself have served from its edge cache).
    Store,
}

/// One request's log line. Fields borrow from the request where they can, and
/// [`RequestLog::into_owned`] keeps a line for a response built later.
#[derive(Debug, Clone, Serialize)]
pub struct RequestLog<'a> {
    /// `forward` or `deny`.
    pub decision: &'static str,
    pub status: u16,
    /// A stable reason code, such as `token_expired` or `feature_not_granted`.
    pub reason: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub route: Option<Cow<'a, str>>,
    pub method: Cow<'a, str>,
    /// The request path, without the query.
    pub path: Cow<'a, str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub kid: Option<Cow<'a, str>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub plan: Option<Cow<'a, str>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub record: Option<RecordSource>,
    /// Operator detail for a 5xx: the binding or record key at fault and why.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detail: Option<Cow<'a, str>>,
}

impl<'a> RequestLog<'a> {
    /// Starts a line for a request; the decision fields are filled in later.
    pub fn new(method: &'a str, path: &'a str) -> Self {
        RequestLog {
            decision: "deny",
            status: 0,
            reason: "",
            route: None,
            method: Cow::Borrowed(method),
            path: Cow::Borrowed(path),
            kid: None,
            plan: None,
            record: None,
            detail: None,
        }
    }

    /// Copies the borrowed fields, for a line written after the request is gone.
    pub fn into_owned(self) -> RequestLog<'static> {
        let owned = |text: Cow<'a, str>| Cow::Owned(text.into_owned());
        RequestLog {
            decision: self.decision,
            status: self.status,
            reason: self.reason,
            route: self.route.map(owned),
            method: owned(self.method),
            path: owned(self.path),
            kid: self.kid.map(owned),
            plan: self.plan.map(owned),
            record: self.record,
            detail: self.detail.map(owned),
        }
    }

    /// Serialises the line as JSON.
    pub fn to_json(&self) -> String {
        // A struct of strings, integers and unit enums always serialises.
        serde_json::to_string(self).unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::LogRequests;

    #[test]
    fn log_requests_levels() {
        let outcomes = [("forward", 200), ("forward", 502), ("deny", 401), ("deny", 402), ("deny", 503)];
        let logged = |level: LogRequests| outcomes.iter().filter(|(decision, status)| level.wants(decision, *status)).count();
        assert_eq!(logged(LogRequests::All), 5);
        assert_eq!(logged(LogRequests::Denials), 3);
        assert_eq!(logged(LogRequests::Errors), 1);
    }
}
