//! The clustered vector files (`format::clusters`). An input is a head and a
//! list: a u32 LE length, that many bytes of head, the rest a list. Reading
//! the head, adding the list and searching must return Ok or Err, never
//! panic; a list the head accepts is marked loaded and a second copy of it
//! is accepted alike; a list refused changes nothing.
#![no_main]

use ernie_search::format::clusters::{add_list, head_from_bytes};
use libfuzzer_sys::fuzz_target;

fn check(head: &[u8], list: &[u8]) {
    let Ok(mut index) = head_from_bytes(head) else { return };
    let dim = index.dim();
    let query: Vec<f32> = (0..dim).map(|i| if i % 2 == 0 { 0.5 } else { -0.25 }).collect();
    let before = index.clusters().map(|c| c.loaded_count());
    match add_list(&mut index, list) {
        Ok(c) => {
            let map = index.clusters().expect("a head's index is read by cluster");
            assert!(map.is_loaded(c as usize), "an accepted list is marked loaded");
            add_list(&mut index, list).expect("the same list is accepted again");
        }
        Err(_) => assert_eq!(index.clusters().map(|c| c.loaded_count()), before, "a refused list changed the index"),
    }
    if let Ok(hits) = index.search(&query, 5) {
        assert!(hits.iter().all(|h| h.ordinal < index.len()));
    }
    let _ = index.clusters().map(|c| c.missing(&query));
}

fuzz_target!(init: ernie_search_fuzz::init(), |data: &[u8]| {
    let Some((n, rest)) = data.split_first_chunk::<4>() else { return };
    let n = (u32::from_le_bytes(*n) as usize).min(rest.len());
    let (head, list) = rest.split_at(n);
    check(head, list);
    if let Some((head, list)) = ernie_search_fuzz::repair_clusters(head, list) {
        check(&head, &list);
    }
});
