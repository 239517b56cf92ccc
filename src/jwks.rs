//! Keys fetched from the identity provider: a JWK Set URL, or one found through
//! OpenID Connect discovery.
//!
//! This module holds the rules and the per-isolate state; the adapter does the I/O.
//! A fetched set is parsed by the same parser as `JWT_PUBLIC_KEYS`, is fresh for
//! `JWT_JWKS_CACHE_SECONDS` (or the response's `max-age`, within bounds), keeps serving
//! for `JWT_JWKS_MAX_STALE_SECONDS` while the provider cannot be reached, and a token
//! with an unknown `kid` causes at most one fetch per `JWT_JWKS_COOLDOWN_SECONDS`.

use std::fmt;

use serde::Deserialize;
use url::Url;

use crate::keys::{parse_key_set, KeyRing};

/// The shortest freshness a `Cache-Control: max-age` can set, in seconds.
pub const MIN_FRESH_SECONDS: u64 = 5;

/// The longest freshness a `Cache-Control: max-age` can set, in seconds.
pub const MAX_FRESH_SECONDS: u64 = 86_400;

/// The largest key set or discovery document read, in bytes.
pub const MAX_DOCUMENT_BYTES: usize = 256 * 1024;

/// How long one fetch may take before it is abandoned, in milliseconds.
pub const FETCH_TIMEOUT_MS: u64 = 5_000;

/// Where the key set's URL comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeySetLocation {
    /// `JWT_JWKS_URL`.
    Url(String),
    /// `JWT_OIDC_DISCOVERY=true`: `jwks_uri` of this discovery document.
    Discovery { document_url: String, issuer: String },
}

/// The remote key set settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JwksSettings {
    pub location: KeySetLocation,
    /// `JWT_JWKS_CACHE_SECONDS`: freshness when the response sets no `max-age`. Default 600.
    pub cache_seconds: u64,
    /// `JWT_JWKS_COOLDOWN_SECONDS`: the shortest time between two fetches caused by
    /// unknown `kid` values, and between a failed fetch and the next try. Default 30.
    pub cooldown_seconds: u64,
    /// `JWT_JWKS_MAX_STALE_SECONDS`: how long past its freshness the last good set
    /// serves while fetches fail. Default 86400.
    pub max_stale_seconds: u64,
}

/// Checks that a key set or discovery URL is `https://`, or `http://` to this machine.
pub fn check_url(value: &str) -> Result<Url, String> {
    let url = crate::config::absolute_url(value).map_err(|reason| format!("{value:?} {reason}"))?;
    let local = matches!(url.host_str(), Some("127.0.0.1" | "localhost" | "[::1]"));
    match url.scheme() {
        "https" => {}
        "http" if local => {}
        _ => return Err(format!("{value:?} must use https (http only for 127.0.0.1, localhost or [::1])")),
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(format!("{value:?} must not contain credentials"));
    }
    Ok(url)
}

/// The discovery document URL of an issuer (OpenID Connect Discovery 1.0 §4).
pub fn discovery_url(issuer: &str) -> String {
    format!("{}/.well-known/openid-configuration", issuer.trim_end_matches('/'))
}

/// A discovery document whose `issuer` differs from `JWT_ISSUER`: a configuration error.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DiscoveryError {
    /// The document names another issuer; the gateway must not trust its keys.
    IssuerMismatch { expected: String, found: String },
    /// The document is not JSON with string `issuer` and `jwks_uri`, or `jwks_uri` is
    /// not an acceptable URL.
    Invalid(String),
}

impl fmt::Display for DiscoveryError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DiscoveryError::IssuerMismatch { expected, found } => {
                write!(f, "discovery document issuer {found:?} differs from JWT_ISSUER {expected:?}")
            }
            DiscoveryError::Invalid(reason) => write!(f, "invalid discovery document: {reason}"),
        }
    }
}

#[derive(Deserialize)]
struct DiscoveryDocument {
    issuer: String,
    jwks_uri: String,
}

/// Reads `jwks_uri` from a discovery document after checking its `issuer`.
pub fn parse_discovery(body: &str, issuer: &str) -> Result<String, DiscoveryError> {
    let document: DiscoveryDocument = serde_json::from_str(body)
        .map_err(|_| DiscoveryError::Invalid("not JSON with string issuer and jwks_uri".into()))?;
    if document.issuer != issuer {
        return Err(DiscoveryError::IssuerMismatch { expected: issuer.to_string(), found: document.issuer });
    }
    check_url(&document.jwks_uri).map_err(DiscoveryError::Invalid)?;
    Ok(document.jwks_uri)
}

/// Parses a fetched key set. A `kid` that a configured key already has is an error,
/// because the two sources must never disagree about a key.
pub fn parse_fetched(body: &str, configured: &KeyRing) -> Result<KeyRing, String> {
    let parsed = parse_key_set(body).map_err(|error| error.0)?;
    if let Some(kid) = parsed.keys.iter().filter_map(|key| key.kid()).find(|kid| configured.has_kid(kid)) {
        return Err(format!("kid {kid:?} is also a configured key's (JWT_PUBLIC_KEYS or JWT_HMAC_KID)"));
    }
    KeyRing::new(parsed.keys).map_err(|error| error.0)
}

/// How long a fetched set is fresh: the response's `max-age` within
/// [`MIN_FRESH_SECONDS`]..=[`MAX_FRESH_SECONDS`], else `default_seconds`.
pub fn fresh_seconds(cache_control: Option<&str>, default_seconds: u64) -> u64 {
    let max_age = cache_control.and_then(|value| {
        value.split(',').find_map(|directive| {
            let (name, seconds) = directive.trim().split_once('=')?;
            name.trim().eq_ignore_ascii_case("max-age").then(|| seconds.trim().trim_matches('"').parse::<u64>().ok())?
        })
    });
    match max_age {
        Some(seconds) => seconds.clamp(MIN_FRESH_SECONDS, MAX_FRESH_SECONDS),
        None => default_seconds,
    }
}

/// Why a fetch is needed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FetchReason {
    /// No key set yet in this isolate.
    Initial,
    /// The key set is past its freshness.
    Refresh,
    /// A token's `kid` is not in the key set.
    UnknownKid,
}

impl FetchReason {
    pub fn code(self) -> &'static str {
        match self {
            FetchReason::Initial => "initial",
            FetchReason::Refresh => "refresh",
            FetchReason::UnknownKid => "unknown_kid",
        }
    }
}

/// What the token check may use from the remote key set at one instant.
#[derive(Debug, Clone, Copy)]
pub enum RemoteKeys<'a> {
    /// No key set URL is configured.
    NotConfigured,
    /// No usable set: none was ever fetched, or the last good one is past the stale
    /// bound. `can_fetch` is whether a fetch may be tried now.
    Missing { can_fetch: bool },
    /// A usable set. `refresh` requests a fetch first because it is past its
    /// freshness; `can_refetch_unknown` allows a fetch for an unknown `kid`.
    Ready { ring: &'a KeyRing, refresh: bool, can_refetch_unknown: bool },
}

/// The last good key set of one isolate.
#[derive(Debug, Clone)]
pub struct FetchedKeys {
    pub ring: KeyRing,
    /// Unix seconds of the fetch.
    pub fetched_at: u64,
    /// Unix seconds until which the set is fresh.
    pub fresh_until: u64,
}

/// The remote key state of one isolate.
#[derive(Debug, Clone, Default)]
pub struct KeySetState {
    pub keys: Option<FetchedKeys>,
    /// Unix seconds of the last fetch caused by an unknown `kid`.
    pub last_unknown_kid_fetch: Option<u64>,
    /// Unix seconds of the last failed fetch.
    pub last_failure: Option<u64>,
    /// The key set URL, once known (at once for `JWT_JWKS_URL`, after discovery else).
    pub jwks_url: Option<String>,
    /// A discovery result that makes the configuration invalid; kept for good.
    pub discovery_error: Option<DiscoveryError>,
    /// Fetches sent to the network by this isolate, for the log.
    pub fetch_count: u64,
}

impl KeySetState {
    /// The view the token check gets at `now`. After a fetch in the same request,
    /// `fetched_now` stops it from asking for another.
    pub fn view(&self, settings: &JwksSettings, now: u64, fetched_now: bool) -> RemoteKeys<'_> {
        let cooled = |last: Option<u64>| last.is_none_or(|at| now >= at.saturating_add(settings.cooldown_seconds));
        let may_fetch = !fetched_now && cooled(self.last_failure);

        let Some(keys) = &self.keys else {
            return RemoteKeys::Missing { can_fetch: may_fetch };
        };
        let stale = now >= keys.fresh_until;
        if stale && now >= keys.fresh_until.saturating_add(settings.max_stale_seconds) {
            return RemoteKeys::Missing { can_fetch: may_fetch };
        }
        RemoteKeys::Ready {
            ring: &keys.ring,
            refresh: stale && may_fetch,
            can_refetch_unknown: may_fetch && cooled(self.last_unknown_kid_fetch),
        }
    }

    /// Records a fetch attempt's start, for the cool-down of unknown `kid` fetches.
    pub fn start_fetch(&mut self, reason: FetchReason, now: u64) {
        if reason == FetchReason::UnknownKid {
            self.last_unknown_kid_fetch = Some(now);
        }
    }

    /// Stores a good key set fetched at `now`, fresh for `fresh_seconds`.
    pub fn store(&mut self, ring: KeyRing, now: u64, fresh_seconds: u64) {
        self.keys = Some(FetchedKeys { ring, fetched_at: now, fresh_until: now.saturating_add(fresh_seconds) });
        self.last_failure = None;
    }

    /// Records a failed fetch; the last good set, if any, keeps serving.
    pub fn fail(&mut self, now: u64) {
        self.last_failure = Some(now);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings() -> JwksSettings {
        JwksSettings {
            location: KeySetLocation::Url("https://issuer.example/jwks.json".into()),
            cache_seconds: 600,
            cooldown_seconds: 30,
            max_stale_seconds: 86_400,
        }
    }

    fn state_with_keys(fetched_at: u64, fresh_seconds: u64) -> KeySetState {
        let mut state = KeySetState::default();
        state.store(KeyRing::default(), fetched_at, fresh_seconds);
        state
    }

    #[test]
    fn check_url_https_or_local_http() {
        assert!(check_url("https://issuer.example/jwks").is_ok());
        assert!(check_url("http://127.0.0.1:9000/jwks").is_ok());
        assert!(check_url("http://localhost/jwks").is_ok());
        assert!(check_url("http://[::1]:8080/jwks").is_ok());
        assert!(check_url("http://issuer.example/jwks").is_err());
        assert!(check_url("http://127.0.0.1.example/jwks").is_err());
        assert!(check_url("ftp://issuer.example/jwks").is_err());
        assert!(check_url("https://user:pass@issuer.example/jwks").is_err());
        assert!(check_url("/jwks").is_err());
    }

    #[test]
    fn discovery_url_appends_well_known() {
        assert_eq!(discovery_url("https://issuer.example"), "https://issuer.example/.well-known/openid-configuration");
        assert_eq!(discovery_url("https://issuer.example/"), "https://issuer.example/.well-known/openid-configuration");
    }

    #[test]
    fn parse_discovery_checks_issuer() {
        let body = r#"{"issuer": "https://issuer.example", "jwks_uri": "https://issuer.example/keys"}"#;
        assert_eq!(parse_discovery(body, "https://issuer.example").unwrap(), "https://issuer.example/keys");
        let error = parse_discovery(body, "https://issuer.example/").unwrap_err();
        assert!(matches!(error, DiscoveryError::IssuerMismatch { .. }));
    }

    #[test]
    fn parse_discovery_rejects_bad_documents() {
        for body in ["not json", "{}", r#"{"issuer": "https://i.example", "jwks_uri": "http://i.example/keys"}"#] {
            assert!(matches!(parse_discovery(body, "https://i.example"), Err(DiscoveryError::Invalid(_))), "{body}");
        }
    }

    #[test]
    fn fresh_seconds_honours_max_age_within_bounds() {
        assert_eq!(fresh_seconds(None, 600), 600);
        assert_eq!(fresh_seconds(Some("public, max-age=120"), 600), 120);
        assert_eq!(fresh_seconds(Some("max-age=1"), 600), MIN_FRESH_SECONDS);
        assert_eq!(fresh_seconds(Some("max-age=999999"), 600), MAX_FRESH_SECONDS);
        assert_eq!(fresh_seconds(Some("no-cache"), 600), 600);
        assert_eq!(fresh_seconds(Some("max-age=soon"), 600), 600);
    }

    #[test]
    fn view_without_keys_asks_for_fetch() {
        let state = KeySetState::default();
        assert!(matches!(state.view(&settings(), 1_000, false), RemoteKeys::Missing { can_fetch: true }));
        assert!(matches!(state.view(&settings(), 1_000, true), RemoteKeys::Missing { can_fetch: false }));
    }

    #[test]
    fn view_failure_backs_off_for_cooldown() {
        let mut state = KeySetState::default();
        state.fail(1_000);
        assert!(matches!(state.view(&settings(), 1_029, false), RemoteKeys::Missing { can_fetch: false }));
        assert!(matches!(state.view(&settings(), 1_030, false), RemoteKeys::Missing { can_fetch: true }));
    }

    #[test]
    fn view_fresh_keys_ready_without_refresh() {
        let state = state_with_keys(1_000, 600);
        let RemoteKeys::Ready { refresh, can_refetch_unknown, .. } = state.view(&settings(), 1_599, false) else {
            panic!("keys should be ready");
        };
        assert!(!refresh);
        assert!(can_refetch_unknown);
    }

    #[test]
    fn view_stale_keys_refresh_then_serve_until_bound() {
        let mut state = state_with_keys(1_000, 600);
        assert!(matches!(state.view(&settings(), 1_600, false), RemoteKeys::Ready { refresh: true, .. }));
        state.fail(1_600);
        assert!(matches!(state.view(&settings(), 1_601, false), RemoteKeys::Ready { refresh: false, .. }));
        let bound = 1_600 + 86_400;
        assert!(matches!(state.view(&settings(), bound - 1, false), RemoteKeys::Ready { .. }));
        assert!(matches!(state.view(&settings(), bound, false), RemoteKeys::Missing { .. }));
    }

    #[test]
    fn view_unknown_kid_refetch_once_per_cooldown() {
        let mut state = state_with_keys(1_000, 600);
        state.start_fetch(FetchReason::UnknownKid, 1_010);
        state.store(KeyRing::default(), 1_010, 600);
        assert!(matches!(state.view(&settings(), 1_039, false), RemoteKeys::Ready { can_refetch_unknown: false, .. }));
        assert!(matches!(state.view(&settings(), 1_040, false), RemoteKeys::Ready { can_refetch_unknown: true, .. }));
    }
}
