//! The Workers adapter: the fetch entry point, the KV lookup and the origin forwarder.
//!
//! Everything that decides lives in the native modules; this file only moves facts
//! between the runtime and [`crate::decision`], and writes the log line. The entry
//! point is a plain `#[wasm_bindgen]` export rather than `#[event(fetch)]`, so that a
//! request decided without awaiting skips the future and promise machinery.

mod boundary;
mod key_fetch;
mod webcrypto;

use std::borrow::Cow;
use std::cell::RefCell;
use std::rc::Rc;

use url::Url;
use worker::js_sys::{self, Promise};
use worker::wasm_bindgen::closure::Closure;
use worker::wasm_bindgen::prelude::wasm_bindgen;
use worker::wasm_bindgen::{self, JsCast, JsValue};
use worker::wasm_bindgen_futures::{future_to_promise, JsFuture};
use worker::web_sys;
use worker::{console_error, console_log, Env};

use boundary::{HeaderNames, IncomingFacts};

use crate::config::{Config, ConfigError};
use crate::decision::{self, Admission, AdmissionStep, Caller, Decision, Denial, Forward, RecordLookup, RequestFacts};
use crate::entitlement::parse_record;
use crate::forward;
use crate::log::{LogRequests, RecordSource, RequestLog};
use crate::problem::{self, RenderContext};
use crate::record_cache::RecordCache;

/// The KV namespace binding that contains entitlement records.
const STORE_BINDING: &str = "ENTITLEMENTS";

thread_local! {
    // Bindings do not change within an isolate, so they are parsed once.
    static CONFIG: RefCell<Option<Result<Rc<Config>, ConfigError>>> = const { RefCell::new(None) };
    static RECORDS: RefCell<RecordCache> = RefCell::new(RecordCache::default());
}

/// Handles a request. Most requests are decided at once: a denial, or a forward with
/// a verified-token and a record cache hit, for which the handler returns the origin
/// fetch's own promise. The rest continue in [`answer_later`] from the [`Pending`] step.
#[wasm_bindgen]
pub fn fetch(request: web_sys::Request, env: Env, _context: JsValue) -> JsValue {
    let incoming = match Incoming::read(&request) {
        Ok(incoming) => incoming,
        Err(detail) => return internal_error(&detail),
    };
    let config = match config_for_isolate(&env) {
        Ok(config) => config,
        Err(error) => {
            // Without a configuration there is no LOG_REQUESTS, so the line is always written.
            let detail = error.to_string();
            let mut log = incoming.log();
            log.detail = Some(Cow::Borrowed(&detail));
            return respond(deny(&Denial::Misconfigured, &incoming.context(None), log, LogRequests::All));
        }
    };
    match answer_now(&incoming, &config, &request) {
        Answer::Now(response) => respond(response),
        Answer::Later(pending) => future_to_promise(async move {
            Ok(respond(answer_later(&incoming, &config, &request, &env, pending).await))
        })
        .into(),
    }
}

/// The facts every request reads before the decision.
struct Incoming {
    facts: IncomingFacts,
    url: Url,
    host: String,
}

impl Incoming {
    fn read(request: &web_sys::Request) -> Result<Incoming, String> {
        let facts = IncomingFacts::read(request).ok_or("the runtime gave no request URL, method or time")?;
        let url = Url::parse(&facts.url).map_err(|error| format!("request URL: {error}"))?;
        let host = url.host_str().unwrap_or("tollgate").to_string();
        Ok(Incoming { facts, url, host })
    }

    fn now(&self) -> u64 {
        self.facts.now_ms / 1000
    }

    fn is_head(&self) -> bool {
        self.facts.method == "HEAD"
    }

    fn log(&self) -> RequestLog<'_> {
        RequestLog::new(&self.facts.method, self.url.path())
    }

    fn request_facts(&self) -> RequestFacts<'_> {
        RequestFacts {
            method: &self.facts.method,
            path: self.url.path(),
            query: self.url.query(),
            authorization: self.facts.authorization.as_deref(),
            is_cors_preflight: self.facts.is_cors_preflight,
        }
    }

    fn context<'a>(&'a self, config: Option<&'a Config>) -> RenderContext<'a> {
        RenderContext {
            realm: config.and_then(|config| config.realm.as_deref()).unwrap_or(&self.host),
            upgrade_url: config.and_then(|config| config.upgrade_url.as_deref()),
            head: self.is_head(),
        }
    }
}

/// The outcome of [`answer_now`].
enum Answer {
    /// The response, or a promise of it.
    Now(Result<JsValue, String>),
    /// The request needs to await: continue from this step.
    Later(Pending),
}

/// The step from which a request that needs to await continues in [`answer_later`].
enum Pending {
    /// Discovery, then the admission with its key-set fetch or WebCrypto check, from the
    /// signature check that [`answer_now`] stopped at, if any.
    Admission(Option<AdmissionStep>),
    /// The record is not in the isolate cache: read it from KV.
    Record(Caller),
    /// `LOG_REQUESTS=all`: the forward's log line waits for the origin's status.
    Origin(Forward, RequestLog<'static>),
}

/// Decides without awaiting anything, or returns the step from which the request
/// needs to await.
fn answer_now(incoming: &Incoming, config: &Config, request: &web_sys::Request) -> Answer {
    let now = incoming.now();
    if key_fetch::discovery_due(config, now) {
        return Answer::Later(Pending::Admission(None));
    }
    if let Some(response) = discovery_failure(incoming, config) {
        return Answer::Now(response);
    }

    let admission = match key_fetch::admit_now(config, &incoming.request_facts(), now) {
        AdmissionStep::Admit(admission) => admission,
        // The signature check continues from where it stopped.
        step @ AdmissionStep::VerifySignature(_) => return Answer::Later(Pending::Admission(Some(step))),
    };
    let mut log = incoming.log();
    let decision = match admission {
        Admission::Deny(denial) => Decision::Deny(denial),
        // A key-set fetch starts over after discovery, because another request may have
        // fetched by the time this one continues.
        Admission::FetchKeys(_) => return Answer::Later(Pending::Admission(None)),
        Admission::Forward(forward) => Decision::Forward(forward),
        Admission::LookUp(caller) => {
            let Some(lookup) = cached_record(config, &caller.record_key, incoming.facts.now_ms) else {
                return Answer::Later(Pending::Record(caller));
            };
            log_caller(&mut log, &caller);
            log.record = Some(RecordSource::Cache);
            decision::entitle(config, caller, lookup, now)
        }
    };

    let forward = match decision {
        Decision::Deny(denial) => {
            let response = deny(&denial, &incoming.context(Some(config)), log, config.log_requests);
            return Answer::Now(response.map(JsValue::from));
        }
        Decision::Forward(forward) => forward,
    };
    log_forward(&mut log, &forward);
    if config.log_requests.wants("forward", 0) {
        return Answer::Later(Pending::Origin(forward, log.into_owned()));
    }
    let failure = OriginFailure { log: log.into_owned(), head: incoming.is_head(), level: config.log_requests };
    let on_error = Closure::once_into_js(move |error: JsValue| failure.answer(describe(error)));
    Answer::Now(send_to_origin(request, config, incoming, &forward, &on_error).map(JsValue::from))
}

/// Decides a request from the step where [`answer_now`] stopped: discovery and the
/// admission, a KV read, or the origin's status for the log.
async fn answer_later(
    incoming: &Incoming,
    config: &Config,
    request: &web_sys::Request,
    env: &Env,
    pending: Pending,
) -> Result<JsValue, String> {
    let now = incoming.now();
    let level = config.log_requests;
    let mut log = incoming.log();
    let caller = match pending {
        Pending::Origin(forward, log) => return forward_and_log(incoming, config, request, &forward, log).await,
        Pending::Record(caller) => caller,
        Pending::Admission(first) => {
            key_fetch::discover(config, now).await;
            let (admission, _) = key_fetch::admit(config, &incoming.request_facts(), now, first).await;
            if let Some(response) = discovery_failure(incoming, config) {
                return response;
            }
            match admission {
                Admission::Deny(denial) => return deny(&denial, &incoming.context(Some(config)), log, level).map(JsValue::from),
                Admission::FetchKeys(_) => {
                    return deny(&Denial::KeysUnavailable, &incoming.context(Some(config)), log, level).map(JsValue::from);
                }
                Admission::Forward(forward) => return forward_and_log(incoming, config, request, &forward, log).await,
                Admission::LookUp(caller) => caller,
            }
        }
    };

    log_caller(&mut log, &caller);
    let read = look_up_record(env, config, &caller, incoming.facts.now_ms).await;
    log.record = read.source;
    log.detail = read.detail.as_deref().map(Cow::Borrowed);
    match decision::entitle(config, caller, read.lookup, now) {
        Decision::Deny(denial) => deny(&denial, &incoming.context(Some(config)), log, level).map(JsValue::from),
        Decision::Forward(forward) => {
            log_forward(&mut log, &forward);
            forward_and_log(incoming, config, request, &forward, log).await
        }
    }
}

/// Forwards the request, waits for the origin's response and writes the log line that
/// `LOG_REQUESTS` selects, with the origin's status.
async fn forward_and_log(
    incoming: &Incoming,
    config: &Config,
    request: &web_sys::Request,
    forward: &Forward,
    mut log: RequestLog<'_>,
) -> Result<JsValue, String> {
    let sent = send_to_origin(request, config, incoming, forward, &JsValue::UNDEFINED)?;
    match JsFuture::from(sent).await.and_then(|response| response.dyn_into::<web_sys::Response>()) {
        Ok(response) => {
            log.decision = "forward";
            log.status = response.status();
            log.reason = "allowed";
            if config.log_requests.wants(log.decision, log.status) {
                console_log!("{}", log.to_json());
            }
            Ok(response.into())
        }
        Err(error) => {
            let reason = describe(error);
            log.detail = Some(Cow::Borrowed(&reason));
            deny(&Denial::OriginUnreachable, &incoming.context(Some(config)), log, config.log_requests).map(JsValue::from)
        }
    }
}

/// Builds the 500 for a provider whose discovery document names another issuer, so
/// that every request fails closed. Returns `None` when discovery found no such fault.
fn discovery_failure(incoming: &Incoming, config: &Config) -> Option<Result<JsValue, String>> {
    let detail = key_fetch::discovery_error()?;
    let mut log = incoming.log();
    log.detail = Some(Cow::Borrowed(&detail));
    Some(deny(&Denial::Misconfigured, &incoming.context(Some(config)), log, config.log_requests).map(JsValue::from))
}

/// Puts the caller's `kid` and route on the log line.
fn log_caller(log: &mut RequestLog<'_>, caller: &Caller) {
    log.kid = caller.token.kid.clone().map(Cow::Owned);
    log.route = Some(Cow::Owned(caller.route.clone()));
}

/// Puts a forward's route and plan on the log line.
fn log_forward(log: &mut RequestLog<'_>, forward: &Forward) {
    log.route = Some(Cow::Owned(forward.route.clone()));
    log.plan = forward.identity.as_ref().map(|identity| Cow::Owned(identity.plan.clone()));
}

/// The log line and request details kept to build the 502 when the origin of a
/// forwarded request cannot be reached.
struct OriginFailure {
    log: RequestLog<'static>,
    head: bool,
    level: LogRequests,
}

impl OriginFailure {
    fn answer(mut self, reason: String) -> JsValue {
        self.log.detail = Some(Cow::Owned(reason));
        // The 502 problem names no realm and no upgrade URL.
        let context = RenderContext { realm: "", upgrade_url: None, head: self.head };
        respond(deny(&Denial::OriginUnreachable, &context, self.log, self.level).map(JsValue::from))
    }
}

/// Renders a denial, writes its log line when `level` wants it, and builds the response.
/// A 402's line names the caller's plan.
fn deny<'a>(
    denial: &'a Denial,
    context: &RenderContext<'_>,
    mut log: RequestLog<'a>,
    level: LogRequests,
) -> Result<web_sys::Response, String> {
    let reply = problem::render(denial, context);
    log.decision = "deny";
    log.reason = denial.code();
    log.status = reply.status;
    if let Denial::RequirePayment { plan, .. } = denial {
        log.plan = Some(Cow::Borrowed(plan));
    }
    if level.wants(log.decision, log.status) {
        console_log!("{}", log.to_json());
    }
    // The body is JSON that serde_json wrote, so it is UTF-8.
    let body = (!context.head).then(|| String::from_utf8_lossy(&reply.body));
    boundary::respond(reply.status, &reply.headers, body.as_deref())
}

/// Returns the response, or a 500 when it could not be built.
fn respond(response: Result<impl Into<JsValue>, String>) -> JsValue {
    response.map(Into::into).unwrap_or_else(|detail| internal_error(&detail))
}

/// Builds a 500 for a fault of the gateway's own, which no configuration explains.
fn internal_error(detail: &str) -> JsValue {
    console_error!("{}", serde_json::json!({ "event": "internal_error", "detail": detail }));
    let reply = problem::render(&Denial::Internal, &RenderContext { realm: "", upgrade_url: None, head: false });
    let body = String::from_utf8_lossy(&reply.body);
    boundary::respond(reply.status, &reply.headers, Some(&body)).map(JsValue::from).unwrap_or(JsValue::NULL)
}

/// Parses the bindings on the first request of the isolate and keeps the result.
fn config_for_isolate(env: &Env) -> Result<Rc<Config>, ConfigError> {
    if let Some(config) = CONFIG.with(|cell| cell.borrow().clone()) {
        return config;
    }

    let parsed = check_store_binding(env).and_then(|()| Config::from_bindings(|name| binding_text(env, name)));
    if let Ok(config) = &parsed {
        for line in &config.skipped_keys {
            console_log!("{}", serde_json::json!({ "event": "key_skipped", "detail": line }));
        }
    }
    let parsed = parsed.map(Rc::new);
    CONFIG.with(|cell| *cell.borrow_mut() = Some(parsed.clone()));
    parsed
}

fn check_store_binding(env: &Env) -> Result<(), ConfigError> {
    env.kv(STORE_BINDING).map(|_| ()).map_err(|_| ConfigError {
        binding: STORE_BINDING,
        reason: "missing or not a KV namespace".into(),
    })
}

/// Reads a var or secret as text. Vars given as TOML tables or arrays in
/// `wrangler.toml` arrive as objects and are turned back into JSON.
fn binding_text(env: &Env, name: &str) -> Option<String> {
    let value = js_sys::Reflect::get(env, &JsValue::from_str(name)).ok()?;
    if value.is_undefined() || value.is_null() {
        return None;
    }
    if let Some(text) = value.as_string() {
        return Some(text);
    }
    js_sys::JSON::stringify(&value).ok().and_then(|json| json.as_string())
}

/// The result of reading a record, with what the log needs to know about it.
struct RecordRead {
    lookup: RecordLookup,
    source: Option<RecordSource>,
    /// Operator detail when the read failed or the record is invalid.
    detail: Option<String>,
}

impl RecordRead {
    fn new(lookup: RecordLookup, source: Option<RecordSource>, detail: Option<String>) -> Self {
        RecordRead { lookup, source, detail }
    }
}

/// Returns the caller's record from the isolate cache, or `None` when the cache has no
/// fresh entry for it.
fn cached_record(config: &Config, key: &str, now_ms: u64) -> Option<RecordLookup> {
    let ttl_ms = config.entitlement_cache_seconds * 1000;
    if ttl_ms == 0 {
        return None;
    }
    let record = RECORDS.with(|cache| cache.borrow().get(key, now_ms, ttl_ms).cloned())?;
    Some(record.map_or(RecordLookup::Missing, RecordLookup::Found))
}

/// Reads the caller's record, from the isolate cache when it is fresh enough.
async fn look_up_record(env: &Env, config: &Config, caller: &Caller, now_ms: u64) -> RecordRead {
    let ttl_ms = config.entitlement_cache_seconds * 1000;
    let key = &caller.record_key;
    if let Some(lookup) = cached_record(config, key, now_ms) {
        return RecordRead::new(lookup, Some(RecordSource::Cache), None);
    }

    let store = match env.kv(STORE_BINDING) {
        Ok(store) => store,
        Err(_) => return RecordRead::new(RecordLookup::Unavailable, None, Some("KV binding unavailable".into())),
    };
    let mut read = store.get(key);
    if config.entitlement_cache_seconds > 0 {
        read = read.cache_ttl(config.entitlement_cache_seconds);
    }
    let text = match read.text().await {
        Ok(text) => text,
        Err(error) => {
            let detail = format!("KV read of key {key:?} failed: {error}");
            return RecordRead::new(RecordLookup::Unavailable, Some(RecordSource::Store), Some(detail));
        }
    };

    let record = match text.as_deref().map(parse_record) {
        None => None,
        Some(Ok(record)) => Some(record),
        Some(Err(error)) => {
            let detail = format!("record at key {key:?}: {error}");
            return RecordRead::new(RecordLookup::Invalid(error), Some(RecordSource::Store), Some(detail));
        }
    };
    if ttl_ms > 0 {
        RECORDS.with(|cache| cache.borrow_mut().insert(key.clone(), record.clone(), now_ms, ttl_ms));
    }
    let lookup = record.map_or(RecordLookup::Missing, RecordLookup::Found);
    RecordRead::new(lookup, Some(RecordSource::Store), None)
}

/// Starts the origin fetch of the checked request: body streamed, redirects not
/// followed. The promise settles with the response for the client (see
/// `boundary.js`), or with what `on_error` returns if the origin cannot be reached.
fn send_to_origin(
    request: &web_sys::Request,
    config: &Config,
    incoming: &Incoming,
    forward: &Forward,
    on_error: &JsValue,
) -> Result<Promise, String> {
    let request_origin = incoming.url.origin().ascii_serialization();
    let target = forward::origin_url(config.origin.as_ref(), &request_origin, forward);
    let names = HeaderNames::read(&request.headers());
    let changes = forward::request_changes(&names.names, names.connection(), forward);
    // NOTE: a body sent with GET or HEAD is not forwarded: the Fetch API rejects one.
    let method = incoming.facts.method.as_str();
    let with_body = method != "GET" && method != "HEAD";
    boundary::fetch_origin(request, &target, method, &changes, with_body, on_error)
}

fn describe(error: JsValue) -> String {
    error
        .dyn_ref::<js_sys::Error>()
        .map(|error| String::from(error.message()))
        .unwrap_or_else(|| "JavaScript error".into())
}
