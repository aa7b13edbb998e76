//! A passage shard (JSON): `shard_from_bytes` must return Ok or Err, never
//! panic; passages that read must write back to a shard that reads the same.
#![no_main]

use ernie_search::format::shard::{shard_from_bytes, shard_to_bytes};
use libfuzzer_sys::fuzz_target;

fuzz_target!(init: ernie_search_fuzz::init(), |data: &[u8]| {
    let Ok(passages) = shard_from_bytes(data) else { return };
    let bytes = shard_to_bytes(&passages).expect("passages serialise");
    let again = shard_from_bytes(&bytes).expect("a shard written back reads again");
    assert_eq!(again, passages, "write -> read changed the shard");
});
