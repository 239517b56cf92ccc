//! The token check with keys from the identity provider: when it asks for a fetch,
//! when it fails closed with 503, and how configured keys take precedence.

mod support;

use jwt_simple::prelude::*;
use serde_json::{json, Value};
use support::*;
use tollgate::config::Config;
use tollgate::decision::{admit_with_keys, Admission, Denial, RequestFacts};
use tollgate::jwks::{parse_fetched, FetchReason, RemoteKeys};
use tollgate::keys::{parse_key_set, KeyRing};

/// A provider key, unknown to the configuration.
fn provider_key() -> &'static ES256KeyPair {
    static KEY: std::sync::OnceLock<ES256KeyPair> = std::sync::OnceLock::new();
    KEY.get_or_init(ES256KeyPair::generate)
}

fn provider_ring(kid: &str) -> KeyRing {
    let mut jwk: Value = serde_json::from_str(&provider_key().public_key().to_jwk()).unwrap();
    jwk["kid"] = json!(kid);
    let parsed = parse_key_set(&json!({"keys": [jwk]}).to_string()).unwrap();
    KeyRing::new(parsed.keys).unwrap()
}

fn provider_token(kid: &str) -> String {
    let claims: JWTClaims<serde_json::Map<String, Value>> = serde_json::from_value(claims("user-pro")).unwrap();
    let key = ES256KeyPair::from_bytes(&provider_key().to_bytes()).unwrap().with_key_id(kid);
    key.sign(claims).unwrap()
}

/// The fixture with a key set URL, so remote keys are in play.
fn remote_config() -> Config {
    let mut bindings = bindings();
    bindings.insert("JWT_JWKS_URL", "http://127.0.0.1:9/jwks.json".into());
    config_from(&bindings)
}

fn admit_token(token: &str, remote: RemoteKeys<'_>) -> Admission {
    let authorization = format!("Bearer {token}");
    let facts = RequestFacts {
        method: "GET",
        path: "/v1/basic/x",
        query: None,
        authorization: Some(&authorization),
        is_cors_preflight: false,
    };
    admit_with_keys(&remote_config(), &facts, remote, NOW)
}

#[test]
fn remote_key_verifies_token() {
    let ring = provider_ring("idp-1");
    let remote = RemoteKeys::Ready { ring: &ring, refresh: false, can_refetch_unknown: true };
    assert!(matches!(admit_token(&provider_token("idp-1"), remote), Admission::LookUp(_)));
}

#[test]
fn missing_key_set_asks_for_initial_fetch() {
    let admission = admit_token(&provider_token("idp-1"), RemoteKeys::Missing { can_fetch: true });
    assert_eq!(admission, Admission::FetchKeys(FetchReason::Initial));
}

#[test]
fn missing_key_set_without_fetch_unavailable() {
    let admission = admit_token(&provider_token("idp-1"), RemoteKeys::Missing { can_fetch: false });
    assert_eq!(admission, Admission::Deny(Denial::KeysUnavailable));
}

#[test]
fn configured_key_needs_no_remote_set() {
    let token = token("ES256", &claims("user-pro"));
    assert!(matches!(admit_token(&token, RemoteKeys::Missing { can_fetch: false }), Admission::LookUp(_)));
    assert!(matches!(admit_token(&token, RemoteKeys::Missing { can_fetch: true }), Admission::LookUp(_)));
}

#[test]
fn unknown_kid_refetch_once_then_rejected() {
    let ring = provider_ring("idp-1");
    let token = provider_token("idp-2");
    let allowed = RemoteKeys::Ready { ring: &ring, refresh: false, can_refetch_unknown: true };
    assert_eq!(admit_token(&token, allowed), Admission::FetchKeys(FetchReason::UnknownKid));
    let cooling = RemoteKeys::Ready { ring: &ring, refresh: false, can_refetch_unknown: false };
    match admit_token(&token, cooling) {
        Admission::Deny(Denial::InvalidToken { code, .. }) => assert_eq!(code, "token_kid_unknown"),
        other => panic!("{other:?}"),
    }
}

#[test]
fn stale_key_set_asks_for_refresh() {
    let ring = provider_ring("idp-1");
    let stale = RemoteKeys::Ready { ring: &ring, refresh: true, can_refetch_unknown: true };
    assert_eq!(admit_token(&provider_token("idp-1"), stale), Admission::FetchKeys(FetchReason::Refresh));
}

#[test]
fn remote_key_bad_signature_rejected() {
    let ring = provider_ring("idp-1");
    let token = sign("ES256", Some("idp-1"), &claims("user-pro"), false);
    let remote = RemoteKeys::Ready { ring: &ring, refresh: false, can_refetch_unknown: true };
    match admit_token(&token, remote) {
        Admission::Deny(Denial::InvalidToken { code, .. }) => assert_eq!(code, "token_signature_invalid"),
        other => panic!("{other:?}"),
    }
}

#[test]
fn fetched_kid_colliding_with_configured_rejected() {
    let config = remote_config();
    let mut jwk: Value = serde_json::from_str(&provider_key().public_key().to_jwk()).unwrap();
    jwk["kid"] = json!("es-1");
    let error = parse_fetched(&json!({"keys": [jwk]}).to_string(), &config.keys).unwrap_err();
    assert!(error.contains("es-1"), "{error}");
}

#[test]
fn fetched_junk_rejected() {
    let config = remote_config();
    for body in ["not json", "[]", r#"{"keys": "x"}"#, r#"{"issuer": "https://issuer.example"}"#] {
        assert!(parse_fetched(body, &config.keys).is_err(), "{body}");
    }
}

#[test]
fn cached_remote_token_follows_key_set_state() {
    use tollgate::decision::admit_cached;
    use tollgate::token_cache::TokenCache;

    let config = remote_config();
    let authorization = format!("Bearer {}", provider_token("idp-1"));
    let facts = RequestFacts {
        method: "GET",
        path: "/v1/basic/x",
        query: None,
        authorization: Some(&authorization),
        is_cors_preflight: false,
    };
    let ring = provider_ring("idp-1");
    let mut cache = TokenCache::default();

    let fresh = RemoteKeys::Ready { ring: &ring, refresh: false, can_refetch_unknown: true };
    assert!(matches!(admit_cached(&config, &facts, fresh, Some(&mut cache), NOW), Admission::LookUp(_)));
    assert_eq!(cache.len(), 1);

    let stale = RemoteKeys::Ready { ring: &ring, refresh: true, can_refetch_unknown: true };
    let admission = admit_cached(&config, &facts, stale, Some(&mut cache), NOW);
    assert_eq!(admission, Admission::FetchKeys(FetchReason::Refresh));

    let rotated = provider_ring("idp-2");
    let without_kid = RemoteKeys::Ready { ring: &rotated, refresh: false, can_refetch_unknown: false };
    match admit_cached(&config, &facts, without_kid, Some(&mut cache), NOW) {
        Admission::Deny(Denial::InvalidToken { code, .. }) => assert_eq!(code, "token_kid_unknown"),
        other => panic!("{other:?}"),
    }
}
