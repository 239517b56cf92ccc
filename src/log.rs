//! The one structured log line written per request.
//!
//! The fields explain the decision without ever containing a token, a key, a secret or
//! an `Authorization` value. The path is logged without its query, where an
//! `access_token` could be, and of the token only its `kid` header is kept.

use serde::Serialize;

/// The source of the entitlement record.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum RecordSource {
    /// The isolate's own cache.
    Cache,
    /// A KV read (which KV may itself have served from its edge cache).
    Store,
}

/// One request's log line.
#[derive(Debug, Clone, Serialize)]
pub struct RequestLog<'a> {
    /// `forward` or `deny`.
    pub decision: &'static str,
    pub status: u16,
    /// A stable reason code, such as `token_expired` or `feature_not_granted`.
    pub reason: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub route: Option<&'a str>,
    pub method: &'a str,
    /// The request path, without the query.
    pub path: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub kid: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub plan: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub record: Option<RecordSource>,
    /// Operator detail for a 5xx: the binding or record key at fault and why.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detail: Option<&'a str>,
}

impl<'a> RequestLog<'a> {
    /// Starts a line for a request; the decision fields are filled in later.
    pub fn new(method: &'a str, path: &'a str) -> Self {
        RequestLog {
            decision: "deny",
            status: 0,
            reason: "",
            route: None,
            method,
            path,
            kid: None,
            plan: None,
            record: None,
            detail: None,
        }
    }

    /// Serialises the line as JSON.
    pub fn to_json(&self) -> String {
        // A struct of strings, integers and unit enums always serialises.
        serde_json::to_string(self).unwrap_or_default()
    }
}
