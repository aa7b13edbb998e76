//! The library end to end on tiny synthetic models: model file, encoder,
//! index file, search, and the errors bad input must give.

use ernie_search::format::model::{read_card, read_model, WeightDType};
use ernie_search::format::{index as index_file, shard};
use ernie_search::synthetic::{tiny_model, WORDS};
use ernie_search::{Embedder, Error, FlatIndex, Kernel, Mode, Pooling, Retriever, VectorDType};

fn passages(n: usize) -> Vec<String> {
    // Deterministic word salads over the tiny vocabulary.
    (0..n)
        .map(|i| (0..(5 + i % 17)).map(|j| WORDS[(i * 7 + j * 13 + j * j) % WORDS.len()]).collect::<Vec<_>>().join(" "))
        .collect()
}

fn embedder(seed: u64, w: WeightDType) -> Embedder {
    Embedder::from_bytes(&tiny_model(seed, w, Pooling::Mean).expect("tiny model")).expect("load")
}

fn cosine(a: &[f32], b: &[f32]) -> f32 {
    let d: f32 = a.iter().zip(b).map(|(x, y)| x * y).sum();
    let n = |v: &[f32]| v.iter().map(|x| x * x).sum::<f32>().sqrt();
    d / (n(a) * n(b))
}

#[test]
fn model_file_round_trips_its_card() {
    let bytes = tiny_model(1, WeightDType::Q8_0, Pooling::Cls).unwrap();
    let card = read_card(&bytes).unwrap();
    assert_eq!(card.spec.pooling, Pooling::Cls);
    assert_eq!(card.weights, "q8_0");
    assert_eq!(card.spec.bert.num_hidden_layers, 2);
    assert_eq!(card.fingerprint.len(), 64);
    assert_eq!(card.provenance["seed"], 1);
    let file = read_model(&bytes).unwrap();
    assert_eq!(file.tensors.len(), card.tensor_count);
    // Another seed, another fingerprint.
    let other = read_card(&tiny_model(2, WeightDType::Q8_0, Pooling::Cls).unwrap()).unwrap();
    assert_ne!(card.fingerprint, other.fingerprint);
}

#[test]
fn embeddings_are_unit_length_and_batch_independent() {
    let e = embedder(3, WeightDType::Q8_0);
    let texts = passages(9);
    let refs: Vec<&str> = texts.iter().map(String::as_str).collect();
    let batched = e.embed_passages(&refs).unwrap();
    assert_eq!(batched.len(), 9);
    for (t, v) in refs.iter().zip(&batched) {
        assert_eq!(v.len(), 64);
        let norm: f32 = v.iter().map(|x| x * x).sum::<f32>().sqrt();
        assert!((norm - 1.0).abs() < 1e-4, "norm {norm}");
        // Padding in a batch must not change a text's vector.
        let alone = e.embed_passages(&[t]).unwrap();
        assert!(cosine(&alone[0], v) > 0.9999, "batched vs alone differ for {t:?}");
    }
    assert!(cosine(&batched[0], &batched[1]) < 0.999, "different texts must differ");
}

#[test]
fn quantized_weights_track_f32() {
    let texts = passages(20);
    let refs: Vec<&str> = texts.iter().map(String::as_str).collect();
    let f32v = embedder(5, WeightDType::F32).embed_passages(&refs).unwrap();
    for (w, min) in [(WeightDType::F16, 0.9999), (WeightDType::Q8_0, 0.995), (WeightDType::Q4_0, 0.95)] {
        let q = embedder(5, w).embed_passages(&refs).unwrap();
        let mean: f32 = q.iter().zip(&f32v).map(|(a, b)| cosine(a, b)).sum::<f32>() / q.len() as f32;
        assert!(mean >= min, "{w:?}: mean cosine {mean} < {min}");
    }
}

#[test]
fn quantized_and_dense_kernels_agree() {
    let bytes = tiny_model(5, WeightDType::Q8_0, Pooling::Mean).unwrap();
    let texts = passages(12);
    let refs: Vec<&str> = texts.iter().map(String::as_str).collect();
    let q = Embedder::from_bytes_with(&bytes, Kernel::Quantized).unwrap().embed_passages(&refs).unwrap();
    let d = Embedder::from_bytes_with(&bytes, Kernel::Dense).unwrap().embed_passages(&refs).unwrap();
    for (a, b) in q.iter().zip(&d) {
        // Only the quantized kernel rounds activations to 8 bits.
        assert!(cosine(a, b) > 0.995, "cosine {}", cosine(a, b));
    }
}

/// Our fused encoder against candle's two kernels, for both block-quantized
/// weight types, with every GEMM kernel this machine has, on 1 and 2
/// threads (which must agree bit for bit: each text is encoded alone).
#[test]
fn fused_encoder_tracks_candle_for_every_weight_type_kernel_and_thread_count() {
    use ernie_search::model::fused::gemm::Isa;
    let texts = passages(23);
    let mut refs: Vec<&str> = texts.iter().map(String::as_str).collect();
    refs.push("a"); // a one-word passage: [CLS] a [SEP]
                    // An f32 file stays exact: candle's dense kernel, not ours.
    let f32_file = Embedder::from_bytes_with(&tiny_model(5, WeightDType::F32, Pooling::Mean).unwrap(), Kernel::Fused);
    assert_eq!(f32_file.unwrap().cpu_kernel(), "candle");
    for w in [WeightDType::Q8_0, WeightDType::Q4_0] {
        let bytes = tiny_model(5, w, Pooling::Mean).unwrap();
        let dense = Embedder::from_bytes_with(&bytes, Kernel::Dense).unwrap().embed_passages(&refs).unwrap();
        let quant = Embedder::from_bytes_with(&bytes, Kernel::Quantized).unwrap().embed_passages(&refs).unwrap();
        let mut fused = Embedder::from_bytes_with(&bytes, Kernel::Fused).unwrap();
        assert!(fused.cpu_kernel().starts_with("fused"), "{}", fused.cpu_kernel());
        let mut scalar: Option<Vec<Vec<f32>>> = None;
        for isa in Isa::ALL.into_iter().filter(|i| i.available()) {
            let mut run = |threads| {
                let f = fused.fused_mut().unwrap();
                f.set_isa(isa);
                f.set_threads(threads);
                fused.embed_passages(&refs).unwrap()
            };
            let (one, two) = (run(1), run(2));
            assert_eq!(one, two, "{w:?} {isa:?}: threads changed the vectors");
            for ((a, d), q) in one.iter().zip(&dense).zip(&quant) {
                assert!(cosine(a, d) > 0.995, "{w:?} {isa:?}: cosine to dense {}", cosine(a, d));
                // Both quantize activations to 8 bits per 32-block.
                assert!(cosine(a, q) > 0.999, "{w:?} {isa:?}: cosine to quantized {}", cosine(a, q));
            }
            // Kernels differ only in the f32 order of the block sums.
            let r = scalar.get_or_insert_with(|| one.clone());
            for (a, b) in one.iter().zip(r.iter()) {
                assert!(cosine(a, b) > 0.99999, "{w:?} {isa:?} vs scalar: {}", cosine(a, b));
            }
        }
    }
}

/// Bad input to the fused encoder: an empty batch, an id past the
/// vocabulary, a sequence past the positions: answers or clear errors.
#[test]
fn fused_encoder_refuses_what_it_cannot_encode() {
    let e =
        Embedder::from_bytes_with(&tiny_model(5, WeightDType::Q8_0, Pooling::Mean).unwrap(), Kernel::Fused).unwrap();
    assert!(e.embed_passages(&[]).unwrap().is_empty());
    let bad = ernie_search::tokenize::Tokens { ids: vec![0, 1_000_000] };
    let err = e.embed_tokens_cpu(&[bad]).unwrap_err().to_string();
    assert!(err.contains("outside the model"), "{err}");
    let long = ernie_search::tokenize::Tokens { ids: vec![1; 100_000] };
    let err = e.embed_tokens_cpu(&[long]).unwrap_err().to_string();
    assert!(err.contains("positions"), "{err}");
}

#[test]
fn long_passages_are_truncated_not_refused() {
    let e = embedder(3, WeightDType::Q8_0);
    let long = "river ".repeat(20_000);
    let v = e.embed_passages(&[&long]).unwrap();
    assert_eq!(v[0].len(), 64);
}

#[test]
fn bad_queries_get_clear_errors() {
    let e = embedder(3, WeightDType::Q8_0);
    let err = e.embed_queries(&["   "]).unwrap_err().to_string();
    assert!(err.contains("empty"), "{err}");
    let huge = "a".repeat(100_000);
    let err = e.embed_queries(&[&huge]).unwrap_err().to_string();
    assert!(err.contains("100000 characters"), "{err}");
    // Text the tokenizer has never seen still works: unknown tokens, not panics.
    assert_eq!(e.embed_queries(&["日本語 🚀 <script>"]).unwrap().len(), 1);
}

#[test]
fn truncated_foreign_and_wrong_version_models_are_refused() {
    let bytes = tiny_model(1, WeightDType::Q8_0, Pooling::Mean).unwrap();
    let err = Embedder::from_bytes(&bytes[..bytes.len() / 2]).err().unwrap().to_string();
    assert!(err.contains("truncated"), "{err}");
    let err = Embedder::from_bytes(b"PK\x03\x04 a zip, not a model").err().unwrap().to_string();
    assert!(err.contains("not a GGUF file"), "{err}");
    let err = Embedder::from_bytes(&[]).err().unwrap().to_string();
    assert!(err.contains("not a GGUF file"), "{err}");
    // Bump ernie.format_version in place: it is a u32 right after its key.
    let key = b"ernie.format_version";
    let at = bytes.windows(key.len()).position(|w| w == key).unwrap() + key.len() + 4;
    let mut newer = bytes.clone();
    newer[at..at + 4].copy_from_slice(&99u32.to_le_bytes());
    let err = Embedder::from_bytes(&newer).err().unwrap();
    assert!(matches!(err, Error::Version { found: 99, .. }), "{err}");
}

fn build_index(e: &Embedder, texts: &[String], dtype: VectorDType) -> FlatIndex {
    let refs: Vec<&str> = texts.iter().map(String::as_str).collect();
    let mut idx = FlatIndex::new(e.dim(), dtype, &e.card().fingerprint).unwrap();
    for (i, v) in e.embed_passages(&refs).unwrap().iter().enumerate() {
        idx.push(&format!("p{i:03}"), v).unwrap();
    }
    idx
}

#[test]
fn index_file_round_trips_every_dtype() {
    let e = embedder(3, WeightDType::Q8_0);
    let texts = passages(50);
    for dtype in [VectorDType::F32, VectorDType::F16, VectorDType::Int8] {
        let idx = build_index(&e, &texts, dtype);
        let back = index_file::from_bytes(&index_file::to_bytes(&idx).unwrap()).unwrap();
        assert_eq!(back, idx, "{dtype:?}");
    }
}

#[test]
fn search_is_exact_and_low_precision_agrees() {
    let e = embedder(3, WeightDType::Q8_0);
    let texts = passages(200);
    let exact = build_index(&e, &texts, VectorDType::F32);
    let q = e.embed_queries(&["who wrote the first book"]).unwrap().remove(0);
    // Brute force by hand: sort all scores.
    let refs: Vec<&str> = texts.iter().map(String::as_str).collect();
    let vecs = e.embed_passages(&refs).unwrap();
    let mut all: Vec<(f32, usize)> =
        vecs.iter().enumerate().map(|(i, v)| (v.iter().zip(&q).map(|(a, b)| a * b).sum(), i)).collect();
    all.sort_by(|a, b| b.0.total_cmp(&a.0).then(b.1.cmp(&a.1)));
    let hits = exact.search(&q, 10).unwrap();
    let got: Vec<usize> = hits.iter().map(|h| h.ordinal).collect();
    let want: Vec<usize> = all.iter().take(10).map(|x| x.1).collect();
    assert_eq!(got, want);
    for w in hits.windows(2) {
        assert!(w[0].score >= w[1].score);
    }
    for dtype in [VectorDType::F16, VectorDType::Int8] {
        let low = build_index(&e, &texts, dtype).search(&q, 10).unwrap();
        let overlap = low.iter().filter(|h| got.contains(&h.ordinal)).count();
        assert!(overlap >= 8, "{dtype:?} top-10 overlap {overlap}/10");
    }
    assert!(exact.search(&q, 0).unwrap().is_empty());
    assert_eq!(exact.search(&q, 10_000).unwrap().len(), 200);
    assert_eq!(exact.search(&q, usize::MAX).unwrap().len(), 200);
    assert!(exact.search(&q[..3], 5).is_err());
}

#[test]
fn equal_scores_rank_larger_id_first() {
    let mut idx = FlatIndex::new(2, VectorDType::F32, &"0".repeat(64)).unwrap();
    for id in ["p2", "p9", "p1", "p5"] {
        idx.push(id, &[1.0, 0.0]).unwrap();
    }
    idx.push("p0", &[0.5, 0.0]).unwrap();
    let hits = idx.search(&[1.0, 0.0], 3).unwrap();
    let ids: Vec<&str> = hits.iter().map(|h| idx.id(h.ordinal).unwrap()).collect();
    assert_eq!(ids, ["p9", "p5", "p2"]);
}

#[test]
fn damaged_index_files_are_refused() {
    let e = embedder(3, WeightDType::Q8_0);
    let bytes = index_file::to_bytes(&build_index(&e, &passages(20), VectorDType::Int8)).unwrap();
    let err = index_file::from_bytes(&bytes[..bytes.len() - 7]).unwrap_err().to_string();
    assert!(err.contains("truncated"), "{err}");
    let mut flipped = bytes.clone();
    let last = flipped.len() - 1;
    flipped[last] ^= 0x40;
    assert!(matches!(index_file::from_bytes(&flipped).unwrap_err(), Error::Checksum { .. }));
    let err = index_file::from_bytes(b"GGUF....").unwrap_err().to_string();
    assert!(err.contains("not an ernie-search index"), "{err}");
    let mut newer = bytes.clone();
    newer[8] = 4;
    assert!(matches!(index_file::from_bytes(&newer).unwrap_err(), Error::Version { found: 4, .. }));
}

#[test]
fn an_index_from_another_model_is_refused() {
    let a = embedder(3, WeightDType::Q8_0);
    let idx = build_index(&a, &passages(10), VectorDType::F32);
    let b = embedder(4, WeightDType::Q8_0);
    let err = Retriever::new(b, idx.clone()).err().unwrap();
    assert!(matches!(err, Error::ModelMismatch { .. }), "{err}");
    let r = Retriever::new(a, idx).unwrap();
    let answer = r.search("the king of france", 3, Mode::Hybrid).unwrap();
    assert_eq!((answer.hits.len(), answer.mode), (3, Mode::Dense), "no lexical part: dense, with a note");
    assert!(answer.note.is_some());
    assert!(r.search("", 3, Mode::Dense).is_err());
}

#[test]
fn shards_locate_passages() {
    let ps: Vec<shard::Passage> = (0..5)
        .map(|i| shard::Passage {
            id: format!("p{i}"),
            title: String::new(),
            text: format!("<b>text {i}</b>"),
            url: None,
        })
        .collect();
    let bytes = shard::shard_to_bytes(&ps).unwrap();
    assert_eq!(shard::shard_from_bytes(&bytes).unwrap(), ps);
    assert!(shard::shard_from_bytes(b"{not json").is_err());
    let name = shard::content_name("shard", &bytes, "json");
    assert!(name.starts_with("shard.") && name.ends_with(".json") && name.len() == "shard..json".len() + 16);
}
