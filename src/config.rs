//! The gateway's configuration, parsed once per isolate from the Worker's bindings.
//!
//! [`Config::from_bindings`] reads every binding through a lookup function and either
//! returns a typed [`Config`] or the first [`ConfigError`], which names the binding and
//! what is wrong with it. After this step no code looks at raw binding strings.

use std::fmt;

use url::Url;

use crate::jwks::{check_url, discovery_url, JwksSettings, KeySetLocation};
use crate::keys::{parse_key_set, Algorithm, KeyRing, VerificationKey};
use crate::log::LogRequests;
use crate::routes::{parse_policy, RoutePolicy};

/// The shortest `ENTITLEMENT_CACHE_SECONDS` other than 0: KV's `cacheTtl` minimum.
pub const MIN_CACHE_SECONDS: u64 = 30;

/// The shortest HMAC secret accepted, in bytes (RFC 7518 §3.2 asks for at least the
/// hash size; 32 bytes is HS256's).
pub const MIN_HMAC_SECRET_BYTES: usize = 32;

/// The default `AUTHORIZATION_MAX_BYTES`.
pub const DEFAULT_MAX_AUTHORIZATION_BYTES: usize = 8 * 1024;

/// The accepted range of `AUTHORIZATION_MAX_BYTES`.
pub const AUTHORIZATION_MAX_BYTES_RANGE: std::ops::RangeInclusive<usize> = 1024..=65_536;

/// A secret value; `Debug` leaves it out so it cannot reach a log by accident.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn expose(&self) -> &str {
        &self.0
    }

    #[cfg(test)]
    pub(crate) fn for_tests(value: &str) -> Self {
        Secret(value.to_string())
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret([redacted])")
    }
}

/// A binding that is missing or invalid. `reason` never contains a secret's value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    pub binding: &'static str,
    pub reason: String,
}

impl ConfigError {
    fn new(binding: &'static str, reason: impl Into<String>) -> Self {
        ConfigError { binding, reason: reason.into() }
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "binding {}: {}", self.binding, self.reason)
    }
}

/// Where forwarded requests go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Origin {
    /// `scheme://host[:port]`, without a trailing slash.
    pub base: String,
    /// A base path without a trailing slash (empty for none); the request path is
    /// appended to it.
    pub base_path: String,
}

/// Everything the gateway needs to decide, typed and checked.
#[derive(Debug, Clone)]
pub struct Config {
    /// `JWT_ISSUER`: the one accepted `iss`, compared exactly. Required.
    pub issuer: String,
    /// `JWT_AUDIENCE`: accepted audiences; a token passes if its `aud` contains one.
    /// Required.
    pub audiences: Vec<String>,
    /// `JWT_PUBLIC_KEYS` and `JWT_HMAC_SECRET`: the configured keys, tried first.
    pub keys: KeyRing,
    /// `JWT_JWKS_URL` or `JWT_OIDC_DISCOVERY` and their cache settings: keys fetched
    /// from the identity provider. Default: none.
    pub jwks: Option<JwksSettings>,
    /// `JWT_CLOCK_SKEW_SECONDS`: leeway on `exp`, `nbf` and `iat`, in seconds. Default 60.
    pub clock_skew: u64,
    /// `JWT_MAX_LIFETIME_SECONDS`: the longest accepted `exp` − `iat` (or `exp` − now
    /// without `iat`), in seconds. Default: no limit.
    pub max_lifetime: Option<u64>,
    /// `JWT_REQUIRED_TYPE`: the header `typ` every token must carry, compared without
    /// case and without an `application/` prefix. Default: any JWT type.
    pub required_type: Option<String>,
    /// `ENTITLEMENT_CLAIM`: the claim whose string value names the caller's record.
    /// Default `sub`.
    pub entitlement_claim: String,
    /// `ENTITLEMENT_KEY_PREFIX`: prepended to the claim value to form the KV key.
    /// Default empty.
    pub entitlement_key_prefix: String,
    /// `ENTITLEMENT_CACHE_SECONDS`: how long a record may be served from a cache, in
    /// seconds; 0 turns caching off. Default 60.
    pub entitlement_cache_seconds: u64,
    /// `ROUTES`: the route policy. Required.
    pub routes: RoutePolicy,
    /// `ORIGIN_URL`: where requests go. Default: the request's own URL.
    pub origin: Option<Origin>,
    /// `AUTH_REALM`: the challenge realm. Default: the request's host.
    pub realm: Option<String>,
    /// `UPGRADE_URL`: where to buy a missing feature; `{feature}` is replaced.
    pub upgrade_url: Option<String>,
    /// `FORWARD_AUTHORIZATION`: pass the client's `Authorization` to the origin.
    /// Default false.
    pub forward_authorization: bool,
    /// `ORIGIN_AUTHORIZATION`: the `Authorization` value the gateway sends to the
    /// origin on every forwarded request, replacing the client's. Default: none.
    pub origin_authorization: Option<Secret>,
    /// `AUTHORIZATION_MAX_BYTES`: the longest `Authorization` value accepted, in
    /// bytes; longer ones get 431 before any parsing. Default 8192.
    pub max_authorization_bytes: usize,
    /// `LOG_REQUESTS`: which requests get a log line. Default: denials.
    pub log_requests: LogRequests,
    /// Keys skipped while reading `JWT_PUBLIC_KEYS`, one line each, for the log.
    pub skipped_keys: Vec<String>,
}

impl Config {
    /// Parses the configuration. `lookup` returns a binding's string value, or `None`
    /// when it is not set.
    pub fn from_bindings(lookup: impl Fn(&str) -> Option<String>) -> Result<Config, ConfigError> {
        let text = |name: &str| lookup(name).filter(|value| !value.trim().is_empty());

        let issuer = text("JWT_ISSUER").ok_or_else(|| ConfigError::new("JWT_ISSUER", "missing"))?;
        let audiences = parse_audiences(text("JWT_AUDIENCE"))?;
        let jwks = parse_jwks(&text, &issuer)?;
        let (keys, skipped_keys) = parse_keys(&text, jwks.is_some())?;
        let clock_skew = parse_seconds("JWT_CLOCK_SKEW_SECONDS", text("JWT_CLOCK_SKEW_SECONDS"))?.unwrap_or(60);
        let max_lifetime = parse_seconds("JWT_MAX_LIFETIME_SECONDS", text("JWT_MAX_LIFETIME_SECONDS"))?;
        let required_type = text("JWT_REQUIRED_TYPE").map(|value| normalise_type(value.trim()));
        let entitlement_claim = text("ENTITLEMENT_CLAIM").map_or_else(|| "sub".to_string(), |claim| claim.trim().to_string());
        let entitlement_key_prefix = lookup("ENTITLEMENT_KEY_PREFIX").unwrap_or_default();
        let entitlement_cache_seconds = parse_cache_seconds(text("ENTITLEMENT_CACHE_SECONDS"))?;
        let routes_text = text("ROUTES").ok_or_else(|| ConfigError::new("ROUTES", "missing"))?;
        let routes = parse_policy(&routes_text).map_err(|error| ConfigError::new("ROUTES", error.0))?;
        let origin = text("ORIGIN_URL").map(|value| parse_origin(&value)).transpose()?;
        let realm = text("AUTH_REALM").map(|value| parse_realm(&value)).transpose()?;
        let upgrade_url = text("UPGRADE_URL").map(|value| parse_upgrade_url(&value)).transpose()?;
        let forward_authorization = parse_bool("FORWARD_AUTHORIZATION", text("FORWARD_AUTHORIZATION"))?;
        let origin_authorization = parse_origin_authorization(text("ORIGIN_AUTHORIZATION"), forward_authorization)?;
        let max_authorization_bytes = parse_authorization_limit(text("AUTHORIZATION_MAX_BYTES"))?;
        let log_requests = parse_log_requests(text("LOG_REQUESTS"))?;

        Ok(Config {
            issuer,
            audiences,
            keys,
            jwks,
            clock_skew,
            max_lifetime,
            required_type,
            entitlement_claim,
            entitlement_key_prefix,
            entitlement_cache_seconds,
            routes,
            origin,
            realm,
            upgrade_url,
            forward_authorization,
            origin_authorization,
            max_authorization_bytes,
            log_requests,
            skipped_keys,
        })
    }
}

/// Lower-cases a `typ` value and drops an `application/` prefix (RFC 7515 §4.1.9).
pub fn normalise_type(value: &str) -> String {
    let lower = value.to_ascii_lowercase();
    match lower.strip_prefix("application/") {
        Some(rest) => rest.to_string(),
        None => lower,
    }
}

fn parse_audiences(value: Option<String>) -> Result<Vec<String>, ConfigError> {
    let value = value.ok_or_else(|| ConfigError::new("JWT_AUDIENCE", "missing"))?;
    let audiences: Vec<String> = value.split(',').map(|audience| audience.trim().to_string()).collect();
    if audiences.iter().any(String::is_empty) {
        return Err(ConfigError::new("JWT_AUDIENCE", "contains an empty audience between commas"));
    }
    Ok(audiences)
}

fn parse_jwks(text: &impl Fn(&str) -> Option<String>, issuer: &str) -> Result<Option<JwksSettings>, ConfigError> {
    let discovery = parse_bool("JWT_OIDC_DISCOVERY", text("JWT_OIDC_DISCOVERY"))?;
    let location = match (text("JWT_JWKS_URL"), discovery) {
        (Some(_), true) => {
            let reason = "set together with JWT_OIDC_DISCOVERY=true; use one of the two";
            return Err(ConfigError::new("JWT_JWKS_URL", reason));
        }
        (Some(url), false) => {
            let url = check_url(&url).map_err(|reason| ConfigError::new("JWT_JWKS_URL", reason))?;
            KeySetLocation::Url(url.to_string())
        }
        (None, true) => {
            let document_url = discovery_url(issuer);
            check_url(&document_url).map_err(|reason| {
                ConfigError::new("JWT_OIDC_DISCOVERY", format!("the discovery URL from JWT_ISSUER: {reason}"))
            })?;
            KeySetLocation::Discovery { document_url, issuer: issuer.to_string() }
        }
        (None, false) => return Ok(None),
    };

    let cache_seconds = parse_seconds("JWT_JWKS_CACHE_SECONDS", text("JWT_JWKS_CACHE_SECONDS"))?.unwrap_or(600);
    let cooldown_seconds = parse_seconds("JWT_JWKS_COOLDOWN_SECONDS", text("JWT_JWKS_COOLDOWN_SECONDS"))?.unwrap_or(30);
    let max_stale_seconds = parse_seconds("JWT_JWKS_MAX_STALE_SECONDS", text("JWT_JWKS_MAX_STALE_SECONDS"))?.unwrap_or(86_400);
    if cache_seconds == 0 {
        return Err(ConfigError::new("JWT_JWKS_CACHE_SECONDS", "must be at least 1"));
    }
    Ok(Some(JwksSettings { location, cache_seconds, cooldown_seconds, max_stale_seconds }))
}

fn parse_keys(text: &impl Fn(&str) -> Option<String>, has_remote_keys: bool) -> Result<(KeyRing, Vec<String>), ConfigError> {
    let mut keys = Vec::new();
    let mut skipped = Vec::new();

    if let Some(json) = text("JWT_PUBLIC_KEYS") {
        let parsed = parse_key_set(&json).map_err(|error| ConfigError::new("JWT_PUBLIC_KEYS", error.0))?;
        keys.extend(parsed.keys);
        skipped.extend(parsed.skipped);
    }

    let hmac_kid = text("JWT_HMAC_KID").map(|kid| kid.trim().to_string());
    let hmac_algorithm = match text("JWT_HMAC_ALGORITHM") {
        None => Algorithm::Hs256,
        Some(name) => match Algorithm::from_name(name.trim()) {
            Some(algorithm @ (Algorithm::Hs256 | Algorithm::Hs384 | Algorithm::Hs512)) => algorithm,
            _ => return Err(ConfigError::new("JWT_HMAC_ALGORITHM", format!("{name:?} is not HS256, HS384 or HS512"))),
        },
    };
    if let Some(secret) = text("JWT_HMAC_SECRET") {
        if secret.len() < MIN_HMAC_SECRET_BYTES {
            let reason = format!("shorter than {MIN_HMAC_SECRET_BYTES} bytes ({} bytes)", secret.len());
            return Err(ConfigError::new("JWT_HMAC_SECRET", reason));
        }
        let key = VerificationKey::hmac(secret.as_bytes(), hmac_algorithm, hmac_kid);
        keys.extend(key);
    } else if hmac_kid.is_some() {
        return Err(ConfigError::new("JWT_HMAC_KID", "set, but JWT_HMAC_SECRET is missing"));
    }

    if keys.is_empty() && !has_remote_keys {
        let reason = "no verification key: set JWT_PUBLIC_KEYS (a JWK Set), JWT_HMAC_SECRET, JWT_JWKS_URL or JWT_OIDC_DISCOVERY";
        return Err(ConfigError::new("JWT_PUBLIC_KEYS", reason));
    }
    let ring = KeyRing::new(keys).map_err(|error| ConfigError::new("JWT_PUBLIC_KEYS", error.0))?;
    Ok((ring, skipped))
}

fn parse_seconds(binding: &'static str, value: Option<String>) -> Result<Option<u64>, ConfigError> {
    parse_count(binding, value, "seconds")
}

fn parse_count(binding: &'static str, value: Option<String>, unit: &str) -> Result<Option<u64>, ConfigError> {
    let Some(value) = value else { return Ok(None) };
    value
        .trim()
        .parse::<u64>()
        .map(Some)
        .map_err(|_| ConfigError::new(binding, format!("{value:?} is not a whole number of {unit}")))
}

fn parse_cache_seconds(value: Option<String>) -> Result<u64, ConfigError> {
    let seconds = parse_seconds("ENTITLEMENT_CACHE_SECONDS", value)?.unwrap_or(60);
    if seconds != 0 && seconds < MIN_CACHE_SECONDS {
        let reason = format!("{seconds} is below KV's cacheTtl minimum of {MIN_CACHE_SECONDS}; use 0 to turn caching off");
        return Err(ConfigError::new("ENTITLEMENT_CACHE_SECONDS", reason));
    }
    Ok(seconds)
}

fn parse_bool(binding: &'static str, value: Option<String>) -> Result<bool, ConfigError> {
    match value.as_deref().map(str::trim) {
        None | Some("false") => Ok(false),
        Some("true") => Ok(true),
        Some(other) => Err(ConfigError::new(binding, format!("{other:?} is not true or false"))),
    }
}

fn parse_origin(value: &str) -> Result<Origin, ConfigError> {
    let invalid = |reason: &str| ConfigError::new("ORIGIN_URL", format!("{value:?} {reason}"));
    let url = absolute_url(value).map_err(invalid)?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(invalid("must use http or https"));
    }
    if url.host_str().is_none() {
        return Err(invalid("has no host"));
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err(invalid("must not have a query or fragment"));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(invalid("must not contain credentials"));
    }

    let base = url.origin().ascii_serialization();
    let base_path = url.path().trim_end_matches('/').to_string();
    Ok(Origin { base, base_path })
}

fn parse_origin_authorization(value: Option<String>, forward_authorization: bool) -> Result<Option<Secret>, ConfigError> {
    let Some(value) = value else { return Ok(None) };
    if forward_authorization {
        let reason = "set together with FORWARD_AUTHORIZATION=true; the origin can get only one Authorization";
        return Err(ConfigError::new("ORIGIN_AUTHORIZATION", reason));
    }
    if value.bytes().any(|byte| byte.is_ascii_control()) {
        return Err(ConfigError::new("ORIGIN_AUTHORIZATION", "contains control characters"));
    }
    Ok(Some(Secret(value.trim().to_string())))
}

fn parse_authorization_limit(value: Option<String>) -> Result<usize, ConfigError> {
    let Some(bytes) = parse_count("AUTHORIZATION_MAX_BYTES", value, "bytes")? else {
        return Ok(DEFAULT_MAX_AUTHORIZATION_BYTES);
    };
    let bytes = usize::try_from(bytes).unwrap_or(usize::MAX);
    if !AUTHORIZATION_MAX_BYTES_RANGE.contains(&bytes) {
        let (low, high) = (AUTHORIZATION_MAX_BYTES_RANGE.start(), AUTHORIZATION_MAX_BYTES_RANGE.end());
        return Err(ConfigError::new("AUTHORIZATION_MAX_BYTES", format!("{bytes} is not between {low} and {high}")));
    }
    Ok(bytes)
}

fn parse_log_requests(value: Option<String>) -> Result<LogRequests, ConfigError> {
    match value.as_deref().map(str::trim) {
        None | Some("denials") => Ok(LogRequests::Denials),
        Some("all") => Ok(LogRequests::All),
        Some("errors") => Ok(LogRequests::Errors),
        Some(other) => Err(ConfigError::new("LOG_REQUESTS", format!("{other:?} is not all, denials or errors"))),
    }
}

fn parse_realm(value: &str) -> Result<String, ConfigError> {
    // The realm is written into a quoted-string as it is (RFC 9110 §5.6.4).
    if value.bytes().any(|byte| byte == b'"' || byte == b'\\' || byte.is_ascii_control()) {
        return Err(ConfigError::new("AUTH_REALM", "must not contain quotes, backslashes or control characters"));
    }
    Ok(value.trim().to_string())
}

fn parse_upgrade_url(value: &str) -> Result<String, ConfigError> {
    let candidate = value.trim().replace("{feature}", "feature");
    match absolute_url(&candidate) {
        Ok(url) if matches!(url.scheme(), "http" | "https") => Ok(value.trim().to_string()),
        Ok(_) => Err(ConfigError::new("UPGRADE_URL", format!("{value:?} is not an http or https URL"))),
        Err(reason) => Err(ConfigError::new("UPGRADE_URL", format!("{value:?} {reason}"))),
    }
}

/// Parses a configured URL. Host names must be ASCII: the build leaves out IDNA's
/// Unicode tables (see `idna_adapter` in Cargo.toml), so a Unicode name gets its own
/// reason rather than a generic one.
pub(crate) fn absolute_url(value: &str) -> Result<Url, &'static str> {
    Url::parse(value.trim()).map_err(|error| match error {
        url::ParseError::IdnaError => "has a host name that is not ASCII: write it in its punycode form (xn--...)",
        _ => "is not an absolute URL",
    })
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    const HMAC_SECRET: &str = "0123456789abcdef0123456789abcdef";

    fn base() -> HashMap<&'static str, String> {
        HashMap::from([
            ("JWT_ISSUER", "https://issuer.example".to_string()),
            ("JWT_AUDIENCE", "https://api.example".to_string()),
            ("JWT_HMAC_SECRET", HMAC_SECRET.to_string()),
            ("ROUTES", r#"[{"path": "/*", "access": "authenticated"}]"#.to_string()),
        ])
    }

    fn parse(bindings: &HashMap<&'static str, String>) -> Result<Config, ConfigError> {
        Config::from_bindings(|name| bindings.get(name).cloned())
    }

    fn error_for(changes: &[(&'static str, Option<&str>)]) -> ConfigError {
        let mut bindings = base();
        for (name, value) in changes {
            match value {
                Some(value) => bindings.insert(name, value.to_string()),
                None => bindings.remove(name),
            };
        }
        parse(&bindings).expect_err("configuration should be invalid")
    }

    #[test]
    fn from_bindings_defaults() {
        let config = parse(&base()).unwrap();
        assert_eq!(config.clock_skew, 60);
        assert_eq!(config.entitlement_claim, "sub");
        assert_eq!(config.entitlement_key_prefix, "");
        assert_eq!(config.entitlement_cache_seconds, 60);
        assert_eq!(config.origin, None);
        assert_eq!(config.realm, None);
        assert!(!config.forward_authorization);
        assert_eq!(config.origin_authorization, None);
        assert_eq!(config.max_authorization_bytes, 8192);
        assert_eq!(config.log_requests, LogRequests::Denials);
        assert_eq!(config.keys.len(), 1);
    }

    #[test]
    fn from_bindings_audiences_split_on_commas() {
        let mut bindings = base();
        bindings.insert("JWT_AUDIENCE", "https://a.example, https://b.example".into());
        assert_eq!(parse(&bindings).unwrap().audiences, vec!["https://a.example", "https://b.example"]);
    }

    #[test]
    fn from_bindings_origin_keeps_base_path() {
        let mut bindings = base();
        bindings.insert("ORIGIN_URL", "http://127.0.0.1:9000/api/".into());
        let origin = parse(&bindings).unwrap().origin.unwrap();
        assert_eq!(origin.base, "http://127.0.0.1:9000");
        assert_eq!(origin.base_path, "/api");
    }

    #[test]
    fn from_bindings_unicode_host_names_need_punycode() {
        let punycode = "https://xn--bcher-kva.example/api";
        let mut bindings = base();
        bindings.insert("ORIGIN_URL", punycode.into());
        assert_eq!(parse(&bindings).unwrap().origin.unwrap().base, "https://xn--bcher-kva.example");

        for binding in ["ORIGIN_URL", "UPGRADE_URL", "JWT_JWKS_URL"] {
            let error = error_for(&[(binding, Some("https://b\u{fc}cher.example/x"))]);
            assert_eq!(error.binding, binding);
            assert!(error.to_string().contains("punycode"), "{binding}: {error}");
        }
    }

    #[test]
    fn from_bindings_required_type_normalised() {
        let mut bindings = base();
        bindings.insert("JWT_REQUIRED_TYPE", "application/AT+JWT".into());
        assert_eq!(parse(&bindings).unwrap().required_type.as_deref(), Some("at+jwt"));
    }

    #[test]
    fn from_bindings_errors_name_binding() {
        type Changes<'a> = &'a [(&'static str, Option<&'a str>)];
        let cases: &[(Changes, &str)] = &[
            (&[("JWT_ISSUER", None)], "JWT_ISSUER"),
            (&[("JWT_ISSUER", Some("  "))], "JWT_ISSUER"),
            (&[("JWT_AUDIENCE", None)], "JWT_AUDIENCE"),
            (&[("JWT_AUDIENCE", Some("a,,b"))], "JWT_AUDIENCE"),
            (&[("JWT_HMAC_SECRET", None)], "JWT_PUBLIC_KEYS"),
            (&[("JWT_HMAC_SECRET", Some("short"))], "JWT_HMAC_SECRET"),
            (&[("JWT_HMAC_ALGORITHM", Some("RS256"))], "JWT_HMAC_ALGORITHM"),
            (&[("JWT_HMAC_SECRET", None), ("JWT_HMAC_KID", Some("k"))], "JWT_HMAC_KID"),
            (&[("JWT_PUBLIC_KEYS", Some("{"))], "JWT_PUBLIC_KEYS"),
            (&[("JWT_PUBLIC_KEYS", Some(r#"{"keys": [{"kty": "EC", "crv": "P-256", "x": "AA", "y": "AA"}]}"#))], "JWT_PUBLIC_KEYS"),
            (&[("JWT_CLOCK_SKEW_SECONDS", Some("-1"))], "JWT_CLOCK_SKEW_SECONDS"),
            (&[("JWT_MAX_LIFETIME_SECONDS", Some("1h"))], "JWT_MAX_LIFETIME_SECONDS"),
            (&[("ENTITLEMENT_CACHE_SECONDS", Some("10"))], "ENTITLEMENT_CACHE_SECONDS"),
            (&[("ROUTES", None)], "ROUTES"),
            (&[("ROUTES", Some("[{"))], "ROUTES"),
            (&[("ORIGIN_URL", Some("ftp://x.example"))], "ORIGIN_URL"),
            (&[("ORIGIN_URL", Some("/relative"))], "ORIGIN_URL"),
            (&[("ORIGIN_URL", Some("http://x.example/?q=1"))], "ORIGIN_URL"),
            (&[("AUTH_REALM", Some("a\"b"))], "AUTH_REALM"),
            (&[("UPGRADE_URL", Some("billing"))], "UPGRADE_URL"),
            (&[("FORWARD_AUTHORIZATION", Some("yes"))], "FORWARD_AUTHORIZATION"),
            (&[("FORWARD_AUTHORIZATION", Some("true")), ("ORIGIN_AUTHORIZATION", Some("Bearer x"))], "ORIGIN_AUTHORIZATION"),
            (&[("AUTHORIZATION_MAX_BYTES", Some("100"))], "AUTHORIZATION_MAX_BYTES"),
            (&[("JWT_JWKS_URL", Some("http://issuer.example/jwks"))], "JWT_JWKS_URL"),
            (&[("JWT_JWKS_URL", Some("https://issuer.example/jwks")), ("JWT_OIDC_DISCOVERY", Some("true"))], "JWT_JWKS_URL"),
            (&[("JWT_OIDC_DISCOVERY", Some("yes"))], "JWT_OIDC_DISCOVERY"),
            (&[("JWT_ISSUER", Some("http://issuer.example")), ("JWT_OIDC_DISCOVERY", Some("true"))], "JWT_OIDC_DISCOVERY"),
            (&[("JWT_JWKS_URL", Some("https://issuer.example/jwks")), ("JWT_JWKS_CACHE_SECONDS", Some("0"))], "JWT_JWKS_CACHE_SECONDS"),
            (&[("JWT_JWKS_URL", Some("https://issuer.example/jwks")), ("JWT_JWKS_COOLDOWN_SECONDS", Some("x"))], "JWT_JWKS_COOLDOWN_SECONDS"),
            (&[("AUTHORIZATION_MAX_BYTES", Some("8k"))], "AUTHORIZATION_MAX_BYTES"),
            (&[("LOG_REQUESTS", Some("verbose"))], "LOG_REQUESTS"),
        ];
        for (changes, binding) in cases {
            let error = error_for(changes);
            assert_eq!(error.binding, *binding, "{changes:?}: {error}");
        }
    }

    #[test]
    fn from_bindings_origin_credential_redacted_in_debug() {
        let mut bindings = base();
        bindings.insert("ORIGIN_AUTHORIZATION", "Bearer origin-secret".into());
        let config = parse(&bindings).unwrap();
        assert_eq!(config.origin_authorization.as_ref().map(Secret::expose), Some("Bearer origin-secret"));
        assert!(!format!("{config:?}").contains("origin-secret"));
    }

    #[test]
    fn from_bindings_secret_never_in_error() {
        let secret = "too-short-secret-value";
        let error = error_for(&[("JWT_HMAC_SECRET", Some(secret))]);
        assert!(!error.to_string().contains(secret), "{error}");
    }

    #[test]
    fn from_bindings_jwks_url_alone_is_enough() {
        let mut bindings = base();
        bindings.remove("JWT_HMAC_SECRET");
        bindings.insert("JWT_JWKS_URL", "http://127.0.0.1:9999/jwks.json".into());
        let jwks = parse(&bindings).unwrap().jwks.unwrap();
        assert_eq!(jwks.location, KeySetLocation::Url("http://127.0.0.1:9999/jwks.json".into()));
        assert_eq!((jwks.cache_seconds, jwks.cooldown_seconds, jwks.max_stale_seconds), (600, 30, 86_400));
    }

    #[test]
    fn from_bindings_discovery_uses_issuer() {
        let mut bindings = base();
        bindings.insert("JWT_OIDC_DISCOVERY", "true".into());
        let jwks = parse(&bindings).unwrap().jwks.unwrap();
        let expected = KeySetLocation::Discovery {
            document_url: "https://issuer.example/.well-known/openid-configuration".into(),
            issuer: "https://issuer.example".into(),
        };
        assert_eq!(jwks.location, expected);
    }

    #[test]
    fn from_bindings_cache_zero_allowed() {
        let mut bindings = base();
        bindings.insert("ENTITLEMENT_CACHE_SECONDS", "0".into());
        assert_eq!(parse(&bindings).unwrap().entitlement_cache_seconds, 0);
    }
}
