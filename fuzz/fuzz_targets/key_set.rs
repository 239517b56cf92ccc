//! `keys::parse_key_set` on arbitrary text or generated JWK Sets.

#![no_main]

use arbitrary::{Result, Unstructured};
use libfuzzer_sys::fuzz_target;
use serde_json::{json, Map, Value};
use tollgate::keys::parse_key_set;
use tollgate_fuzz::{base64url, json, pick, rarely};

/// Generates key material: base64url of random bytes (returned again as the second
/// value), or rarely a value of another type.
fn material(u: &mut Unstructured<'_>) -> Result<(Value, Option<String>)> {
    if rarely(u, 6)? {
        return Ok((json(u, 1)?, None));
    }
    let length = u.int_in_range(0..=600)?;
    let encoded = base64url(u.bytes(length)?);
    Ok((Value::from(encoded.clone()), Some(encoded)))
}

/// Generates a JWK Set whose keys mostly have the expected members. Returns it with
/// the base64url material strings it contains that no other member also contains,
/// because an error may quote `kid`, `kty`, `crv` and `alg` values.
fn key_set(u: &mut Unstructured<'_>) -> Result<(String, Vec<String>)> {
    let mut keys = Vec::new();
    let mut materials = Vec::new();
    for _ in 0..u.int_in_range(0..=3)? {
        let mut key = Map::new();
        key.insert("kty".into(), Value::from(pick(u, &["RSA", "EC", "OKP", "oct"])?));
        if u.arbitrary()? {
            key.insert("crv".into(), Value::from(pick(u, &["P-256", "P-384", "Ed25519", "X25519"])?));
        }
        if u.arbitrary()? {
            key.insert("alg".into(), Value::from(pick(u, &["RS256", "PS384", "ES256", "ES384", "EdDSA", "HS256"])?));
        }
        if rarely(u, 4)? {
            key.insert("use".into(), Value::from(pick(u, &["sig", "enc"])?));
        }
        if u.arbitrary()? {
            key.insert("kid".into(), if rarely(u, 8)? { json(u, 1)? } else { Value::from(pick(u, &["k1", "k2"])?) });
        }
        let named: Vec<String> = key.values().map(Value::to_string).collect();
        for name in ["n", "e", "x", "y", "d"] {
            if u.arbitrary()? {
                let (value, encoded) = material(u)?;
                let quotable = encoded.as_ref().is_some_and(|text| named.iter().any(|other| other.contains(text)));
                materials.extend(encoded.filter(|_| !quotable));
                key.insert(name.into(), value);
            }
        }
        keys.push(Value::Object(key));
    }
    Ok((json!({ "keys": keys }).to_string(), materials))
}

/// Checks the outcome of parsing `text`, whose keys contain the `materials` strings.
/// Only materials of 16 characters or more are looked for, so a short one that
/// happens to be part of the fixed text does not count.
fn check(text: &str, materials: &[String]) {
    match parse_key_set(text) {
        Ok(parsed) => {
            let document = serde_json::from_str::<Value>(text).ok();
            let entries = document.as_ref().and_then(|document| document["keys"].as_array()).map_or(0, Vec::len);
            assert_eq!(parsed.keys.len() + parsed.skipped.len(), entries);
        }
        Err(error) => {
            // The reason names the key by position and kid, never its material.
            for material in materials.iter().filter(|material| material.len() >= 16) {
                assert!(!error.0.contains(material.as_str()), "error quotes key material: {}", error.0);
            }
        }
    }
}

// Input that starts like JSON, as the seeds do, is the key set itself. Other input
// drives the generator.
fuzz_target!(|data: &[u8]| {
    match std::str::from_utf8(data) {
        Ok(text) if text.starts_with('{') || text.starts_with('[') => check(text, &[]),
        _ => {
            if let Ok((text, materials)) = key_set(&mut Unstructured::new(data)) {
                check(&text, &materials);
            }
        }
    }
});
