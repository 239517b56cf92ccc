//! Fixtures shared by the native integration tests.
//!
//! Every key is generated when the tests run; nothing secret is committed. The fixed
//! instant [`NOW`] stands in for the request time, so no test reads the clock.

#![allow(dead_code)]

use std::collections::HashMap;
use std::sync::OnceLock;

use jwt_simple::prelude::*;
use serde_json::{json, Map, Value};
use tollgate::config::Config;

pub const ISSUER: &str = "https://issuer.example";
pub const AUDIENCE: &str = "https://api.example";
pub const NOW: u64 = 1_800_000_000;
pub const ALGORITHMS: [&str; 8] = ["HS256", "HS384", "HS512", "RS256", "PS256", "ES256", "ES384", "EdDSA"];

/// One key pair per asymmetric algorithm, plus the HMAC secret.
pub struct Keys {
    pub rs256: RS256KeyPair,
    pub ps256: PS256KeyPair,
    pub es256: ES256KeyPair,
    pub es384: ES384KeyPair,
    pub eddsa: Ed25519KeyPair,
    pub hmac_secret: String,
}

impl Keys {
    fn generate() -> Keys {
        Keys {
            rs256: RS256KeyPair::generate(2048).expect("RSA key generation"),
            ps256: PS256KeyPair::generate(2048).expect("RSA key generation"),
            es256: ES256KeyPair::generate(),
            es384: ES384KeyPair::generate(),
            eddsa: Ed25519KeyPair::generate(),
            hmac_secret: random_secret(),
        }
    }
}

fn random_secret() -> String {
    let bytes: [u8; 24] = jwt_simple::reexports::rand::random();
    Base64UrlSafeNoPadding::encode_to_string(bytes).expect("base64")
}

/// The configured keys.
pub fn keys() -> &'static Keys {
    static KEYS: OnceLock<Keys> = OnceLock::new();
    KEYS.get_or_init(Keys::generate)
}

/// Keys of the same algorithms that the gateway does not know: "wrong key" tokens.
pub fn other_keys() -> &'static Keys {
    static KEYS: OnceLock<Keys> = OnceLock::new();
    KEYS.get_or_init(Keys::generate)
}

/// The `kid` under which each algorithm's key is configured.
pub fn kid_for(algorithm: &str) -> &'static str {
    match algorithm {
        "HS256" | "HS384" | "HS512" => "hs-1",
        "RS256" => "rs-1",
        "PS256" => "ps-1",
        "ES256" => "es-1",
        "ES384" => "es384-1",
        "EdDSA" => "ed-1",
        other => panic!("no fixture key for {other}"),
    }
}

fn jwk_with_kid(jwk: String, kid: &str) -> Value {
    let mut value: Value = serde_json::from_str(&jwk).expect("JWK JSON");
    value["kid"] = json!(kid);
    value
}

/// The JWK Set of the fixture's public keys.
pub fn public_key_set() -> String {
    let keys = keys();
    json!({"keys": [
        jwk_with_kid(keys.rs256.public_key().to_jwk(), "rs-1"),
        jwk_with_kid(keys.ps256.public_key().to_jwk(), "ps-1"),
        jwk_with_kid(keys.es256.public_key().to_jwk(), "es-1"),
        jwk_with_kid(keys.es384.public_key().to_jwk(), "es384-1"),
        jwk_with_kid(keys.eddsa.public_key().to_jwk(), "ed-1"),
    ]})
    .to_string()
}

pub const ROUTES: &str = r#"[
    {"path": "/public/*", "access": "public"},
    {"path": "/v1/pro/*", "feature": "reports"},
    {"path": "/v1/admin/*", "scopes": ["admin"]},
    {"path": "/v1/basic/*", "access": "authenticated"}
]"#;

/// The bindings of the common fixture; `HS256` for the HMAC key.
pub fn bindings() -> HashMap<&'static str, String> {
    HashMap::from([
        ("JWT_ISSUER", ISSUER.to_string()),
        ("JWT_AUDIENCE", AUDIENCE.to_string()),
        ("JWT_PUBLIC_KEYS", public_key_set()),
        ("JWT_HMAC_SECRET", keys().hmac_secret.clone()),
        ("JWT_HMAC_KID", "hs-1".to_string()),
        ("ROUTES", ROUTES.to_string()),
        ("UPGRADE_URL", "https://billing.example/upgrade?feature={feature}".to_string()),
    ])
}

pub fn config_from(bindings: &HashMap<&'static str, String>) -> Config {
    Config::from_bindings(|name| bindings.get(name).cloned()).expect("fixture configuration is valid")
}

/// The fixture configuration with the HMAC key bound to `hmac_algorithm`.
pub fn config_with_hmac(hmac_algorithm: &str) -> Config {
    let mut bindings = bindings();
    bindings.insert("JWT_HMAC_ALGORITHM", hmac_algorithm.to_string());
    config_from(&bindings)
}

pub fn config() -> Config {
    config_from(&bindings())
}

/// The valid token's claims for `subject`: issued now, valid for ten minutes.
pub fn claims(subject: &str) -> Value {
    json!({"iss": ISSUER, "aud": AUDIENCE, "sub": subject, "iat": NOW, "nbf": NOW, "exp": NOW + 600})
}

pub fn b64(bytes: &[u8]) -> String {
    Base64UrlSafeNoPadding::encode_to_string(bytes).expect("base64")
}

/// Signs `header` and `claims` exactly as given with the HMAC fixture secret, for
/// tokens whose header or claim types no library would produce.
pub fn hmac_raw(header: &Value, claims: &str, wrong_key: bool) -> String {
    let signing_input = format!("{}.{}", b64(header.to_string().as_bytes()), b64(claims.as_bytes()));
    let algorithm = header["alg"].as_str().unwrap_or("HS256");
    let keys = if wrong_key { other_keys() } else { keys() };
    let secret = keys.hmac_secret.as_bytes();
    let signature = match algorithm {
        "HS384" => hmac_sha512::sha384::HMAC::mac(signing_input.as_bytes(), secret).to_vec(),
        "HS512" => hmac_sha512::HMAC::mac(signing_input.as_bytes(), secret).to_vec(),
        _ => hmac_sha256::HMAC::mac(signing_input.as_bytes(), secret).to_vec(),
    };
    format!("{signing_input}.{}", b64(&signature))
}

/// Signs `claims` with the fixture key of `algorithm`, header `{alg, typ: JWT, kid}`.
pub fn sign(algorithm: &str, kid: Option<&str>, claims: &Value, wrong_key: bool) -> String {
    sign_typed(algorithm, kid, claims, wrong_key, None)
}

/// Like [`sign`], with a `typ` other than `JWT`.
pub fn sign_typed(algorithm: &str, kid: Option<&str>, claims: &Value, wrong_key: bool, typ: Option<&str>) -> String {
    let keys = if wrong_key { other_keys() } else { keys() };
    let claims: JWTClaims<Map<String, Value>> = serde_json::from_value(claims.clone()).expect("claims of the right types");
    let options = HeaderOptions { signature_type: typ.map(str::to_string), ..HeaderOptions::default() };
    let kid = kid.unwrap_or("");
    let with_kid = |key: &str| !key.is_empty();
    let secret = keys.hmac_secret.as_bytes();
    let signed = match algorithm {
        "HS256" => {
            let key = HS256Key::from_bytes(secret);
            let key = if with_kid(kid) { key.with_key_id(kid) } else { key };
            key.authenticate_with_options(claims, &options)
        }
        "HS384" => {
            let key = HS384Key::from_bytes(secret);
            let key = if with_kid(kid) { key.with_key_id(kid) } else { key };
            key.authenticate_with_options(claims, &options)
        }
        "HS512" => {
            let key = HS512Key::from_bytes(secret);
            let key = if with_kid(kid) { key.with_key_id(kid) } else { key };
            key.authenticate_with_options(claims, &options)
        }
        "RS256" => {
            let key = keys.rs256.clone();
            let key = if with_kid(kid) { key.with_key_id(kid) } else { key };
            key.sign_with_options(claims, &options)
        }
        "PS256" => {
            let key = keys.ps256.clone();
            let key = if with_kid(kid) { key.with_key_id(kid) } else { key };
            key.sign_with_options(claims, &options)
        }
        "ES256" => {
            let key = ES256KeyPair::from_bytes(&keys.es256.to_bytes()).expect("key bytes");
            let key = if with_kid(kid) { key.with_key_id(kid) } else { key };
            key.sign_with_options(claims, &options)
        }
        "ES384" => {
            let key = ES384KeyPair::from_bytes(&keys.es384.to_bytes()).expect("key bytes");
            let key = if with_kid(kid) { key.with_key_id(kid) } else { key };
            key.sign_with_options(claims, &options)
        }
        "EdDSA" => {
            let key = keys.eddsa.clone();
            let key = if with_kid(kid) { key.with_key_id(kid) } else { key };
            key.sign_with_options(claims, &options)
        }
        other => panic!("no signer for {other}"),
    };
    signed.expect("signing")
}

/// The valid token for `algorithm`: its configured `kid`, signed by its key.
pub fn token(algorithm: &str, claims: &Value) -> String {
    sign(algorithm, Some(kid_for(algorithm)), claims, false)
}
