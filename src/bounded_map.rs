//! The eviction rule shared by the isolate caches: a map never grows past its bound.

use std::collections::HashMap;
use std::hash::Hash;

/// Inserts `key` into `map`, which contains at most `max_entries`. When a new key would
/// exceed the bound, entries for which `is_live` is false are dropped first, then the
/// whole map, so every insert stays cheap and memory stays bounded.
pub fn insert_bounded<K: Eq + Hash, V>(
    map: &mut HashMap<K, V>,
    max_entries: usize,
    key: K,
    value: V,
    is_live: impl Fn(&V) -> bool,
) {
    if map.len() >= max_entries && !map.contains_key(&key) {
        map.retain(|_, value| is_live(value));
        if map.len() >= max_entries {
            map.clear();
        }
    }
    map.insert(key, value);
}
