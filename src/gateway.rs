//! The Workers adapter: the fetch entry point, the KV lookup and the origin forwarder.
//!
//! Everything that decides lives in the native modules; this file only moves facts
//! between the runtime and [`crate::decision`], and writes the log line.

mod key_fetch;
mod webcrypto;

use std::cell::RefCell;
use std::rc::Rc;

use worker::js_sys;
use worker::wasm_bindgen::{JsCast, JsValue};
use worker::web_sys;
use worker::{console_log, event, Context, Date, Env, Request, Response, ResponseBuilder};

use crate::config::{Config, ConfigError};
use crate::decision::{self, Admission, Caller, Decision, Denial, Forward, RecordLookup, RequestFacts};
use crate::entitlement::parse_record;
use crate::forward;
use crate::log::{RecordSource, RequestLog};
use crate::problem::{self, RenderContext};
use crate::record_cache::RecordCache;

/// The KV namespace binding that contains entitlement records.
const STORE_BINDING: &str = "ENTITLEMENTS";

thread_local! {
    // Bindings do not change within an isolate, so they are parsed once.
    static CONFIG: RefCell<Option<Rc<Result<Config, ConfigError>>>> = const { RefCell::new(None) };
    static RECORDS: RefCell<RecordCache> = RefCell::new(RecordCache::default());
}

#[event(fetch)]
async fn fetch(request: Request, env: Env, _context: Context) -> worker::Result<Response> {
    let now_ms = Date::now().as_millis();
    let now = now_ms / 1000;
    let url = request.url()?;
    let method = request.inner().method();
    let head = method == "HEAD";
    let host = url.host_str().unwrap_or("tollgate").to_string();
    let mut log = RequestLog::new(&method, url.path());

    let config = config_for_isolate(&env);
    let config = match config.as_ref() {
        Ok(config) => config,
        Err(error) => {
            let detail = error.to_string();
            log.detail = Some(&detail);
            let context = RenderContext { realm: &host, upgrade_url: None, head };
            return finish_denial(&Denial::Misconfigured, &context, log);
        }
    };
    key_fetch::discover(config, now).await;
    if let Some(detail) = key_fetch::discovery_error() {
        log.detail = Some(&detail);
        let context = RenderContext { realm: &host, upgrade_url: None, head };
        return finish_denial(&Denial::Misconfigured, &context, log);
    }
    let realm = config.realm.as_deref().unwrap_or(&host);
    let context = RenderContext { realm, upgrade_url: config.upgrade_url.as_deref(), head };

    let headers = request.headers();
    let authorization = headers.get("authorization")?;
    let is_cors_preflight =
        method == "OPTIONS" && headers.has("origin")? && headers.has("access-control-request-method")?;
    let facts = RequestFacts {
        method: &method,
        path: url.path(),
        query: url.query(),
        authorization: authorization.as_deref(),
        is_cors_preflight,
    };

    let mut kid = None;
    let mut route = None;
    let mut read_detail = None;
    let (admission, _) = key_fetch::admit(config, &facts, now).await;
    if let Some(detail) = key_fetch::discovery_error() {
        log.detail = Some(&detail);
        return finish_denial(&Denial::Misconfigured, &context, log);
    }
    let decision = match admission {
        Admission::Deny(denial) => Decision::Deny(denial),
        Admission::FetchKeys(_) => Decision::Deny(Denial::KeysUnavailable),
        Admission::Forward(forward) => Decision::Forward(forward),
        Admission::LookUp(caller) => {
            kid = caller.token.kid.clone();
            route = Some(caller.route.clone());
            let read = look_up_record(&env, config, &caller, now_ms).await;
            log.record = read.source;
            read_detail = read.detail;
            decision::entitle(config, caller, read.lookup, now)
        }
    };
    log.kid = kid.as_deref();
    log.route = route.as_deref();
    log.detail = read_detail.as_deref();

    let forward = match &decision {
        Decision::Deny(denial) => {
            if let Denial::RequirePayment { plan, .. } = denial {
                log.plan = Some(plan);
            }
            return finish_denial(denial, &context, log);
        }
        Decision::Forward(forward) => forward,
    };
    log.route = Some(&forward.route);
    log.plan = forward.identity.as_ref().map(|identity| identity.plan.as_str());
    match send_to_origin(&request, config, &url, &method, forward).await {
        Ok(response) => {
            log.decision = "forward";
            log.status = response.status_code();
            log.reason = "allowed";
            console_log!("{}", log.to_json());
            Ok(response)
        }
        Err(reason) => {
            log.detail = Some(&reason);
            finish_denial(&Denial::OriginUnreachable, &context, log)
        }
    }
}

fn finish_denial(denial: &Denial, context: &RenderContext<'_>, mut log: RequestLog<'_>) -> worker::Result<Response> {
    let response = reply(denial, context);
    log.decision = "deny";
    log.reason = denial.code();
    log.status = response.as_ref().map(Response::status_code).unwrap_or(500);
    console_log!("{}", log.to_json());
    response
}

fn reply(denial: &Denial, context: &RenderContext<'_>) -> worker::Result<Response> {
    let reply = problem::render(denial, context);
    let headers = worker::Headers::new();
    for (name, value) in &reply.headers {
        headers.append(name, value)?;
    }
    let builder = ResponseBuilder::new().with_status(reply.status).with_headers(headers);
    if context.head {
        return Ok(builder.empty());
    }
    Ok(builder.fixed(reply.body))
}

/// Parses the bindings on the first request of the isolate and keeps the result.
fn config_for_isolate(env: &Env) -> Rc<Result<Config, ConfigError>> {
    if let Some(config) = CONFIG.with(|cell| cell.borrow().clone()) {
        return config;
    }

    let parsed = check_store_binding(env).and_then(|()| Config::from_bindings(|name| binding_text(env, name)));
    if let Ok(config) = &parsed {
        for line in &config.skipped_keys {
            console_log!("{}", serde_json::json!({ "event": "key_skipped", "detail": line }));
        }
    }
    let parsed = Rc::new(parsed);
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

/// Reads the caller's record, from the isolate cache when it is fresh enough.
async fn look_up_record(env: &Env, config: &Config, caller: &Caller, now_ms: u64) -> RecordRead {
    let ttl_ms = config.entitlement_cache_seconds * 1000;
    let key = &caller.record_key;
    if ttl_ms > 0 {
        let cached = RECORDS.with(|cache| cache.borrow().get(key, now_ms, ttl_ms).cloned());
        if let Some(record) = cached {
            let lookup = record.map_or(RecordLookup::Missing, RecordLookup::Found);
            return RecordRead::new(lookup, Some(RecordSource::Cache), None);
        }
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

/// Sends the checked request to the origin, body streamed, redirects not followed, and
/// returns the origin's response with its headers filtered. `Err` carries the reason
/// for the log when the origin cannot be reached.
async fn send_to_origin(
    request: &Request,
    config: &Config,
    url: &worker::Url,
    method: &str,
    forward: &Forward,
) -> Result<Response, String> {
    let request_origin = url.origin().ascii_serialization();
    let target = forward::origin_url(config.origin.as_ref(), &request_origin, forward);

    let incoming: Vec<(String, String)> = request.headers().entries().collect();
    let outgoing = forward::request_headers(&incoming, forward);
    let headers = worker::Headers::new();
    for (name, value) in &outgoing {
        headers.append(name, value).map_err(|error| error.to_string())?;
    }

    let init = web_sys::RequestInit::new();
    init.set_method(method);
    init.set_headers(&headers.0);
    init.set_redirect(web_sys::RequestRedirect::Manual);
    // NOTE: a body sent with GET or HEAD is not forwarded: the Fetch API rejects one.
    if method != "GET" && method != "HEAD" {
        if let Some(body) = request.inner().body() {
            init.set_body(&body);
        }
    }
    let outbound = web_sys::Request::new_with_str_and_init(&target, &init).map_err(describe)?;

    let response = worker::Fetch::Request(Request::from(outbound)).send().await.map_err(|error| error.to_string())?;
    let response: web_sys::Response = response.into();

    let origin_headers: Vec<(String, String)> = worker::Headers(response.headers()).entries().collect();
    let client_headers = worker::Headers::new();
    for (name, value) in forward::response_headers(&origin_headers) {
        client_headers.append(&name, &value).map_err(|error| error.to_string())?;
    }
    let builder = ResponseBuilder::new().with_status(response.status()).with_headers(client_headers);
    Ok(match response.body() {
        Some(body) => builder.stream(body),
        None => builder.empty(),
    })
}

fn describe(error: JsValue) -> String {
    error
        .dyn_ref::<js_sys::Error>()
        .map(|error| String::from(error.message()))
        .unwrap_or_else(|| "JavaScript error".into())
}
