//! The decision: request facts, configuration, the entitlement record and the time in;
//! a forward or a denial out. Nothing here performs I/O or reads a clock.
//!
//! Deciding takes two steps because the record lookup is asynchronous and only needed
//! for callers whose token is valid: [`admit`] checks the path, the route, the
//! credentials and the token, and [`entitle`] finishes with the record. The Workers
//! adapter calls [`admit_or_defer`] in place of [`admit`]. It stops before an RSA, ECDSA
//! or Ed25519 signature, which the adapter checks with WebCrypto before it calls [`resume`].

use crate::bearer::{self, Credential, CredentialError};
use crate::config::{Config, Secret};
use crate::entitlement::{Entitlement, Record, RecordError};
use crate::jwks::{FetchReason, RemoteKeys};
use crate::path::{self, PathError};
use crate::routes::Access;
use crate::token::{self, SignatureCheck, TokenError, TokenFailure, VerifiedToken};
use crate::token_cache::{self, TokenCache};

/// The facts about a request that the decision needs.
#[derive(Debug, Clone, Copy)]
pub struct RequestFacts<'a> {
    pub method: &'a str,
    /// The path of the parsed request URL, before normalisation.
    pub path: &'a str,
    /// The query string without `?`, if any.
    pub query: Option<&'a str>,
    /// The `Authorization` value; repeated fields joined by `, `.
    pub authorization: Option<&'a str>,
    /// `OPTIONS` with both `Origin` and `Access-Control-Request-Method`.
    pub is_cors_preflight: bool,
}

/// The outcome of [`admit`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Admission {
    /// Respond with this denial.
    Deny(Denial),
    /// Forward without identity: a public route or a CORS preflight.
    Forward(Forward),
    /// The token is valid: read the record at `caller.record_key`, then [`entitle`].
    LookUp(Caller),
    /// The token needs the remote key set: fetch it, then call [`admit_with_keys`]
    /// again with the new view.
    FetchKeys(FetchReason),
}

/// The outcome of [`admit_or_defer`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AdmissionStep {
    /// The admission is complete.
    Admit(Admission),
    /// Everything before the token's asymmetric signature passed: verify it (the
    /// Workers build uses WebCrypto), then call [`resume`] with the verdict.
    VerifySignature(PendingToken),
}

/// A request whose token waits for its signature check, with what [`resume`] needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PendingToken {
    pub check: SignatureCheck,
    /// The token's [`token_cache::token_key`], to cache the verified token.
    pub cache_key: [u8; 32],
    /// The matched rule's pattern, for the log.
    pub route: String,
    /// The feature the route needs, if any.
    pub feature: Option<String>,
    /// The scopes the route needs.
    pub scopes: Vec<String>,
    pub path: String,
    pub query: Option<String>,
}

/// A caller whose token passed, waiting for the entitlement record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    pub token: VerifiedToken,
    /// The KV key of the caller's record: prefix + entitlement claim value.
    pub record_key: String,
    /// The matched rule's pattern, for the log.
    pub route: String,
    /// The feature the route needs, if any.
    pub feature: Option<String>,
    pub path: String,
    pub query: Option<String>,
}

/// The result of a record lookup, as [`entitle`] takes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RecordLookup {
    Found(Record),
    Missing,
    /// The stored value is not a valid record.
    Invalid(RecordError),
    /// The store could not be read.
    Unavailable,
}

/// The final decision.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    Forward(Forward),
    Deny(Denial),
}

/// A request to pass on to the origin.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Forward {
    /// The normalised path: exactly the one the policy was matched on.
    pub path: String,
    /// The query without any `access_token` parameter.
    pub query: Option<String>,
    /// The caller's identity for the `X-Tollgate-*` headers; `None` on public routes
    /// and CORS preflights.
    pub identity: Option<Identity>,
    /// What the origin gets as `Authorization`.
    pub authorization: OriginAuthorization,
    /// The matched rule's pattern, for the log.
    pub route: String,
}

/// The `Authorization` the origin receives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OriginAuthorization {
    /// None: the client's is removed.
    Remove,
    /// The client's, unchanged (`FORWARD_AUTHORIZATION`).
    KeepClient,
    /// The gateway's own credential (`ORIGIN_AUTHORIZATION`), replacing the client's.
    Set(Secret),
}

/// Who the caller is and what they may use, as sent to the origin.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    pub subject: String,
    pub plan: String,
    pub features: Vec<String>,
}

/// Why the gateway answers a request itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Denial {
    /// 401 without `error`: no credentials, or not Bearer ones.
    Challenge,
    /// 401 `invalid_token` with a fixed description.
    InvalidToken { description: &'static str, code: &'static str },
    /// 400: the request is malformed. `credentials` tells whether the challenge gets
    /// `error="invalid_request"`.
    InvalidRequest { description: &'static str, code: &'static str, credentials: bool },
    /// 402: the record does not grant the route's feature.
    RequirePayment { feature: String, plan: String, status: String },
    /// 403 `insufficient_scope`: the token lacks a scope the route needs.
    RequireScope { scopes: Vec<String> },
    /// 404: no rule matches.
    NoRoute,
    /// 431: the `Authorization` value is longer than `AUTHORIZATION_MAX_BYTES`.
    HeaderTooLarge,
    /// 500: a binding is missing or invalid.
    Misconfigured,
    /// 500: the caller's stored record is not valid.
    InvalidRecord,
    /// 502: the origin could not be reached.
    OriginUnreachable,
    /// 503: the entitlement store could not be read.
    StoreUnavailable,
    /// 503: the token needs keys from the identity provider and none are usable.
    KeysUnavailable,
    /// 500: a fault of the gateway's own, which no configuration explains.
    Internal,
}

impl Denial {
    /// A stable reason code for the log.
    pub fn code(&self) -> &'static str {
        match self {
            Denial::Challenge => "credentials_missing",
            Denial::InvalidToken { code, .. } | Denial::InvalidRequest { code, .. } => code,
            Denial::RequirePayment { .. } => "feature_not_granted",
            Denial::RequireScope { .. } => "scope_missing",
            Denial::NoRoute => "route_not_found",
            Denial::HeaderTooLarge => "authorization_too_large",
            Denial::Misconfigured => "configuration_invalid",
            Denial::InvalidRecord => "record_invalid",
            Denial::OriginUnreachable => "origin_unreachable",
            Denial::Internal => "internal_error",
            Denial::StoreUnavailable => "store_unavailable",
            Denial::KeysUnavailable => "keys_unavailable",
        }
    }

    fn from_token(error: TokenError) -> Self {
        Denial::InvalidToken { description: error.description(), code: error.code() }
    }

    fn from_credentials(error: CredentialError) -> Self {
        let description = error.description();
        match error {
            CredentialError::MultipleCredentials => {
                Denial::InvalidRequest { description, code: "credentials_multiple", credentials: true }
            }
            CredentialError::HeaderAndQueryToken => {
                Denial::InvalidRequest { description, code: "credentials_in_query_and_header", credentials: true }
            }
            CredentialError::MissingToken => Denial::InvalidToken { description, code: "token_missing" },
            CredentialError::MalformedToken => Denial::InvalidToken { description, code: "token_malformed" },
        }
    }

    fn from_path(error: PathError) -> Self {
        Denial::InvalidRequest { description: error.description(), code: "path_ambiguous", credentials: false }
    }
}

/// The detail of a 400 for a path that another reading would route elsewhere.
const AMBIGUOUS_PATH: &str = "path letter case, parameters or trailing dots could select another route";

/// Checks everything but the entitlement record, at unix time `now` (seconds), with
/// the configured keys only.
pub fn admit(config: &Config, request: &RequestFacts<'_>, now: u64) -> Admission {
    admit_with_keys(config, request, RemoteKeys::NotConfigured, now)
}

/// Checks everything but the entitlement record, with the configured keys and the
/// current view of the remote key set.
pub fn admit_with_keys(config: &Config, request: &RequestFacts<'_>, remote: RemoteKeys<'_>, now: u64) -> Admission {
    admit_cached(config, request, remote, None, now)
}

/// Like [`admit_with_keys`], with a cache of verified tokens: a token seen before
/// skips its signature check, while `exp` and `nbf` are checked again.
pub fn admit_cached(
    config: &Config,
    request: &RequestFacts<'_>,
    remote: RemoteKeys<'_>,
    cache: Option<&mut TokenCache>,
    now: u64,
) -> Admission {
    match admit_step(config, request, remote, cache, now, Signatures::Verify) {
        AdmissionStep::Admit(admission) => admission,
        // `Signatures::Verify` never defers; fail closed if it did.
        AdmissionStep::VerifySignature(_) => Admission::Deny(Denial::from_token(TokenError::InvalidSignature)),
    }
}

/// Like [`admit_cached`], but stops before an RSA, ECDSA or Ed25519 signature so that
/// the caller can check it asynchronously; HMAC tokens and cache hits complete here.
pub fn admit_or_defer(
    config: &Config,
    request: &RequestFacts<'_>,
    remote: RemoteKeys<'_>,
    cache: Option<&mut TokenCache>,
    now: u64,
) -> AdmissionStep {
    admit_step(config, request, remote, cache, now, Signatures::DeferAsymmetric)
}

fn admit_step(
    config: &Config,
    request: &RequestFacts<'_>,
    remote: RemoteKeys<'_>,
    cache: Option<&mut TokenCache>,
    now: u64,
    signatures: Signatures,
) -> AdmissionStep {
    match admit_inner(config, request, remote, cache, now, signatures) {
        Ok(admission) => AdmissionStep::Admit(admission),
        Err(pending) => AdmissionStep::VerifySignature(*pending),
    }
}

/// Runs the checks of [`admit_cached`]; `Err` carries a deferred signature check.
fn admit_inner(
    config: &Config,
    request: &RequestFacts<'_>,
    remote: RemoteKeys<'_>,
    cache: Option<&mut TokenCache>,
    now: u64,
    signatures: Signatures,
) -> Result<Admission, Box<PendingToken>> {
    // The size limit comes first, so an oversized value is never parsed.
    if request.authorization.is_some_and(|value| value.len() > config.max_authorization_bytes) {
        return Ok(Admission::Deny(Denial::HeaderTooLarge));
    }

    let path = match path::normalise(request.path) {
        Ok(path) => path,
        Err(error) => return Ok(Admission::Deny(Denial::from_path(error))),
    };
    let Some(rule) = config.routes.find(request.method, &path) else {
        return Ok(Admission::Deny(Denial::NoRoute));
    };
    if config.routes.is_ambiguous(request.method, &path, rule) {
        return Ok(Admission::Deny(Denial::InvalidRequest {
            description: AMBIGUOUS_PATH,
            code: "path_ambiguous",
            credentials: false,
        }));
    }
    let query = request.query.and_then(strip_query_token);

    let (feature, scopes) = match &rule.access {
        Access::Public => return Ok(Admission::Forward(anonymous(config, path, query, &rule.pattern))),
        Access::Authenticated { .. } if request.is_cors_preflight => {
            return Ok(Admission::Forward(anonymous(config, path, query, &rule.pattern)));
        }
        Access::Authenticated { feature, scopes } => (feature, scopes),
    };

    let token = match bearer::extract(request.authorization, request.query) {
        Ok(Credential::Bearer(token)) => token,
        Ok(Credential::Absent | Credential::OtherScheme) => return Ok(Admission::Deny(Denial::Challenge)),
        Err(error) => return Ok(Admission::Deny(Denial::from_credentials(error))),
    };
    let verified = match verify_cached(token, config, remote, cache, now, signatures) {
        Ok(verified) => verified,
        Err(TokenFailure::Invalid(error)) => return Ok(Admission::Deny(Denial::from_token(error))),
        Err(TokenFailure::FetchKeys(reason)) => return Ok(Admission::FetchKeys(reason)),
        Err(TokenFailure::KeysUnavailable) => return Ok(Admission::Deny(Denial::KeysUnavailable)),
        Err(TokenFailure::VerifySignature(check)) => {
            return Err(Box::new(PendingToken {
                check: *check,
                cache_key: token_cache::token_key(token),
                route: rule.pattern.clone(),
                feature: feature.clone(),
                scopes: scopes.clone(),
                path,
                query,
            }));
        }
    };
    Ok(admit_token(config, verified, rule.pattern.clone(), feature.clone(), scopes, path, query))
}

/// Continues [`admit_cached`] once WebCrypto has checked the pending token's
/// signature: `signature_valid` is its verdict. Caches the token when it passes.
pub fn resume(
    config: &Config,
    pending: PendingToken,
    signature_valid: bool,
    cache: Option<&mut TokenCache>,
    now: u64,
) -> Admission {
    let mut cache = cache;
    let verified = match token::finish(&pending.check, signature_valid, config, now) {
        Ok(verified) => verified,
        Err(error) => {
            if let (TokenError::InvalidSignature, Some(cache)) = (error, cache.as_deref_mut()) {
                cache.reject_key(pending.cache_key, now);
            }
            return Admission::Deny(Denial::from_token(error));
        }
    };
    if let Some(cache) = cache {
        cache.insert_key(pending.cache_key, verified.clone(), now);
    }
    admit_token(config, verified, pending.route, pending.feature, &pending.scopes, pending.path, pending.query)
}

/// The steps after a verified token: the route's scopes, then the record key.
fn admit_token(
    config: &Config,
    token: VerifiedToken,
    route: String,
    feature: Option<String>,
    scopes: &[String],
    path: String,
    query: Option<String>,
) -> Admission {
    let missing = scopes.iter().any(|scope| !token.scopes.contains(scope));
    if missing {
        return Admission::Deny(Denial::RequireScope { scopes: scopes.to_vec() });
    }

    let record_key = format!("{}{}", config.entitlement_key_prefix, token.subject);
    Admission::LookUp(Caller { token, record_key, route, feature, path, query })
}

/// Finishes the decision for `caller` with the record lookup's result at `now`.
pub fn entitle(config: &Config, caller: Caller, lookup: RecordLookup, now: u64) -> Decision {
    let entitlement = match lookup {
        RecordLookup::Found(record) => Entitlement::evaluate(&record, now),
        RecordLookup::Missing => Entitlement::none(),
        RecordLookup::Invalid(_) => return Decision::Deny(Denial::InvalidRecord),
        RecordLookup::Unavailable => return Decision::Deny(Denial::StoreUnavailable),
    };

    if let Some(feature) = caller.feature {
        if !entitlement.grants(&feature) {
            let Entitlement { plan, status, .. } = entitlement;
            return Decision::Deny(Denial::RequirePayment { feature, plan, status });
        }
    }

    let identity = Identity { subject: caller.token.subject, plan: entitlement.plan, features: entitlement.features };
    let authorization = origin_authorization(config, true);
    Decision::Forward(Forward {
        path: caller.path,
        query: caller.query,
        identity: Some(identity),
        authorization,
        route: caller.route,
    })
}

/// How [`admit_step`] checks a token's signature.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Signatures {
    /// With jwt-simple, for every algorithm.
    Verify,
    /// With jwt-simple for HMAC; RSA, ECDSA and Ed25519 are left to the caller.
    DeferAsymmetric,
}

fn verify_cached(
    token: &str,
    config: &Config,
    remote: RemoteKeys<'_>,
    cache: Option<&mut TokenCache>,
    now: u64,
    signatures: Signatures,
) -> Result<VerifiedToken, TokenFailure> {
    let verify = |remote| match signatures {
        Signatures::Verify => token::verify_with(token, config, remote, now),
        Signatures::DeferAsymmetric => token::verify_or_defer(token, config, remote, now),
    };
    let Some(cache) = cache else {
        return verify(remote);
    };
    let key = token_cache::token_key(token);
    if cache.is_rejected(&key, now) {
        return Err(TokenFailure::Invalid(TokenError::InvalidSignature));
    }
    if let Some(result) = cache.get_key(&key, now, config.clock_skew) {
        // A token checked with a provider key is served from the cache only while
        // that key is in a fresh key set, so refreshes and rotations still apply.
        let trusted = match &result {
            Ok(verified) if verified.remote_key => match (remote, verified.kid.as_deref()) {
                (RemoteKeys::Ready { ring, refresh: false, .. }, Some(kid)) => ring.has_kid(kid),
                _ => false,
            },
            _ => true,
        };
        if trusted {
            return result.map_err(TokenFailure::Invalid);
        }
    }
    let verified = match verify(remote) {
        Ok(verified) => verified,
        Err(TokenFailure::Invalid(TokenError::InvalidSignature)) => {
            cache.reject_key(key, now);
            return Err(TokenFailure::Invalid(TokenError::InvalidSignature));
        }
        Err(failure) => return Err(failure),
    };
    cache.insert_key(key, verified.clone(), now);
    Ok(verified)
}

/// A forward without identity; the client's unchecked `Authorization` never passes.
fn anonymous(config: &Config, path: String, query: Option<String>, route: &str) -> Forward {
    let authorization = origin_authorization(config, false);
    Forward { path, query, identity: None, authorization, route: route.to_string() }
}

/// Chooses the origin's `Authorization`: the gateway's own credential when one is
/// configured, else the client's when `FORWARD_AUTHORIZATION` is on and the token was
/// verified, else none.
fn origin_authorization(config: &Config, token_verified: bool) -> OriginAuthorization {
    match &config.origin_authorization {
        Some(secret) => OriginAuthorization::Set(secret.clone()),
        None if token_verified && config.forward_authorization => OriginAuthorization::KeepClient,
        None => OriginAuthorization::Remove,
    }
}

/// Removes every `access_token` parameter, keeping the others byte for byte.
/// Returns `None` when nothing is left.
pub fn strip_query_token(query: &str) -> Option<String> {
    if !bearer::has_query_token(query) {
        return (!query.is_empty()).then(|| query.to_string());
    }
    let kept: Vec<&str> = query.split('&').filter(|pair| !bearer::has_query_token(pair)).collect();
    let kept = kept.join("&");
    (!kept.is_empty()).then_some(kept)
}
