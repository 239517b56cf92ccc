//! The response contract as a table: request and record in, status, challenge and
//! body out, checked through `admit`, `entitle` and `render` together.

mod support;

use serde_json::{json, Value};
use support::*;
use tollgate::config::Config;
use tollgate::decision::{admit, entitle, Admission, Decision, Denial, Forward, OriginAuthorization, RecordLookup, RequestFacts};
use tollgate::entitlement::{parse_record, RecordError};
use tollgate::problem::{render, RenderContext, Reply, TYPE_PREFIX};

const REALM: &str = "api.example";

/// A request for the table: method, path with optional query, Authorization values.
struct Case<'a> {
    method: &'a str,
    target: &'a str,
    authorization: Option<String>,
    preflight: bool,
}

impl<'a> Case<'a> {
    fn get(target: &'a str) -> Self {
        Case { method: "GET", target, authorization: None, preflight: false }
    }

    fn bearer(mut self, token: &str) -> Self {
        self.authorization = Some(format!("Bearer {token}"));
        self
    }

    fn authorization(mut self, value: &str) -> Self {
        self.authorization = Some(value.to_string());
        self
    }

    fn method(mut self, method: &'a str) -> Self {
        self.method = method;
        self
    }
}

fn record(text: &str) -> RecordLookup {
    match parse_record(text) {
        Ok(record) => RecordLookup::Found(record),
        Err(error) => RecordLookup::Invalid(error),
    }
}

fn pro() -> RecordLookup {
    record(r#"{"plan": "pro", "status": "active", "features": ["reports", "basic"]}"#)
}

fn free() -> RecordLookup {
    record(r#"{"plan": "free", "status": "active", "features": ["basic"]}"#)
}

fn decide(config: &Config, case: &Case<'_>, lookup: RecordLookup) -> Decision {
    let (path, query) = match case.target.split_once('?') {
        Some((path, query)) => (path, Some(query)),
        None => (case.target, None),
    };
    let facts = RequestFacts {
        method: case.method,
        path,
        query,
        authorization: case.authorization.as_deref(),
        is_cors_preflight: case.preflight,
    };
    match admit(config, &facts, NOW) {
        Admission::Deny(denial) => Decision::Deny(denial),
        Admission::Forward(forward) => Decision::Forward(forward),
        Admission::LookUp(caller) => entitle(config, caller, lookup, NOW),
        Admission::FetchKeys(reason) => panic!("configured keys only, yet a fetch was asked for: {reason:?}"),
    }
}

fn deny(case: &Case<'_>, lookup: RecordLookup) -> Reply {
    let config = config();
    match decide(&config, case, lookup) {
        Decision::Deny(denial) => render(&denial, &context(case.method == "HEAD")),
        Decision::Forward(forward) => panic!("expected a denial for {} {}, got {forward:?}", case.method, case.target),
    }
}

fn forward(case: &Case<'_>, lookup: RecordLookup) -> Forward {
    match decide(&config(), case, lookup) {
        Decision::Forward(forward) => forward,
        Decision::Deny(denial) => panic!("expected a forward for {} {}, got {denial:?}", case.method, case.target),
    }
}

fn context(head: bool) -> RenderContext<'static> {
    RenderContext { realm: REALM, upgrade_url: Some("https://billing.example/upgrade?feature={feature}"), head }
}

fn body(reply: &Reply) -> Value {
    serde_json::from_slice(&reply.body).expect("problem body is JSON")
}

fn valid() -> String {
    token("ES256", &claims("user-pro"))
}

fn token_for(subject: &str) -> String {
    token("ES256", &claims(subject))
}

/// The rules every gateway-made answer follows.
fn assert_problem(reply: &Reply, status: u16) {
    assert_eq!(reply.status, status);
    assert_eq!(reply.header("content-type"), Some("application/problem+json"));
    assert_eq!(reply.header("cache-control"), Some("no-store"));
    assert_eq!(reply.header("content-length"), Some(reply.body.len().to_string().as_str()));
    let body = body(reply);
    assert_eq!(body["status"], json!(status));
    assert!(body["type"].as_str().unwrap().starts_with(TYPE_PREFIX), "{body}");
    assert!(body["title"].is_string());
    assert!(body["detail"].is_string());
}

#[test]
fn no_credentials_bare_challenge() {
    let reply = deny(&Case::get("/v1/basic/x"), pro());
    assert_problem(&reply, 401);
    assert_eq!(reply.header("www-authenticate"), Some("Bearer realm=\"api.example\""));
}

#[test]
fn other_scheme_bare_challenge() {
    for value in ["Basic dXNlcjpwYXNz", "Token abc", "DPoP abc"] {
        let reply = deny(&Case::get("/v1/basic/x").authorization(value), pro());
        assert_problem(&reply, 401);
        assert_eq!(reply.header("www-authenticate"), Some("Bearer realm=\"api.example\""), "{value}");
    }
}

#[test]
fn query_token_alone_bare_challenge() {
    let target = format!("/v1/basic/x?access_token={}", valid());
    let reply = deny(&Case::get(&target), pro());
    assert_problem(&reply, 401);
    assert_eq!(reply.header("www-authenticate"), Some("Bearer realm=\"api.example\""));
}

#[test]
fn bad_signature_invalid_token_challenge() {
    let token = sign("ES256", Some("es-1"), &claims("user-pro"), true);
    let reply = deny(&Case::get("/v1/basic/x").bearer(&token), pro());
    assert_problem(&reply, 401);
    assert_eq!(
        reply.header("www-authenticate"),
        Some("Bearer realm=\"api.example\", error=\"invalid_token\", error_description=\"invalid signature\"")
    );
}

#[test]
fn expired_token_invalid_token_challenge() {
    let mut claims = claims("user-pro");
    claims["exp"] = json!(NOW - 600);
    let reply = deny(&Case::get("/v1/basic/x").bearer(&token("ES256", &claims)), pro());
    assert_problem(&reply, 401);
    assert!(reply.header("www-authenticate").unwrap().contains("error_description=\"token expired\""));
}

#[test]
fn empty_bearer_invalid_token_challenge() {
    let reply = deny(&Case::get("/v1/basic/x").authorization("Bearer"), pro());
    assert_problem(&reply, 401);
    assert!(reply.header("www-authenticate").unwrap().contains("error=\"invalid_token\""));
}

#[test]
fn two_authorization_values_invalid_request() {
    let token = valid();
    for value in [format!("Bearer {token}, Bearer {token}"), format!("Bearer {token}, Bearer junk")] {
        let reply = deny(&Case::get("/v1/basic/x").authorization(&value), pro());
        assert_problem(&reply, 400);
        assert!(reply.header("www-authenticate").unwrap().contains("error=\"invalid_request\""));
    }
}

#[test]
fn header_and_query_token_invalid_request() {
    let token = valid();
    let target = format!("/v1/basic/x?access_token={token}");
    let reply = deny(&Case::get(&target).bearer(&token), pro());
    assert_problem(&reply, 400);
    assert!(reply.header("www-authenticate").unwrap().contains("error=\"invalid_request\""));
}

#[test]
fn ambiguous_path_bad_request_without_challenge() {
    for target in ["/public/..%2Fv1/pro/x", "/public/%2e%2e/v1/pro/x", "/v1//pro/x", "/public/%00"] {
        let reply = deny(&Case::get(target).bearer(&valid()), pro());
        assert_problem(&reply, 400);
        assert_eq!(reply.header("www-authenticate"), None, "{target}");
    }
}

#[test]
fn ambiguous_letter_case_or_parameters_bad_request() {
    // A catch-all rule, so each path matches some rule as it is written.
    let mut bindings = bindings();
    let routes = ROUTES.trim_end().trim_end_matches(']').to_string() + r#", {"path": "/*", "access": "authenticated"}]"#;
    bindings.insert("ROUTES", routes);
    let config = config_from(&bindings);
    for target in ["/V1/PRO/x", "/v1/Pro/x", "/v1/pro./x", "/v1/pro;x=1/y", "/public/..;/v1/pro/x", "/PUBLIC/x"] {
        let case = Case::get(target).bearer(&valid());
        let Decision::Deny(denial) = decide(&config, &case, pro()) else {
            panic!("{target} was forwarded");
        };
        let reply = render(&denial, &context(false));
        assert_problem(&reply, 400);
        assert_eq!(reply.header("www-authenticate"), None, "{target}");
    }
}

#[test]
fn unambiguous_dots_and_case_forwarded() {
    for target in ["/v1/pro/report.json", "/v1/pro/Report", "/public/file.txt"] {
        let forward = forward(&Case::get(target).bearer(&valid()), pro());
        assert_eq!(forward.path, target);
    }
}

#[test]
fn oversized_authorization_header_too_large() {
    let value = format!("Bearer {}", "a".repeat(8192));
    for target in ["/v1/basic/x", "/public/x"] {
        let reply = deny(&Case::get(target).authorization(&value), pro());
        assert_problem(&reply, 431);
        assert_eq!(reply.header("www-authenticate"), None);
    }
}

#[test]
fn authorization_limit_configurable() {
    let mut bindings = bindings();
    bindings.insert("AUTHORIZATION_MAX_BYTES", "16384".into());
    let config = config_from(&bindings);
    let mut claims = claims("user-pro");
    claims["padding"] = json!("p".repeat(9000));
    let case = Case::get("/v1/basic/x").bearer(&token("ES256", &claims));
    assert!(matches!(decide(&config, &case, pro()), Decision::Forward(_)));
    assert!(matches!(decide(&self::config(), &case, pro()), Decision::Deny(Denial::HeaderTooLarge)));
}

#[test]
fn origin_credential_replaces_client_authorization() {
    let mut bindings = bindings();
    bindings.insert("ORIGIN_AUTHORIZATION", "Bearer origin-credential".into());
    let config = config_from(&bindings);
    for case in [Case::get("/v1/basic/x").bearer(&valid()), Case::get("/public/x").bearer(&valid())] {
        match decide(&config, &case, pro()) {
            Decision::Forward(forward) => match forward.authorization {
                OriginAuthorization::Set(secret) => assert_eq!(secret.expose(), "Bearer origin-credential"),
                other => panic!("{other:?}"),
            },
            Decision::Deny(denial) => panic!("{denial:?}"),
        }
    }
}

#[test]
fn plan_without_feature_payment_required() {
    let reply = deny(&Case::get("/v1/pro/report").bearer(&token_for("user-free")), free());
    assert_problem(&reply, 402);
    assert_eq!(reply.header("www-authenticate"), None);
    let body = body(&reply);
    assert_eq!(body["feature"], "reports");
    assert_eq!(body["plan"], "free");
    assert_eq!(body["subscription_status"], "active");
    assert_eq!(body["upgrade_url"], "https://billing.example/upgrade?feature=reports");
}

#[test]
fn no_record_payment_required_plan_none() {
    let reply = deny(&Case::get("/v1/pro/report").bearer(&token_for("user-none")), RecordLookup::Missing);
    assert_problem(&reply, 402);
    assert_eq!(body(&reply)["plan"], "none");
}

#[test]
fn subscription_states_decide_payment() {
    let cases = [
        (r#"{"plan": "pro", "status": "trialing", "features": ["reports"]}"#, true),
        (r#"{"plan": "pro", "status": "past_due", "features": ["reports"], "grace_until": 1800000060}"#, true),
        (r#"{"plan": "pro", "status": "past_due", "features": ["reports"], "grace_until": 1799999999}"#, false),
        (r#"{"plan": "pro", "status": "canceled", "features": ["reports"]}"#, false),
        (r#"{"plan": "pro", "status": "active", "features": ["reports"], "expires_at": 1799999999}"#, false),
    ];
    for (text, allowed) in cases {
        let decision = decide(&config(), &Case::get("/v1/pro/report").bearer(&valid()), record(text));
        assert_eq!(matches!(decision, Decision::Forward(_)), allowed, "{text}");
    }
}

#[test]
fn entitled_caller_forwarded_with_identity() {
    let forward = forward(&Case::get("/v1/pro/report?a=1&b=2").bearer(&valid()), pro());
    assert_eq!(forward.path, "/v1/pro/report");
    assert_eq!(forward.query.as_deref(), Some("a=1&b=2"));
    assert_eq!(forward.authorization, OriginAuthorization::Remove);
    let identity = forward.identity.expect("identity");
    assert_eq!(identity.subject, "user-pro");
    assert_eq!(identity.plan, "pro");
    assert_eq!(identity.features, vec!["reports", "basic"]);
}

#[test]
fn authenticated_route_forwards_caller_without_record() {
    let forward = forward(&Case::get("/v1/basic/x").bearer(&token_for("user-none")), RecordLookup::Missing);
    assert_eq!(forward.identity.expect("identity").plan, "none");
}

#[test]
fn missing_scope_insufficient_scope() {
    let reply = deny(&Case::get("/v1/admin/users").bearer(&valid()), pro());
    assert_problem(&reply, 403);
    assert_eq!(
        reply.header("www-authenticate"),
        Some("Bearer realm=\"api.example\", error=\"insufficient_scope\", error_description=\"token lacks a required scope\", scope=\"admin\"")
    );
}

#[test]
fn granted_scope_forwarded() {
    let mut claims = claims("user-pro");
    claims["scope"] = json!("read admin");
    forward(&Case::get("/v1/admin/users").bearer(&token("ES256", &claims)), pro());
}

#[test]
fn unmatched_route_not_found() {
    let reply = deny(&Case::get("/other").bearer(&valid()), pro());
    assert_problem(&reply, 404);
}

#[test]
fn invalid_record_server_error() {
    let reply = deny(&Case::get("/v1/basic/x").bearer(&valid()), record("not json"));
    assert_problem(&reply, 500);
    assert_eq!(reply.header("www-authenticate"), None);
}

#[test]
fn store_unavailable_retry_after() {
    let reply = deny(&Case::get("/v1/pro/x").bearer(&valid()), RecordLookup::Unavailable);
    assert_problem(&reply, 503);
    assert!(reply.header("retry-after").is_some());
}

#[test]
fn fault_denials_rendered_as_problems() {
    let faults = [
        (Denial::Misconfigured, 500),
        (Denial::OriginUnreachable, 502),
        (Denial::InvalidRecord, 500),
        (Denial::Internal, 500),
    ];
    for (denial, status) in faults {
        assert_problem(&render(&denial, &context(false)), status);
    }
}

#[test]
fn public_route_forwarded_without_token_or_identity() {
    let forward = forward(&Case::get("/public/hello?access_token=x&a=1").bearer(&valid()), pro());
    assert_eq!(forward.identity, None);
    assert_eq!(forward.authorization, OriginAuthorization::Remove);
    assert_eq!(forward.query.as_deref(), Some("a=1"));
    let no_token = self::forward(&Case::get("/public/hello"), pro());
    assert_eq!(no_token.identity, None);
}

#[test]
fn cors_preflight_forwarded_without_token() {
    let mut case = Case::get("/v1/pro/x").method("OPTIONS");
    case.preflight = true;
    let forward = forward(&case, pro());
    assert_eq!(forward.identity, None);
}

#[test]
fn bare_options_checked_like_other_methods() {
    let reply = deny(&Case::get("/v1/basic/x").method("OPTIONS"), pro());
    assert_problem(&reply, 401);
}

#[test]
fn head_answered_like_get_without_body() {
    let get = deny(&Case::get("/v1/basic/x"), pro());
    let head = deny(&Case::get("/v1/basic/x").method("HEAD"), pro());
    assert_eq!(head.status, get.status);
    assert_eq!(head.headers, get.headers);
    assert!(head.body.is_empty());
}

#[test]
fn forward_authorization_keeps_header_when_configured() {
    let mut bindings = bindings();
    bindings.insert("FORWARD_AUTHORIZATION", "true".into());
    let config = config_from(&bindings);
    match decide(&config, &Case::get("/v1/basic/x").bearer(&valid()), pro()) {
        Decision::Forward(forward) => assert_eq!(forward.authorization, OriginAuthorization::KeepClient),
        Decision::Deny(denial) => panic!("{denial:?}"),
    }
}

#[test]
fn entitlement_key_prefix_applied() {
    let mut bindings = bindings();
    bindings.insert("ENTITLEMENT_KEY_PREFIX", "customer:".into());
    let config = config_from(&bindings);
    let facts = RequestFacts {
        method: "GET",
        path: "/v1/basic/x",
        query: None,
        authorization: Some(&format!("Bearer {}", valid())),
        is_cors_preflight: false,
    };
    match admit(&config, &facts, NOW) {
        Admission::LookUp(caller) => assert_eq!(caller.record_key, "customer:user-pro"),
        other => panic!("{other:?}"),
    }
}

#[test]
fn denials_never_reflect_token_or_headers() {
    let token = sign("ES256", Some("es-1"), &claims("user-pro"), true);
    let cases = [
        Case::get("/v1/basic/x").bearer(&token),
        Case::get("/v1/basic/x").authorization(&format!("Bearer {token}, Bearer {token}")),
        Case::get("/v1/pro/x").bearer(&token_for("user-free")),
        Case::get("/v1/admin/x").bearer(&valid()),
    ];
    for case in cases {
        let lookup = if case.target.starts_with("/v1/pro") { free() } else { pro() };
        let reply = deny(&case, lookup);
        let authorization = case.authorization.as_deref().unwrap();
        let text: String = reply.headers.iter().map(|(_, value)| value.as_str()).chain([std::str::from_utf8(&reply.body).unwrap()]).collect();
        for part in authorization.split(['.', ' ', ',']).filter(|part| part.len() > 8) {
            assert!(!text.contains(part), "reflected {part}");
        }
    }
}

#[test]
fn record_error_kept_for_operator() {
    let lookup = RecordLookup::Invalid(RecordError("not valid JSON at line 1 column 1".into()));
    assert_problem(&deny(&Case::get("/v1/basic/x").bearer(&valid()), lookup), 500);
}

/// Builds the facts of a `GET /v1/basic/x` with this `Authorization` value.
fn basic_get(authorization: &str) -> RequestFacts<'_> {
    RequestFacts { method: "GET", path: "/v1/basic/x", query: None, authorization: Some(authorization), is_cors_preflight: false }
}

#[test]
fn token_cache_hit_rechecks_expiry() {
    use tollgate::decision::admit_cached;
    use tollgate::jwks::RemoteKeys;
    use tollgate::token_cache::TokenCache;

    let config = config();
    let authorization = format!("Bearer {}", valid());
    let facts = basic_get(&authorization);
    let mut cache = TokenCache::default();

    let first = admit_cached(&config, &facts, RemoteKeys::NotConfigured, Some(&mut cache), NOW);
    assert!(matches!(first, Admission::LookUp(_)), "{first:?}");
    assert_eq!(cache.len(), 1);

    let again = admit_cached(&config, &facts, RemoteKeys::NotConfigured, Some(&mut cache), NOW + 1);
    assert_eq!(again, first);

    let expired = admit_cached(&config, &facts, RemoteKeys::NotConfigured, Some(&mut cache), NOW + 600 + 61);
    match expired {
        Admission::Deny(Denial::InvalidToken { code, .. }) => assert_eq!(code, "token_expired"),
        other => panic!("{other:?}"),
    }
}

#[test]
fn token_cache_remembers_bad_signature() {
    use tollgate::decision::admit_cached;
    use tollgate::jwks::RemoteKeys;
    use tollgate::token_cache::TokenCache;

    let config = config();
    let authorization = format!("Bearer {}", sign("ES256", Some("es-1"), &claims("user-pro"), true));
    let facts = basic_get(&authorization);
    let mut cache = TokenCache::default();

    let first = admit_cached(&config, &facts, RemoteKeys::NotConfigured, Some(&mut cache), NOW);
    match &first {
        Admission::Deny(Denial::InvalidToken { code, .. }) => assert_eq!(*code, "token_signature_invalid"),
        other => panic!("{other:?}"),
    }
    assert_eq!(cache.rejected_len(), 1);
    assert_eq!(cache.len(), 0);

    let again = admit_cached(&config, &facts, RemoteKeys::NotConfigured, Some(&mut cache), NOW + 1);
    assert_eq!(again, first);
}

#[test]
fn deferred_bad_signature_not_checked_twice() {
    use tollgate::decision::{admit_or_defer, resume, AdmissionStep};
    use tollgate::jwks::RemoteKeys;
    use tollgate::token_cache::TokenCache;

    let config = config();
    let authorization = format!("Bearer {}", sign("ES256", Some("es-1"), &claims("user-pro"), true));
    let facts = basic_get(&authorization);
    let mut cache = TokenCache::default();

    let pending = match admit_or_defer(&config, &facts, RemoteKeys::NotConfigured, Some(&mut cache), NOW) {
        AdmissionStep::VerifySignature(pending) => pending,
        other => panic!("an ES256 token must wait for its signature check: {other:?}"),
    };
    let verdict = resume(&config, pending, false, Some(&mut cache), NOW);
    assert!(matches!(verdict, Admission::Deny(Denial::InvalidToken { .. })), "{verdict:?}");

    // The same token again is rejected before any signature check.
    match admit_or_defer(&config, &facts, RemoteKeys::NotConfigured, Some(&mut cache), NOW + 1) {
        AdmissionStep::Admit(admission) => assert_eq!(admission, verdict),
        other => panic!("the rejected token was sent to WebCrypto again: {other:?}"),
    }
    // Past the rejection's time to live, the signature is checked again.
    let later = NOW + tollgate::token_cache::REJECTED_TTL_SECONDS;
    assert!(matches!(
        admit_or_defer(&config, &facts, RemoteKeys::NotConfigured, Some(&mut cache), later),
        AdmissionStep::VerifySignature(_)
    ));
}
