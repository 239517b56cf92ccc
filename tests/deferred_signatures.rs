//! The deferred signature path of the Workers build, checked natively: for every
//! algorithm, the checks before the signature plus [`token::finish`] must reach the
//! verdict jwt-simple reaches on the same token, valid or not.
//!
//! The signature verdict that WebCrypto gives in the Workers runtime is stood in for by
//! jwt-simple's own check with options that accept any claims.

mod support;

use std::sync::OnceLock;

use jwt_simple::prelude::*;
use jwt_simple::JWTError;
use serde_json::{json, Map, Value};
use support::*;
use tollgate::config::Config;
use tollgate::jwks::RemoteKeys;
use tollgate::token::{self, TokenError, TokenFailure};

/// RSA keys for the algorithms the shared fixture has no key for, with their `kid`s.
struct ExtraKeys {
    rs384: RS384KeyPair,
    rs512: RS512KeyPair,
    ps384: PS384KeyPair,
    ps512: PS512KeyPair,
}

fn extra_keys() -> &'static ExtraKeys {
    static KEYS: OnceLock<ExtraKeys> = OnceLock::new();
    KEYS.get_or_init(|| ExtraKeys {
        rs384: RS384KeyPair::generate(2048).expect("RSA key generation"),
        rs512: RS512KeyPair::generate(2048).expect("RSA key generation"),
        ps384: PS384KeyPair::generate(2048).expect("RSA key generation"),
        ps512: PS512KeyPair::generate(2048).expect("RSA key generation"),
    })
}

const EXTRA_ALGORITHMS: [&str; 4] = ["RS384", "RS512", "PS384", "PS512"];

fn extra_kid(algorithm: &str) -> String {
    format!("{}-1", algorithm.to_lowercase())
}

/// The fixture configuration with the extra RSA keys added to `JWT_PUBLIC_KEYS`, each
/// bound to its algorithm through the JWK's `alg`.
fn config() -> Config {
    let extra = extra_keys();
    let mut set: Value = serde_json::from_str(&public_key_set()).expect("JWK Set JSON");
    let jwks = [
        ("RS384", extra.rs384.public_key().to_jwk()),
        ("RS512", extra.rs512.public_key().to_jwk()),
        ("PS384", extra.ps384.public_key().to_jwk()),
        ("PS512", extra.ps512.public_key().to_jwk()),
    ];
    for (algorithm, jwk) in jwks {
        let mut jwk: Value = serde_json::from_str(&jwk).expect("JWK JSON");
        jwk["kid"] = json!(extra_kid(algorithm));
        jwk["alg"] = json!(algorithm);
        set["keys"].as_array_mut().expect("keys array").push(jwk);
    }
    let mut bindings = bindings();
    bindings.insert("JWT_PUBLIC_KEYS", set.to_string());
    config_from(&bindings)
}

/// Every algorithm once; the fixture's one HMAC key is bound to HS256.
fn all_algorithms() -> Vec<&'static str> {
    ALGORITHMS.iter().copied().filter(|algorithm| !matches!(*algorithm, "HS384" | "HS512")).chain(EXTRA_ALGORITHMS).collect()
}

/// Signs `claims` with the configured key of `algorithm` (HS256 for the HMAC ones,
/// whose key the fixture binds to HS256).
fn sign_valid(algorithm: &str, claims: &Value) -> String {
    let extra = extra_keys();
    let claims_of = || -> JWTClaims<Map<String, Value>> { serde_json::from_value(claims.clone()).expect("claims") };
    let kid = extra_kid(algorithm);
    let signed = match algorithm {
        "RS384" => extra.rs384.clone().with_key_id(&kid).sign(claims_of()),
        "RS512" => extra.rs512.clone().with_key_id(&kid).sign(claims_of()),
        "PS384" => extra.ps384.clone().with_key_id(&kid).sign(claims_of()),
        "PS512" => extra.ps512.clone().with_key_id(&kid).sign(claims_of()),
        _ => return token(hmac_bound(algorithm), claims),
    };
    signed.expect("signing")
}

fn hmac_bound(algorithm: &str) -> &str {
    if algorithm.starts_with("HS") {
        "HS256"
    } else {
        algorithm
    }
}

/// jwt-simple's verdict on the signature alone: its check with the key configured for
/// `algorithm`, under options that accept any claims.
fn signature_verdict(algorithm: &str, token: &str) -> bool {
    let keys = keys();
    let extra = extra_keys();
    let any_claims = VerificationOptions {
        accept_future: true,
        time_tolerance: Some(Duration::from_secs(0)),
        artificial_time: Some(Duration::from_secs(0)),
        ..VerificationOptions::default()
    };
    let options = Some(any_claims);
    let result: Result<JWTClaims<Map<String, Value>>, jwt_simple::Error> = match algorithm {
        "HS256" | "HS384" | "HS512" => HS256Key::from_bytes(keys.hmac_secret.as_bytes()).verify_token(token, options),
        "RS256" => keys.rs256.public_key().verify_token(token, options),
        "RS384" => extra.rs384.public_key().verify_token(token, options),
        "RS512" => extra.rs512.public_key().verify_token(token, options),
        "PS256" => keys.ps256.public_key().verify_token(token, options),
        "PS384" => extra.ps384.public_key().verify_token(token, options),
        "PS512" => extra.ps512.public_key().verify_token(token, options),
        "ES256" => keys.es256.public_key().verify_token(token, options),
        "ES384" => keys.es384.public_key().verify_token(token, options),
        "EdDSA" => keys.eddsa.public_key().verify_token(token, options),
        other => panic!("no key for {other}"),
    };
    match result {
        Ok(_) => true,
        Err(error) => !matches!(
            error.downcast_ref::<JWTError>(),
            Some(JWTError::InvalidSignature | JWTError::InvalidAuthenticationTag)
        ),
    }
}

/// The deferred path's verdict: the checks before the signature, the signature
/// verdict, then [`token::finish`]. Returns the subject or the error.
fn deferred(config: &Config, algorithm: &str, token: &str) -> Result<String, TokenError> {
    let (check, _) = match token::check_before_signature(token, config, RemoteKeys::NotConfigured) {
        Ok(checked) => checked,
        Err(TokenFailure::Invalid(error)) => return Err(error),
        Err(other) => panic!("configured keys only, yet {other:?}"),
    };
    let valid = signature_verdict(algorithm, token);
    token::finish(&check, valid, config, NOW).map(|verified| verified.subject)
}

fn library(config: &Config, token: &str) -> Result<String, TokenError> {
    token::verify(token, config, NOW).map(|verified| verified.subject)
}

fn with(changes: Value) -> Value {
    let mut claims = claims("user-pro");
    for (name, value) in changes.as_object().expect("object") {
        if value.is_null() {
            claims.as_object_mut().expect("object").remove(name);
        } else {
            claims[name] = value.clone();
        }
    }
    claims
}

/// Changes one character in the middle of the signature, keeping it valid base64url.
fn tamper_signature(token: &str) -> String {
    let start = token.rfind('.').expect("compact JWS") + 1;
    let middle = start + (token.len() - start) / 2;
    let mut bytes = token.as_bytes().to_vec();
    bytes[middle] = if bytes[middle] == b'A' { b'B' } else { b'A' };
    String::from_utf8(bytes).expect("ASCII")
}

/// Replaces the claims with `claims`, keeping the original header and signature.
fn swap_claims(token: &str, claims: &Value) -> String {
    let parts: Vec<&str> = token.split('.').collect();
    format!("{}.{}.{}", parts[0], b64(claims.to_string().as_bytes()), parts[2])
}

fn assert_agree(config: &Config, algorithm: &str, case: &str, token: &str, expected: Result<&str, TokenError>) {
    let library = library(config, token);
    let deferred = deferred(config, algorithm, token);
    assert_eq!(deferred, library, "{algorithm} {case}: deferred path and jwt-simple disagree");
    assert_eq!(library, expected.map(str::to_string), "{algorithm} {case}: unexpected verdict");
}

#[test]
fn finish_agrees_with_library_each_algorithm() {
    let config = config();
    for algorithm in all_algorithms() {
        let valid = sign_valid(algorithm, &claims("user-pro"));
        let cases = [
            ("valid", valid.clone(), Ok("user-pro")),
            ("signature tampered", tamper_signature(&valid), Err(TokenError::InvalidSignature)),
            ("claims tampered", swap_claims(&valid, &claims("user-other")), Err(TokenError::InvalidSignature)),
            ("expired", sign_valid(algorithm, &with(json!({"exp": NOW - 61}))), Err(TokenError::Expired)),
            ("expired within skew", sign_valid(algorithm, &with(json!({"exp": NOW - 60}))), Ok("user-pro")),
            ("wrong audience", sign_valid(algorithm, &with(json!({"aud": "https://other.example"}))), Err(TokenError::AudienceMismatch)),
            ("audience array", sign_valid(algorithm, &with(json!({"aud": ["other", AUDIENCE]}))), Ok("user-pro")),
            ("no audience", sign_valid(algorithm, &with(json!({"aud": null}))), Err(TokenError::AudienceMismatch)),
            ("wrong issuer", sign_valid(algorithm, &with(json!({"iss": "https://other.example"}))), Err(TokenError::IssuerMismatch)),
            ("no issuer", sign_valid(algorithm, &with(json!({"iss": null}))), Err(TokenError::IssuerMismatch)),
            ("not yet valid", sign_valid(algorithm, &with(json!({"nbf": NOW + 61}))), Err(TokenError::NotYetValid)),
            ("issued in future", sign_valid(algorithm, &with(json!({"iat": NOW + 61, "exp": NOW + 600}))), Err(TokenError::IssuedInFuture)),
            ("no expiry", sign_valid(algorithm, &with(json!({"exp": null}))), Err(TokenError::MissingExpiry)),
            ("no subject", sign_valid(algorithm, &with(json!({"sub": null}))), Err(TokenError::InvalidSubject)),
        ];
        for (case, token, expected) in cases {
            assert_agree(&config, algorithm, case, &token, expected);
        }
    }
}

#[test]
fn finish_agrees_with_library_wrong_key_each_algorithm() {
    let config = config();
    for algorithm in ALGORITHMS {
        let token = sign(hmac_bound(algorithm), Some(kid_for(algorithm)), &claims("user-pro"), true);
        assert_agree(&config, algorithm, "wrong key", &token, Err(TokenError::InvalidSignature));
    }
}

#[test]
fn finish_agrees_with_library_raw_claims() {
    // Claims no library would write: fractional times, wrong types, no JSON at all.
    let config = config();
    let header = json!({"alg": "HS256", "typ": "JWT", "kid": "hs-1"});
    let cases = [
        ("fractional exp past the skew", format!(r#"{{"iss":"{ISSUER}","aud":"{AUDIENCE}","sub":"user-pro","exp":{}.5}}"#, NOW - 61)),
        ("fractional exp inside the skew", format!(r#"{{"iss":"{ISSUER}","aud":"{AUDIENCE}","sub":"user-pro","exp":{}.5}}"#, NOW - 60)),
        ("fractional nbf", format!(r#"{{"iss":"{ISSUER}","aud":"{AUDIENCE}","sub":"user-pro","exp":{},"nbf":{}.5}}"#, NOW + 600, NOW + 60)),
        ("fractional iat", format!(r#"{{"iss":"{ISSUER}","aud":"{AUDIENCE}","sub":"user-pro","exp":{},"iat":{}.5}}"#, NOW + 600, NOW + 60)),
        ("exp as text", format!(r#"{{"iss":"{ISSUER}","aud":"{AUDIENCE}","sub":"user-pro","exp":"{}"}}"#, NOW + 600)),
        ("negative exp", format!(r#"{{"iss":"{ISSUER}","aud":"{AUDIENCE}","sub":"user-pro","exp":-1}}"#)),
        ("audience number", format!(r#"{{"iss":"{ISSUER}","aud":7,"sub":"user-pro","exp":{}}}"#, NOW + 600)),
        ("empty audience array", format!(r#"{{"iss":"{ISSUER}","aud":[],"sub":"user-pro","exp":{}}}"#, NOW + 600)),
        ("claims not an object", "[1,2]".to_string()),
        ("claims not JSON", "not json".to_string()),
    ];
    for (case, claims) in cases {
        let token = hmac_raw(&header, &claims, false);
        let library = library(&config, &token);
        assert_eq!(deferred(&config, "HS256", &token), library, "{case}: deferred path and jwt-simple disagree");
    }
}

#[test]
fn check_before_signature_agrees_with_library_on_header_errors() {
    let config = config();
    let claims = claims("user-pro").to_string();
    let headers = [
        ("typ not a JWT type", json!({"alg": "HS256", "typ": "text/plain", "kid": "hs-1"})),
        ("typ with +jwt", json!({"alg": "HS256", "typ": "at+jwt", "kid": "hs-1"})),
    ];
    for (case, header) in headers {
        let token = hmac_raw(&header, &claims, false);
        assert_eq!(deferred(&config, "HS256", &token), library(&config, &token), "{case}");
    }

    let valid = sign_valid("EdDSA", &claims_value());
    let (head, _) = valid.rsplit_once('.').expect("compact JWS");
    let (_, rest) = valid.split_once('.').expect("compact JWS");
    let salted = |salt: &str| {
        let header = json!({"alg": "EdDSA", "typ": "JWT", "kid": "ed-1", "salt": salt});
        format!("{}.{rest}", b64(header.to_string().as_bytes()))
    };
    for (case, token) in [
        ("salt not base64url", salted("***")),
        ("salt base64url", salted("c2FsdA")),
        ("short Ed25519 signature", format!("{head}.{}", b64(&[7; 63]))),
        ("signature not base64url", format!("{head}.***")),
        ("four parts", format!("{valid}.x")),
    ] {
        assert_eq!(deferred(&config, "EdDSA", &token), library(&config, &token), "{case}");
    }
}

fn claims_value() -> Value {
    claims("user-pro")
}

#[test]
fn verify_or_defer_defers_asymmetric_only() {
    let config = config();
    for algorithm in all_algorithms() {
        let token = sign_valid(algorithm, &claims("user-pro"));
        let result = token::verify_or_defer(&token, &config, RemoteKeys::NotConfigured, NOW);
        match result {
            Err(TokenFailure::VerifySignature(check)) => {
                assert!(!algorithm.starts_with("HS"), "{algorithm} deferred");
                assert_eq!(check.algorithm.name(), algorithm);
                assert!(check.public_jwk.is_some(), "{algorithm} has no public JWK");
                assert_eq!(token::finish(&check, true, &config, NOW).map(|v| v.subject), Ok("user-pro".into()));
            }
            Ok(verified) => {
                assert!(algorithm.starts_with("HS"), "{algorithm} not deferred");
                assert_eq!(verified.subject, "user-pro");
            }
            Err(other) => panic!("{algorithm}: {other:?}"),
        }
    }
}
