//! Long passages in windows, the BM25 index on disk, and the three search
//! modes, on a tiny synthetic model (see `synthetic.rs`).

use ernie_search::format::model::WeightDType;
use ernie_search::format::shard::{FusionSetting, Passage, WindowSpec};
use ernie_search::format::{index as index_file, lexical as lexical_file};
use ernie_search::index::builder::{self, BuildOptions, Windows};
use ernie_search::index::dir::{write_dir, IndexDir, IndexParts};
use ernie_search::synthetic::{tiny_model, WORDS};
use ernie_search::{
    Bm25Params, Embedder, Error, FlatIndex, Fusion, LexicalIndex, Mode, Pooling, Retriever, VectorDType,
};

fn embedder() -> Embedder {
    Embedder::from_bytes(&tiny_model(3, WeightDType::Q8_0, Pooling::Mean).unwrap()).unwrap()
}

/// 30 passages of 6 to 40 words; every fifth is long (past the 48-token window).
fn corpus() -> Vec<Passage> {
    (0..30)
        .map(|i| {
            let n = if i % 5 == 0 { 120 } else { 6 + i % 9 };
            let words: Vec<&str> = (0..n).map(|j| WORDS[(i * 7 + j * 13 + j * j) % WORDS.len()]).collect();
            Passage { id: format!("p{i:02}"), title: String::new(), text: words.join(" "), url: None }
        })
        .chain([
            Passage {
                id: "cjk".into(), title: String::new(), text: "東京都は日本の首都です".into(), url: None
            },
            Passage {
                id: "html".into(),
                title: String::new(),
                text: "<script>alert(1)</script> zebra".into(),
                url: None,
            },
        ])
        .collect()
}

fn build(e: &Embedder, ps: &[Passage], max_windows: usize) -> (FlatIndex, LexicalIndex) {
    let texts: Vec<&str> = ps.iter().map(|p| p.text.as_str()).collect();
    let ids: Vec<&str> = ps.iter().map(|p| p.id.as_str()).collect();
    let (windows, _) = e.tokenize_passage_windows(&texts, 8, max_windows).unwrap();
    let mut index = FlatIndex::new(e.dim(), VectorDType::F32, &e.card().fingerprint).unwrap();
    for (p, w) in ps.iter().zip(&windows) {
        index.push_windows(&p.id, &e.embed_tokens(w).unwrap()).unwrap();
    }
    (index, LexicalIndex::build(&ids, &texts, Bm25Params::default(), 3).unwrap())
}

#[test]
fn long_passages_get_overlapping_windows_and_score_as_their_best() {
    let e = embedder();
    let ps = corpus();
    let (windows, cut) = e.tokenize_passage_windows(&[ps[0].text.as_str()], 8, 16).unwrap();
    let w = &windows[0];
    assert!(w.len() >= 3 && cut == 0, "{} windows: {:?}", w.len(), w.iter().map(|t| t.ids.len()).collect::<Vec<_>>());
    assert!(
        w.iter().all(|t| t.ids.len() <= 48 && t.ids[0] == 2 && *t.ids.last().unwrap() == 3),
        "[CLS] ... [SEP], within the window"
    );
    // Consecutive windows share 8 tokens.
    assert_eq!(w[0].ids[48 - 1 - 8..48 - 1], w[1].ids[1..9]);
    let (one, cut) = e.tokenize_passage_windows(&[ps[0].text.as_str()], 8, 1).unwrap();
    assert_eq!((one[0].len(), cut), (1, 1));
    assert!(e.tokenize_passage_windows(&["x"], 46, 4).is_err(), "an overlap filling the window is refused");

    let (index, _) = build(&e, &ps, 16);
    assert_eq!(index.len(), ps.len());
    assert!(index.rows() > index.len());
    let q = e.embed_queries(&["river city king"]).unwrap().remove(0);
    let mut scores = Vec::new();
    index.passage_scores(&q, &mut scores).unwrap();
    let best_window = e
        .embed_tokens(w)
        .unwrap()
        .iter()
        .map(|v| v.iter().zip(&q).map(|(a, b)| a * b).sum::<f32>())
        .fold(f32::MIN, f32::max);
    assert!((scores[0] - best_window).abs() < 1e-5, "{} vs {best_window}", scores[0]);
    let hits = index.search(&q, 100).unwrap();
    let mut ids: Vec<usize> = hits.iter().map(|h| h.ordinal).collect();
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), ps.len(), "results are passages, each once");

    // Windows survive the file format; version 1 files (no windows) still load.
    let back = index_file::from_bytes(&index_file::to_bytes(&index).unwrap()).unwrap();
    assert_eq!(back, index);
    let (flat, _) = build(&e, &ps, 1);
    assert_eq!(index_file::from_bytes(&as_version_1(&index_file::to_bytes(&flat).unwrap())).unwrap(), flat);
}

/// Rewrites a version-2 index of one window per passage as version 1.
fn as_version_1(v2: &[u8]) -> Vec<u8> {
    let n = u64::from_le_bytes(v2[24..32].try_into().unwrap()) as usize;
    assert!(v2[80..80 + n].iter().all(|&b| b == 1));
    let body = &v2[80 + n..];
    let mut out = v2[..80].to_vec();
    out[8..12].copy_from_slice(&1u32.to_le_bytes());
    out[64..72].copy_from_slice(&(body.len() as u64).to_le_bytes());
    out[72..76].copy_from_slice(&crc32fast::hash(body).to_le_bytes());
    out.extend_from_slice(body);
    out
}

#[test]
fn modes_answer_and_explain() {
    let e = embedder();
    let ps = corpus();
    let (index, lexical) = build(&e, &ps, 16);
    let r = Retriever::new(e, index).unwrap().with_lexical(lexical).unwrap();

    // Lexical: only passages holding a query term, best first.
    let a = r.search("zebra", 5, Mode::Lexical).unwrap();
    assert_eq!(a.hits.iter().map(|h| h.id.as_str()).collect::<Vec<_>>(), ["html"]);
    let a = r.search("東京", 5, Mode::Lexical).unwrap();
    assert_eq!(a.hits[0].id, "cjk", "CJK text is searchable by character bigrams");

    // Hybrid keeps both scores; the exact keyword match comes first.
    let a = r.search("zebra", 5, Mode::Hybrid).unwrap();
    assert_eq!((a.mode, a.hits[0].id.as_str()), (Mode::Hybrid, "html"));
    assert!(a.hits.iter().all(|h| h.dense.is_some() && h.lexical.is_some()));
    assert_eq!(a.hits.len(), 5);

    // Stop words only: lexical refuses, hybrid answers densely and says so.
    assert!(matches!(r.search("the of and", 5, Mode::Lexical), Err(Error::Query(_))));
    let a = r.search("the of and?!", 5, Mode::Hybrid).unwrap();
    assert_eq!((a.mode, a.hits.len()), (Mode::Dense, 5));
    assert!(a.note.unwrap().contains("stop words"));
    assert!(matches!(r.search(&"river ".repeat(20_000), 5, Mode::Hybrid), Err(Error::Query(_))));
    assert!(matches!(r.search("", 5, Mode::Lexical), Err(Error::Query(_))));
}

#[test]
fn fusion_weight_ends_reproduce_the_single_modes() {
    let e = embedder();
    let ps = corpus();
    let (index, lexical) = build(&e, &ps, 16);
    let r = Retriever::new(e, index).unwrap().with_lexical(lexical).unwrap();
    let ids = |a: ernie_search::Answer| a.hits.into_iter().map(|h| h.id).collect::<Vec<_>>();
    let q = "river city war music";
    let dense = ids(r.search(q, 10, Mode::Dense).unwrap());
    let lexical = ids(r.search(q, 10, Mode::Lexical).unwrap());
    let r = r.with_fusion(Fusion::Convex { alpha: 1.0 });
    assert_eq!(ids(r.search(q, 10, Mode::Hybrid).unwrap()), dense);
    let r = r.with_fusion(Fusion::Convex { alpha: 0.0 });
    assert_eq!(ids(r.search(q, 10, Mode::Hybrid).unwrap())[..lexical.len()], lexical[..]);
}

#[test]
fn a_lexical_index_of_other_passages_is_refused() {
    let e = embedder();
    let ps = corpus();
    let (index, _) = build(&e, &ps, 1);
    let (_, other) = build(&e, &ps[1..], 1);
    let err = Retriever::new(e, index).unwrap().with_lexical(other).err().unwrap();
    assert!(err.to_string().contains("other passages"), "{err}");
}

#[test]
fn index_directory_loads_only_the_term_blocks_a_query_needs() {
    let e = embedder();
    let ps = corpus();
    let (index, lexical) = build(&e, &ps, 16);
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("idx");
    let parts = IndexParts {
        index: &index,
        passages: &ps,
        lexical: Some(&lexical),
        windows: Some(WindowSpec { window: 48, overlap: 8, max_windows: 16, rows: index.rows() }),
        fusion: Some(FusionSetting { fusion: Fusion::Convex { alpha: 0.4 }, tuned_on: None }),
        shard_size: 8,
        model_name: "tiny",
        model_path: None,
        model_bytes: Some(b"not really a model"),
        table: None,
        clusters: None,
    };
    let m = write_dir(&dir, &parts).unwrap();
    assert_eq!(m.lexical.as_ref().unwrap().blocks.len(), 3);
    assert!(m.lexical.as_ref().unwrap().bytes > 0);

    let bundled = m.model_file.as_ref().unwrap();
    assert!(bundled.starts_with("model.") && dir.join(bundled).is_file());
    let opened = IndexDir::open(&dir).unwrap();
    assert_eq!(opened.shards.manifest.fusion.as_ref().unwrap().fusion, Fusion::Convex { alpha: 0.4 });
    let mut part = opened.lexical.unwrap();
    let need = part.missing_blocks("zebra");
    assert_eq!(need.len(), 1);
    assert!(part.scores("zebra").is_err(), "a missing block is an error, not an empty answer");
    let (n, corpus, block) = IndexDir::read_block(&opened.shards, need[0]).unwrap();
    part.add_block(n, &corpus, block).unwrap();
    assert_eq!(part.scores("zebra").unwrap(), lexical.scores("zebra").unwrap());

    // A damaged block names itself.
    let path = dir.join(m.lexical.as_ref().unwrap().block_name(need[0] as usize).unwrap());
    let mut bytes = std::fs::read(&path).unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 0x40;
    assert!(matches!(lexical_file::block_from_bytes(&bytes), Err(Error::Checksum { .. })));
}

#[test]
fn passages_added_at_run_time_are_searchable() {
    let e = embedder();
    let ps = corpus();
    let fp = e.card().fingerprint.clone();
    let mut r = Retriever::new(e, FlatIndex::new(64, VectorDType::F32, &fp).unwrap()).unwrap();
    assert!(r.search("river", 3, Mode::Hybrid).unwrap_err().to_string().contains("no index"));
    let opts = BuildOptions::default();
    let eight = BuildOptions { windows: Windows { overlap: Some(8), max: 16 }, ..opts };
    r.add_passages(&ps[..20], &opts).unwrap();
    r.add_passages(&ps[20..], &eight).unwrap();
    assert_eq!(r.index().len(), ps.len());
    assert_eq!(r.search("zebra", 3, Mode::Lexical).unwrap().hits[0].id, "html");
    let err = r.add_passages(&ps[..1], &opts).unwrap_err();
    assert!(err.to_string().contains("already in the index"), "{err}");
    let blank = Passage { id: "new".into(), title: String::new(), text: "  ".into(), url: None };
    assert!(r.add_passages(&[blank], &opts).is_err());
    let twice = [ps[0].clone(), ps[0].clone()].map(|p| Passage { id: "twice".into(), ..p });
    assert!(r.add_passages(&twice, &opts).unwrap_err().to_string().contains("appears twice"));
    assert_eq!(r.index().len(), ps.len(), "a refused batch adds nothing");

    // Added to a built index: the same BM25 scores as building them together.
    let e = embedder();
    let (index, lexical) = build(&e, &ps[..20], 16);
    let mut grown = Retriever::new(e, index).unwrap().with_lexical(lexical).unwrap();
    grown.add_passages(&ps[20..], &eight).unwrap();
    let (_, whole) = build(&embedder(), &ps, 16);
    let q = "river city war 東京";
    let (a, b) = (grown.lexical().unwrap().scores(q).unwrap().unwrap(), whole.scores(q).unwrap().unwrap());
    assert!(a.iter().zip(&b).all(|(x, y)| (x - y).abs() < 1e-5));
}

/// The CLI's `index`, its `index-site` and the browser's `addPassages` all go
/// through `index::builder`: an engine that starts empty and is given passages
/// holds the very vectors and BM25 blocks the builder writes for them.
#[test]
fn added_passages_build_the_same_bytes_as_the_indexer() {
    let ps = corpus();
    let opts = BuildOptions { block_bytes: 512, ..BuildOptions::default() };
    let e = embedder();
    let built = builder::build(&e, &ps, &opts, &mut ()).unwrap();
    assert!(built.lexical.n_blocks() > 1, "the block size splits BM25");
    let fp = e.card().fingerprint.clone();
    let mut r = Retriever::new(e, FlatIndex::new(64, VectorDType::F32, &fp).unwrap()).unwrap();
    r.add_passages(&ps, &opts).unwrap();
    assert_eq!(index_file::to_bytes(r.index()).unwrap(), index_file::to_bytes(&built.index).unwrap());
    let (a, b) = (r.lexical().unwrap(), &built.lexical);
    assert_eq!(lexical_file::meta_to_bytes(a.meta()), lexical_file::meta_to_bytes(b.meta()));
    assert_eq!(a.n_blocks(), b.n_blocks());
    for i in 0..b.n_blocks() {
        let block = |l: &LexicalIndex| lexical_file::block_to_bytes(l.meta(), i, l.block(i).unwrap());
        assert_eq!(block(a), block(b), "BM25 block {i}");
    }
}

/// A token table from the tiny model's own rows (each token alone through the
/// encoder), every token weighing 1 but the special ones.
fn table_of(e: &Embedder) -> ernie_search::TableEncoder {
    use ernie_search::tokenize::Tokens;
    let vocab = e.card().spec.bert.vocab_size;
    let tokens: Vec<Tokens> = (0..vocab as u32).map(|t| Tokens { ids: vec![2, t, 3] }).collect();
    let rows: Vec<f32> = e.embed_tokens(&tokens).unwrap().concat();
    let weights = (0..vocab).map(|t| if t < 5 { 0.0 } else { 1.0 }).collect();
    let table = ernie_search::TokenTable::from_f32(
        &e.card().fingerprint,
        e.dim(),
        &rows,
        weights,
        16,
        ernie_search::index::quant::ValueBits::Int4,
    )
    .unwrap();
    let card = e.card();
    let tok = ernie_search::WordPiece::from_json(card.tokenizer_json.as_bytes(), card.spec.max_query_len).unwrap();
    ernie_search::TableEncoder::new(table, tok).unwrap()
}

#[test]
fn a_table_only_engine_answers_as_the_table_does_beside_the_transformer() {
    use ernie_search::QueryEncoder;
    let e = embedder();
    let ps = corpus();
    let (index, lexical) = build(&e, &ps, 16);
    let both = Retriever::new(embedder(), index.clone())
        .unwrap()
        .with_lexical(lexical.clone())
        .unwrap()
        .with_table(table_of(&e))
        .unwrap();
    let light = Retriever::with_table_only(index.clone(), table_of(&e)).unwrap().with_lexical(lexical).unwrap();
    assert!(!light.has_transformer() && light.default_encoder() == QueryEncoder::Table);
    let query = ps[3].text.split(' ').take(3).collect::<Vec<_>>().join(" ");
    for mode in [Mode::Dense, Mode::Hybrid, Mode::Lexical] {
        let want = both.search_with(&query, 5, mode, QueryEncoder::Table).unwrap();
        let got = light.search(&query, 5, mode).unwrap();
        assert_eq!(got, want, "{mode:?}");
        assert_eq!(got.encoder, (mode != Mode::Lexical).then_some(QueryEncoder::Table), "{mode:?}");
    }
    let by_transformer = both.search(&query, 5, Mode::Dense).unwrap();
    assert_eq!(by_transformer.encoder, Some(QueryEncoder::Transformer));
    let err = light.search_with(&query, 5, Mode::Dense, QueryEncoder::Transformer).unwrap_err();
    assert!(err.to_string().contains("no transformer"), "{err}");
    assert!(light.embedder().is_err());

    // Only special or unknown tokens: no row to encode with, said as such.
    let err = light.search("[UNK] [SEP]", 5, Mode::Dense).unwrap_err();
    assert!(err.to_string().contains("no word of the query has a row"), "{err}");
    // A table distilled against another encoder is refused.
    let other = Embedder::from_bytes(&tiny_model(9, WeightDType::Q8_0, Pooling::Mean).unwrap()).unwrap();
    assert!(Retriever::with_table_only(index, table_of(&other)).is_err());
}

/// A light engine whose vectors arrive by cluster: it asks for the clusters
/// a query probes, answers with a note until they are there, refuses lists
/// of another build, and with every cluster probed ranks as the int8 flat
/// index does.
#[test]
fn a_clustered_engine_fetches_what_a_query_probes_and_says_when_it_lacks_some() {
    use ernie_search::format::clusters;
    use ernie_search::index::clusters::{kmeans, ValueBits};
    use ernie_search::QueryEncoder;
    let e = embedder();
    let ps = corpus();
    let (index, lexical) = build(&e, &ps, 16);
    let c = kmeans(index.store(), index.dim(), index.rows(), 6, 1).unwrap();
    let (head, lists) = clusters::to_parts(&index, &c, 2, ValueBits::Int4).unwrap();
    let mut light = Retriever::with_table_only(index_file::vectors_from_bytes(&head).unwrap(), table_of(&e))
        .unwrap()
        .with_lexical(lexical.clone())
        .unwrap();
    let query = ps[3].text.split(' ').take(3).collect::<Vec<_>>().join(" ");
    let missing = light.missing_clusters(&query, QueryEncoder::Table).unwrap();
    assert_eq!(missing.len(), 2, "{missing:?}");
    let before = light.search(&query, 5, Mode::Hybrid).unwrap();
    assert!(before.note.as_deref().unwrap_or("").contains("partial results: 2 of the 2"), "{before:?}");
    // A list of another build is refused and changes nothing.
    let other = kmeans(index.store(), index.dim(), index.rows(), 5, 1).unwrap();
    let (_, foreign) = clusters::to_parts(&index, &other, 2, ValueBits::Int4).unwrap();
    assert!(light.add_cluster(&foreign[0]).is_err());
    for &m in &missing {
        assert_eq!(light.add_cluster(&lists[m as usize]).unwrap(), m);
    }
    assert!(light.missing_clusters(&query, QueryEncoder::Table).unwrap().is_empty());
    let after = light.search(&query, 5, Mode::Hybrid).unwrap();
    assert_eq!(after.note, None, "{after:?}");

    // Every cluster probed and loaded: the int8 flat index's ranking.
    let all = clusters::loaded(&index, &c, 6, ValueBits::Int8).unwrap();
    assert!(index_file::to_bytes(&all).is_err(), "an index read by cluster is never written back");
    let mut flat = FlatIndex::new(index.dim(), VectorDType::Int8, index.fingerprint()).unwrap();
    for o in 0..index.len() {
        flat.push_windows(index.id(o).unwrap(), &index.passage_vectors(o).unwrap()).unwrap();
    }
    let whole = Retriever::with_table_only(flat, table_of(&e)).unwrap().with_lexical(lexical.clone()).unwrap();
    let probed = Retriever::with_table_only(all, table_of(&e)).unwrap().with_lexical(lexical).unwrap();
    for mode in [Mode::Dense, Mode::Hybrid] {
        let (a, b) = (whole.search(&query, 8, mode).unwrap(), probed.search(&query, 8, mode).unwrap());
        let ids = |x: &ernie_search::Answer| x.hits.iter().map(|h| h.id.clone()).collect::<Vec<_>>();
        assert_eq!(ids(&a), ids(&b), "{mode:?}");
    }
}
