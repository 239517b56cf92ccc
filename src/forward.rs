//! What crosses the gateway in each direction: the origin URL, the request headers
//! the origin may see and the response headers the client may see.

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

/// Returns the headers to send to the origin: the client's, less hop-by-hop headers,
/// those `Connection` names, `Host`, `Authorization` (unless kept) and every
/// `X-Tollgate-*`; plus the gateway's identity headers and its own `Authorization`
/// when one is configured.
pub fn request_headers(incoming: &[(String, String)], forward: &Forward) -> Vec<(String, String)> {
    let connection_named = connection_tokens(incoming);
    let mut outgoing: Vec<(String, String)> = incoming
        .iter()
        .filter(|(name, _)| {
            let name = name.to_ascii_lowercase();
            let dropped = HOP_BY_HOP.contains(&name.as_str())
                || connection_named.contains(&name)
                || name == "host"
                || (name == "authorization" && forward.authorization != OriginAuthorization::KeepClient)
                || name.starts_with(IDENTITY_PREFIX);
            !dropped
        })
        .cloned()
        .collect();

    if let OriginAuthorization::Set(secret) = &forward.authorization {
        outgoing.push(("authorization".into(), secret.expose().to_string()));
    }
    if let Some(identity) = &forward.identity {
        outgoing.push(("x-tollgate-subject".into(), identity.subject.clone()));
        outgoing.push(("x-tollgate-plan".into(), identity.plan.clone()));
        outgoing.push(("x-tollgate-features".into(), identity.features.join(",")));
    }
    outgoing
}

/// Returns the origin's response headers the client may see: all but hop-by-hop
/// headers and those `Connection` names, with `Cache-Control: private` added when the
/// origin set none.
pub fn response_headers(incoming: &[(String, String)]) -> Vec<(String, String)> {
    let connection_named = connection_tokens(incoming);
    let mut outgoing: Vec<(String, String)> = incoming
        .iter()
        .filter(|(name, _)| {
            let name = name.to_ascii_lowercase();
            !HOP_BY_HOP.contains(&name.as_str()) && !connection_named.contains(&name)
        })
        .cloned()
        .collect();

    // The response was made for one caller: shared caches must not keep it unless the
    // origin allows it itself.
    if !incoming.iter().any(|(name, _)| name.eq_ignore_ascii_case("cache-control")) {
        outgoing.push(("cache-control".into(), "private".into()));
    }
    outgoing
}

/// The header names listed in `Connection`, lower-cased.
fn connection_tokens(headers: &[(String, String)]) -> Vec<String> {
    headers
        .iter()
        .filter(|(name, _)| name.eq_ignore_ascii_case("connection"))
        .flat_map(|(_, value)| value.split(','))
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
    fn response_headers_add_private_cache_control() {
        let outgoing = response_headers(&headers(&[("Content-Type", "text/plain"), ("Connection", "close")]));
        assert_eq!(outgoing, headers(&[("Content-Type", "text/plain"), ("cache-control", "private")]));
    }

    #[test]
    fn response_headers_keep_origin_cache_control() {
        let outgoing = response_headers(&headers(&[("Cache-Control", "public, max-age=60")]));
        assert_eq!(outgoing, headers(&[("Cache-Control", "public, max-age=60")]));
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
