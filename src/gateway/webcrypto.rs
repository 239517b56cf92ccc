//! Signature checks with the runtime's WebCrypto for RSA, RSA-PSS, ECDSA and Ed25519
//! keys. Each key is imported once per isolate and kept as a `CryptoKey`.

use std::cell::RefCell;
use std::collections::HashMap;

use worker::js_sys::{self, Array, Object, Reflect, Uint8Array};
use worker::wasm_bindgen::{JsCast, JsValue};
use worker::wasm_bindgen_futures::JsFuture;
use worker::web_sys::{Crypto, CryptoKey, SubtleCrypto};

use crate::keys::Algorithm;
use crate::token::SignatureCheck;

/// The most imported keys an isolate keeps. Rotations add keys, so the map is
/// cleared when it is full; the keys in use are imported again on their next token.
const MAX_IMPORTED_KEYS: usize = 256;

thread_local! {
    /// Imported keys by algorithm name and public JWK.
    static IMPORTED: RefCell<HashMap<(Algorithm, String), CryptoKey>> = RefCell::new(HashMap::new());
}

/// Verifies the pending check's signature over its signing input. `Ok(false)` means the
/// signature does not verify; `Err` means the key could not be imported or WebCrypto
/// failed, with the reason for the log.
pub async fn verify(check: &SignatureCheck) -> Result<bool, String> {
    let Some(jwk) = check.public_jwk.as_deref() else {
        return Err(format!("no public JWK for {}", check.algorithm.name()));
    };
    let subtle = subtle()?;
    let key = imported_key(&subtle, check.algorithm, jwk).await?;

    let signature = Uint8Array::from(check.signature.as_slice());
    let data = Uint8Array::from(check.signing_input.as_bytes());
    let promise = subtle
        .verify_with_object_and_js_u8_array_and_js_u8_array(&verify_params(check.algorithm)?, &key, &signature, &data)
        .map_err(describe)?;
    let verdict = JsFuture::from(promise).await.map_err(describe)?;
    Ok(verdict.as_bool() == Some(true))
}

fn subtle() -> Result<SubtleCrypto, String> {
    let crypto = Reflect::get(&js_sys::global(), &JsValue::from_str("crypto")).map_err(describe)?;
    let crypto: Crypto = crypto.dyn_into().map_err(|_| "globalThis.crypto is not a Crypto object".to_string())?;
    Ok(crypto.subtle())
}

async fn imported_key(subtle: &SubtleCrypto, algorithm: Algorithm, jwk: &str) -> Result<CryptoKey, String> {
    let cache_key = (algorithm, jwk.to_string());
    if let Some(key) = IMPORTED.with(|keys| keys.borrow().get(&cache_key).cloned()) {
        return Ok(key);
    }

    let key_data: Object = js_sys::JSON::parse(jwk).map_err(describe)?.dyn_into().map_err(describe)?;
    let usages = Array::of1(&JsValue::from_str("verify"));
    let promise = subtle
        .import_key_with_object("jwk", &key_data, &import_params(algorithm)?, false, &usages)
        .map_err(describe)?;
    let key: CryptoKey = JsFuture::from(promise).await.map_err(describe)?.dyn_into().map_err(describe)?;

    IMPORTED.with(|keys| {
        let mut keys = keys.borrow_mut();
        if keys.len() >= MAX_IMPORTED_KEYS {
            keys.clear();
        }
        keys.insert(cache_key, key.clone());
    });
    Ok(key)
}

/// The `importKey` algorithm: RSASSA-PKCS1-v1_5 or RSA-PSS with the hash, ECDSA with
/// the curve, or Ed25519.
fn import_params(algorithm: Algorithm) -> Result<Object, String> {
    match algorithm {
        Algorithm::Rs256 => params(&[("name", "RSASSA-PKCS1-v1_5"), ("hash", "SHA-256")]),
        Algorithm::Rs384 => params(&[("name", "RSASSA-PKCS1-v1_5"), ("hash", "SHA-384")]),
        Algorithm::Rs512 => params(&[("name", "RSASSA-PKCS1-v1_5"), ("hash", "SHA-512")]),
        Algorithm::Ps256 => params(&[("name", "RSA-PSS"), ("hash", "SHA-256")]),
        Algorithm::Ps384 => params(&[("name", "RSA-PSS"), ("hash", "SHA-384")]),
        Algorithm::Ps512 => params(&[("name", "RSA-PSS"), ("hash", "SHA-512")]),
        Algorithm::Es256 => params(&[("name", "ECDSA"), ("namedCurve", "P-256")]),
        Algorithm::Es384 => params(&[("name", "ECDSA"), ("namedCurve", "P-384")]),
        Algorithm::EdDsa => params(&[("name", "Ed25519")]),
        Algorithm::Hs256 | Algorithm::Hs384 | Algorithm::Hs512 => {
            Err(format!("{} is checked by jwt-simple", algorithm.name()))
        }
    }
}

/// The `verify` algorithm. RFC 7518 §3.5 fixes the RSA-PSS salt length to the hash
/// length, and JWS ECDSA signatures are already the raw `r || s` that WebCrypto takes.
fn verify_params(algorithm: Algorithm) -> Result<Object, String> {
    let params = match algorithm {
        Algorithm::Rs256 | Algorithm::Rs384 | Algorithm::Rs512 => params(&[("name", "RSASSA-PKCS1-v1_5")])?,
        Algorithm::Ps256 => salted(32)?,
        Algorithm::Ps384 => salted(48)?,
        Algorithm::Ps512 => salted(64)?,
        Algorithm::Es256 => params(&[("name", "ECDSA"), ("hash", "SHA-256")])?,
        Algorithm::Es384 => params(&[("name", "ECDSA"), ("hash", "SHA-384")])?,
        Algorithm::EdDsa => params(&[("name", "Ed25519")])?,
        Algorithm::Hs256 | Algorithm::Hs384 | Algorithm::Hs512 => {
            return Err(format!("{} is checked by jwt-simple", algorithm.name()));
        }
    };
    Ok(params)
}

fn salted(salt_length: u32) -> Result<Object, String> {
    let params = params(&[("name", "RSA-PSS")])?;
    Reflect::set(&params, &JsValue::from_str("saltLength"), &JsValue::from(salt_length)).map_err(describe)?;
    Ok(params)
}

fn params(members: &[(&str, &str)]) -> Result<Object, String> {
    let params = Object::new();
    for (name, value) in members {
        Reflect::set(&params, &JsValue::from_str(name), &JsValue::from_str(value)).map_err(describe)?;
    }
    Ok(params)
}

fn describe(error: JsValue) -> String {
    error
        .dyn_ref::<js_sys::Error>()
        .map(|error| String::from(error.message()))
        .or_else(|| error.as_string())
        .unwrap_or_else(|| "JavaScript error".into())
}
