//! `token::verify` on tokens built from fuzzed header and claims JSON and, most of
//! the time, HS256-signed with the fixture secret, so the claim checks after the
//! signature are reached. Whatever verifies must meet every claim rule.

#![no_main]

use arbitrary::{Result, Unstructured};
use libfuzzer_sys::fuzz_target;
use serde_json::{json, Map, Value};
use tollgate::token::{self, MAX_RECORD_KEY_BYTES};
use tollgate_fuzz::{
    base64url, config, json, pick, rarely, sign_hs256, AUDIENCE, CLOCK_SKEW, ISSUER, MAX_LIFETIME, NOW,
};

/// A token and the header and claims it was built from.
struct Built {
    token: String,
    header: Map<String, Value>,
    claims: Map<String, Value>,
    signed: bool,
}

/// Offsets from [`NOW`] on both sides of the clock skew and the maximum lifetime.
const EDGES: [i64; 13] = [0, 0, 600, -30, 30, 59, 60, 61, -60, -61, 3600, 3601, 3661];

/// Generates a time claim: usually near [`NOW`] or at an edge of a time rule,
/// sometimes of another type.
fn instant(u: &mut Unstructured<'_>) -> Result<Value> {
    if rarely(u, 8)? {
        return json(u, 1);
    }
    let offset = if !rarely(u, 4)? { *u.choose(&EDGES)? } else { u.int_in_range(-7200i64..=7200)? };
    Ok(Value::from(NOW as i64 + offset))
}

/// Inserts `name` with the value `make` returns, unless the input leaves it out.
fn maybe(
    u: &mut Unstructured<'_>,
    members: &mut Map<String, Value>,
    name: &str,
    make: impl FnOnce(&mut Unstructured<'_>) -> Result<Value>,
) -> Result<()> {
    if !rarely(u, 8)? {
        members.insert(name.to_string(), make(u)?);
    }
    Ok(())
}

fn build(u: &mut Unstructured<'_>) -> Result<Built> {
    let mut header = Map::new();
    header.insert(
        "alg".into(),
        Value::from(pick(u, &["HS256", "HS256", "HS256", "HS256", "HS384", "ES256", "none", "RS256"])?),
    );
    if u.arbitrary()? {
        header.insert("kid".into(), Value::from(pick(u, &["hs-1", "es-1", "unknown"])?));
    }
    if u.arbitrary()? {
        header.insert("typ".into(), Value::from(pick(u, &["JWT", "at+jwt", "application/JWT", "JOSE"])?));
    }
    if rarely(u, 8)? {
        header.insert("crit".into(), json!([pick(u, &["exp", "b64"])?]));
    }
    if rarely(u, 8)? {
        header.insert(u.arbitrary()?, json(u, 2)?);
    }

    let mut claims = Map::new();
    maybe(u, &mut claims, "iss", |u| Ok(Value::from(pick(u, &[ISSUER, ISSUER, "https://other.example"])?)))?;
    maybe(u, &mut claims, "aud", |u| {
        Ok(match u.choose_index(4)? {
            0 => json!([AUDIENCE, "https://other.example"]),
            1 => json!(["https://other.example"]),
            2 => json(u, 1)?,
            _ => Value::from(AUDIENCE),
        })
    })?;
    maybe(u, &mut claims, "sub", |u| {
        if rarely(u, 8)? {
            return json(u, 1);
        }
        let long = "u".repeat(MAX_RECORD_KEY_BYTES + 1);
        Ok(Value::from(pick(u, &["user-pro", "", "a\u{0}b", "tab\there", &long])?))
    })?;
    for name in ["exp", "nbf", "iat"] {
        maybe(u, &mut claims, name, instant)?;
    }
    for name in ["scope", "scp"] {
        if u.arbitrary()? {
            claims.insert(name.into(), json(u, 1)?);
        }
    }
    if rarely(u, 8)? {
        claims.insert(u.arbitrary()?, json(u, 2)?);
    }

    let header_text = Value::Object(header.clone()).to_string();
    let claims_text = Value::Object(claims.clone()).to_string();
    let signed = !rarely(u, 8)?;
    let token = if signed {
        sign_hs256(&header_text, &claims_text)
    } else {
        let length = u.int_in_range(0..=64)?;
        let signature = u.bytes(length)?;
        format!("{}.{}.{}", base64url(header_text.as_bytes()), base64url(claims_text.as_bytes()), base64url(signature))
    };
    Ok(Built { token, header, claims, signed })
}

/// Reads a NumericDate claim the way jwt-simple 0.15 does: an integer as it is, a
/// number with a fraction (RFC 7519 §2 allows one) truncated toward zero. coarsetime
/// keeps whole seconds in 32 bits, so larger values saturate at 2^32 - 1.
fn seconds(claims: &Map<String, Value>, name: &str) -> Option<u64> {
    let value = claims.get(name)?;
    let seconds = match value.as_u64() {
        Some(seconds) => seconds,
        None => value.as_f64()? as u64,
    };
    Some(seconds.min(u64::from(u32::MAX)))
}

fn check(built: &Built) {
    let Ok(verified) = token::verify(&built.token, config(), NOW) else { return };
    let (header, claims) = (&built.header, &built.claims);

    assert!(built.signed, "a token without the secret's signature verified");
    assert_eq!(header.get("alg"), Some(&json!("HS256")));
    // jwt-simple 0.15 reads a member that is null as absent, and an empty crit as none.
    let kid = header.get("kid").filter(|kid| !kid.is_null());
    assert!(kid.is_none_or(|kid| kid == "hs-1"), "kid {kid:?} accepted");
    let crit = header.get("crit").filter(|crit| !crit.is_null() && **crit != json!([]));
    assert!(crit.is_none(), "crit {crit:?} accepted");

    assert_eq!(claims.get("iss"), Some(&json!(ISSUER)));
    let audience_ok = match claims.get("aud") {
        Some(Value::String(audience)) => audience == AUDIENCE,
        Some(Value::Array(audiences)) => audiences.contains(&json!(AUDIENCE)),
        _ => false,
    };
    assert!(audience_ok, "aud {:?} accepted", claims.get("aud"));

    let expires_at = seconds(claims, "exp").expect("a verified token has a numeric exp");
    assert!(expires_at + CLOCK_SKEW >= NOW, "expired exp {expires_at} accepted");
    if claims.contains_key("nbf") {
        let not_before = seconds(claims, "nbf").expect("nbf, when present, is numeric");
        assert!(not_before <= NOW + CLOCK_SKEW, "future nbf {not_before} accepted");
    }
    let issued_at = seconds(claims, "iat");
    if claims.contains_key("iat") {
        let issued_at = issued_at.expect("iat, when present, is numeric");
        assert!(issued_at <= NOW + CLOCK_SKEW, "future iat {issued_at} accepted");
    }
    let start = issued_at.unwrap_or(NOW);
    assert!(expires_at.saturating_sub(start) <= MAX_LIFETIME, "lifetime over {MAX_LIFETIME}s accepted");

    assert_eq!(claims.get("sub"), Some(&json!(verified.subject)));
    assert!(!verified.subject.is_empty());
    assert!(verified.subject.len() <= MAX_RECORD_KEY_BYTES);
    assert!(!verified.subject.chars().any(char::is_control));
}

fuzz_target!(|data: &[u8]| {
    if let Ok(built) = build(&mut Unstructured::new(data)) {
        check(&built);
    }
});
