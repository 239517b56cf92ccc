//! Verification keys: the JWK Set from `JWT_PUBLIC_KEYS` and the HMAC secret.
//!
//! Each key is bound to exactly one algorithm when it is loaded. The algorithm comes
//! from configuration (the JWK's `alg`, else its key type and curve), never from a
//! token header, so a token can only ever be checked with the algorithm its key was
//! configured for.

use std::fmt;
use std::sync::Arc;

use jwt_simple::prelude::*;
use serde_json::Value;

/// A JWT signature algorithm the gateway can verify.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Algorithm {
    Hs256,
    Hs384,
    Hs512,
    Rs256,
    Rs384,
    Rs512,
    Ps256,
    Ps384,
    Ps512,
    Es256,
    Es384,
    EdDsa,
}

impl Algorithm {
    /// Parses a JOSE algorithm name (RFC 7518), case-sensitively.
    pub fn from_name(name: &str) -> Option<Algorithm> {
        let algorithm = match name {
            "HS256" => Algorithm::Hs256,
            "HS384" => Algorithm::Hs384,
            "HS512" => Algorithm::Hs512,
            "RS256" => Algorithm::Rs256,
            "RS384" => Algorithm::Rs384,
            "RS512" => Algorithm::Rs512,
            "PS256" => Algorithm::Ps256,
            "PS384" => Algorithm::Ps384,
            "PS512" => Algorithm::Ps512,
            "ES256" => Algorithm::Es256,
            "ES384" => Algorithm::Es384,
            "EdDSA" => Algorithm::EdDsa,
            _ => return None,
        };
        Some(algorithm)
    }

    /// The JOSE name, as it appears in a token's `alg` header.
    pub fn name(self) -> &'static str {
        match self {
            Algorithm::Hs256 => "HS256",
            Algorithm::Hs384 => "HS384",
            Algorithm::Hs512 => "HS512",
            Algorithm::Rs256 => "RS256",
            Algorithm::Rs384 => "RS384",
            Algorithm::Rs512 => "RS512",
            Algorithm::Ps256 => "PS256",
            Algorithm::Ps384 => "PS384",
            Algorithm::Ps512 => "PS512",
            Algorithm::Es256 => "ES256",
            Algorithm::Es384 => "ES384",
            Algorithm::EdDsa => "EdDSA",
        }
    }

    pub fn is_hmac(self) -> bool {
        matches!(self, Algorithm::Hs256 | Algorithm::Hs384 | Algorithm::Hs512)
    }
}

/// Key material, one variant per algorithm, so a key cannot be used with another.
///
/// The Workers build verifies asymmetric signatures with the runtime's WebCrypto, so
/// it keeps only the public JWK of those keys ([`VerificationKey::public_jwk`]) and
/// does not link jwt-simple's RSA, ECDSA and Ed25519 verification.
#[derive(Clone)]
enum Material {
    Hs256(HS256Key),
    Hs384(HS384Key),
    Hs512(HS512Key),
    #[cfg(not(target_arch = "wasm32"))]
    Rs256(RS256PublicKey),
    #[cfg(not(target_arch = "wasm32"))]
    Rs384(RS384PublicKey),
    #[cfg(not(target_arch = "wasm32"))]
    Rs512(RS512PublicKey),
    #[cfg(not(target_arch = "wasm32"))]
    Ps256(PS256PublicKey),
    #[cfg(not(target_arch = "wasm32"))]
    Ps384(PS384PublicKey),
    #[cfg(not(target_arch = "wasm32"))]
    Ps512(PS512PublicKey),
    #[cfg(not(target_arch = "wasm32"))]
    Es256(ES256PublicKey),
    #[cfg(not(target_arch = "wasm32"))]
    Es384(ES384PublicKey),
    #[cfg(not(target_arch = "wasm32"))]
    EdDsa(Ed25519PublicKey),
    /// An asymmetric key checked through WebCrypto with its public JWK.
    #[cfg(target_arch = "wasm32")]
    WebCrypto,
}

/// One verification key with its identifier and its one algorithm.
#[derive(Clone)]
pub struct VerificationKey {
    kid: Option<String>,
    algorithm: Algorithm,
    material: Material,
    /// The public members of an asymmetric key as a JWK (`kty` with `n`, `e` or `crv`,
    /// `x`, `y`), for WebCrypto's `importKey`; `None` for HMAC keys.
    public_jwk: Option<Arc<str>>,
}

// Leaves the key material out, so a key never reaches a log through `{:?}`.
impl fmt::Debug for VerificationKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("VerificationKey")
            .field("kid", &self.kid)
            .field("algorithm", &self.algorithm)
            .finish_non_exhaustive()
    }
}

impl VerificationKey {
    /// Builds an HMAC key from the secret's bytes.
    pub fn hmac(secret: &[u8], algorithm: Algorithm, kid: Option<String>) -> Option<Self> {
        let material = match algorithm {
            Algorithm::Hs256 => Material::Hs256(HS256Key::from_bytes(secret)),
            Algorithm::Hs384 => Material::Hs384(HS384Key::from_bytes(secret)),
            Algorithm::Hs512 => Material::Hs512(HS512Key::from_bytes(secret)),
            _ => return None,
        };
        Some(VerificationKey { kid, algorithm, material, public_jwk: None })
    }

    pub fn kid(&self) -> Option<&str> {
        self.kid.as_deref()
    }

    pub fn algorithm(&self) -> Algorithm {
        self.algorithm
    }

    /// The public JWK of an asymmetric key, reduced to the members WebCrypto needs.
    pub fn public_jwk(&self) -> Option<&Arc<str>> {
        self.public_jwk.as_ref()
    }

    /// Verifies the token's signature with this key and its one algorithm, then the
    /// claims that `options` enables. Claims are deserialised into `C`.
    ///
    /// The Workers build verifies only HMAC keys here and returns
    /// `JWTError::InvalidPublicKey` for the others, whose signatures WebCrypto checks.
    pub fn verify<C>(&self, token: &str, options: VerificationOptions) -> Result<JWTClaims<C>, jwt_simple::Error>
    where
        C: Serialize + serde::de::DeserializeOwned,
    {
        let options = Some(options);
        match &self.material {
            Material::Hs256(key) => key.verify_token(token, options),
            Material::Hs384(key) => key.verify_token(token, options),
            Material::Hs512(key) => key.verify_token(token, options),
            #[cfg(not(target_arch = "wasm32"))]
            Material::Rs256(key) => key.verify_token(token, options),
            #[cfg(not(target_arch = "wasm32"))]
            Material::Rs384(key) => key.verify_token(token, options),
            #[cfg(not(target_arch = "wasm32"))]
            Material::Rs512(key) => key.verify_token(token, options),
            #[cfg(not(target_arch = "wasm32"))]
            Material::Ps256(key) => key.verify_token(token, options),
            #[cfg(not(target_arch = "wasm32"))]
            Material::Ps384(key) => key.verify_token(token, options),
            #[cfg(not(target_arch = "wasm32"))]
            Material::Ps512(key) => key.verify_token(token, options),
            #[cfg(not(target_arch = "wasm32"))]
            Material::Es256(key) => key.verify_token(token, options),
            #[cfg(not(target_arch = "wasm32"))]
            Material::Es384(key) => key.verify_token(token, options),
            #[cfg(not(target_arch = "wasm32"))]
            Material::EdDsa(key) => key.verify_token(token, options),
            #[cfg(target_arch = "wasm32")]
            Material::WebCrypto => Err(jwt_simple::JWTError::InvalidPublicKey.into()),
        }
    }
}

/// The outcome of reading a JWK Set: the usable keys and the ones skipped on purpose.
#[derive(Debug)]
pub struct ParsedKeySet {
    pub keys: Vec<VerificationKey>,
    /// One line per skipped key (unknown `kty`, or `use: enc`), for the operator log.
    pub skipped: Vec<String>,
}

/// The reason a JWK Set was rejected. The text names the key by position and `kid`, never
/// its material.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeySetError(pub String);

impl fmt::Display for KeySetError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The largest JWK Set accepted, in bytes.
pub const MAX_KEY_SET_BYTES: usize = 64 * 1024;

/// The most keys a JWK Set may have.
pub const MAX_KEYS: usize = 100;

/// Parses a JWK Set (RFC 7517 §5) of public signature keys.
///
/// Keys whose `kty` is unknown, or whose `use` is `enc`, are skipped and reported in
/// [`ParsedKeySet::skipped`]. Any other key that cannot be loaded rejects the whole
/// set, so a typo never silently drops a key.
pub fn parse_key_set(json: &str) -> Result<ParsedKeySet, KeySetError> {
    if json.len() > MAX_KEY_SET_BYTES {
        return Err(KeySetError(format!("{} bytes, more than the limit of {MAX_KEY_SET_BYTES}", json.len())));
    }
    let document: Value = serde_json::from_str(json)
        .map_err(|error| KeySetError(format!("not valid JSON ({error})")))?;
    let Some(entries) = document.get("keys").and_then(Value::as_array) else {
        return Err(KeySetError("expected a JSON object with a \"keys\" array".into()));
    };
    if entries.len() > MAX_KEYS {
        return Err(KeySetError(format!("{} keys, more than the limit of {MAX_KEYS}", entries.len())));
    }

    let mut parsed = ParsedKeySet { keys: Vec::new(), skipped: Vec::new() };
    for (index, entry) in entries.iter().enumerate() {
        match parse_key(entry) {
            Ok(Some(key)) => parsed.keys.push(key),
            Ok(None) => parsed.skipped.push(skip_reason(index, entry)),
            Err(reason) => {
                let kid = entry.get("kid").and_then(Value::as_str).unwrap_or("(none)");
                return Err(KeySetError(format!("key {index} (kid {kid}): {reason}")));
            }
        }
    }
    Ok(parsed)
}

fn skip_reason(index: usize, entry: &Value) -> String {
    let kid = entry.get("kid").and_then(Value::as_str).unwrap_or("(none)");
    let kty = entry.get("kty").and_then(Value::as_str).unwrap_or("(none)");
    let key_use = entry.get("use").and_then(Value::as_str).unwrap_or("sig");
    format!("skipped key {index} (kid {kid}): kty {kty}, use {key_use} is not a supported signature key")
}

/// Loads one JWK. `Ok(None)` means the key is not a signature key of a supported type.
fn parse_key(entry: &Value) -> Result<Option<VerificationKey>, String> {
    let Some(members) = entry.as_object() else {
        return Err("not a JSON object".into());
    };
    let kty = members.get("kty").and_then(Value::as_str).ok_or("missing \"kty\"")?;
    if members.get("use").and_then(Value::as_str) == Some("enc") {
        return Ok(None);
    }
    if !matches!(kty, "RSA" | "EC" | "OKP") {
        return Ok(None);
    }
    let kid = match members.get("kid") {
        None => None,
        Some(Value::String(kid)) => Some(kid.clone()),
        Some(_) => return Err("\"kid\" is not a string".into()),
    };

    let algorithm = match members.get("alg") {
        Some(Value::String(name)) => Algorithm::from_name(name)
            .filter(|algorithm| !algorithm.is_hmac())
            .ok_or_else(|| format!("unsupported \"alg\" {name:?}"))?,
        Some(_) => return Err("\"alg\" is not a string".into()),
        None => default_algorithm(kty, members.get("crv").and_then(Value::as_str))?,
    };

    let jwk = entry.to_string();
    let material = load_material(algorithm, &jwk)
        .map_err(|_| format!("not a valid {kty} public key for {}", algorithm.name()))?;
    let public_jwk = Some(public_members(kty, members).into());
    Ok(Some(VerificationKey { kid, algorithm, material, public_jwk }))
}

/// The JWK with only the members that define the public key. WebCrypto rejects a JWK
/// whose `alg`, `use` or `key_ops` disagree with the import, and `load_material` has
/// already checked those members.
fn public_members(kty: &str, members: &serde_json::Map<String, Value>) -> String {
    let names: &[&str] = match kty {
        "RSA" => &["kty", "n", "e"],
        "EC" => &["kty", "crv", "x", "y"],
        _ => &["kty", "crv", "x"],
    };
    let kept: serde_json::Map<String, Value> = names
        .iter()
        .filter_map(|name| members.get(*name).map(|value| (name.to_string(), value.clone())))
        .collect();
    Value::Object(kept).to_string()
}

/// The algorithm for a key without `alg`, from its type and curve.
fn default_algorithm(kty: &str, crv: Option<&str>) -> Result<Algorithm, String> {
    match (kty, crv) {
        ("RSA", _) => Ok(Algorithm::Rs256),
        ("EC", Some("P-256")) => Ok(Algorithm::Es256),
        ("EC", Some("P-384")) => Ok(Algorithm::Es384),
        ("OKP", Some("Ed25519")) => Ok(Algorithm::EdDsa),
        (_, crv) => Err(format!("unsupported curve {:?} for kty {kty}", crv.unwrap_or("(none)"))),
    }
}

#[cfg(not(target_arch = "wasm32"))]
fn load_material(algorithm: Algorithm, jwk: &str) -> Result<Material, jwt_simple::Error> {
    let material = match algorithm {
        Algorithm::Rs256 => Material::Rs256(RS256PublicKey::from_jwk(jwk)?),
        Algorithm::Rs384 => Material::Rs384(RS384PublicKey::from_jwk(jwk)?),
        Algorithm::Rs512 => Material::Rs512(RS512PublicKey::from_jwk(jwk)?),
        Algorithm::Ps256 => Material::Ps256(PS256PublicKey::from_jwk(jwk)?),
        Algorithm::Ps384 => Material::Ps384(PS384PublicKey::from_jwk(jwk)?),
        Algorithm::Ps512 => Material::Ps512(PS512PublicKey::from_jwk(jwk)?),
        Algorithm::Es256 => Material::Es256(ES256PublicKey::from_jwk(jwk)?),
        Algorithm::Es384 => Material::Es384(ES384PublicKey::from_jwk(jwk)?),
        Algorithm::EdDsa => Material::EdDsa(Ed25519PublicKey::from_jwk(jwk)?),
        Algorithm::Hs256 | Algorithm::Hs384 | Algorithm::Hs512 => {
            return Err(jwt_simple::JWTError::InvalidPublicKey.into());
        }
    };
    Ok(material)
}

/// Checks the JWK with jwt-simple's strict parser (members, encodings, curve points,
/// RSA modulus size), then drops the parsed key: WebCrypto imports it from the JWK.
#[cfg(target_arch = "wasm32")]
fn load_material(algorithm: Algorithm, jwk: &str) -> Result<Material, jwt_simple::Error> {
    match algorithm {
        Algorithm::Rs256 => RS256PublicKey::from_jwk(jwk).map(drop)?,
        Algorithm::Rs384 => RS384PublicKey::from_jwk(jwk).map(drop)?,
        Algorithm::Rs512 => RS512PublicKey::from_jwk(jwk).map(drop)?,
        Algorithm::Ps256 => PS256PublicKey::from_jwk(jwk).map(drop)?,
        Algorithm::Ps384 => PS384PublicKey::from_jwk(jwk).map(drop)?,
        Algorithm::Ps512 => PS512PublicKey::from_jwk(jwk).map(drop)?,
        Algorithm::Es256 => ES256PublicKey::from_jwk(jwk).map(drop)?,
        Algorithm::Es384 => ES384PublicKey::from_jwk(jwk).map(drop)?,
        Algorithm::EdDsa => Ed25519PublicKey::from_jwk(jwk).map(drop)?,
        Algorithm::Hs256 | Algorithm::Hs384 | Algorithm::Hs512 => {
            return Err(jwt_simple::JWTError::InvalidPublicKey.into());
        }
    }
    Ok(Material::WebCrypto)
}

/// The reason no key could be chosen for a token.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SelectError {
    /// The token's `kid` names no configured key.
    UnknownKid,
    /// The token's `kid` names a key of another algorithm.
    AlgorithmMismatch,
    /// No `kid`, and no key has the token's algorithm.
    NoKey,
    /// No `kid`, and more than one key has the token's algorithm.
    Ambiguous,
}

/// Every configured verification key.
#[derive(Debug, Clone, Default)]
pub struct KeyRing {
    keys: Vec<VerificationKey>,
}

impl KeyRing {
    /// Builds the ring, rejecting two keys that share a `kid`.
    pub fn new(keys: Vec<VerificationKey>) -> Result<Self, KeySetError> {
        for (index, key) in keys.iter().enumerate() {
            let Some(kid) = key.kid() else { continue };
            if keys[..index].iter().any(|other| other.kid() == Some(kid)) {
                return Err(KeySetError(format!("two keys share the kid {kid:?}")));
            }
        }
        Ok(KeyRing { keys })
    }

    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    pub fn len(&self) -> usize {
        self.keys.len()
    }

    /// Chooses the key for a token with header `alg` and `kid`.
    ///
    /// With a `kid`, the key must exist and be bound to `alg`. Without one, the key
    /// must be the only one bound to `alg`, whatever its own `kid`. Names outside
    /// [`Algorithm`], such as `none`, are rejected before a key is chosen.
    pub fn select(&self, algorithm: Algorithm, kid: Option<&str>) -> Result<&VerificationKey, SelectError> {
        if let Some(kid) = kid {
            let key = self.keys.iter().find(|key| key.kid() == Some(kid)).ok_or(SelectError::UnknownKid)?;
            if key.algorithm() != algorithm {
                return Err(SelectError::AlgorithmMismatch);
            }
            return Ok(key);
        }

        let mut candidates = self.keys.iter().filter(|key| key.algorithm() == algorithm);
        match (candidates.next(), candidates.next()) {
            (Some(key), None) => Ok(key),
            (None, _) => Err(SelectError::NoKey),
            (Some(_), Some(_)) => Err(SelectError::Ambiguous),
        }
    }

    /// Tells whether a key has this `kid`.
    pub fn has_kid(&self, kid: &str) -> bool {
        self.keys.iter().any(|key| key.kid() == Some(kid))
    }
}
