//! The embedding cache file (`format::embed_cache`) and the cache that reads
//! it (`index::embed_cache::EmbedCache`): any bytes give Ok or Err, never a
//! panic or an allocation the file's length does not pay for; a file that
//! reads writes back to the same bytes, and loads as a cache of its own model
//! that answers each key with its vector and, every entry used, saves the
//! same file.
#![no_main]

use ernie_search::format::embed_cache::{from_bytes, to_bytes};
use ernie_search::index::embed_cache::EmbedCache;
use libfuzzer_sys::fuzz_target;

fn check(data: &[u8]) {
    let Ok(file) = from_bytes(data) else { return };
    let bytes = to_bytes(&file).expect("a cache file that reads writes back");
    assert_eq!(bytes, data, "read -> write changed the bytes");
    let mut cache = EmbedCache::from_bytes(data, &file.fingerprint, file.dim).expect("its own model's cache");
    assert!(EmbedCache::from_bytes(data, &file.fingerprint, file.dim + 1).is_err(), "another width is refused");
    for (key, v) in &file.entries {
        assert_eq!(cache.get(key).as_ref(), Some(v));
    }
    assert_eq!(cache.to_bytes().expect("writes back"), bytes, "a cache whose every entry is used saves the same file");
}

fuzz_target!(init: ernie_search_fuzz::init(), |data: &[u8]| {
    check(data);
    if let Some(repaired) = ernie_search_fuzz::repair_embed_cache(data) {
        check(&repaired);
    }
});
