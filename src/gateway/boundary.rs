//! The calls across the wasm boundary that every request makes, one per step (see
//! `boundary.js`). Lists cross as one string of lines, which is why a line feed in a
//! header name or value is rejected here rather than sent.

use worker::js_sys::Promise;
use worker::wasm_bindgen::{self, prelude::wasm_bindgen, JsValue};
use worker::web_sys::{Headers, Request, Response};

use crate::forward::HeaderChanges;

#[wasm_bindgen(module = "/src/gateway/boundary.js")]
extern "C" {
    #[wasm_bindgen(js_name = requestFacts)]
    fn request_facts(request: &Request) -> String;

    #[wasm_bindgen(js_name = headerNames)]
    fn header_names(headers: &Headers) -> String;

    #[wasm_bindgen(js_name = sendToOrigin)]
    fn send_to_origin(
        request: &Request,
        target: &str,
        method: &str,
        remove: &str,
        append: &str,
        with_body: bool,
        on_error: &JsValue,
    ) -> Promise;

    #[wasm_bindgen(js_name = respond)]
    fn respond_js(status: u16, pairs: &str, body: Option<&str>) -> Response;
}

/// The facts the adapter reads from the incoming request, in one call.
pub struct IncomingFacts {
    pub now_ms: u64,
    pub url: String,
    pub method: String,
    pub is_cors_preflight: bool,
    pub authorization: Option<String>,
}

impl IncomingFacts {
    pub fn read(request: &Request) -> Option<IncomingFacts> {
        let text = request_facts(request);
        // The Authorization value is last: splitting into five parts keeps it whole.
        let mut lines = text.splitn(5, '\n');
        // Date.now() is a whole number of milliseconds. Parsing it as an integer keeps
        // core's float-parsing tables (about 12 KB) out of the module.
        let now_ms = lines.next()?.parse::<u64>().ok()?;
        let url = lines.next()?.to_string();
        let method = lines.next()?.to_string();
        let is_cors_preflight = lines.next()? == "1";
        let authorization = match lines.next()? {
            "0" => None,
            credential => Some(credential.strip_prefix("1\n")?.to_string()),
        };
        Some(IncomingFacts { now_ms, url, method, is_cors_preflight, authorization })
    }
}

/// The header names of a request, lower case and in order, with the value of its
/// `Connection` header.
pub struct HeaderNames {
    pub connection: String,
    pub names: Vec<String>,
}

impl HeaderNames {
    pub fn read(headers: &Headers) -> HeaderNames {
        let text = header_names(headers);
        let mut lines = text.split('\n');
        let connection = lines.next().unwrap_or_default().to_string();
        HeaderNames { connection, names: lines.filter(|name| !name.is_empty()).map(str::to_string).collect() }
    }

    pub fn connection(&self) -> Option<&str> {
        (!self.connection.is_empty()).then_some(self.connection.as_str())
    }
}

/// Starts the origin fetch of the checked request, with the header changes applied.
/// The promise settles with the response for the client, or with what `on_error`
/// returns (rejects when it is undefined) if the origin cannot be reached.
pub fn fetch_origin(
    request: &Request,
    target: &str,
    method: &str,
    changes: &HeaderChanges,
    with_body: bool,
    on_error: &JsValue,
) -> Result<Promise, String> {
    let remove = join_names(&changes.remove)?;
    let append = join_pairs(changes.append.iter().map(|(name, value)| (name.as_str(), value.as_str())))?;
    Ok(send_to_origin(request, target, method, &remove, &append, with_body, on_error))
}

/// Builds a response of the gateway's own.
pub fn respond(status: u16, headers: &[(&str, String)], body: Option<&str>) -> Result<Response, String> {
    let pairs = join_pairs(headers.iter().map(|(name, value)| (*name, value.as_str())))?;
    Ok(respond_js(status, &pairs, body))
}

fn join_names(names: &[String]) -> Result<String, String> {
    if let Some(name) = names.iter().find(|name| name.contains('\n')) {
        return Err(format!("header name {name:?} contains a line feed"));
    }
    Ok(names.join("\n"))
}

fn join_pairs<'a>(pairs: impl Iterator<Item = (&'a str, &'a str)>) -> Result<String, String> {
    let mut joined = String::new();
    for (name, value) in pairs {
        if name.contains('\n') || value.contains('\n') {
            return Err(format!("header {name:?} has a line feed in its name or value"));
        }
        if !joined.is_empty() {
            joined.push('\n');
        }
        joined.push_str(name);
        joined.push('\n');
        joined.push_str(value);
    }
    Ok(joined)
}
