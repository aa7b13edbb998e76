//! The token-table file (`format::table`): `from_bytes` and the head reader
//! must return Ok or Err, never panic; a table that reads must write back to
//! bytes that read as the same table, and encode any token ids without
//! panicking; a head read alone must take its chunks one by one as the whole
//! file does.
#![no_main]

use ernie_search::format::table::{from_bytes, head_from_bytes, to_bytes};
use libfuzzer_sys::fuzz_target;

fn check(data: &[u8]) {
    if let Ok(head) = head_from_bytes(data, None) {
        if let Ok(mut table) = head.empty_table() {
            for c in 0..head.n_chunks().min(64) {
                let at = head.chunk_offset(c);
                let Some(bytes) = data.get(at..at.saturating_add(head.chunk_len(c))) else { break };
                if let Ok(chunk) = head.chunk(c, bytes) {
                    table.set_chunk(c, chunk).expect("a chunk the head accepts fits its table");
                }
            }
        }
    }
    let Ok(file) = from_bytes(data) else { return };
    let bytes = to_bytes(&file).expect("a table that reads writes back");
    let again = from_bytes(&bytes).expect("a table written back reads again");
    assert_eq!(again.table, file.table, "write -> read changed the table");
    let vocab = file.table.vocab() as u32;
    let ids = [0, 1, vocab / 2, vocab.saturating_sub(1), vocab, u32::MAX];
    if let Some(v) = file.table.encode_ids(&ids).expect("a whole table has every chunk") {
        assert_eq!(v.len(), file.table.dim);
        assert!(v.iter().all(|x| x.is_finite()));
    }
}

fuzz_target!(init: ernie_search_fuzz::init(), |data: &[u8]| {
    check(data);
    if let Some(repaired) = ernie_search_fuzz::repair_table(data) {
        check(&repaired);
    }
});
