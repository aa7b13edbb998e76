//! A lexical (BM25) term-block file: `block_from_bytes` must return Ok or
//! Err, never panic; a block that reads must write back to a block that reads
//! the same, and load into an index of a matching corpus and score.
#![no_main]

use ernie_search::format::lexical::{block_from_bytes, block_to_bytes, BLOCK_MAGIC};
use ernie_search::lexical::{Bm25Params, LexicalMeta};
use ernie_search::LexicalIndex;
use libfuzzer_sys::fuzz_target;

fn check(data: &[u8]) {
    let Ok((number, corpus, block)) = block_from_bytes(data) else { return };
    // The passages a block names are bounded by its input size; its block
    // number is not: keep the harness's own allocations small.
    let passages = block.values().filter_map(|p| p.docs.last()).map(|&d| d as usize + 1).max().unwrap_or(1);
    if number >= 4096 || passages > 1 << 20 {
        return;
    }
    let meta = LexicalMeta { params: Bm25Params::default(), doc_len: vec![3; passages], n_blocks: number + 1, corpus };
    let bytes = block_to_bytes(&meta, number, &block);
    let (n2, c2, b2) = block_from_bytes(&bytes).expect("a block written back reads again");
    assert_eq!((n2, c2), (number, corpus));
    assert_eq!(b2, block, "write -> read changed the block");
    let mut index = LexicalIndex::from_meta(meta).expect("a valid meta");
    index.add_block(number, &corpus, block.clone()).expect("the block fits this index");
    for term in block.keys().take(4) {
        if let Ok(Some(scores)) = index.scores(term) {
            assert_eq!(scores.len(), passages);
        }
    }
}

fuzz_target!(init: ernie_search_fuzz::init(), |data: &[u8]| {
    check(data);
    if let Some(repaired) = ernie_search_fuzz::repair_lexical(data, BLOCK_MAGIC) {
        check(&repaired);
    }
});
