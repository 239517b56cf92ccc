//! What crosses the gateway on the way in: the origin URL and the request headers the
//! origin may see. The response rule (add `Cache-Control: private`) is applied where
//! the response is, in `src/gateway/boundary.js`.

use crate::config::Origin;
use crate::decision::{Forward, OriginAuthorization};

/// The prefix of every header the gateway sets for the origin. Client-sent headers
/// with this prefix are always removed.
pub const IDENTITY_PREFIX: &str = "x-tollgate-";

/// Hop-by-hop headers (RFC 9110 §7.6.1), plus the non-standard ones proxies still use.
const HOP_BY_HOP: [&str; 9] = [
    "connection",
    "keep-alive",
    "proxy-authenticate",
    "proxy-authorization",
    "proxy-connection",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
];

/// Builds the origin URL: the configured origin (or the request's own scheme and
/// host) + base path + the normalised path + the query.
pub fn origin_url(origin: Option<&Origin>, request_origin: &str, forward: &Forward) -> String {
    let (base, base_path) = match origin {
        Some(origin) => (origin.base.as_str(), origin.base_path.as_str()),
        None => (request_origin, ""),
    };
    let mut url = format!("{base}{base_path}{}", forward.path);
    if let Some(query) = &forward.query {
        url.push('?');
        url.push_str(query);
    }
    url
}

/// The changes that turn one header list into another: the names to delete (every
/// field of each name, in any letter case), then the fields to append. The Workers
/// adapter applies them to a copy of the runtime's `Headers` in one call.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HeaderChanges {
    /// Lower-case names, each once.
    pub remove: Vec<String>,
    pub append: Vec<(String, String)>,
}

impl HeaderChanges {
    /// Applies the changes to a header list, as `Headers.delete` and `Headers.append` do.
    pub fn apply(&self, headers: &[(String, String)]) -> Vec<(String, String)> {
        let mut changed: Vec<(String, String)> = headers
            .iter()
            .filter(|(name, _)| !self.remove.contains(&name.to_ascii_lowercase()))
            .cloned()
            .collect();
        changed.extend(self.append.iter().cloned());
        changed
    }
}

/// Computes the changes for the request to the origin. They remove hop-by-hop headers, the names
/// `Connection` lists, `Host`, `Authorization` (unless kept) and every `X-Tollgate-*`,
/// then add the gateway's identity headers and its own `Authorization` when one is
/// configured. `names` are the client's header names; `connection` is the value of its
/// `Connection` header, repeated fields joined by commas.
pub fn request_changes(names: &[String], connection: Option<&str>, forward: &Forward) -> HeaderChanges {
    let connection_named = connection_tokens(connection);
    let remove = removed_names(names, |name| {
        HOP_BY_HOP.contains(&name)
            || connection_named.iter().any(|token| token == name)
            || name == "host"
            || (name == "authorization" && forward.authorization != OriginAuthorization::KeepClient)
            || name.starts_with(IDENTITY_PREFIX)
    });

    let mut append = Vec::new();
    if let OriginAuthorization::Set(secret) = &forward.authorization {
        append.push(("authorization".into(), secret.expose().to_string()));
    }
    if let Some(identity) = &forward.identity {
        append.push(("x-tollgate-subject".into(), identity.subject.clone()));
        append.push(("x-tollgate-plan".into(), identity.plan.clone()));
        append.push(("x-tollgate-features".into(), identity.features.join(",")));
    }
    HeaderChanges { remove, append }
}

/// Returns the headers to send to the origin: [`request_changes`] applied to `incoming`.
pub fn request_headers(incoming: &[(String, String)], forward: &Forward) -> Vec<(String, String)> {
    let (names, connection) = names_and_connection(incoming);
    request_changes(&names, connection.as_deref(), forward).apply(incoming)
}

/// Collects the lower-case names for which `drop` is true, each once.
fn removed_names(names: &[String], drop: impl Fn(&str) -> bool) -> Vec<String> {
    let mut removed: Vec<String> = Vec::new();
    for name in names {
        let name = name.to_ascii_lowercase();
        if drop(&name) && !removed.contains(&name) {
            removed.push(name);
        }
    }
    removed
}

/// Lists the names of a header list and its `Connection` values joined by commas, as the
/// runtime's `Headers` gives them.
fn names_and_connection(headers: &[(String, String)]) -> (Vec<String>, Option<String>) {
    let names = headers.iter().map(|(name, _)| name.to_ascii_lowercase()).collect();
    let values: Vec<&str> = headers
        .iter()
        .filter(|(name, _)| name.eq_ignore_ascii_case("connection"))
        .map(|(_, value)| value.as_str())
        .collect();
    (names, (!values.is_empty()).then(|| values.join(", ")))
}

/// Lists the header names in a `Connection` value, lower-cased.
fn connection_tokens(connection: Option<&str>) -> Vec<String> {
    connection
        .unwrap_or_default()
        .split(',')
        .map(|token| token.trim().to_ascii_lowercase())
        .filter(|token| !token.is_empty())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::decision::Identity;

    fn headers(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs.iter().map(|(name, value)| (name.to_string(), value.to_string())).collect()
    }

    fn forward(identity: bool, keep_authorization: bool) -> Forward {
        let authorization = if keep_authorization { OriginAuthorization::KeepClient } else { OriginAuthorization::Remove };
        Forward {
            path: "/v1/reports/x".into(),
            query: Some("a=1&b=2".into()),
            identity: identity.then(|| Identity {
                subject: "user-pro".into(),
                plan: "pro".into(),
                features: vec!["reports".into(), "basic".into()],
            }),
            authorization,
            route: "/v1/reports/*".into(),
        }
    }

    fn names(headers: &[(String, String)]) -> Vec<String> {
        headers.iter().map(|(name, _)| name.to_ascii_lowercase()).collect()
    }

    #[test]
    fn request_headers_strip_credentials_and_spoofed_identity() {
        let incoming = headers(&[
            ("Authorization", "Bearer secret"),
            ("Proxy-Authorization", "Basic x"),
            ("X-Tollgate-Subject", "admin"),
            ("x-tollgate-plan", "enterprise"),
            ("X-TOLLGATE-FEATURES", "everything"),
            ("X-Tollgate-Other", "1"),
            ("Accept", "application/json"),
        ]);
        let outgoing = request_headers(&incoming, &forward(true, false));
        assert_eq!(
            outgoing,
            headers(&[
                ("Accept", "application/json"),
                ("x-tollgate-subject", "user-pro"),
                ("x-tollgate-plan", "pro"),
                ("x-tollgate-features", "reports,basic"),
            ])
        );
    }

    #[test]
    fn request_headers_keep_authorization_when_configured() {
        let incoming = headers(&[("Authorization", "Bearer abc"), ("Proxy-Authorization", "Basic x")]);
        let outgoing = request_headers(&incoming, &forward(true, true));
        let authorization: Vec<_> = outgoing.iter().filter(|(name, _)| name.eq_ignore_ascii_case("authorization")).collect();
        assert_eq!(authorization.len(), 1);
        assert_eq!(authorization[0].1, "Bearer abc");
        assert!(!names(&outgoing).contains(&"proxy-authorization".to_string()));
    }

    #[test]
    fn request_headers_set_origin_credential_once() {
        let incoming = headers(&[("Authorization", "Bearer client"), ("authorization", "Bearer second")]);
        let mut forward = forward(true, false);
        forward.authorization = OriginAuthorization::Set(crate::config::Secret::for_tests("Bearer origin"));
        let outgoing = request_headers(&incoming, &forward);
        let authorization: Vec<_> = outgoing.iter().filter(|(name, _)| name.eq_ignore_ascii_case("authorization")).collect();
        assert_eq!(authorization.len(), 1);
        assert_eq!(authorization[0].1, "Bearer origin");
    }

    #[test]
    fn request_headers_drop_hop_by_hop_and_connection_named() {
        let incoming = headers(&[
            ("Connection", "keep-alive, X-Custom-Hop"),
            ("Keep-Alive", "timeout=5"),
            ("X-Custom-Hop", "1"),
            ("TE", "trailers"),
            ("Upgrade", "websocket"),
            ("Host", "gateway.example"),
            ("X-Kept", "1"),
        ]);
        let outgoing = request_headers(&incoming, &forward(false, false));
        assert_eq!(outgoing, headers(&[("X-Kept", "1")]));
    }

    #[test]
    fn request_headers_public_route_adds_no_identity() {
        let incoming = headers(&[("X-Tollgate-Subject", "admin")]);
        assert!(request_headers(&incoming, &forward(false, false)).is_empty());
    }

    #[test]
    fn request_changes_name_each_removed_header_once() {
        let names: Vec<String> = ["Authorization", "authorization", "X-Tollgate-Plan", "TE", "Accept"].map(String::from).into();
        let changes = request_changes(&names, Some("X-Hop"), &forward(false, false));
        assert_eq!(changes.remove, ["authorization", "x-tollgate-plan", "te"]);
        assert!(changes.append.is_empty());

        let changes = request_changes(&["x-hop".to_string()], Some("keep-alive, X-Hop"), &forward(false, false));
        assert_eq!(changes.remove, ["x-hop"]);
    }

    #[test]
    fn origin_url_joins_base_path_and_query() {
        let origin = Origin { base: "http://127.0.0.1:9000".into(), base_path: "/api".into() };
        assert_eq!(
            origin_url(Some(&origin), "https://gw.example", &forward(false, false)),
            "http://127.0.0.1:9000/api/v1/reports/x?a=1&b=2"
        );
        assert_eq!(origin_url(None, "https://gw.example", &forward(false, false)), "https://gw.example/v1/reports/x?a=1&b=2");
    }
}
