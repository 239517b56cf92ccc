//! The one mapping from a [`Denial`] to the wire: status, `WWW-Authenticate`
//! challenge (RFC 6750 §3) and an `application/problem+json` body (RFC 9457).
//!
//! Every text written here is fixed or comes from configuration; nothing from the
//! request is reflected, so a token or header value can never appear in a response.

use serde::Serialize;

use crate::decision::Denial;

/// The prefix of every problem `type` URI.
pub const TYPE_PREFIX: &str = "urn:tollgate:problem:";

/// A response the gateway makes itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    pub status: u16,
    pub headers: Vec<(&'static str, String)>,
    /// The body; empty for `HEAD`, while `Content-Length` still gives the `GET` length.
    pub body: Vec<u8>,
}

impl Reply {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(key, _)| key.eq_ignore_ascii_case(name)).map(|(_, value)| value.as_str())
    }
}

/// What rendering needs besides the denial.
#[derive(Debug, Clone, Copy)]
pub struct RenderContext<'a> {
    /// The challenge realm: `AUTH_REALM`, else the request's host.
    pub realm: &'a str,
    /// `UPGRADE_URL`, with `{feature}` still in it.
    pub upgrade_url: Option<&'a str>,
    /// The request method was `HEAD`: no body.
    pub head: bool,
}

#[derive(Serialize)]
struct Problem<'a> {
    #[serde(rename = "type")]
    problem_type: String,
    title: &'a str,
    status: u16,
    detail: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    feature: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    plan: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    subscription_status: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    upgrade_url: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    scope: Option<String>,
}

impl<'a> Problem<'a> {
    fn new(slug: &str, title: &'a str, status: u16, detail: &'a str) -> Self {
        Problem {
            problem_type: format!("{TYPE_PREFIX}{slug}"),
            title,
            status,
            detail,
            feature: None,
            plan: None,
            subscription_status: None,
            upgrade_url: None,
            scope: None,
        }
    }
}

/// Renders `denial` as status, headers and body.
pub fn render(denial: &Denial, context: &RenderContext<'_>) -> Reply {
    let realm = context.realm;
    let (problem, challenge) = match denial {
        Denial::Challenge => (
            Problem::new("unauthenticated", "Authentication required", 401, "send a bearer token in the Authorization header"),
            Some(format!("Bearer realm=\"{realm}\"")),
        ),
        Denial::InvalidToken { description, .. } => (
            Problem::new("invalid-token", "Invalid token", 401, description),
            Some(format!("Bearer realm=\"{realm}\", error=\"invalid_token\", error_description=\"{description}\"")),
        ),
        Denial::InvalidRequest { description, credentials, .. } => (
            Problem::new("invalid-request", "Invalid request", 400, description),
            credentials.then(|| {
                format!("Bearer realm=\"{realm}\", error=\"invalid_request\", error_description=\"{description}\"")
            }),
        ),
        Denial::RequirePayment { feature, plan, status } => {
            let mut problem = Problem::new(
                "payment-required",
                "Payment required",
                402,
                "the caller's plan does not include the feature this resource needs",
            );
            problem.feature = Some(feature);
            problem.plan = Some(plan);
            problem.subscription_status = Some(status);
            problem.upgrade_url = context.upgrade_url.map(|url| upgrade_link(url, feature));
            (problem, None)
        }
        Denial::RequireScope { scopes } => {
            let scope = scopes.join(" ");
            let challenge = format!(
                "Bearer realm=\"{realm}\", error=\"insufficient_scope\", error_description=\"token lacks a required scope\", scope=\"{scope}\""
            );
            let mut problem =
                Problem::new("insufficient-scope", "Insufficient scope", 403, "the token lacks a scope this resource needs");
            problem.scope = Some(scope);
            (problem, Some(challenge))
        }
        Denial::NoRoute => (Problem::new("not-found", "Not found", 404, "no route matches this method and path"), None),
        Denial::HeaderTooLarge => (
            Problem::new("header-too-large", "Request header fields too large", 431, "the Authorization header is longer than this gateway accepts"),
            None,
        ),
        Denial::Misconfigured => (
            Problem::new("gateway-misconfigured", "Gateway misconfigured", 500, "the gateway cannot process requests; the operator has been told"),
            None,
        ),
        Denial::InvalidRecord => (
            Problem::new("entitlement-invalid", "Entitlement record invalid", 500, "the caller's entitlement record cannot be read; the operator has been told"),
            None,
        ),
        Denial::OriginUnreachable => (Problem::new("origin-unreachable", "Bad gateway", 502, "the origin could not be reached"), None),
        Denial::Internal => (
            Problem::new("internal-error", "Internal error", 500, "the gateway failed to process the request; the error was logged"),
            None,
        ),
        Denial::StoreUnavailable => (
            Problem::new("entitlement-store-unavailable", "Service unavailable", 503, "entitlements cannot be checked right now; retry later"),
            None,
        ),
        Denial::KeysUnavailable => (
            Problem::new("signing-keys-unavailable", "Service unavailable", 503, "the token's signing keys cannot be fetched right now; retry later"),
            None,
        ),
    };

    let body = serialise(&problem);
    let mut headers = vec![
        ("content-type", "application/problem+json".to_string()),
        ("cache-control", "no-store".to_string()),
        ("content-length", body.len().to_string()),
    ];
    if let Some(challenge) = challenge {
        headers.push(("www-authenticate", challenge));
    }
    if matches!(denial, Denial::StoreUnavailable | Denial::KeysUnavailable) {
        headers.push(("retry-after", RETRY_AFTER_SECONDS.to_string()));
    }

    Reply { status: problem.status, headers, body: if context.head { Vec::new() } else { body } }
}

/// The `Retry-After` of a 503, in seconds.
pub const RETRY_AFTER_SECONDS: u32 = 5;

fn serialise(problem: &Problem<'_>) -> Vec<u8> {
    // Serialising a struct of strings and integers cannot fail; the fallback keeps
    // that proof out of an `expect`.
    serde_json::to_vec(problem).unwrap_or_else(|_| b"{}".to_vec())
}

/// Fills `{feature}` in the upgrade URL, percent-encoding the feature name.
fn upgrade_link(template: &str, feature: &str) -> String {
    let encoded: String = url::form_urlencoded::byte_serialize(feature.as_bytes()).collect();
    template.replace("{feature}", &encoded)
}
