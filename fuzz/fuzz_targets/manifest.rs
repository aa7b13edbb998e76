//! `manifest.json`: `Manifest::from_bytes` must return Ok or Err, never
//! panic; a manifest that reads names only files inside the index folder,
//! `locate` names a shard that exists, and it writes back (as
//! `index::dir::set_fusion` does) to JSON that reads the same.
#![no_main]

use ernie_search::format::shard::{Manifest, Part};
use libfuzzer_sys::fuzz_target;

fuzz_target!(init: ernie_search_fuzz::init(), |data: &[u8]| {
    let Ok(m) = Manifest::from_bytes(data) else { return };
    let probes = [0, 1, m.count / 2, m.count.saturating_sub(1), m.count, m.count.saturating_add(1), usize::MAX];
    for i in probes {
        match m.locate(i) {
            Some((shard, pos)) => {
                assert!(i < m.count);
                assert!(shard < m.shards.len(), "locate({i}) names shard {shard} of {}", m.shards.len());
                assert!(pos < m.shard_size);
            }
            None => assert!(i >= m.count),
        }
    }
    // The first and last of each numbered set (a named set may count a million).
    let ends = |n: usize| [0, n.saturating_sub(1)];
    let mut names: Vec<String> = vec![m.index_file.clone()];
    names.extend(m.model_file.clone());
    names.extend(ends(m.shards.len()).into_iter().filter_map(|i| m.shard_name(i)));
    if let Some(l) = &m.lexical {
        names.push(l.meta.clone());
        names.extend(ends(l.blocks.len()).into_iter().filter_map(|i| l.block_name(i)));
    }
    if let Some(c) = &m.clusters {
        names.push(c.head.clone());
        names.extend(ends(c.lists.len()).into_iter().filter_map(|i| c.list_name(i)));
    }
    for n in names {
        assert!(
            !n.is_empty() && !n.starts_with('/') && !n.contains("..") && !n.contains('\\') && !n.contains(':') && n.matches('/').count() <= 1,
            "a manifest that reads names {n:?}, which may leave the index folder"
        );
    }
    for part in [Part::Index, Part::Model, Part::LexicalMeta, Part::LexicalBlock, Part::Shard] {
        let _ = m.cap(part);
    }
    let bytes = serde_json::to_vec_pretty(&m).expect("a manifest serialises");
    let again = Manifest::from_bytes(&bytes).expect("a manifest written back reads again");
    assert_eq!(again, m, "write -> read changed the manifest");
});
