//! An isolate cache of verified tokens, so a token seen again skips its signature, and
//! of tokens whose signature did not verify, so a rejected token sent again is
//! rejected without another signature check.
//!
//! Entries are keyed by the SHA-256 of the whole token, so a different token can never
//! hit another's entry. A hit still checks `exp` and `nbf` against the request time
//! with the configured clock skew. An entry lives at most [`TTL_SECONDS`], so a key
//! removed from the provider's set stops being trusted through the cache soon after,
//! and the map contains at most [`MAX_ENTRIES`] entries. Rejections live in a map of
//! their own, at most [`MAX_ENTRIES`] for at most [`REJECTED_TTL_SECONDS`], so a flood
//! of bad tokens cannot push verified tokens out.

use std::collections::HashMap;

use crate::bounded_map::insert_bounded;
use crate::token::{TokenError, VerifiedToken};

/// The most verified tokens one isolate keeps.
pub const MAX_ENTRIES: usize = 10_000;

/// The longest time a verified token is served from the cache, in seconds.
pub const TTL_SECONDS: u64 = 300;

/// The maximum time a token whose signature did not verify is rejected from the cache,
/// in seconds. The verdict only changes if the provider reuses a `kid` for a new key,
/// and then the cache rejects (fails closed) for at most this long.
pub const REJECTED_TTL_SECONDS: u64 = 60;

#[derive(Debug, Default)]
pub struct TokenCache {
    entries: HashMap<[u8; 32], (VerifiedToken, u64)>,
    /// Tokens whose signature did not verify, with the time of the check.
    rejected: HashMap<[u8; 32], u64>,
}

/// The cache key of a token: its SHA-256.
pub fn token_key(token: &str) -> [u8; 32] {
    hmac_sha256::Hash::hash(token.as_bytes())
}

impl TokenCache {
    /// Returns the cached result for `token` at `now`: `None` on a miss, else the
    /// token again checked for `exp` and `nbf` with `clock_skew` seconds of leeway.
    pub fn get(&self, token: &str, now: u64, clock_skew: u64) -> Option<Result<VerifiedToken, TokenError>> {
        self.get_key(&token_key(token), now, clock_skew)
    }

    /// Like [`TokenCache::get`], for a token given by its [`token_key`].
    pub fn get_key(&self, key: &[u8; 32], now: u64, clock_skew: u64) -> Option<Result<VerifiedToken, TokenError>> {
        let (verified, stored_at) = self.entries.get(key)?;
        if now >= stored_at.saturating_add(TTL_SECONDS) {
            return None;
        }
        if now.saturating_sub(clock_skew) > verified.expires_at {
            return Some(Err(TokenError::Expired));
        }
        if verified.not_before.is_some_and(|not_before| now.saturating_add(clock_skew) < not_before) {
            return Some(Err(TokenError::NotYetValid));
        }
        Some(Ok(verified.clone()))
    }

    /// Stores a token that passed every check at `now`.
    pub fn insert(&mut self, token: &str, verified: VerifiedToken, now: u64) {
        self.insert_key(token_key(token), verified, now);
    }

    /// Stores a token that passed every check at `now`, by its [`token_key`].
    pub fn insert_key(&mut self, key: [u8; 32], verified: VerifiedToken, now: u64) {
        insert_bounded(&mut self.entries, MAX_ENTRIES, key, (verified, now), |(verified, stored_at)| {
            now < stored_at.saturating_add(TTL_SECONDS) && now <= verified.expires_at
        });
    }

    /// Tells whether the token with this [`token_key`] failed its signature check less
    /// than [`REJECTED_TTL_SECONDS`] before `now`.
    pub fn is_rejected(&self, key: &[u8; 32], now: u64) -> bool {
        self.rejected.get(key).is_some_and(|checked_at| now < checked_at.saturating_add(REJECTED_TTL_SECONDS))
    }

    /// Stores that the token with this [`token_key`] failed its signature check at `now`.
    pub fn reject_key(&mut self, key: [u8; 32], now: u64) {
        insert_bounded(&mut self.rejected, MAX_ENTRIES, key, now, |checked_at| {
            now < checked_at.saturating_add(REJECTED_TTL_SECONDS)
        });
    }

    /// Returns the number of verified tokens.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Returns the number of rejected tokens.
    pub fn rejected_len(&self) -> usize {
        self.rejected.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn verified(expires_at: u64, not_before: Option<u64>) -> VerifiedToken {
        VerifiedToken { kid: None, subject: "user-pro".into(), scopes: vec![], expires_at, not_before, remote_key: false }
    }

    #[test]
    fn get_same_token_hits() {
        let mut cache = TokenCache::default();
        cache.insert("token-a", verified(2_000, None), 1_000);
        assert_eq!(cache.get("token-a", 1_001, 60), Some(Ok(verified(2_000, None))));
    }

    #[test]
    fn get_other_token_misses() {
        let mut cache = TokenCache::default();
        cache.insert("token-a", verified(2_000, None), 1_000);
        assert_eq!(cache.get("token-b", 1_001, 60), None);
        assert_eq!(cache.get("token-a ", 1_001, 60), None);
    }

    #[test]
    fn get_rechecks_expiry_with_skew() {
        let mut cache = TokenCache::default();
        cache.insert("token-a", verified(1_100, None), 1_000);
        assert!(matches!(cache.get("token-a", 1_160, 60), Some(Ok(_))));
        assert_eq!(cache.get("token-a", 1_161, 60), Some(Err(TokenError::Expired)));
    }

    #[test]
    fn get_rechecks_not_before_with_skew() {
        let mut cache = TokenCache::default();
        cache.insert("token-a", verified(9_000, Some(1_100)), 1_000);
        assert_eq!(cache.get("token-a", 1_039, 60), Some(Err(TokenError::NotYetValid)));
        assert!(matches!(cache.get("token-a", 1_040, 60), Some(Ok(_))));
    }

    #[test]
    fn get_entry_past_ttl_misses() {
        let mut cache = TokenCache::default();
        cache.insert("token-a", verified(99_999, None), 1_000);
        assert!(cache.get("token-a", 1_000 + TTL_SECONDS - 1, 60).is_some());
        assert_eq!(cache.get("token-a", 1_000 + TTL_SECONDS, 60), None);
    }

    #[test]
    fn rejected_token_expires_after_ttl() {
        let mut cache = TokenCache::default();
        cache.reject_key(token_key("token-a"), 1_000);
        assert!(cache.is_rejected(&token_key("token-a"), 1_000 + REJECTED_TTL_SECONDS - 1));
        assert!(!cache.is_rejected(&token_key("token-a"), 1_000 + REJECTED_TTL_SECONDS));
        assert!(!cache.is_rejected(&token_key("token-b"), 1_000));
    }

    #[test]
    fn rejected_flood_keeps_verified_tokens() {
        let mut cache = TokenCache::default();
        cache.insert("token-good", verified(99_999, None), 1_000);
        for index in 0..MAX_ENTRIES + 10 {
            cache.reject_key(token_key(&format!("token-bad-{index}")), 1_000);
        }
        assert!(cache.rejected_len() <= MAX_ENTRIES);
        assert!(cache.get("token-good", 1_000, 60).is_some());
    }

    #[test]
    fn insert_full_cache_stays_bounded() {
        let mut cache = TokenCache::default();
        for index in 0..MAX_ENTRIES + 10 {
            cache.insert(&format!("token-{index}"), verified(99_999, None), 1_000);
        }
        assert!(cache.len() <= MAX_ENTRIES);
        assert!(cache.get(&format!("token-{}", MAX_ENTRIES + 9), 1_000, 60).is_some());
    }
}
