//! Token verification for every supported algorithm, and the claim rules that hold
//! whatever the algorithm.

mod support;

use jwt_simple::reexports::ct_codecs::Decoder;
use serde_json::{json, Value};
use support::*;
use tollgate::token::{verify, TokenError};

fn check(algorithm: &str, token: &str) -> Result<String, TokenError> {
    verify(token, &config_with_hmac(hmac_binding(algorithm)), NOW).map(|token| token.subject)
}

// The one HMAC key is bound to HS256 unless the algorithm under test is another HS*.
fn hmac_binding(algorithm: &str) -> &str {
    if algorithm.starts_with("HS") {
        algorithm
    } else {
        "HS256"
    }
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

#[test]
fn verify_valid_token_each_algorithm() {
    for algorithm in ALGORITHMS {
        assert_eq!(check(algorithm, &token(algorithm, &claims("user-pro"))), Ok("user-pro".into()), "{algorithm}");
    }
}

#[test]
fn verify_expired_each_algorithm() {
    for algorithm in ALGORITHMS {
        let token = token(algorithm, &with(json!({"exp": NOW - 600})));
        assert_eq!(check(algorithm, &token), Err(TokenError::Expired), "{algorithm}");
    }
}

#[test]
fn verify_not_yet_valid_each_algorithm() {
    for algorithm in ALGORITHMS {
        let token = token(algorithm, &with(json!({"nbf": NOW + 3600, "exp": NOW + 7200})));
        assert_eq!(check(algorithm, &token), Err(TokenError::NotYetValid), "{algorithm}");
    }
}

#[test]
fn verify_future_iat_each_algorithm() {
    for algorithm in ALGORITHMS {
        let token = token(algorithm, &with(json!({"iat": NOW + 3600, "exp": NOW + 7200})));
        assert_eq!(check(algorithm, &token), Err(TokenError::IssuedInFuture), "{algorithm}");
    }
}

#[test]
fn verify_wrong_issuer_each_algorithm() {
    for algorithm in ALGORITHMS {
        let token = token(algorithm, &with(json!({"iss": "https://other.example"})));
        assert_eq!(check(algorithm, &token), Err(TokenError::IssuerMismatch), "{algorithm}");
    }
}

#[test]
fn verify_wrong_audience_each_algorithm() {
    for algorithm in ALGORITHMS {
        let token = token(algorithm, &with(json!({"aud": "https://other-service.example"})));
        assert_eq!(check(algorithm, &token), Err(TokenError::AudienceMismatch), "{algorithm}");
    }
}

#[test]
fn verify_audience_array_each_algorithm() {
    for algorithm in ALGORITHMS {
        let accepted = token(algorithm, &with(json!({"aud": ["other", AUDIENCE]})));
        assert_eq!(check(algorithm, &accepted), Ok("user-pro".into()), "{algorithm}");
        let rejected = token(algorithm, &with(json!({"aud": ["other", "account"]})));
        assert_eq!(check(algorithm, &rejected), Err(TokenError::AudienceMismatch), "{algorithm}");
    }
}

#[test]
fn verify_missing_exp_each_algorithm() {
    for algorithm in ALGORITHMS {
        let token = token(algorithm, &with(json!({"exp": null})));
        assert_eq!(check(algorithm, &token), Err(TokenError::MissingExpiry), "{algorithm}");
    }
}

#[test]
fn verify_wrong_key_each_algorithm() {
    for algorithm in ALGORITHMS {
        let token = sign(algorithm, Some(kid_for(algorithm)), &claims("user-pro"), true);
        assert_eq!(check(algorithm, &token), Err(TokenError::InvalidSignature), "{algorithm}");
    }
}

#[test]
fn verify_unknown_kid_each_algorithm() {
    for algorithm in ALGORITHMS {
        let token = sign(algorithm, Some("no-such-key"), &claims("user-pro"), false);
        assert_eq!(check(algorithm, &token), Err(TokenError::UnknownKid), "{algorithm}");
    }
}

#[test]
fn verify_alg_differing_from_key_each_algorithm() {
    for algorithm in ALGORITHMS {
        // The kid of another algorithm's key, signed by this algorithm's key.
        let other_kid = if algorithm == "ES256" { "rs-1" } else { "es-1" };
        let token = sign(algorithm, Some(other_kid), &claims("user-pro"), false);
        assert_eq!(check(algorithm, &token), Err(TokenError::AlgorithmMismatch), "{algorithm}");
    }
}

#[test]
fn verify_alg_none_any_case_rejected() {
    let payload = b64(claims("user-pro").to_string().as_bytes());
    for alg in ["none", "NONE", "None", "nOnE"] {
        let header = b64(json!({"alg": alg, "typ": "JWT"}).to_string().as_bytes());
        for signature in ["", "c2lnbmF0dXJl"] {
            let token = format!("{header}.{payload}.{signature}");
            assert_eq!(check("ES256", &token), Err(TokenError::UnsupportedAlgorithm), "{alg} {signature:?}");
        }
    }
}

#[test]
fn verify_valid_token_with_header_swapped_to_none() {
    let valid = token("ES256", &claims("user-pro"));
    let (_, rest) = valid.split_once('.').unwrap();
    let header = b64(json!({"alg": "none", "typ": "JWT", "kid": "es-1"}).to_string().as_bytes());
    assert_eq!(check("ES256", &format!("{header}.{rest}")), Err(TokenError::UnsupportedAlgorithm));
}

#[test]
fn verify_hmac_signed_with_public_key_bytes_rejected() {
    // Algorithm confusion: the "secret" is the public key text, the kid an asymmetric key's.
    let public_jwk = keys().es256.public_key().to_jwk();
    let header = json!({"alg": "HS256", "typ": "JWT", "kid": "es-1"});
    let input = format!("{}.{}", b64(header.to_string().as_bytes()), b64(claims("user-pro").to_string().as_bytes()));
    let mac = hmac_sha256::HMAC::mac(input.as_bytes(), public_jwk.as_bytes());
    let token = format!("{input}.{}", b64(&mac));
    assert_eq!(check("ES256", &token), Err(TokenError::AlgorithmMismatch));
}

#[test]
fn verify_no_kid_selects_only_key_of_algorithm() {
    let token = sign("ES256", None, &claims("user-pro"), false);
    assert_eq!(check("ES256", &token), Ok("user-pro".into()));
}

#[test]
fn verify_no_kid_ambiguous_key_rejected() {
    let mut bindings = bindings();
    let mut set: Value = serde_json::from_str(&public_key_set()).unwrap();
    let mut second = set["keys"][2].clone();
    second["kid"] = json!("es-2");
    set["keys"].as_array_mut().unwrap().push(second);
    bindings.insert("JWT_PUBLIC_KEYS", set.to_string());
    let token = sign("ES256", None, &claims("user-pro"), false);
    assert_eq!(verify(&token, &config_from(&bindings), NOW).map(|_| ()), Err(TokenError::NoUniqueKey));
}

#[test]
fn verify_hmac_kid_unset_requires_no_kid() {
    let mut bindings = bindings();
    bindings.remove("JWT_HMAC_KID");
    let config = config_from(&bindings);
    let without_kid = sign("HS256", None, &claims("user-pro"), false);
    assert!(verify(&without_kid, &config, NOW).is_ok());
    let with_kid = sign("HS256", Some("hs-1"), &claims("user-pro"), false);
    assert_eq!(verify(&with_kid, &config, NOW).map(|_| ()), Err(TokenError::UnknownKid));
}

#[test]
fn verify_clock_skew_window() {
    let config = config();
    let within = token("ES256", &with(json!({"exp": NOW - 30})));
    assert!(verify(&within, &config, NOW).is_ok());
    let iat_slightly_ahead = token("ES256", &with(json!({"iat": NOW + 5})));
    assert!(verify(&iat_slightly_ahead, &config, NOW).is_ok());
    let beyond = token("ES256", &with(json!({"exp": NOW - 61})));
    assert_eq!(verify(&beyond, &config, NOW).map(|_| ()), Err(TokenError::Expired));
}

#[test]
fn verify_max_lifetime() {
    let mut bindings = bindings();
    bindings.insert("JWT_MAX_LIFETIME_SECONDS", "3600".into());
    let config = config_from(&bindings);
    let short = token("ES256", &with(json!({"exp": NOW + 3600})));
    assert!(verify(&short, &config, NOW).is_ok());
    let long = token("ES256", &with(json!({"exp": NOW + 3601})));
    assert_eq!(verify(&long, &config, NOW).map(|_| ()), Err(TokenError::LifetimeTooLong));
    let long_without_iat = token("ES256", &with(json!({"iat": null, "exp": NOW + 7200})));
    assert_eq!(verify(&long_without_iat, &config, NOW).map(|_| ()), Err(TokenError::LifetimeTooLong));
}

#[test]
fn verify_required_type() {
    let mut bindings = bindings();
    bindings.insert("JWT_REQUIRED_TYPE", "at+jwt".into());
    let config = config_from(&bindings);
    for typ in ["at+jwt", "AT+JWT", "application/at+jwt"] {
        let token = sign_typed("ES256", Some("es-1"), &claims("user-pro"), false, Some(typ));
        assert!(verify(&token, &config, NOW).is_ok(), "{typ}");
    }
    let plain = token("ES256", &claims("user-pro"));
    assert_eq!(verify(&plain, &config, NOW).map(|_| ()), Err(TokenError::TypeMismatch));
}

#[test]
fn verify_crit_header_rejected() {
    let header = json!({"alg": "HS256", "typ": "JWT", "kid": "hs-1", "crit": ["x-policy"], "x-policy": "strict"});
    let token = hmac_raw(&header, &claims("user-pro").to_string(), false);
    assert_eq!(check("HS256", &token), Err(TokenError::UnsupportedCritical));
}

#[test]
fn verify_time_claims_of_wrong_type_rejected() {
    let header = json!({"alg": "HS256", "typ": "JWT", "kid": "hs-1"});
    let changes = [
        json!({"nbf": "99999999999"}),
        json!({"exp": "never"}),
        json!({"exp": "1700000000"}),
        json!({"exp": [NOW + 600]}),
        json!({"exp": true}),
        json!({"iat": "x"}),
    ];
    for change in changes {
        let token = hmac_raw(&header, &with(change.clone()).to_string(), false);
        assert_eq!(check("HS256", &token), Err(TokenError::Malformed), "{change}");
    }
}

#[test]
fn verify_audience_array_with_non_string_rejected() {
    let header = json!({"alg": "HS256", "typ": "JWT", "kid": "hs-1"});
    let token = hmac_raw(&header, &with(json!({"aud": [AUDIENCE, 5]})).to_string(), false);
    assert_eq!(check("HS256", &token), Err(TokenError::Malformed));
}

#[test]
fn verify_issuer_compared_exactly() {
    let header = json!({"alg": "HS256", "typ": "JWT", "kid": "hs-1"});
    let variants = [
        json!({"iss": "https://issuer.example/"}),
        json!({"iss": "HTTPS://issuer.example"}),
        json!({"iss": "https://issuer.example "}),
        json!({"iss": ""}),
        json!({"iss": null}),
    ];
    for change in variants {
        let token = hmac_raw(&header, &with(change.clone()).to_string(), false);
        assert_eq!(check("HS256", &token), Err(TokenError::IssuerMismatch), "{change}");
    }
    let array = hmac_raw(&header, &with(json!({"iss": [ISSUER]})).to_string(), false);
    assert!(check("HS256", &array).is_err());
}

#[test]
fn verify_missing_audience_rejected() {
    let token = token("ES256", &with(json!({"aud": null})));
    assert_eq!(check("ES256", &token), Err(TokenError::AudienceMismatch));
}

#[test]
fn verify_subject_claim_required() {
    let token = token("ES256", &with(json!({"sub": null})));
    assert_eq!(check("ES256", &token), Err(TokenError::InvalidSubject));
    let header = json!({"alg": "HS256", "typ": "JWT", "kid": "hs-1"});
    let control = hmac_raw(&header, &with(json!({"sub": "user\r\nX-Injected: 1"})).to_string(), false);
    assert_eq!(check("HS256", &control), Err(TokenError::InvalidSubject));
}

#[test]
fn verify_custom_entitlement_claim() {
    let mut bindings = bindings();
    bindings.insert("ENTITLEMENT_CLAIM", "org_id".into());
    let config = config_from(&bindings);
    let token = token("ES256", &with(json!({"org_id": "org-42"})));
    assert_eq!(verify(&token, &config, NOW).map(|token| token.subject), Ok("org-42".into()));
}

#[test]
fn verify_scopes_from_scope_and_scp() {
    let config = config();
    let token = token("ES256", &with(json!({"scope": "read admin", "scp": ["write"]})));
    assert_eq!(verify(&token, &config, NOW).map(|token| token.scopes), Ok(vec!["read".into(), "admin".into(), "write".into()]));
}

#[test]
fn verify_malformed_tokens_rejected() {
    let valid_header = b64(json!({"alg": "HS256", "typ": "JWT", "kid": "hs-1"}).to_string().as_bytes());
    let mut deep = String::new();
    for _ in 0..10_000 {
        deep.push('[');
    }
    let cases = vec![
        "X".to_string(),
        "a.b".to_string(),
        "a.b!.c".to_string(),
        format!("{}.e30.c2ln", b64(b"not json")),
        format!("{}.e30.c2ln", b64(b"[]")),
        format!("{}.e30.c2ln", b64(b"{}")),
        format!("{valid_header}.{}.c2ln", b64(b"null")),
        format!("{valid_header}.{}.c2ln", b64(b"[]")),
        format!("{valid_header}.{}.c2ln", b64(b"\"s\"")),
        format!("{valid_header}.{}.c2ln", b64(b"123")),
        format!("{valid_header}.{}.", b64(claims("user-pro").to_string().as_bytes())),
        "a.b.c.d".to_string(),
        format!("{valid_header}.{}.c2ln", b64(deep.as_bytes())),
    ];
    for token in cases {
        assert!(check("HS256", &token).is_err(), "accepted {token}");
    }
}

#[test]
fn verify_malformed_payload_with_valid_mac_rejected() {
    let header = json!({"alg": "HS256", "typ": "JWT", "kid": "hs-1"});
    // Deep enough to hit serde_json's recursion limit, short enough to pass the size limit.
    let mut deep = String::new();
    for _ in 0..1_000 {
        deep.push_str("{\"a\":");
    }
    for payload in ["null", "[]", "\"s\"", "123", deep.as_str()] {
        let token = hmac_raw(&header, payload, false);
        assert_eq!(check("HS256", &token), Err(TokenError::Malformed), "{:.20}", payload);
    }
}

#[test]
fn verify_overlong_token_rejected() {
    let token = format!("{}.{}.{}", "a".repeat(4096), "b".repeat(4096), "c".repeat(100));
    assert_eq!(check("HS256", &token), Err(TokenError::TooLong));
}

#[test]
fn description_never_contains_token_material() {
    let token = token("ES256", &with(json!({"exp": NOW - 600})));
    let error = check("ES256", &token).unwrap_err();
    for part in token.split('.') {
        assert!(!error.description().contains(part));
    }
}

/// HMAC tags are compared by jwt-simple with `ct_codecs::verify`, a constant-time
/// comparison; the gateway itself never compares signature bytes. Signatures that
/// share longer and longer correct prefixes must all fail the same way.
#[test]
fn verify_mac_prefixes_all_rejected() {
    let valid = token("HS256", &claims("user-pro"));
    let (signing_input, signature_b64) = valid.rsplit_once('.').unwrap();
    let signature = jwt_simple::prelude::Base64UrlSafeNoPadding::decode_to_vec(signature_b64, None).unwrap();
    assert_eq!(signature.len(), 32);
    for shared in 0..signature.len() {
        let mut forged = signature.clone();
        forged[shared] ^= 0x01;
        let token = format!("{signing_input}.{}", b64(&forged));
        assert_eq!(check("HS256", &token), Err(TokenError::InvalidSignature), "prefix of {shared} bytes");
    }
}
