//! Tollgate: an edge gateway for paid APIs, run as a Cloudflare Worker.
//!
//! Every request passes through the same steps before anything reaches the origin:
//! the bearer token is read ([`bearer`]) and verified ([`token`]), the route policy is
//! matched on the normalised path ([`path`], [`routes`]), the caller's entitlement
//! record is evaluated ([`entitlement`]), and [`decision`] turns those facts into
//! either a forward or a denial. [`problem`] is the one place that maps a denial to
//! status, challenge and `application/problem+json` body.
//!
//! Those modules never touch `worker` types, so the whole contract is tested natively
//! with `cargo test`. Only [`gateway`] (built for `wasm32` alone) talks to the Workers
//! runtime: the fetch entry point, the KV store, WebCrypto signature checks and the origin
//! forwarder.

pub mod bearer;
mod bounded_map;
pub mod config;
pub mod decision;
pub mod entitlement;
pub mod forward;
pub mod jwks;
pub mod keys;
pub mod log;
pub mod path;
pub mod problem;
pub mod record_cache;
pub mod routes;
pub mod token;
pub mod token_cache;

#[cfg(target_arch = "wasm32")]
mod gateway;
