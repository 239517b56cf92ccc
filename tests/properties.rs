//! Property tests: generated requests, credentials, queries and records go through
//! `admit`, `entitle` and `render`, and every outcome must keep the gateway's
//! contract. The parsers also get arbitrary text and must never panic.
//!
//! Signing is slow, so a handful of tokens is made once in [`fixture`] and the
//! generators mutate them. Every property runs a fixed number of cases and never
//! stores failures on disk; a failure prints the shrunk input.

mod support;

use std::collections::HashMap;
use std::sync::OnceLock;

use jwt_simple::prelude::*;
use proptest::prelude::*;
use proptest::sample::{select, Index};
use proptest::test_runner::Config as ProptestConfig;
use serde_json::{json, Map, Value};
use support::*;
use tollgate::bearer;
use tollgate::config::Config;
use tollgate::decision::{
    admit, entitle, Admission, Decision, Denial, Forward, Identity, OriginAuthorization, RecordLookup, RequestFacts,
};
use tollgate::entitlement::{parse_record, RecordError};
use tollgate::forward::{origin_url, request_headers};
use tollgate::keys::parse_key_set;
use tollgate::path::normalise;
use tollgate::problem::{render, RenderContext, Reply};
use tollgate::routes::{parse_policy, Access};
use tollgate::token::verify;

const REALM: &str = "api.example";
const UPGRADE_URL: &str = "https://billing.example/upgrade?feature={feature}";

/// Cases per property. Tokens are signed once in [`fixture`], so a case costs at most
/// a few verifications, and the whole file ran in about 4 s (debug build, 2 cores).
const CASES: u32 = 1024;

/// The support fixture's rules plus method-limited, exact and overlapping ones, so
/// public and protected rules sit next to each other.
const EXTENDED_ROUTES: &str = r#"[
    {"path": "/public/*", "access": "public"},
    {"path": "/v1/pro/*", "feature": "reports"},
    {"path": "/v1/admin/*", "scopes": ["admin"]},
    {"path": "/v1/basic/*", "access": "authenticated"},
    {"path": "/v1/docs", "methods": ["GET", "HEAD"], "access": "public"},
    {"path": "/v1/*", "methods": ["POST"], "feature": "basic"},
    {"path": "/health", "access": "public"},
    {"path": "/*", "methods": ["GET"], "access": "authenticated"}
]"#;

/// Paid API routes under a public catch-all, as a site with public pages would set it.
const PUBLIC_DEFAULT_ROUTES: &str = r#"[
    {"path": "/v1/pro/*", "feature": "reports"},
    {"path": "/v1/admin/*", "scopes": ["admin"]},
    {"path": "/*", "access": "public"}
]"#;

fn proptest_config(cases: u32) -> ProptestConfig {
    ProptestConfig { cases, failure_persistence: None, ..ProptestConfig::default() }
}

// ---------------------------------------------------------------------------
// Fixture: configurations and tokens, made once per test binary.
// ---------------------------------------------------------------------------

/// A token that verifies under every fixture configuration at [`NOW`].
struct ValidToken {
    token: String,
    subject: &'static str,
    scopes: Vec<&'static str>,
}

struct Fixture {
    /// The support configuration, a stricter one with the extended routes, and one
    /// with a public catch-all and the gateway's own origin credential.
    configs: Vec<Config>,
    valid: Vec<ValidToken>,
    /// Well-formed tokens that must be rejected: wrong key, expired, wrong audience,
    /// no expiry, `alg: none`, HS256 under an ES256 `kid`.
    invalid: Vec<String>,
}

fn fixture() -> &'static Fixture {
    static FIXTURE: OnceLock<Fixture> = OnceLock::new();
    FIXTURE.get_or_init(make_fixture)
}

fn make_fixture() -> Fixture {
    let mut extended = bindings();
    extended.insert("ROUTES", EXTENDED_ROUTES.to_string());
    extended.insert("FORWARD_AUTHORIZATION", "true".to_string());
    extended.insert("ENTITLEMENT_KEY_PREFIX", "customer:".to_string());
    extended.insert("JWT_REQUIRED_TYPE", "JWT".to_string());
    let mut public_default = bindings();
    public_default.insert("ROUTES", PUBLIC_DEFAULT_ROUTES.to_string());
    public_default.insert("ORIGIN_AUTHORIZATION", "Basic b3JpZ2luOmZpeHR1cmU=".to_string());
    let configs = vec![config(), config_from(&extended), config_from(&public_default)];

    let mut admin = claims("user-admin");
    admin["scope"] = json!("read admin");
    let mut rsa_admin = claims("user-pro");
    rsa_admin["scp"] = json!(["admin"]);
    let valid = vec![
        ValidToken { token: token("ES256", &claims("user-pro")), subject: "user-pro", scopes: vec![] },
        ValidToken { token: token("ES256", &admin), subject: "user-admin", scopes: vec!["read", "admin"] },
        ValidToken { token: token("HS256", &claims("user-free")), subject: "user-free", scopes: vec![] },
        ValidToken { token: token("EdDSA", &claims("user-none")), subject: "user-none", scopes: vec![] },
        ValidToken { token: token("RS256", &rsa_admin), subject: "user-pro", scopes: vec!["admin"] },
        // No `kid`: the HMAC key is the only HS256 key, so it is chosen.
        ValidToken {
            token: hmac_raw(&json!({"alg": "HS256", "typ": "JWT"}), &claims("user-free").to_string(), false),
            subject: "user-free",
            scopes: vec![],
        },
    ];

    let mut expired = claims("user-pro");
    expired["exp"] = json!(NOW - 600);
    let mut other_audience = claims("user-pro");
    other_audience["aud"] = json!("https://other.example");
    let mut no_expiry = claims("user-pro");
    no_expiry.as_object_mut().expect("claims object").remove("exp");
    let unsigned =
        format!("{}.{}.", b64(br#"{"alg":"none","typ":"JWT"}"#), b64(claims("user-pro").to_string().as_bytes()));
    let invalid = vec![
        sign_with_unknown_es256_key(&claims("user-pro")),
        token("ES256", &expired),
        token("ES256", &other_audience),
        token("ES256", &no_expiry),
        unsigned,
        hmac_raw(&json!({"alg": "HS256", "kid": "es-1", "typ": "JWT"}), &claims("user-pro").to_string(), false),
    ];

    Fixture { configs, valid, invalid }
}

/// Signs with a fresh ES256 key under the configured `kid` `es-1`: a wrong-key token.
fn sign_with_unknown_es256_key(claims: &Value) -> String {
    let claims: JWTClaims<Map<String, Value>> = serde_json::from_value(claims.clone()).expect("claims");
    ES256KeyPair::generate().with_key_id("es-1").sign(claims).expect("signing")
}

// ---------------------------------------------------------------------------
// Generators.
// ---------------------------------------------------------------------------

/// One generated request, with the record lookup that follows it.
#[derive(Clone)]
struct Request {
    config: usize,
    method: String,
    path: String,
    query: Option<String>,
    authorization: Option<String>,
    preflight: bool,
    record: RecordSource,
}

// Shortens Authorization values over 512 bytes, so a failure report stays readable.
impl std::fmt::Debug for Request {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Request")
            .field("config", &self.config)
            .field("method", &self.method)
            .field("path", &self.path)
            .field("query", &self.query)
            .field("authorization", &self.authorization.as_deref().map(Abbreviated))
            .field("preflight", &self.preflight)
            .field("record", &self.record)
            .finish()
    }
}

/// A text that debug-prints whole up to 512 bytes, and as its first 64 characters and
/// its length beyond that.
struct Abbreviated<'a>(&'a str);

impl std::fmt::Debug for Abbreviated<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.0.len() <= 512 {
            return write!(f, "{:?}", self.0);
        }
        let start: String = self.0.chars().take(64).collect();
        write!(f, "{start:?}... ({} bytes)", self.0.len())
    }
}

impl Request {
    fn facts(&self) -> RequestFacts<'_> {
        RequestFacts {
            method: &self.method,
            path: &self.path,
            query: self.query.as_deref(),
            authorization: self.authorization.as_deref(),
            is_cors_preflight: self.preflight,
        }
    }

    fn config(&self) -> &'static Config {
        &fixture().configs[self.config]
    }
}

/// The generated state of the caller's record in the store.
#[derive(Debug, Clone)]
enum RecordSource {
    Text(String),
    Missing,
    Unavailable,
}

impl RecordSource {
    fn lookup(&self) -> RecordLookup {
        match self {
            RecordSource::Text(text) => match parse_record(text) {
                Ok(record) => RecordLookup::Found(record),
                Err(error) => RecordLookup::Invalid(error),
            },
            RecordSource::Missing => RecordLookup::Missing,
            RecordSource::Unavailable => RecordLookup::Unavailable,
        }
    }
}

const METHODS: [&str; 10] = ["GET", "HEAD", "POST", "PUT", "DELETE", "OPTIONS", "PATCH", "TRACE", "get", "Post"];

fn method() -> BoxedStrategy<String> {
    prop_oneof![
        8 => select(&METHODS[..]).prop_map(str::to_string),
        1 => "[A-Z]{1,8}",
        1 => "[!-~]{0,8}",
    ]
    .boxed()
}

/// Path pieces: route names in both cases, dot segments in every spelling, encoded
/// separators and controls, `;` parameters, unreserved and other escapes.
#[rustfmt::skip]
const PATH_PIECES: [&str; 52] = [
    "public", "public", "v1", "v1", "pro", "admin", "basic", "docs", "health", "x", "report",
    "PUBLIC", "V1", "Pro", "%70ro", "%72eport", "%76%31",
    "%2e", "%2E", "%2e%2E", ".", "..", "..;", ";", "a;b", ";jsessionid=1",
    "%2F", "%2f", "%5C", "%5c", "\\", "%00", "%0a", "%0D", "%7F",
    "%25", "%252F", "%3f", "%3F", "%23", "%zz", "%", "%4", "%+1",
    "é", "%C3%A9", "~", "-", "_", "%7e", "%41", " ",
];

fn segment() -> BoxedStrategy<String> {
    prop_oneof![
        10 => prop::collection::vec(select(&PATH_PIECES[..]), 1..3).prop_map(|pieces| pieces.concat()),
        1 => Just(String::new()),
        1 => "[a-zA-Z0-9._~%;-]{1,6}",
    ]
    .boxed()
}

/// Generates a path under one of the fixture's rules, mostly of plain segments,
/// sometimes with one hostile segment in it.
fn route_path() -> BoxedStrategy<String> {
    #[rustfmt::skip]
    let prefixes = [
        "/public", "/public", "/v1/pro", "/v1/pro", "/v1/admin", "/v1/basic", "/v1/basic", "/v1/docs",
        "/v1", "/health", "/other", "",
    ];
    let plain = ["x", "report", "2024", "%72eport", "%7Ex", "a%20b", "a;b", "é", "%C3%A9", "~"];
    let piece = prop_oneof![4 => select(plain.to_vec()).prop_map(str::to_string), 1 => segment()];
    let trail = prop_oneof![4 => Just(""), 1 => Just("/")];
    (select(prefixes.to_vec()), prop::collection::vec(piece, 0..3), trail)
        .prop_map(|(prefix, pieces, trail)| {
            let mut path = prefix.to_string();
            for piece in pieces {
                path.push('/');
                path.push_str(&piece);
            }
            if path.is_empty() {
                path.push('/');
            }
            format!("{path}{trail}")
        })
        .boxed()
}

/// Generates a path of arbitrary pieces, as the runtime might hand it over or as it
/// never would (no leading `/`).
fn wild_path() -> BoxedStrategy<String> {
    let lead = prop_oneof![12 => Just("/"), 1 => Just("//"), 1 => Just("")];
    let trail = prop_oneof![6 => Just(""), 1 => Just("/"), 1 => Just("//")];
    (lead, prop::collection::vec(segment(), 0..5), trail)
        .prop_map(|(lead, segments, trail)| format!("{lead}{}{trail}", segments.join("/")))
        .boxed()
}

/// Generates a path that climbs out of one rule's prefix into another's, or that has
/// `;` parameters on a segment. Origins read these forms differently.
fn confusion_path() -> BoxedStrategy<String> {
    let prefixes = ["/public", "/v1/basic", "/health", "/v1/docs", ""];
    let climbs = ["..", "..;", ".;", "%2e%2e;", "..;jsessionid=1", "..%3B", ".%2e;x", "..;/.."];
    let targets = ["/v1/pro/x", "/v1/admin/users", "/v1/pro;x/report", "/v1;/pro/x", "/v1/basic/x"];
    (select(prefixes.to_vec()), prop::collection::vec(select(climbs.to_vec()), 1..4), select(targets.to_vec()))
        .prop_map(|(prefix, climbs, target)| format!("{prefix}/{}{target}", climbs.join("/")))
        .boxed()
}

fn raw_path() -> BoxedStrategy<String> {
    prop_oneof![6 => route_path(), 2 => wild_path(), 1 => confusion_path()].boxed()
}

fn query() -> BoxedStrategy<Option<String>> {
    let valid: Vec<String> = fixture().valid.iter().map(|valid| valid.token.clone()).collect();
    prop_oneof![
        4 => Just(None),
        1 => Just(Some(String::new())),
        2 => select(&["a=1", "a=1&b=2", "access_tokens=x", "ACCESS_TOKEN=x", "x=access_token"][..])
            .prop_map(|query| Some(query.to_string())),
        2 => select(&["access_token=x", "a=1&access_token=x", "access%5Ftoken=x", "access_token", "a=1&access_token=&b=2"][..])
            .prop_map(|query| Some(query.to_string())),
        1 => select(valid).prop_map(|token| Some(format!("a=1&access_token={token}"))),
        1 => "[a-z_=&%0-9]{0,24}".prop_map(Some),
    ]
    .boxed()
}

/// How a base token is changed into one that must not verify.
#[derive(Debug, Clone)]
enum Tamper {
    Replace(Index, char),
    Remove(Index),
    Insert(Index, char),
    Truncate(Index),
    /// Header and signature of one token, claims of another.
    SwapClaims(Index),
    /// The same claims and signature under another header.
    Header(&'static str),
}

const TOKEN_CHARS: &str = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.=+/~";

fn tamper() -> BoxedStrategy<Tamper> {
    let token_char = select(TOKEN_CHARS.chars().collect::<Vec<_>>());
    let headers = [
        r#"{"alg":"HS256","kid":"es-1","typ":"JWT"}"#,
        r#"{"alg":"HS256","typ":"JWT"}"#,
        r#"{"alg":"none","typ":"JWT"}"#,
        r#"{"alg":"NONE"}"#,
        r#"{"alg":"ES256","kid":"es-1","crit":["exp"]}"#,
        r#"{"alg":"ES256","kid":"ed-1"}"#,
        r#"{"alg":"ES256"}"#,
    ];
    prop_oneof![
        4 => (any::<Index>(), token_char.clone()).prop_map(|(index, c)| Tamper::Replace(index, c)),
        1 => any::<Index>().prop_map(Tamper::Remove),
        1 => (any::<Index>(), token_char).prop_map(|(index, c)| Tamper::Insert(index, c)),
        1 => any::<Index>().prop_map(Tamper::Truncate),
        1 => any::<Index>().prop_map(Tamper::SwapClaims),
        1 => select(headers.to_vec()).prop_map(Tamper::Header),
    ]
    .boxed()
}

fn apply_tamper(token: &str, tamper: &Tamper) -> String {
    let mut chars: Vec<char> = token.chars().collect();
    match tamper {
        Tamper::Replace(index, c) => {
            let at = index.index(chars.len());
            chars[at] = *c;
        }
        Tamper::Remove(index) => {
            chars.remove(index.index(chars.len()));
        }
        Tamper::Insert(index, c) => chars.insert(index.index(chars.len() + 1), *c),
        Tamper::Truncate(index) => chars.truncate(index.index(chars.len())),
        Tamper::SwapClaims(index) => {
            let valid = &fixture().valid;
            let other = &valid[index.index(valid.len())].token;
            let mine: Vec<&str> = token.split('.').collect();
            let theirs: Vec<&str> = other.split('.').collect();
            return format!("{}.{}.{}", mine[0], theirs[1], mine.get(2).unwrap_or(&""));
        }
        Tamper::Header(header) => {
            let rest = token.split_once('.').map_or("", |(_, rest)| rest);
            return format!("{}.{rest}", b64(header.as_bytes()));
        }
    }
    chars.into_iter().collect()
}

/// Generates a token string: valid, changed from a valid or invalid one, or invalid
/// as made.
fn token_text() -> BoxedStrategy<String> {
    let fixture = fixture();
    let valid: Vec<String> = fixture.valid.iter().map(|valid| valid.token.clone()).collect();
    let bases: Vec<String> = valid.iter().chain(&fixture.invalid).cloned().collect();
    prop_oneof![
        3 => select(valid),
        3 => (select(bases), tamper()).prop_map(|(base, tamper)| apply_tamper(&base, &tamper)),
        1 => select(fixture.invalid.clone()),
    ]
    .boxed()
}

const BEARER_SCHEMES: [&str; 4] = ["Bearer", "bearer", "BEARER", "BeArEr"];
const OTHER_SCHEMES: [&str; 6] = ["Basic", "Token", "DPoP", "Negotiate", "Digest", "Bearer-Token"];

/// Generates one credential, or text that only looks like one.
fn credential() -> BoxedStrategy<String> {
    let spaces = select(&[" ", " ", "  "][..]);
    prop_oneof![
        6 => (select(&BEARER_SCHEMES[..]), spaces.clone(), token_text())
            .prop_map(|(scheme, spaces, token)| format!("{scheme}{spaces}{token}")),
        2 => (select(&OTHER_SCHEMES[..]), spaces, prop_oneof![token_text(), Just("dXNlcjpwYXNz".to_string())])
            .prop_map(|(scheme, spaces, token)| format!("{scheme}{spaces}{token}")),
        1 => select(&["Bearer", "Bearer ", "bearer\t", "Bearer\tabc"][..]).prop_map(str::to_string),
        1 => token_text(),
        1 => "[ -~]{0,40}",
        1 => any::<String>(),
    ]
    .boxed()
}

fn authorization() -> BoxedStrategy<Option<String>> {
    let valid: Vec<String> = fixture().valid.iter().map(|valid| valid.token.clone()).collect();
    let limit = fixture().configs[0].max_authorization_bytes;
    let over_limit = limit..limit + 64;
    prop_oneof![
        3 => Just(None),
        1 => select(&["", " ", " \t "][..]).prop_map(|value| Some(value.to_string())),
        6 => (select(&BEARER_SCHEMES[..]), select(valid)).prop_map(|(scheme, token)| Some(format!("{scheme} {token}"))),
        10 => credential().prop_map(Some),
        2 => (credential(), credential()).prop_map(|(first, second)| Some(format!("{first}, {second}"))),
        1 => (select(&["Bearer", "bearer "][..]), credential(), any::<bool>()).prop_map(|(bare, other, bare_first)| {
            Some(if bare_first { format!("{bare}, {other}") } else { format!("{other}, {bare}") })
        }),
        1 => (select(&["Bearer ", "Basic ", "Negotiate "][..]), over_limit)
            .prop_map(|(scheme, length)| Some(format!("{scheme}{}", "A".repeat(length)))),
    ]
    .boxed()
}

const STATUSES: [&str; 8] = ["active", "trialing", "past_due", "canceled", "paused", "ACTIVE", "", "unpaid"];
const FEATURES: [&str; 3] = ["reports", "basic", "admin"];

fn instant() -> impl Strategy<Value = Option<u64>> {
    select(vec![None, Some(NOW - 1), Some(NOW), Some(NOW + 1), Some(NOW + 3600)])
}

fn record() -> BoxedStrategy<RecordSource> {
    let valid = (
        select(&["free", "pro", "", "enterprise"][..]),
        select(&STATUSES[..]),
        prop::sample::subsequence(&FEATURES[..], 0..=FEATURES.len()),
        instant(),
        instant(),
    )
        .prop_map(|(plan, status, features, expires_at, grace_until)| {
            let record = json!({
                "plan": plan, "status": status, "features": features,
                "expires_at": expires_at, "grace_until": grace_until,
            });
            RecordSource::Text(record.to_string())
        });
    let malformed = select(
        &[
            "not json",
            "{",
            "null",
            "[]",
            r#"{"plan": "pro"}"#,
            r#"{"plan": "pro", "status": "active", "features": ["reports,basic"]}"#,
            r#"{"plan": "pro", "status": "active", "features": [""]}"#,
            r#"{"plan": "pro", "status": "active", "expires_at": -1}"#,
            r#"{"plan": "pro", "status": "active", "features": "reports"}"#,
        ][..],
    )
    .prop_map(|text| RecordSource::Text(text.to_string()));
    prop_oneof![
        6 => valid,
        2 => malformed,
        1 => "\\PC{0,30}".prop_map(RecordSource::Text),
        2 => Just(RecordSource::Missing),
        1 => Just(RecordSource::Unavailable),
    ]
    .boxed()
}

fn request() -> BoxedStrategy<Request> {
    (0..fixture().configs.len(), method(), raw_path(), query(), authorization(), any::<bool>(), record())
        .prop_map(|(config, method, path, query, authorization, preflight, record)| {
            let preflight = preflight && method == "OPTIONS";
            Request { config, method, path, query, authorization, preflight, record }
        })
        .boxed()
}

/// Generates requests whose path and query went through the WHATWG URL parser first,
/// as the Workers runtime hands them to the gateway. Targets that do not parse are
/// dropped.
fn parsed_request() -> impl Strategy<Value = Request> {
    request().prop_filter_map("target is not a valid URL", |mut request| {
        let slash = if request.path.starts_with('/') { "" } else { "/" };
        let mut target = format!("https://gw.example{slash}{}", request.path);
        if let Some(query) = &request.query {
            target.push('?');
            target.push_str(query);
        }
        let url = url::Url::parse(&target).ok()?;
        request.path = url.path().to_string();
        request.query = url.query().map(str::to_string);
        Some(request)
    })
}

// ---------------------------------------------------------------------------
// Running requests and the oracle.
// ---------------------------------------------------------------------------

struct Outcome {
    admission: Admission,
    decision: Decision,
}

fn run(request: &Request) -> Outcome {
    let config = request.config();
    let admission = admit(config, &request.facts(), NOW);
    let decision = match admission.clone() {
        Admission::Deny(denial) => Decision::Deny(denial),
        Admission::Forward(forward) => Decision::Forward(forward),
        Admission::LookUp(caller) => entitle(config, caller, request.record.lookup(), NOW),
        // No fixture configuration has a remote key set, so there is nothing to fetch.
        Admission::FetchKeys(reason) => panic!("key fetch requested without a remote key set: {reason:?}"),
    };
    Outcome { admission, decision }
}

fn context(head: bool) -> RenderContext<'static> {
    RenderContext { realm: REALM, upgrade_url: Some(UPGRADE_URL), head }
}

/// Tells whether `authorization` carries a credential of the Bearer scheme: some
/// comma-separated element whose auth-scheme (up to the first space) is `Bearer`, in
/// any case. Anything else is no credentials for RFC 6750 §3.1.
fn sends_bearer(authorization: Option<&str>) -> bool {
    let Some(value) = authorization else { return false };
    let value = value.trim_matches([' ', '\t']);
    if !value.contains(',') {
        let scheme = value.split(' ').next().unwrap_or("");
        return scheme.eq_ignore_ascii_case("bearer");
    }
    // In a list, a `Bearer` element counts only with a token after it: the contract
    // answers `Bearer, <token>` as no credentials.
    value.split(',').any(|element| {
        let element = element.trim_matches([' ', '\t']);
        match element.split_once(' ') {
            Some((scheme, token)) => scheme.eq_ignore_ascii_case("bearer") && !token.trim_start_matches(' ').is_empty(),
            None => false,
        }
    })
}

/// Returns the token of a single `Bearer` credential (RFC 6750 §2.1: `Bearer`, one
/// or more spaces, the token).
fn single_bearer_token(authorization: Option<&str>) -> Option<&str> {
    let value = authorization?.trim_matches([' ', '\t']);
    if value.contains(',') {
        return None;
    }
    let (scheme, token) = value.split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| token.trim_start_matches(' '))
}

/// Tells whether the record grants `feature` at [`NOW`], from the record rules:
/// `active` and `trialing` until `expires_at`, `past_due` only before `grace_until`.
fn record_grants(lookup: &RecordLookup, feature: &str) -> bool {
    let RecordLookup::Found(record) = lookup else { return false };
    let not_expired = record.expires_at.is_none_or(|expires_at| NOW < expires_at);
    let in_grace = record.grace_until.is_some_and(|grace_until| NOW < grace_until);
    let grants = match record.status.as_str() {
        "active" | "trialing" => not_expired,
        "past_due" => not_expired && in_grace,
        _ => false,
    };
    grants && record.features.iter().any(|granted| granted == feature)
}

/// Checks what every reply the gateway makes has: problem JSON, `no-store`, the exact
/// length and the status in the body.
fn check_problem(reply: &Reply) -> Result<(), TestCaseError> {
    prop_assert_eq!(reply.header("content-type"), Some("application/problem+json"));
    prop_assert_eq!(reply.header("cache-control"), Some("no-store"));
    let length = reply.body.len().to_string();
    prop_assert_eq!(reply.header("content-length"), Some(length.as_str()));
    let body: Value =
        serde_json::from_slice(&reply.body).map_err(|error| TestCaseError::fail(format!("body: {error}")))?;
    prop_assert_eq!(&body["status"], &json!(reply.status));
    prop_assert!(body["type"].is_string(), "type: {}", body);
    prop_assert!(body["title"].is_string(), "title: {}", body);
    Ok(())
}

/// Returns what each comma-separated element of `authorization` carries after its
/// auth-scheme. The scheme word itself is left out, because fixed reply text such as
/// "send a bearer token" contains it without reflecting anything.
fn credential_parts(authorization: &str) -> Vec<&str> {
    let parts = authorization.split(',').map(|element| {
        let element = element.trim_matches([' ', '\t']);
        match element.split_once(' ') {
            Some((_scheme, rest)) => rest.trim_start_matches(' '),
            None => element,
        }
    });
    parts.collect()
}

/// Fails when any 8-byte window of `secret` appears in the reply's headers or body.
fn check_not_reflected(reply: &Reply, secret: &str) -> Result<(), TestCaseError> {
    let mut text: Vec<u8> = reply.headers.iter().flat_map(|(_, value)| value.bytes()).collect();
    text.extend_from_slice(&reply.body);
    for window in secret.as_bytes().windows(8) {
        let found = text.windows(8).any(|candidate| candidate == window);
        prop_assert!(!found, "reply reflects {:?}", String::from_utf8_lossy(window));
    }
    Ok(())
}

fn denial_of(outcome: &Outcome) -> Option<&Denial> {
    match &outcome.decision {
        Decision::Deny(denial) => Some(denial),
        Decision::Forward(_) => None,
    }
}

fn check_forward_justified(request: &Request, forward: &Forward) -> Result<(), TestCaseError> {
    let rule = request.config().routes.find(&request.method, &forward.path);
    let rule = rule.ok_or_else(|| TestCaseError::fail(format!("forwarded {} with no rule", forward.path)))?;

    let Some(identity) = &forward.identity else {
        prop_assert!(
            rule.access == Access::Public || request.preflight,
            "anonymous forward on protected rule {}",
            rule.pattern
        );
        prop_assert_ne!(&forward.authorization, &OriginAuthorization::KeepClient, "anonymous forward keeps Authorization");
        return Ok(());
    };

    let token = single_bearer_token(request.authorization.as_deref());
    let token = token.ok_or_else(|| TestCaseError::fail("identity forwarded without a single Bearer credential"))?;
    let valid = fixture().valid.iter().find(|valid| valid.token == token);
    let valid =
        valid.ok_or_else(|| TestCaseError::fail(format!("identity forwarded for an invalid token {token:?}")))?;
    prop_assert_eq!(identity.subject.as_str(), valid.subject);
    if forward.authorization == OriginAuthorization::KeepClient {
        prop_assert!(request.config().forward_authorization, "Authorization kept without FORWARD_AUTHORIZATION");
    }
    prop_assert!(!request.query.as_deref().is_some_and(bearer::has_query_token), "token in header and query forwarded");

    let Access::Authenticated { feature, scopes } = &rule.access else {
        return Err(TestCaseError::fail(format!("identity forwarded on public rule {}", rule.pattern)));
    };
    for scope in scopes {
        prop_assert!(valid.scopes.contains(&scope.as_str()), "scope {} not granted", scope);
    }
    if let Some(feature) = feature {
        prop_assert!(record_grants(&request.record.lookup(), feature), "feature {} not granted", feature);
    }
    Ok(())
}

/// Returns the path a servlet container serves for `path`: `;` parameters removed
/// from each segment, then `.` and `..` segments resolved.
fn servlet_path(path: &str) -> String {
    let mut segments: Vec<&str> = Vec::new();
    for segment in path.split('/').skip(1) {
        let name = segment.split(';').next().unwrap_or("");
        match name {
            "." => {}
            ".." => {
                segments.pop();
            }
            _ => segments.push(name),
        }
    }
    format!("/{}", segments.join("/"))
}

fn any_denial() -> impl Strategy<Value = Denial> {
    let text = "\\PC{0,16}";
    prop_oneof![
        Just(Denial::Challenge),
        select(&["token expired", "malformed token", "invalid signature"][..])
            .prop_map(|description| Denial::InvalidToken { description, code: "token_invalid" }),
        (select(&["malformed bearer token", "dot segment in path"][..]), any::<bool>()).prop_map(
            |(description, credentials)| Denial::InvalidRequest { description, code: "request_invalid", credentials }
        ),
        (text, text, text).prop_map(|(feature, plan, status)| Denial::RequirePayment { feature, plan, status }),
        prop::collection::vec("[!#-\\[\\]-~]{1,8}", 1..4).prop_map(|scopes| Denial::RequireScope { scopes }),
        Just(Denial::NoRoute),
        Just(Denial::HeaderTooLarge),
        Just(Denial::Misconfigured),
        Just(Denial::InvalidRecord),
        Just(Denial::OriginUnreachable),
        Just(Denial::StoreUnavailable),
        Just(Denial::KeysUnavailable),
        Just(Denial::Internal),
    ]
}

/// Names from the JSON this crate reads, so generated objects reach the field checks.
#[rustfmt::skip]
const JSON_KEYS: [&str; 28] = [
    "path", "methods", "access", "feature", "scopes",
    "plan", "status", "features", "expires_at", "grace_until",
    "keys", "kty", "crv", "alg", "kid", "use", "n", "e", "x", "y",
    "iss", "aud", "sub", "exp", "nbf", "iat", "scope", "scp",
];

/// String values the crate gives meaning to.
const JSON_WORDS: [&str; 13] =
    ["public", "authenticated", "active", "/*", "/v1/*", "GET", "RSA", "EC", "OKP", "P-256", "ES256", "sig", "AQAB"];

fn json_value() -> BoxedStrategy<Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        any::<f64>().prop_map(Value::from),
        select(&JSON_WORDS[..]).prop_map(Value::from),
        "\\PC{0,12}".prop_map(Value::from),
    ];
    leaf.prop_recursive(4, 32, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::vec((select(&JSON_KEYS[..]), inner), 0..6).prop_map(|members| Value::Object(
                members.into_iter().map(|(key, value)| (key.to_string(), value)).collect()
            )),
        ]
    })
    .boxed()
}

/// Generates arbitrary text: any Unicode, JSON documents, or bytes read as lossy
/// UTF-8.
fn any_text() -> BoxedStrategy<String> {
    prop_oneof![
        any::<String>(),
        json_value().prop_map(|value| value.to_string()),
        prop::collection::vec(any::<u8>(), 0..64).prop_map(|bytes| String::from_utf8_lossy(&bytes).into_owned()),
    ]
    .boxed()
}

fn jwk() -> BoxedStrategy<Value> {
    let material = prop_oneof![
        prop::collection::vec(any::<u8>(), 0..80).prop_map(|bytes| Value::from(b64(&bytes))),
        "[A-Za-z0-9_=+/-]{0,12}".prop_map(Value::from),
        json_value(),
    ];
    (
        select(&["RSA", "EC", "OKP", "oct", "rsa"][..]),
        prop::option::of(select(&["P-256", "P-384", "P-521", "Ed25519", "X25519", "secp256k1"][..])),
        prop::option::of(select(&["RS256", "PS512", "ES256", "ES384", "EdDSA", "HS256", "none"][..])),
        prop::option::of(select(&["sig", "enc"][..])),
        prop::option::of(json_value()),
        prop::collection::vec((select(&["n", "e", "x", "y", "d"][..]), material), 0..4),
    )
        .prop_map(|(kty, crv, alg, key_use, kid, members)| {
            let mut jwk = json!({ "kty": kty });
            if let Some(crv) = crv {
                jwk["crv"] = json!(crv);
            }
            if let Some(alg) = alg {
                jwk["alg"] = json!(alg);
            }
            if let Some(key_use) = key_use {
                jwk["use"] = json!(key_use);
            }
            if let Some(kid) = kid {
                jwk["kid"] = kid;
            }
            for (name, value) in members {
                jwk[name] = value;
            }
            jwk
        })
        .boxed()
}

/// Generates a compact JWS from generated header and claims JSON, with a random
/// signature.
fn structured_token() -> BoxedStrategy<String> {
    let alg = select(&["HS256", "HS384", "ES256", "RS256", "EdDSA", "none", "PS256", "ES512"][..]);
    let kid = prop::option::of(select(&["hs-1", "es-1", "rs-1", "ed-1", "nope"][..]));
    let header = (alg, kid, prop::option::of(json_value())).prop_map(|(alg, kid, extra)| {
        let mut header = json!({ "alg": alg });
        if let Some(kid) = kid {
            header["kid"] = json!(kid);
        }
        if let Some(Value::Object(extra)) = extra {
            header.as_object_mut().expect("header object").extend(extra);
        }
        header.to_string()
    });
    let claims = prop_oneof![json_value().prop_map(|value| value.to_string()), Just(claims("user-pro").to_string())];
    (header, claims, prop::collection::vec(any::<u8>(), 0..96))
        .prop_map(|(header, claims, signature)| {
            format!("{}.{}.{}", b64(header.as_bytes()), b64(claims.as_bytes()), b64(&signature))
        })
        .boxed()
}

#[rustfmt::skip]
const BINDINGS: [&str; 17] = [
    "JWT_ISSUER", "JWT_AUDIENCE", "JWT_PUBLIC_KEYS", "JWT_HMAC_SECRET", "JWT_HMAC_KID", "JWT_HMAC_ALGORITHM",
    "JWT_CLOCK_SKEW_SECONDS", "JWT_MAX_LIFETIME_SECONDS", "JWT_REQUIRED_TYPE", "ENTITLEMENT_CLAIM",
    "ENTITLEMENT_KEY_PREFIX", "ENTITLEMENT_CACHE_SECONDS", "ROUTES", "ORIGIN_URL", "UPGRADE_URL",
    "ORIGIN_AUTHORIZATION", "AUTHORIZATION_MAX_BYTES",
];

/// Generates bindings that are mostly valid, with a few replaced by arbitrary text or
/// removed.
fn bindings_map() -> impl Strategy<Value = HashMap<&'static str, String>> {
    let changes = prop::collection::vec((select(&BINDINGS[..]), prop::option::of(any_text())), 0..5);
    let extra = prop::option::of((select(&["AUTH_REALM", "FORWARD_AUTHORIZATION"][..]), any_text()));
    (changes, extra).prop_map(|(changes, extra)| {
        let mut bindings = HashMap::from([
            ("JWT_ISSUER", ISSUER.to_string()),
            ("JWT_AUDIENCE", AUDIENCE.to_string()),
            ("JWT_HMAC_SECRET", "0123456789abcdef0123456789abcdef".to_string()),
            ("ROUTES", EXTENDED_ROUTES.to_string()),
        ]);
        for (name, value) in changes.into_iter().chain(extra.map(|(name, value)| (name, Some(value)))) {
            match value {
                Some(value) => bindings.insert(name, value),
                None => bindings.remove(name),
            };
        }
        bindings
    })
}

fn header_name() -> impl Strategy<Value = String> {
    #[rustfmt::skip]
    let names = [
        "Authorization", "authorization", "AUTHORIZATION",
        "X-Tollgate-Subject", "x-tollgate-plan", "X-TOLLGATE-FEATURES", "x-tollgate-other",
        "Host", "Connection", "Keep-Alive", "TE", "Upgrade", "Proxy-Authorization", "Transfer-Encoding",
        "Accept", "X-Custom", "x-custom",
    ];
    prop_oneof![4 => select(names.to_vec()).prop_map(str::to_string), 1 => "[A-Za-z-]{1,12}"]
}

fn incoming_headers() -> impl Strategy<Value = Vec<(String, String)>> {
    let value = prop_oneof![Just("x-custom, keep-alive".to_string()), Just("X-Custom".to_string()), "[ -~]{0,16}"];
    prop::collection::vec((header_name(), value), 0..10)
}

fn forward_strategy() -> impl Strategy<Value = Forward> {
    let origin_credential = fixture().configs[2].origin_authorization.clone().expect("fixture origin credential");
    let authorization =
        select(vec![OriginAuthorization::Remove, OriginAuthorization::KeepClient, OriginAuthorization::Set(origin_credential)]);
    let identity = prop::option::of(("[a-z-]{1,10}", "[a-z]{1,6}", prop::collection::vec("[a-z]{1,6}", 0..3)));
    (identity, authorization).prop_map(|(identity, authorization)| Forward {
        path: "/v1/basic/x".into(),
        query: None,
        identity: identity.map(|(subject, plan, features)| Identity { subject, plan, features }),
        authorization,
        route: "/v1/basic/*".into(),
    })
}

// ---------------------------------------------------------------------------
// Properties of the decision.
// ---------------------------------------------------------------------------

proptest! {
    #![proptest_config(proptest_config(CASES))]

    /// A request is forwarded without identity only on a public rule or as a CORS
    /// preflight. It is forwarded with identity only for one of the fixture's valid
    /// tokens, and only when the rule's scopes and feature are granted.
    #[test]
    fn decide_forward_only_when_allowed(request in request()) {
        if let Decision::Forward(forward) = run(&request).decision {
            check_forward_justified(&request, &forward)?;
        }
    }

    /// The same, for paths and queries as the URL parser hands them over.
    #[test]
    fn decide_url_forward_only_when_allowed(request in parsed_request()) {
        if let Decision::Forward(forward) = run(&request).decision {
            check_forward_justified(&request, &forward)?;
        }
    }

    /// A denial in either step is final. A caller whose record is invalid or cannot be
    /// read is never forwarded, and a 402 comes only from a rule that names a feature.
    /// The record key is the configured prefix plus the token's subject.
    #[test]
    fn decide_denial_never_forwards(request in request()) {
        let outcome = run(&request);
        match &outcome.admission {
            Admission::Deny(denial) => prop_assert_eq!(denial_of(&outcome), Some(denial)),
            Admission::Forward(forward) => prop_assert_eq!(&outcome.decision, &Decision::Forward(forward.clone())),
            Admission::FetchKeys(reason) => prop_assert!(false, "key fetch requested: {:?}", reason),
            Admission::LookUp(caller) => {
                let record_key = format!("{}{}", request.config().entitlement_key_prefix, caller.token.subject);
                prop_assert_eq!(&caller.record_key, &record_key);
                if matches!(request.record.lookup(), RecordLookup::Invalid(_) | RecordLookup::Unavailable) {
                    prop_assert!(denial_of(&outcome).is_some(), "forwarded with record {:?}", request.record);
                }
                if let Some(Denial::RequirePayment { feature, .. }) = denial_of(&outcome) {
                    prop_assert_eq!(caller.feature.as_ref(), Some(feature));
                }
            }
        }
    }

    /// Every 401 carries a Bearer challenge, with an `error` exactly when a Bearer
    /// credential was sent.
    #[test]
    fn challenge_error_only_with_credentials(request in request()) {
        let outcome = run(&request);
        let Some(denial) = denial_of(&outcome) else { return Ok(()) };
        let reply = render(denial, &context(false));
        if reply.status != 401 {
            return Ok(());
        }
        let challenge = reply.header("www-authenticate");
        let challenge = challenge.ok_or_else(|| TestCaseError::fail("401 without WWW-Authenticate"))?;
        prop_assert!(challenge.starts_with("Bearer realm="), "challenge {}", challenge);
        let sent = sends_bearer(request.authorization.as_deref());
        let authorization = request.authorization.as_deref().map(Abbreviated);
        prop_assert_eq!(challenge.contains("error="), sent, "challenge {} for Authorization {:?}", challenge, authorization);
    }

    /// Every denial the decision makes renders as a problem, and never echoes the
    /// Authorization value or a query token.
    #[test]
    fn render_decision_denial_is_problem(request in request()) {
        let outcome = run(&request);
        let Some(denial) = denial_of(&outcome) else { return Ok(()) };
        let reply = render(denial, &context(false));
        check_problem(&reply)?;
        if let Some(authorization) = &request.authorization {
            for part in credential_parts(authorization) {
                check_not_reflected(&reply, part)?;
            }
        }
        if let Some(query) = &request.query {
            check_not_reflected(&reply, query)?;
        }
    }

    /// The forwarded path is the normalised request path, the forwarded route is the
    /// rule that path matches, and the origin URL parser reads back the same path.
    #[test]
    fn forward_path_is_matched_path(request in parsed_request()) {
        let outcome = run(&request);
        let Decision::Forward(forward) = &outcome.decision else { return Ok(()) };
        prop_assert_eq!(Ok(forward.path.clone()), normalise(&request.path));

        let routes = &request.config().routes;
        let rule = routes.find(&request.method, &forward.path);
        prop_assert_eq!(rule.map(|rule| rule.pattern.as_str()), Some(forward.route.as_str()));

        // The origin receives the path that the fetch URL parser makes of the origin URL.
        let target = origin_url(None, "https://origin.example", forward);
        let url = url::Url::parse(&target).map_err(|error| TestCaseError::fail(format!("{target}: {error}")))?;
        prop_assert_eq!(url.path(), forward.path.as_str());
        prop_assert_eq!(url.query(), forward.query.as_deref());
    }

    /// The same, for raw paths the URL parser would not hand over.
    #[test]
    fn forward_raw_path_is_matched_path(request in request()) {
        let outcome = run(&request);
        let Decision::Forward(forward) = &outcome.decision else { return Ok(()) };
        prop_assert_eq!(Ok(forward.path.clone()), normalise(&request.path));
        let rule = request.config().routes.find(&request.method, &forward.path);
        prop_assert_eq!(rule.map(|rule| rule.pattern.as_str()), Some(forward.route.as_str()));
    }

    /// Servlet containers (Tomcat, Jetty) drop `;` parameters from each segment and then
    /// resolve dot segments, so `/public/..;/v1/pro/x` reaches them as `/v1/pro/x`. The
    /// rule for the path they read must grant no more than the rule that was checked.
    #[test]
    fn forward_path_parameters_keep_access(request in parsed_request()) {
        let outcome = run(&request);
        let Decision::Forward(forward) = &outcome.decision else { return Ok(()) };
        let routes = &request.config().routes;
        let checked = routes.find(&request.method, &forward.path).map(|rule| &rule.access);
        let read = servlet_path(&forward.path);
        let served = routes.find(&request.method, &read).map(|rule| &rule.access);
        let path = &forward.path;
        prop_assert!(served.is_none() || served == checked, "{} checked as {:?}, served as {} {:?}", path, checked, read, served);
    }
}

proptest! {
    #![proptest_config(proptest_config(CASES))]

    /// Status, challenge and body agree for every denial, and `HEAD` gets the same
    /// headers with an empty body.
    #[test]
    fn render_any_denial_is_problem(denial in any_denial(), with_upgrade in any::<bool>()) {
        let context = RenderContext { realm: REALM, upgrade_url: with_upgrade.then_some(UPGRADE_URL), head: false };
        let reply = render(&denial, &context);
        check_problem(&reply)?;
        if reply.status == 401 {
            prop_assert!(reply.header("www-authenticate").is_some_and(|value| value.starts_with("Bearer ")));
        }
        let head = render(&denial, &RenderContext { head: true, ..context });
        prop_assert_eq!(head.status, reply.status);
        prop_assert_eq!(&head.headers, &reply.headers);
        prop_assert!(head.body.is_empty());
    }

    /// The origin gets no hop-by-hop header, no header that `Connection` names, no
    /// `Authorization` unless it is kept, and no `X-Tollgate-*` header but the gateway's.
    #[test]
    fn request_headers_filtered_for_origin(incoming in incoming_headers(), forward in forward_strategy()) {
        let outgoing = request_headers(&incoming, &forward);
        let connection_named: Vec<String> = incoming
            .iter()
            .filter(|(name, _)| name.eq_ignore_ascii_case("connection"))
            .flat_map(|(_, value)| value.split(','))
            .map(|name| name.trim().to_ascii_lowercase())
            .collect();
        let dropped = ["connection", "keep-alive", "te", "upgrade", "proxy-authorization", "transfer-encoding", "host"];

        let mut identity_headers = Vec::new();
        let mut authorization_values = Vec::new();
        for (name, value) in &outgoing {
            let lower = name.to_ascii_lowercase();
            prop_assert!(!dropped.contains(&lower.as_str()), "{} forwarded", name);
            prop_assert!(!connection_named.contains(&lower), "{} named in Connection forwarded", name);
            if lower == "authorization" {
                authorization_values.push(value.as_str());
            }
            if lower.starts_with("x-tollgate-") {
                identity_headers.push((name.as_str(), value.as_str()));
            }
        }

        let client_values: Vec<&str> = incoming
            .iter()
            .filter(|(name, _)| name.eq_ignore_ascii_case("authorization"))
            .filter(|_| !connection_named.contains(&"authorization".to_string()))
            .map(|(_, value)| value.as_str())
            .collect();
        let expected_authorization = match &forward.authorization {
            OriginAuthorization::Remove => Vec::new(),
            OriginAuthorization::KeepClient => client_values,
            OriginAuthorization::Set(secret) => vec![secret.expose()],
        };
        prop_assert_eq!(authorization_values, expected_authorization);

        let expected: Vec<(String, String)> = match &forward.identity {
            None => Vec::new(),
            Some(identity) => vec![
                ("x-tollgate-subject".into(), identity.subject.clone()),
                ("x-tollgate-plan".into(), identity.plan.clone()),
                ("x-tollgate-features".into(), identity.features.join(",")),
            ],
        };
        let expected: Vec<(&str, &str)> = expected.iter().map(|(name, value)| (name.as_str(), value.as_str())).collect();
        prop_assert_eq!(identity_headers, expected);
    }
}

// ---------------------------------------------------------------------------
// Parsers: no panic on any input.
// ---------------------------------------------------------------------------

proptest! {
    #![proptest_config(proptest_config(CASES))]

    #[test]
    fn extract_any_input_no_panic(header in prop::option::of(any_text()), query in prop::option::of(any_text())) {
        let _ = bearer::extract(header.as_deref(), query.as_deref());
    }

    /// The output is a fixed point and has none of the forms the module rejects.
    #[test]
    fn normalise_output_idempotent(raw in prop_oneof![raw_path(), any_text()]) {
        let Ok(normalised) = normalise(&raw) else { return Ok(()) };
        prop_assert_eq!(normalise(&normalised), Ok(normalised.clone()));
        for form in ["//", "%2F", "%5C", "%00"] {
            prop_assert!(!normalised.contains(form), "{:?} contains {}", normalised, form);
        }
    }

    #[test]
    fn parse_policy_any_input_no_panic(json in prop_oneof![
        any_text(),
        prop::collection::vec(json_value(), 1..4).prop_map(|rules| Value::Array(rules).to_string()),
    ], method in method(), path in raw_path()) {
        if let Ok(policy) = parse_policy(&json) {
            let _ = policy.find(&method, &path);
        }
    }

    #[test]
    fn parse_record_any_input_no_panic(text in any_text()) {
        if let Err(RecordError(message)) = parse_record(&text) {
            prop_assert!(!message.is_empty());
        }
    }

    #[test]
    fn parse_key_set_any_input_no_panic(json in prop_oneof![
        any_text(),
        prop::collection::vec(jwk(), 0..3).prop_map(|keys| json!({ "keys": keys }).to_string()),
    ]) {
        let _ = parse_key_set(&json);
    }

    #[test]
    fn verify_any_input_no_panic(text in prop_oneof![any_text(), structured_token(), token_text()]) {
        for config in &fixture().configs {
            let _ = verify(&text, config, NOW);
        }
    }

    #[test]
    fn from_bindings_any_input_no_panic(bindings in bindings_map()) {
        let _ = Config::from_bindings(|name| bindings.get(name).cloned());
    }
}

// ---------------------------------------------------------------------------
// Regression cases: the smallest inputs that broke a property or a fuzz check.
// ---------------------------------------------------------------------------

fn decide(config: usize, path: &str, authorization: Option<&str>) -> Decision {
    let request = Request {
        config,
        method: "GET".into(),
        path: path.into(),
        query: None,
        authorization: authorization.map(str::to_string),
        preflight: false,
        record: RecordSource::Missing,
    };
    run(&request).decision
}

fn denial_reply(decision: &Decision) -> Reply {
    match decision {
        Decision::Deny(denial) => render(denial, &context(false)),
        Decision::Forward(forward) => panic!("expected a denial, got {forward:?}"),
    }
}

/// RFC 6750 §3.1: a request with another scheme's credentials gets no error code,
/// however long the value.
#[test]
fn challenge_long_basic_value_no_error() {
    let limit = fixture().configs[0].max_authorization_bytes;
    let value = format!("Basic {}", "A".repeat(limit));
    let reply = denial_reply(&decide(0, "/v1/basic/x", Some(&value)));
    let challenge = reply.header("www-authenticate").unwrap_or_default();
    assert!(!challenge.contains("error="), "{} {challenge}", reply.status);
}

/// A `Bearer` element without a token inside a list of credentials counts as no
/// credentials, like any other unusable scheme: 401 without `error`.
#[test]
fn challenge_bare_bearer_in_list_no_error() {
    for value in ["Bearer, Basic dXNlcjpwYXNz", "Basic dXNlcjpwYXNz, Bearer"] {
        let reply = denial_reply(&decide(0, "/v1/basic/x", Some(value)));
        assert_eq!(reply.status, 401, "{value}");
        assert_eq!(reply.header("www-authenticate"), Some("Bearer realm=\"api.example\""), "{value}");
    }
}

/// A servlet container serves `/public/..;/v1/pro/x` as `/v1/pro/x` and
/// `/v1/pro;x/report` as `/v1/pro/report`: neither may pass as a public path.
#[test]
fn forward_path_parameter_not_public() {
    for (config, path) in [(0, "/public/..;/v1/pro/x"), (2, "/v1/pro;x/report"), (2, "/v1;/pro/x")] {
        let decision = decide(config, path, None);
        let anonymous = matches!(&decision, Decision::Forward(forward) if forward.identity.is_none());
        assert!(!anonymous, "{path} forwarded without a token: {decision:?}");
    }
}

/// RFC 7519 §2 lets a NumericDate have a fraction, and jwt-simple 0.15 truncates it
/// toward zero. The `token_claims` fuzz target relies on this reading.
#[test]
fn verify_fractional_numeric_date_truncated() {
    let config = &fixture().configs[0];
    let mut claims = claims("user-pro");
    claims["nbf"] = json!(9.34e-322);
    let token = hmac_raw(&json!({"alg": "HS256", "typ": "JWT"}), &claims.to_string(), false);
    assert_eq!(verify(&token, config, NOW).map(|token| token.subject), Ok("user-pro".to_string()));

    claims["exp"] = json!(NOW as f64 - 600.5);
    let token = hmac_raw(&json!({"alg": "HS256", "typ": "JWT"}), &claims.to_string(), false);
    assert_eq!(verify(&token, config, NOW).map(|token| token.subject), Err(tollgate::token::TokenError::Expired));
}
