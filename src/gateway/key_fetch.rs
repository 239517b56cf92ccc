//! Fetching the identity provider's key set: discovery, the HTTP fetch with its time
//! and size limits, the Cache API copy shared by the isolates of a location, and the
//! one in-flight fetch that concurrent requests of an isolate wait on.

use std::cell::RefCell;
use std::time::Duration;

use futures_util::future::{select, Either, FutureExt, LocalBoxFuture, Shared};
use worker::wasm_bindgen::JsValue;
use worker::{console_log, web_sys, AbortController, Cache, Delay, Request, Response};

use crate::config::Config;
use crate::decision::{self, Admission, AdmissionStep, Denial, PendingToken, RequestFacts};
use crate::jwks::{
    fresh_seconds, parse_discovery, parse_fetched, FetchReason, FetchedKeys, JwksSettings, KeySetLocation,
    KeySetState, RemoteKeys, FETCH_TIMEOUT_MS, MAX_DOCUMENT_BYTES,
};
use crate::keys::KeyRing;
use crate::token_cache::TokenCache;

use super::webcrypto;

/// The header of the Cache API copy that records when the set was fetched (Unix seconds).
const FETCHED_AT_HEADER: &str = "x-tollgate-fetched-at";

thread_local! {
    static TOKENS: RefCell<TokenCache> = RefCell::new(TokenCache::default());
    static KEY_SETS: RefCell<KeySetState> = RefCell::new(KeySetState::default());
    static PENDING_FETCH: RefCell<Option<Shared<LocalBoxFuture<'static, ()>>>> = const { RefCell::new(None) };
}

/// The configuration error found by discovery, if any: every request then fails closed.
pub fn discovery_error() -> Option<String> {
    KEY_SETS.with(|state| state.borrow().discovery_error.as_ref().map(ToString::to_string))
}

/// Reads the discovery document on the first request of the isolate (and again after
/// a failed try, once the cool-down has passed), so that an issuer mismatch fails
/// every request closed, not only those with a token.
pub async fn discover(config: &Config, now: u64) {
    let Some(settings) = &config.jwks else { return };
    if discovery_due(config, now) {
        if let Err((url, detail)) = key_set_url(settings).await {
            KEY_SETS.with(|state| state.borrow_mut().fail(now));
            log_fetch(&url, FetchReason::Initial, "failed", &detail);
        }
    }
}

/// Tells whether [`discover`] has work to do for this request (it then needs to await).
pub fn discovery_due(config: &Config, now: u64) -> bool {
    let Some(settings) = &config.jwks else { return false };
    if !matches!(settings.location, KeySetLocation::Discovery { .. }) {
        return false;
    }
    KEY_SETS.with(|state| {
        let state = state.borrow();
        let cooled = state.last_failure.is_none_or(|at| now >= at.saturating_add(settings.cooldown_seconds));
        state.jwks_url.is_none() && state.discovery_error.is_none() && cooled
    })
}

/// Runs [`decision::admit_or_defer`] with the isolate's verified tokens and key sets.
/// `after_fetch` marks a view taken after this request fetched the key set.
fn admission_step(config: &Config, facts: &RequestFacts<'_>, now: u64, after_fetch: bool) -> AdmissionStep {
    TOKENS.with(|tokens| {
        let mut tokens = tokens.borrow_mut();
        match &config.jwks {
            None => decision::admit_or_defer(config, facts, RemoteKeys::NotConfigured, Some(&mut tokens), now),
            Some(settings) => KEY_SETS.with(|state| {
                let state = state.borrow();
                let view = state.view(settings, now, after_fetch);
                decision::admit_or_defer(config, facts, view, Some(&mut tokens), now)
            }),
        }
    })
}

/// Runs the admission as far as it goes without awaiting: to a decision, to a key-set
/// fetch, or to an asymmetric signature check, which [`admit`] can continue from.
pub fn admit_now(config: &Config, facts: &RequestFacts<'_>, now: u64) -> AdmissionStep {
    admission_step(config, facts, now, false)
}

/// Completes the admission from `first` (or from the start when `None`), fetching the
/// remote key set when the token needs it, at most once per request, and checking an
/// asymmetric signature with WebCrypto. Returns the admission and the fetch reason.
pub async fn admit(
    config: &Config,
    facts: &RequestFacts<'_>,
    now: u64,
    first: Option<AdmissionStep>,
) -> (Admission, Option<FetchReason>) {
    let mut step = first.unwrap_or_else(|| admission_step(config, facts, now, false));
    let mut fetched = None;
    loop {
        match step {
            AdmissionStep::Admit(Admission::FetchKeys(reason)) if fetched.is_none() => {
                // Only a configured key-set source requests a fetch.
                let Some(settings) = &config.jwks else {
                    return (Admission::Deny(Denial::KeysUnavailable), None);
                };
                refresh(config, settings, reason, now).await;
                fetched = Some(reason);
                step = admission_step(config, facts, now, true);
            }
            // A view taken after a fetch never requests another, so fail closed if it did.
            AdmissionStep::Admit(Admission::FetchKeys(_)) => return (Admission::Deny(Denial::KeysUnavailable), fetched),
            step => return (finish_step(config, step, now).await, fetched),
        }
    }
}

/// Completes a step: checks a deferred signature with WebCrypto and resumes.
async fn finish_step(config: &Config, step: AdmissionStep, now: u64) -> Admission {
    let pending = match step {
        AdmissionStep::Admit(admission) => return admission,
        AdmissionStep::VerifySignature(pending) => pending,
    };
    match webcrypto::verify(&pending.check).await {
        Ok(valid) => TOKENS.with(|tokens| decision::resume(config, pending, valid, Some(&mut tokens.borrow_mut()), now)),
        Err(detail) => {
            log_key_failure(&pending, &detail);
            Admission::Deny(Denial::Misconfigured)
        }
    }
}

/// Logs a key WebCrypto rejected, by `kid` and algorithm, never its material.
fn log_key_failure(pending: &PendingToken, detail: &str) {
    let line = serde_json::json!({
        "event": "signature_check_failed",
        "kid": pending.check.kid,
        "algorithm": pending.check.algorithm.name(),
        "remote_key": pending.check.remote_key,
        "detail": detail,
    });
    console_log!("{line}");
}

/// Fetches the key set, or waits for the fetch another request of this isolate started.
async fn refresh(config: &Config, settings: &JwksSettings, reason: FetchReason, now: u64) {
    if let Some(pending) = PENDING_FETCH.with(|slot| slot.borrow().clone()) {
        pending.await;
        return;
    }

    KEY_SETS.with(|state| state.borrow_mut().start_fetch(reason, now));
    let fetch = fetch_key_set(config.keys.clone(), settings.clone(), reason, now).boxed_local().shared();
    PENDING_FETCH.with(|slot| *slot.borrow_mut() = Some(fetch.clone()));
    fetch.await;
    PENDING_FETCH.with(|slot| *slot.borrow_mut() = None);
}

async fn fetch_key_set(configured: KeyRing, settings: JwksSettings, reason: FetchReason, now: u64) {
    let url = match key_set_url(&settings).await {
        Ok(url) => url,
        Err((url, detail)) => {
            KEY_SETS.with(|state| state.borrow_mut().fail(now));
            log_fetch(&url, reason, "failed", &detail);
            return;
        }
    };

    if reason == FetchReason::Initial {
        if let Some(keys) = cached_key_set(&url, &configured).await {
            let count = keys.ring.len();
            KEY_SETS.with(|state| {
                let mut state = state.borrow_mut();
                state.keys = Some(keys);
                state.last_failure = None;
            });
            log_fetch(&url, reason, "cache", &format!("{count} keys from the Cache API"));
            return;
        }
    }

    let fetched = fetch_document(&url).await.and_then(|(body, cache_control)| {
        let ring = parse_fetched(&body, &configured).map_err(|error| format!("not a usable JWK Set: {error}"))?;
        Ok((ring, body, fresh_seconds(cache_control.as_deref(), settings.cache_seconds)))
    });
    let count = KEY_SETS.with(|state| {
        let mut state = state.borrow_mut();
        state.fetch_count += 1;
        state.fetch_count
    });
    match fetched {
        Ok((ring, body, fresh)) => {
            let detail = format!("{} keys, fresh for {fresh} s, fetch {count} of this isolate", ring.len());
            KEY_SETS.with(|state| state.borrow_mut().store(ring, now, fresh));
            log_fetch(&url, reason, "ok", &detail);
            store_in_cache(&url, &body, now, fresh).await;
        }
        Err(detail) => {
            KEY_SETS.with(|state| state.borrow_mut().fail(now));
            log_fetch(&url, reason, "failed", &format!("{detail} (fetch {count} of this isolate)"));
        }
    }
}

/// The key set URL: configured, or read once from the discovery document. An error
/// names the URL that failed and why.
async fn key_set_url(settings: &JwksSettings) -> Result<String, (String, String)> {
    let (document_url, issuer) = match &settings.location {
        KeySetLocation::Url(url) => return Ok(url.clone()),
        KeySetLocation::Discovery { document_url, issuer } => (document_url, issuer),
    };
    if let Some(url) = KEY_SETS.with(|state| state.borrow().jwks_url.clone()) {
        return Ok(url);
    }

    let (body, _) = fetch_document(document_url).await.map_err(|detail| (document_url.clone(), detail))?;
    match parse_discovery(&body, issuer) {
        Ok(url) => {
            KEY_SETS.with(|state| state.borrow_mut().jwks_url = Some(url.clone()));
            Ok(url)
        }
        Err(error @ crate::jwks::DiscoveryError::IssuerMismatch { .. }) => {
            let detail = error.to_string();
            KEY_SETS.with(|state| state.borrow_mut().discovery_error = Some(error));
            Err((document_url.clone(), detail))
        }
        Err(error) => Err((document_url.clone(), error.to_string())),
    }
}

/// GETs `url` without following redirects, within [`FETCH_TIMEOUT_MS`] and
/// [`MAX_DOCUMENT_BYTES`]. Returns the body and the `Cache-Control` value.
async fn fetch_document(url: &str) -> Result<(String, Option<String>), String> {
    let controller = AbortController::default();
    let signal = controller.signal();
    let exchange = async {
        let init = web_sys::RequestInit::new();
        init.set_method("GET");
        init.set_redirect(web_sys::RequestRedirect::Manual);
        let request = web_sys::Request::new_with_str_and_init(url, &init).map_err(describe)?;
        request.headers().set("accept", "application/json").map_err(describe)?;
        let mut response = worker::Fetch::Request(Request::from(request))
            .send_with_signal(&signal)
            .await
            .map_err(|error| format!("request failed: {error}"))?;
        read_document(&mut response).await
    };
    let timeout = Delay::from(Duration::from_millis(FETCH_TIMEOUT_MS));
    futures_util::pin_mut!(exchange);
    match select(exchange, timeout).await {
        Either::Left((result, _)) => result,
        Either::Right(_) => {
            controller.abort();
            Err(format!("timed out after {FETCH_TIMEOUT_MS} ms"))
        }
    }
}

async fn read_document(response: &mut Response) -> Result<(String, Option<String>), String> {
    let status = response.status_code();
    if (300..400).contains(&status) {
        return Err(format!("redirect (status {status}) not followed"));
    }
    if !(200..300).contains(&status) {
        return Err(format!("status {status}"));
    }
    let declared = response.headers().get("content-length").ok().flatten();
    if declared.and_then(|length| length.parse::<usize>().ok()).is_some_and(|length| length > MAX_DOCUMENT_BYTES) {
        return Err(format!("larger than {MAX_DOCUMENT_BYTES} bytes"));
    }
    // NOTE: a body sent without Content-Length is read whole before its size is checked.
    let bytes = response.bytes().await.map_err(|error| format!("reading the body failed: {error}"))?;
    if bytes.len() > MAX_DOCUMENT_BYTES {
        return Err(format!("larger than {MAX_DOCUMENT_BYTES} bytes"));
    }
    let body = String::from_utf8(bytes).map_err(|_| "body is not UTF-8".to_string())?;
    let cache_control = response.headers().get("cache-control").ok().flatten();
    Ok((body, cache_control))
}

/// Reads the copy another isolate stored, if it is still fresh and usable.
async fn cached_key_set(url: &str, configured: &KeyRing) -> Option<FetchedKeys> {
    let mut response = Cache::default().get(url, false).await.ok()??;
    let fetched_at: u64 = response.headers().get(FETCHED_AT_HEADER).ok()??.parse().ok()?;
    let fresh = fresh_seconds(response.headers().get("cache-control").ok()?.as_deref(), 0);
    let body = response.text().await.ok()?;
    let ring = parse_fetched(&body, configured).ok()?;
    Some(FetchedKeys { ring, fetched_at, fresh_until: fetched_at.saturating_add(fresh) })
}

async fn store_in_cache(url: &str, body: &str, fetched_at: u64, fresh: u64) {
    let headers = worker::Headers::new();
    let stored = headers
        .set("content-type", "application/json")
        .and_then(|()| headers.set("cache-control", &format!("max-age={fresh}")))
        .and_then(|()| headers.set(FETCHED_AT_HEADER, &fetched_at.to_string()));
    if stored.is_err() {
        return;
    }
    let response = worker::ResponseBuilder::new().with_headers(headers).fixed(body.as_bytes().to_vec());
    if let Err(error) = Cache::default().put(url, response).await {
        log_fetch(url, FetchReason::Refresh, "cache_put_failed", &error.to_string());
    }
}

fn log_fetch(url: &str, reason: FetchReason, outcome: &str, detail: &str) {
    let line = serde_json::json!({
        "event": "jwks_fetch",
        "url": url,
        "reason": reason.code(),
        "outcome": outcome,
        "detail": detail,
    });
    console_log!("{line}");
}

fn describe(error: JsValue) -> String {
    error.as_string().unwrap_or_else(|| "JavaScript error".into())
}
