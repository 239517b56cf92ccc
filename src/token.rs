//! Token verification: signature with the one key and algorithm configured for it,
//! then issuer, audience, expiry, not-before, issue time, lifetime and type.
//!
//! jwt-simple checks the signature and the standard claims. Its defaults are loose
//! for a gateway (a 15-minute clock tolerance, no required `exp`, `iss` and `aud`
//! checked only when asked), so every one of them is set here, and the checks it does
//! not make (a required `exp`, a maximum lifetime, the `typ` rule, the entitlement
//! claim) follow it.
//!
//! The Workers build checks RSA, ECDSA and Ed25519 signatures with the runtime's
//! WebCrypto, which is asynchronous. For those keys [`verify_or_defer`] stops before the
//! signature with [`TokenFailure::VerifySignature`], the adapter verifies, and
//! [`finish`] checks the claims exactly as jwt-simple does with the same options.

use std::collections::HashSet;
use std::fmt;
use std::sync::Arc;

use jwt_simple::prelude::{Base64UrlSafeNoPadding, Duration, JWTClaims, Token, VerificationOptions};
use jwt_simple::reexports::ct_codecs::Decoder;
use jwt_simple::JWTError;
use serde_json::{Map, Value};

use crate::config::{normalise_type, Config};
use crate::jwks::{FetchReason, RemoteKeys};
use crate::keys::{Algorithm, KeyRing, SelectError, VerificationKey};

/// The longest KV key (Workers KV's own limit), which bounds the entitlement claim.
pub const MAX_RECORD_KEY_BYTES: usize = 512;

/// Why a token was rejected. Each variant has a fixed public phrase.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenError {
    /// Not a compact JWS, or a header or claims set that is not valid JSON of the
    /// expected types.
    Malformed,
    /// Longer than `AUTHORIZATION_MAX_BYTES`.
    TooLong,
    /// `alg` is not one the gateway verifies (`none` included, in any case).
    UnsupportedAlgorithm,
    /// `kid` names no configured key.
    UnknownKid,
    /// `alg` differs from the algorithm of the key `kid` names.
    AlgorithmMismatch,
    /// No `kid`, and not exactly one key for `alg`.
    NoUniqueKey,
    /// `crit` lists an extension the gateway does not understand (RFC 7515 §4.1.11).
    UnsupportedCritical,
    /// `typ` is not the required type, or not a JWT type.
    TypeMismatch,
    /// The signature does not verify.
    InvalidSignature,
    /// `exp` is in the past, beyond the clock skew.
    Expired,
    /// `nbf` is in the future, beyond the clock skew.
    NotYetValid,
    /// `iat` is in the future, beyond the clock skew.
    IssuedInFuture,
    /// No `exp` claim.
    MissingExpiry,
    /// `exp` is further from `iat` (or now) than the configured maximum lifetime.
    LifetimeTooLong,
    /// `iss` is missing or not the configured issuer.
    IssuerMismatch,
    /// `aud` is missing or contains no accepted audience.
    AudienceMismatch,
    /// The entitlement claim is missing, not a string, empty, too long or has
    /// control characters.
    InvalidSubject,
    /// `scope` or `scp` is not of the expected type.
    InvalidScope,
}

impl TokenError {
    /// The `error_description` sent to the client: short, fixed, never the token.
    pub fn description(self) -> &'static str {
        match self {
            TokenError::Malformed => "malformed token",
            TokenError::TooLong => "token too long",
            TokenError::UnsupportedAlgorithm => "unsupported algorithm",
            TokenError::UnknownKid => "unknown key id",
            TokenError::AlgorithmMismatch => "algorithm does not match the key",
            TokenError::NoUniqueKey => "no unique key for the algorithm",
            TokenError::UnsupportedCritical => "unsupported critical header",
            TokenError::TypeMismatch => "token type not accepted",
            TokenError::InvalidSignature => "invalid signature",
            TokenError::Expired => "token expired",
            TokenError::NotYetValid => "token not yet valid",
            TokenError::IssuedInFuture => "token issued in the future",
            TokenError::MissingExpiry => "token has no expiry",
            TokenError::LifetimeTooLong => "token lifetime too long",
            TokenError::IssuerMismatch => "issuer not accepted",
            TokenError::AudienceMismatch => "audience not accepted",
            TokenError::InvalidSubject => "token lacks a valid subject claim",
            TokenError::InvalidScope => "invalid scope claim",
        }
    }

    /// A stable reason code for the log.
    pub fn code(self) -> &'static str {
        match self {
            TokenError::Malformed => "token_malformed",
            TokenError::TooLong => "token_too_long",
            TokenError::UnsupportedAlgorithm => "token_algorithm_unsupported",
            TokenError::UnknownKid => "token_kid_unknown",
            TokenError::AlgorithmMismatch => "token_algorithm_mismatch",
            TokenError::NoUniqueKey => "token_key_ambiguous",
            TokenError::UnsupportedCritical => "token_crit_unsupported",
            TokenError::TypeMismatch => "token_type_mismatch",
            TokenError::InvalidSignature => "token_signature_invalid",
            TokenError::Expired => "token_expired",
            TokenError::NotYetValid => "token_not_yet_valid",
            TokenError::IssuedInFuture => "token_issued_in_future",
            TokenError::MissingExpiry => "token_expiry_missing",
            TokenError::LifetimeTooLong => "token_lifetime_too_long",
            TokenError::IssuerMismatch => "token_issuer_mismatch",
            TokenError::AudienceMismatch => "token_audience_mismatch",
            TokenError::InvalidSubject => "token_subject_invalid",
            TokenError::InvalidScope => "token_scope_invalid",
        }
    }
}

/// The facts a verified token gives the gateway.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifiedToken {
    /// The header `kid`, for the log.
    pub kid: Option<String>,
    /// The entitlement claim's value: names the caller's record.
    pub subject: String,
    /// The scopes from `scope` (space-separated) and `scp` (array or space-separated).
    pub scopes: Vec<String>,
    /// `exp`, Unix seconds.
    pub expires_at: u64,
    /// `nbf`, Unix seconds, if present.
    pub not_before: Option<u64>,
    /// Whether the key came from the remote key set rather than configuration.
    pub remote_key: bool,
}

/// A token check that did not end with a verified token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TokenFailure {
    /// The token is invalid (401).
    Invalid(TokenError),
    /// The token needs the remote key set, which must be fetched first.
    FetchKeys(FetchReason),
    /// The token needs the remote key set, and none is usable (503): the token may
    /// well be valid.
    KeysUnavailable,
    /// Everything before the signature passed: verify it, then call [`finish`]. Only
    /// [`verify_or_defer`] returns this, for RSA, ECDSA and Ed25519 keys.
    VerifySignature(Box<SignatureCheck>),
}

/// A token that passed every check before its signature, with what the signature
/// check and [`finish`] need.
#[derive(Clone, PartialEq, Eq)]
pub struct SignatureCheck {
    /// The algorithm of the chosen key, which is also the header `alg`.
    pub algorithm: Algorithm,
    /// The chosen key's public JWK; `None` for an HMAC key.
    pub public_jwk: Option<Arc<str>>,
    /// The header `kid`.
    pub kid: Option<String>,
    /// Whether the key came from the remote key set rather than configuration.
    pub remote_key: bool,
    /// The signed bytes: the encoded header, `.`, the encoded claims.
    pub signing_input: String,
    /// The decoded signature; ECDSA signatures are the raw `r || s` WebCrypto expects.
    pub signature: Vec<u8>,
}

// Leaves out the signing input and the signature, so a token never reaches a log.
impl fmt::Debug for SignatureCheck {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SignatureCheck")
            .field("algorithm", &self.algorithm)
            .field("kid", &self.kid)
            .field("remote_key", &self.remote_key)
            .finish_non_exhaustive()
    }
}

impl From<TokenError> for TokenFailure {
    fn from(error: TokenError) -> Self {
        TokenFailure::Invalid(error)
    }
}

/// Verifies `token` with the configured keys only, at unix time `now` (seconds).
pub fn verify(token: &str, config: &Config, now: u64) -> Result<VerifiedToken, TokenError> {
    match verify_with(token, config, RemoteKeys::NotConfigured, now) {
        Ok(token) => Ok(token),
        Err(TokenFailure::Invalid(error)) => Err(error),
        // Without remote keys these cannot occur; an unknown key is what they mean.
        Err(TokenFailure::FetchKeys(_) | TokenFailure::KeysUnavailable) => Err(TokenError::UnknownKid),
        // `verify_with` never defers a signature; fail closed if it did.
        Err(TokenFailure::VerifySignature(_)) => Err(TokenError::InvalidSignature),
    }
}

/// Verifies `token` with the configured keys, then the remote key set, at `now`,
/// with jwt-simple for every algorithm.
///
/// The Workers build does not link jwt-simple's RSA, ECDSA and Ed25519 checks, so there
/// it rejects those tokens as malformed: it calls [`verify_or_defer`] instead.
pub fn verify_with(token: &str, config: &Config, remote: RemoteKeys<'_>, now: u64) -> Result<VerifiedToken, TokenFailure> {
    let (check, key) = check_before_signature(token, config, remote)?;
    let claims: JWTClaims<Map<String, Value>> = key.verify(token, options(config, now)).map_err(map_library_error)?;
    Ok(accept_claims(&claims, config, check.kid, check.remote_key, now)?)
}

/// Like [`verify_with`], but returns [`TokenFailure::VerifySignature`] for an RSA,
/// ECDSA or Ed25519 key instead of checking the signature: check it, then call
/// [`finish`]. HMAC tokens are verified with jwt-simple.
pub fn verify_or_defer(token: &str, config: &Config, remote: RemoteKeys<'_>, now: u64) -> Result<VerifiedToken, TokenFailure> {
    let (check, key) = check_before_signature(token, config, remote)?;
    if !check.algorithm.is_hmac() {
        return Err(TokenFailure::VerifySignature(Box::new(check)));
    }

    let claims: JWTClaims<Map<String, Value>> = key.verify(token, options(config, now)).map_err(map_library_error)?;
    Ok(accept_claims(&claims, config, check.kid, check.remote_key, now)?)
}

/// Runs every check that comes before the signature, in jwt-simple's order: size,
/// header, `alg`, `crit`, `typ`, the key, the compact form, `salt` and the signature's
/// encoding. Returns the pending signature check and the chosen key.
///
/// HMAC tokens go on to jwt-simple, which also rejects a `salt` their keys do not have.
pub fn check_before_signature<'a>(
    token: &str,
    config: &'a Config,
    remote: RemoteKeys<'a>,
) -> Result<(SignatureCheck, &'a VerificationKey), TokenFailure> {
    if token.len() > config.max_authorization_bytes {
        return Err(TokenError::TooLong.into());
    }

    let metadata = Token::decode_metadata(token).map_err(|_| TokenError::Malformed)?;
    let algorithm = Algorithm::from_name(metadata.algorithm()).ok_or(TokenError::UnsupportedAlgorithm)?;
    if metadata.critical().is_some_and(|critical| !critical.is_empty()) {
        return Err(TokenError::UnsupportedCritical.into());
    }
    if let Some(required) = &config.required_type {
        let actual = metadata.signature_type().map(normalise_type);
        if actual.as_deref() != Some(required.as_str()) {
            return Err(TokenError::TypeMismatch.into());
        }
    }

    let kid = metadata.key_id();
    let (key, remote_key) = choose_key(&config.keys, remote, algorithm, kid)?;

    // The checks jwt-simple makes before the signature, with the errors it maps to.
    let mut parts = token.split('.');
    let (Some(header), Some(claims), Some(signature), None) = (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(TokenError::Malformed.into());
    };
    if let Some(typ) = metadata.signature_type() {
        let typ = typ.to_uppercase();
        if typ != "JWT" && !typ.ends_with("+JWT") {
            return Err(TokenError::TypeMismatch.into());
        }
    }
    if let Some(salt) = header_salt(header)? {
        Base64UrlSafeNoPadding::decode_to_vec(salt, None).map_err(|_| TokenError::Malformed)?;
    }
    let signature = Base64UrlSafeNoPadding::decode_to_vec(signature, None).map_err(|_| TokenError::Malformed)?;
    // jwt-simple's Ed25519 check fails with a decoding error, not an invalid
    // signature, when the signature is not 64 bytes.
    if algorithm == Algorithm::EdDsa && signature.len() != 64 {
        return Err(TokenError::Malformed.into());
    }

    let check = SignatureCheck {
        algorithm,
        public_jwk: key.public_jwk().cloned(),
        kid: kid.map(str::to_string),
        remote_key,
        signing_input: token[..header.len() + 1 + claims.len()].to_string(),
        signature,
    };
    Ok((check, key))
}

/// The header's `salt` member, which jwt-simple decodes before the signature and
/// `TokenMetadata::salt` reports only when it decodes.
fn header_salt(encoded: &str) -> Result<Option<String>, TokenError> {
    #[derive(serde::Deserialize)]
    struct SaltMember {
        salt: Option<String>,
    }
    let json = Base64UrlSafeNoPadding::decode_to_vec(encoded, None).map_err(|_| TokenError::Malformed)?;
    let member: SaltMember = serde_json::from_slice(&json).map_err(|_| TokenError::Malformed)?;
    Ok(member.salt)
}

/// Finishes a token whose signature was checked outside jwt-simple: `signature_valid`
/// is the verdict, and the claims are checked at `now` exactly as [`verify_with`]
/// checks them through jwt-simple.
pub fn finish(check: &SignatureCheck, signature_valid: bool, config: &Config, now: u64) -> Result<VerifiedToken, TokenError> {
    if !signature_valid {
        return Err(TokenError::InvalidSignature);
    }

    let encoded = check.signing_input.split('.').nth(1).ok_or(TokenError::Malformed)?;
    let json = Base64UrlSafeNoPadding::decode_to_vec(encoded, None).map_err(|_| TokenError::Malformed)?;
    let claims: JWTClaims<Map<String, Value>> = serde_json::from_slice(&json).map_err(|_| TokenError::Malformed)?;
    validate_standard_claims(&claims, config, now)?;
    accept_claims(&claims, config, check.kid.clone(), check.remote_key, now)
}

/// The checks of jwt-simple's `JWTClaims::validate` under [`options`], in its order
/// and with its comparisons on sub-second durations.
fn validate_standard_claims(claims: &JWTClaims<Map<String, Value>>, config: &Config, now: u64) -> Result<(), TokenError> {
    let now = Duration::from_secs(now);
    let tolerance = Duration::from_secs(config.clock_skew);

    if claims.issued_at.is_some_and(|issued_at| issued_at > now + tolerance) {
        return Err(TokenError::IssuedInFuture);
    }
    if claims.invalid_before.is_some_and(|not_before| now + tolerance < not_before) {
        return Err(TokenError::NotYetValid);
    }
    if claims.expires_at.is_some_and(|expires_at| now < tolerance || now - tolerance > expires_at) {
        return Err(TokenError::Expired);
    }
    if claims.issuer.as_deref() != Some(config.issuer.as_str()) {
        return Err(TokenError::IssuerMismatch);
    }
    let accepted: HashSet<String> = config.audiences.iter().cloned().collect();
    if !claims.audiences.as_ref().is_some_and(|audiences| audiences.contains(&accepted)) {
        return Err(TokenError::AudienceMismatch);
    }
    Ok(())
}

/// The gateway's own claim rules, after the standard ones passed: a required `exp`,
/// the maximum lifetime, the entitlement claim and the scopes.
fn accept_claims(
    claims: &JWTClaims<Map<String, Value>>,
    config: &Config,
    kid: Option<String>,
    remote_key: bool,
    now: u64,
) -> Result<VerifiedToken, TokenError> {
    let expires_at = claims.expires_at.ok_or(TokenError::MissingExpiry)?.as_secs();
    if let Some(max_lifetime) = config.max_lifetime {
        let start = claims.issued_at.map_or(now, |issued_at| issued_at.as_secs());
        if expires_at.saturating_sub(start) > max_lifetime {
            return Err(TokenError::LifetimeTooLong);
        }
    }

    let subject = subject(claims, &config.entitlement_claim, config.entitlement_key_prefix.len())?;
    let scopes = scopes(&claims.custom)?;
    let not_before = claims.invalid_before.map(|not_before| not_before.as_secs());
    Ok(VerifiedToken { kid, subject, scopes, expires_at, not_before, remote_key })
}

/// Chooses the token's key: configured keys first, then the remote set, asking for a
/// fetch when the remote set is missing, stale or lacks the `kid`. The flag tells
/// whether the key came from the remote set.
fn choose_key<'a>(
    configured: &'a KeyRing,
    remote: RemoteKeys<'a>,
    algorithm: Algorithm,
    kid: Option<&str>,
) -> Result<(&'a VerificationKey, bool), TokenFailure> {
    let not_configured = match configured.select(algorithm, kid) {
        Ok(key) => return Ok((key, false)),
        Err(SelectError::AlgorithmMismatch) => return Err(TokenError::AlgorithmMismatch.into()),
        Err(SelectError::Ambiguous) => return Err(TokenError::NoUniqueKey.into()),
        Err(SelectError::UnknownKid) => TokenError::UnknownKid,
        Err(SelectError::NoKey) => TokenError::NoUniqueKey,
    };

    let (ring, can_refetch_unknown) = match remote {
        RemoteKeys::NotConfigured => return Err(not_configured.into()),
        RemoteKeys::Missing { can_fetch: true } => return Err(TokenFailure::FetchKeys(FetchReason::Initial)),
        RemoteKeys::Missing { can_fetch: false } => return Err(TokenFailure::KeysUnavailable),
        RemoteKeys::Ready { refresh: true, .. } => return Err(TokenFailure::FetchKeys(FetchReason::Refresh)),
        RemoteKeys::Ready { ring, can_refetch_unknown, .. } => (ring, can_refetch_unknown),
    };
    match ring.select(algorithm, kid) {
        Ok(key) => Ok((key, true)),
        Err(SelectError::UnknownKid | SelectError::NoKey) if can_refetch_unknown => {
            Err(TokenFailure::FetchKeys(FetchReason::UnknownKid))
        }
        Err(SelectError::UnknownKid) => Err(TokenError::UnknownKid.into()),
        Err(SelectError::NoKey | SelectError::Ambiguous) => Err(TokenError::NoUniqueKey.into()),
        Err(SelectError::AlgorithmMismatch) => Err(TokenError::AlgorithmMismatch.into()),
    }
}

fn options(config: &Config, now: u64) -> VerificationOptions {
    VerificationOptions {
        accept_future: false,
        allowed_issuers: Some(HashSet::from([config.issuer.clone()])),
        allowed_audiences: Some(config.audiences.iter().cloned().collect()),
        time_tolerance: Some(Duration::from_secs(config.clock_skew)),
        max_token_length: Some(config.max_authorization_bytes),
        max_header_length: Some(config.max_authorization_bytes),
        artificial_time: Some(Duration::from_secs(now)),
        ..VerificationOptions::default()
    }
}

fn map_library_error(error: jwt_simple::Error) -> TokenError {
    let Some(error) = error.downcast_ref::<JWTError>() else {
        // Base64 and JSON errors from the library's own decoding.
        return TokenError::Malformed;
    };
    match error {
        JWTError::InvalidSignature | JWTError::InvalidAuthenticationTag => TokenError::InvalidSignature,
        JWTError::TokenHasExpired => TokenError::Expired,
        JWTError::TokenNotValidYet => TokenError::NotYetValid,
        JWTError::ClockDrift => TokenError::IssuedInFuture,
        JWTError::RequiredIssuerMismatch | JWTError::RequiredIssuerMissing => TokenError::IssuerMismatch,
        JWTError::RequiredAudienceMismatch | JWTError::RequiredAudienceMissing => TokenError::AudienceMismatch,
        JWTError::AlgorithmMismatch => TokenError::AlgorithmMismatch,
        JWTError::UnknownCriticalExtension => TokenError::UnsupportedCritical,
        JWTError::NotJWT | JWTError::RequiredSignatureTypeMismatch => TokenError::TypeMismatch,
        JWTError::TokenTooLong | JWTError::HeaderTooLarge => TokenError::TooLong,
        _ => TokenError::Malformed,
    }
}

fn subject(claims: &JWTClaims<Map<String, Value>>, claim: &str, prefix_len: usize) -> Result<String, TokenError> {
    let value = match claim {
        "sub" => claims.subject.as_deref(),
        "jti" => claims.jwt_id.as_deref(),
        _ => claims.custom.get(claim).and_then(Value::as_str),
    };
    let value = value.ok_or(TokenError::InvalidSubject)?;
    // The value becomes a KV key and the X-Tollgate-Subject header value.
    let usable = !value.is_empty()
        && prefix_len + value.len() <= MAX_RECORD_KEY_BYTES
        && !value.chars().any(char::is_control);
    if !usable {
        return Err(TokenError::InvalidSubject);
    }
    Ok(value.to_string())
}

fn scopes(custom: &Map<String, Value>) -> Result<Vec<String>, TokenError> {
    let mut scopes = Vec::new();
    match custom.get("scope") {
        None | Some(Value::Null) => {}
        Some(Value::String(list)) => scopes.extend(list.split(' ').filter(|s| !s.is_empty()).map(str::to_string)),
        Some(_) => return Err(TokenError::InvalidScope),
    }
    match custom.get("scp") {
        None | Some(Value::Null) => {}
        Some(Value::String(list)) => scopes.extend(list.split(' ').filter(|s| !s.is_empty()).map(str::to_string)),
        Some(Value::Array(items)) => {
            for item in items {
                let scope = item.as_str().ok_or(TokenError::InvalidScope)?;
                scopes.push(scope.to_string());
            }
        }
        Some(_) => return Err(TokenError::InvalidScope),
    }
    Ok(scopes)
}
