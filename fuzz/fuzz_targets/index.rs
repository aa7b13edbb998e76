//! The vector index file: `format::index::from_bytes` must return Ok or Err,
//! never panic; what it returns must be searchable and write back to bytes
//! that read as the same index.
#![no_main]

use ernie_search::format::index::{from_bytes, to_bytes};
use libfuzzer_sys::fuzz_target;

fn check(data: &[u8]) {
    let Ok(index) = from_bytes(data) else { return };
    assert!(index.dim() > 0);
    assert!(index.rows() >= index.len());
    if index.dim() <= 1 << 16 {
        let query = vec![0.5f32; index.dim()];
        let hits = index.search(&query, 3).expect("a query of the index's dimension");
        assert!(hits.len() <= index.len().min(3));
        assert!(hits.iter().all(|h| h.ordinal < index.len()));
    }
    let bytes = to_bytes(&index).expect("an index that was read writes back");
    let again = from_bytes(&bytes).expect("an index written back reads again");
    assert_eq!(to_bytes(&again).expect("writes back"), bytes, "write -> read -> write is not stable");
}

fuzz_target!(init: ernie_search_fuzz::init(), |data: &[u8]| {
    check(data);
    if let Some(repaired) = ernie_search_fuzz::repair_index(data) {
        check(&repaired);
    }
});
