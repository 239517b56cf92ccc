//! `bearer::extract` on an arbitrary `Authorization` value and query string.

#![no_main]

use libfuzzer_sys::fuzz_target;
use tollgate::bearer::{self, Credential};
use tollgate::decision::strip_query_token;

fuzz_target!(|input: (Option<&str>, Option<&str>)| {
    let (authorization, query) = input;
    let result = bearer::extract(authorization, query);

    if authorization.is_none() {
        assert_eq!(result, Ok(Credential::Absent));
    }
    if let Ok(Credential::Bearer(token)) = result {
        let value = authorization.expect("a bearer token comes from the header");
        assert!(!value.contains(','), "token read from a list of credentials: {value:?}");
        assert!(!token.is_empty());
        let body = token.trim_end_matches('=');
        assert!(!body.is_empty(), "token of padding only: {token:?}");
        let b64token = |byte: u8| byte.is_ascii_alphanumeric() || b"-._~+/".contains(&byte);
        assert!(body.bytes().all(b64token), "token outside b64token: {token:?}");
        assert!(!query.is_some_and(bearer::has_query_token), "header token accepted beside a query token");
    }

    // The query sent to the origin never keeps an access_token parameter.
    if let Some(kept) = query.and_then(strip_query_token) {
        assert!(!bearer::has_query_token(&kept), "{query:?} kept as {kept:?}");
    }
});
