//! The builder with an embedding cache, on a tiny synthetic model: with an
//! empty cache it builds what it builds without one, a second build takes
//! every vector from the cache, and an edit re-encodes only what changed.

use ernie_search::format::index as index_file;
use ernie_search::format::model::WeightDType;
use ernie_search::format::shard::Passage;
use ernie_search::index::builder::{self, embed_queries, embed_queries_cached, BuildOptions};
use ernie_search::index::embed_cache::EmbedCache;
use ernie_search::synthetic::{tiny_model, WORDS};
use ernie_search::{Embedder, Pooling};

fn embedder() -> Embedder {
    Embedder::from_bytes(&tiny_model(3, WeightDType::Q8_0, Pooling::Mean).unwrap()).unwrap()
}

/// 20 passages; every fifth long enough for several 48-token windows.
fn corpus(salt: usize) -> Vec<Passage> {
    (0..20)
        .map(|i| {
            let n = if i % 5 == 0 { 110 } else { 7 + i % 6 };
            let salt = if i == 5 { salt } else { 0 };
            let words: Vec<&str> = (0..n).map(|j| WORDS[(i * 7 + j * 13 + j * j + salt) % WORDS.len()]).collect();
            Passage { id: format!("p{i:02}"), title: String::new(), text: words.join(" "), url: None }
        })
        .collect()
}

fn cache_of(e: &Embedder) -> EmbedCache {
    EmbedCache::new(&e.card().fingerprint, e.dim())
}

#[test]
fn a_cached_build_reuses_every_window_it_has_seen() {
    let (e, opts) = (embedder(), BuildOptions::default());
    let fresh = builder::build(&e, &corpus(0), &opts, &mut ()).unwrap();
    let rows = fresh.windows.rows;
    assert!(rows > 20, "long passages in windows: {rows} rows");
    let mut cache = cache_of(&e);
    let first = builder::build_cached(&e, &corpus(0), &opts, Some(&mut cache), &mut ()).unwrap();
    let bytes = |b: &builder::Built| index_file::to_bytes(&b.index).unwrap();
    assert_eq!(bytes(&first), bytes(&fresh), "an empty cache encodes as a build without one");
    assert_eq!((cache.reused(), cache.encoded(), cache.kept()), (0, rows, rows));

    let mut cache = EmbedCache::from_bytes(&cache.to_bytes().unwrap(), &e.card().fingerprint, e.dim()).unwrap();
    let second = builder::build_cached(&e, &corpus(0), &opts, Some(&mut cache), &mut ()).unwrap();
    assert_eq!(bytes(&second), bytes(&fresh), "every vector from the cache, as it was computed");
    assert_eq!((cache.reused(), cache.encoded()), (rows, 0));
}

#[test]
fn an_edited_passage_is_the_only_one_encoded_and_the_rest_matches_a_fresh_build() {
    let (e, opts) = (embedder(), BuildOptions::default());
    let mut cache = cache_of(&e);
    builder::build_cached(&e, &corpus(0), &opts, Some(&mut cache), &mut ()).unwrap();
    // As the CLI does: the next build opens what the last one saved.
    let mut cache = EmbedCache::from_bytes(&cache.to_bytes().unwrap(), &e.card().fingerprint, e.dim()).unwrap();
    let edited = corpus(3);
    let fresh = builder::build(&e, &edited, &opts, &mut ()).unwrap();
    let (rows, windows_of_5) = (fresh.windows.rows, fresh.index.passage_vectors(5).unwrap().len());
    assert!(windows_of_5 >= 3, "passage 5 is long: {windows_of_5} windows");
    let cached = builder::build_cached(&e, &edited, &opts, Some(&mut cache), &mut ()).unwrap();
    assert_eq!((cache.reused(), cache.encoded()), (rows - windows_of_5, windows_of_5));
    assert_eq!(cached.index.ids(), fresh.index.ids());
    for o in 0..fresh.index.len() {
        let (a, b) = (cached.index.passage_vectors(o).unwrap(), fresh.index.passage_vectors(o).unwrap());
        let gap = a.iter().flatten().zip(b.iter().flatten()).map(|(x, y)| (x - y).abs()).fold(0f32, f32::max);
        assert!(a.len() == b.len() && gap < 1e-5, "passage {o}: {gap}");
    }
    assert_eq!(cache.kept(), rows, "the old windows of passage 5 are not kept");
}

#[test]
fn queries_come_from_the_cache_and_keys_never_cross_kinds() {
    let e = embedder();
    let texts: Vec<String> = (0..10).map(|i| format!("{} {} {}", WORDS[i], WORDS[i + 3], WORDS[i + 7])).collect();
    let plain = embed_queries(&e, &texts, 4, &mut ()).unwrap();
    let mut cache = cache_of(&e);
    assert_eq!(embed_queries_cached(&e, &texts, 4, Some(&mut cache), &mut ()).unwrap(), plain);
    assert_eq!(embed_queries_cached(&e, &texts, 4, Some(&mut cache), &mut ()).unwrap(), plain);
    assert_eq!((cache.reused(), cache.encoded()), (10, 10));
    assert!(embed_queries_cached(&e, &["  "], 4, Some(&mut cache), &mut ()).is_err(), "an empty query");
    // The same words as a passage: another kind, another key.
    let ps: Vec<Passage> = texts
        .iter()
        .enumerate()
        .map(|(i, t)| Passage { id: format!("q{i}"), title: String::new(), text: t.clone(), url: None })
        .collect();
    builder::build_cached(&e, &ps, &BuildOptions::default(), Some(&mut cache), &mut ()).unwrap();
    assert_eq!((cache.reused(), cache.encoded()), (10, 20));
}
