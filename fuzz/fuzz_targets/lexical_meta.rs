//! The lexical (BM25) meta file: `meta_from_bytes` must return Ok or Err,
//! never panic; a meta that reads must either make a `LexicalIndex` or be
//! refused by `from_meta` with an Err, and must write back to the same bytes.
#![no_main]

use ernie_search::format::lexical::{meta_from_bytes, meta_to_bytes, META_MAGIC};
use ernie_search::LexicalIndex;
use libfuzzer_sys::fuzz_target;

fn check(data: &[u8]) {
    let Ok(meta) = meta_from_bytes(data) else { return };
    let bytes = meta_to_bytes(&meta);
    let again = meta_from_bytes(&bytes).expect("a meta written back reads again");
    assert_eq!(meta_to_bytes(&again), bytes, "write -> read -> write is not stable");
    let Ok(index) = LexicalIndex::from_meta(meta) else { return };
    assert!(!index.is_empty());
    // No block is loaded: a query either names the blocks it needs or has no
    // searchable term; neither may panic.
    let missing = index.missing_blocks("river city kings of france");
    assert!(missing.iter().all(|&b| b < index.n_blocks()));
    let _ = index.scores("river city kings of france");
}

fuzz_target!(init: ernie_search_fuzz::init(), |data: &[u8]| {
    check(data);
    if let Some(repaired) = ernie_search_fuzz::repair_lexical(data, META_MAGIC) {
        check(&repaired);
    }
});
