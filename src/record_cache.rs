//! A small time-bounded cache of entitlement records, kept in isolate memory.
//!
//! Entries live for `ENTITLEMENT_CACHE_SECONDS`; the map contains at most
//! [`MAX_ENTRIES`] of them. When it is full, expired entries are dropped first, then
//! the whole map, which keeps every operation cheap and memory bounded.

use std::collections::HashMap;

use crate::bounded_map::insert_bounded;
use crate::entitlement::Record;

/// The maximum number of records one isolate keeps.
pub const MAX_ENTRIES: usize = 10_000;

/// A cached lookup: a record, or the fact that there was none.
pub type CachedRecord = Option<Record>;

#[derive(Debug, Default)]
pub struct RecordCache {
    entries: HashMap<String, (CachedRecord, u64)>,
}

impl RecordCache {
    /// Returns the cached lookup for `key` if it was stored less than `ttl_ms`
    /// milliseconds before `now_ms`.
    pub fn get(&self, key: &str, now_ms: u64, ttl_ms: u64) -> Option<&CachedRecord> {
        let (record, stored_at) = self.entries.get(key)?;
        (now_ms.saturating_sub(*stored_at) < ttl_ms).then_some(record)
    }

    /// Stores the lookup for `key` at `now_ms`.
    pub fn insert(&mut self, key: String, record: CachedRecord, now_ms: u64, ttl_ms: u64) {
        insert_bounded(&mut self.entries, MAX_ENTRIES, key, (record, now_ms), |(_, stored_at)| {
            now_ms.saturating_sub(*stored_at) < ttl_ms
        });
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(plan: &str) -> CachedRecord {
        Some(Record { plan: plan.into(), status: "active".into(), features: vec![], expires_at: None, grace_until: None })
    }

    #[test]
    fn get_fresh_entry_hits() {
        let mut cache = RecordCache::default();
        cache.insert("user-pro".into(), record("pro"), 1_000, 30_000);
        assert_eq!(cache.get("user-pro", 30_999, 30_000), Some(&record("pro")));
    }

    #[test]
    fn get_expired_entry_misses() {
        let mut cache = RecordCache::default();
        cache.insert("user-pro".into(), record("pro"), 1_000, 30_000);
        assert_eq!(cache.get("user-pro", 31_000, 30_000), None);
    }

    #[test]
    fn get_missing_record_cached_as_none() {
        let mut cache = RecordCache::default();
        cache.insert("user-none".into(), None, 0, 30_000);
        assert_eq!(cache.get("user-none", 1, 30_000), Some(&None));
    }

    #[test]
    fn insert_full_cache_stays_bounded() {
        let mut cache = RecordCache::default();
        for index in 0..MAX_ENTRIES + 5 {
            cache.insert(format!("user-{index}"), None, index as u64, 1_000_000);
        }
        assert!(cache.len() <= MAX_ENTRIES);
        assert!(cache.get(&format!("user-{}", MAX_ENTRIES + 4), MAX_ENTRIES as u64 + 4, 1_000_000).is_some());
    }

    #[test]
    fn insert_full_cache_drops_expired_first() {
        let mut cache = RecordCache::default();
        for index in 0..MAX_ENTRIES - 1 {
            cache.insert(format!("old-{index}"), None, 0, 10);
        }
        cache.insert("fresh".into(), None, 100, 10);
        cache.insert("newest".into(), None, 105, 10);
        assert_eq!(cache.len(), 2);
        assert!(cache.get("fresh", 105, 10).is_some());
    }
}
