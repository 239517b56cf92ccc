//! Fixtures shared by the fuzz targets: one gateway configuration with fixed keys, a
//! signer for HS256 tokens under its secret, and generators for structured input.
//!
//! Every key here is a test fixture. The HMAC secret protects nothing, and the
//! private half of the ES256 key was discarded when the key was made, so no target
//! can sign ES256 tokens: they only reach key selection and signature failure.

use std::sync::OnceLock;

use arbitrary::{Result, Unstructured};
use ct_codecs::{Base64UrlSafeNoPadding, Encoder};
use serde_json::{Map, Value};
use tollgate::config::Config;

pub const ISSUER: &str = "https://issuer.example";
pub const AUDIENCE: &str = "https://api.example";

/// The request time of every target, in unix seconds.
pub const NOW: u64 = 1_800_000_000;

/// `JWT_CLOCK_SKEW_SECONDS` of the fixture configuration.
pub const CLOCK_SKEW: u64 = 60;

/// `JWT_MAX_LIFETIME_SECONDS` of the fixture configuration.
pub const MAX_LIFETIME: u64 = 3600;

/// The HMAC secret: 32 fixed bytes, bound to HS256 under `kid` `hs-1`. Public test
/// fixture, not a credential.
pub const HMAC_SECRET: &str = "tollgate-fuzz-fixture-secret-32b";

/// A P-256 public key made for these targets (`openssl ecparam -name prime256v1`),
/// its private key discarded. Public test fixture, not a credential.
pub const ES256_PUBLIC_JWK: &str = r#"{"kty":"EC","crv":"P-256","alg":"ES256","kid":"es-1","x":"GXOwiBD9JmbncsKQ2lecvyCkKJ1HjrGul1swXMQj13I","y":"orjYcylbnh3gxKacOr2zrmWmOA78uk9ZpAsojW5nsnM"}"#;

pub const ROUTES: &str = r#"[
    {"path": "/public/*", "access": "public"},
    {"path": "/v1/pro/*", "feature": "reports"},
    {"path": "/v1/admin/*", "scopes": ["admin"]},
    {"path": "/*", "access": "authenticated"}
]"#;

/// The fixture configuration, parsed once.
pub fn config() -> &'static Config {
    static CONFIG: OnceLock<Config> = OnceLock::new();
    CONFIG.get_or_init(|| {
        let public_keys = format!(r#"{{"keys": [{ES256_PUBLIC_JWK}]}}"#);
        let bindings = [
            ("JWT_ISSUER", ISSUER.to_string()),
            ("JWT_AUDIENCE", AUDIENCE.to_string()),
            ("JWT_PUBLIC_KEYS", public_keys),
            ("JWT_HMAC_SECRET", HMAC_SECRET.to_string()),
            ("JWT_HMAC_KID", "hs-1".to_string()),
            ("JWT_CLOCK_SKEW_SECONDS", CLOCK_SKEW.to_string()),
            ("JWT_MAX_LIFETIME_SECONDS", MAX_LIFETIME.to_string()),
            ("ROUTES", ROUTES.to_string()),
        ];
        let lookup = |name: &str| bindings.iter().find(|(key, _)| *key == name).map(|(_, value)| value.clone());
        Config::from_bindings(lookup).expect("fixture configuration is valid")
    })
}

pub fn base64url(bytes: &[u8]) -> String {
    Base64UrlSafeNoPadding::encode_to_string(bytes).expect("base64url of a byte slice")
}

/// Returns the compact JWS of `header` and `claims` (JSON texts), HS256-signed with
/// [`HMAC_SECRET`].
pub fn sign_hs256(header: &str, claims: &str) -> String {
    let signing_input = format!("{}.{}", base64url(header.as_bytes()), base64url(claims.as_bytes()));
    let signature = hmac_sha256::HMAC::mac(signing_input.as_bytes(), HMAC_SECRET.as_bytes());
    format!("{signing_input}.{}", base64url(&signature))
}

/// Returns true for one input in `one_in`, and false once the input is used up, so
/// short inputs take the common branch.
pub fn rarely(u: &mut Unstructured<'_>, one_in: u8) -> Result<bool> {
    Ok(u.int_in_range(1..=one_in)? == one_in)
}

/// Returns one of `options` most of the time, else an arbitrary string.
pub fn pick(u: &mut Unstructured<'_>, options: &[&str]) -> Result<String> {
    if rarely(u, 5)? {
        return Ok(u.arbitrary::<String>()?);
    }
    Ok(u.choose(options)?.to_string())
}

/// Returns an arbitrary JSON value, nested at most `depth` levels.
pub fn json(u: &mut Unstructured<'_>, depth: u32) -> Result<Value> {
    let kinds = if depth == 0 { 6 } else { 8 };
    let value = match u.choose_index(kinds)? {
        0 => Value::Null,
        1 => Value::Bool(u.arbitrary()?),
        2 => Value::from(u.arbitrary::<i64>()?),
        3 => Value::from(u.arbitrary::<u64>()?),
        4 => Value::from(u.arbitrary::<f64>()?),
        5 => Value::from(u.arbitrary::<String>()?),
        6 => {
            let length = u.int_in_range(0..=4)?;
            Value::Array((0..length).map(|_| json(u, depth - 1)).collect::<Result<_>>()?)
        }
        _ => {
            let length = u.int_in_range(0..=4)?;
            let mut members = Map::new();
            for _ in 0..length {
                members.insert(u.arbitrary()?, json(u, depth - 1)?);
            }
            Value::Object(members)
        }
    };
    Ok(value)
}
