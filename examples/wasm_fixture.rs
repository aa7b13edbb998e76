//! Writes the fixture the browser parity test (`tests/browser/`) compares against:
//!
//! ```text
//! cargo run --release --example wasm_fixture -- target/wasm-fixture
//! ```
//!
//! Into the directory given: `tiny.gguf` (the synthetic tiny model, seed 7,
//! Q8_0, mean pooling), `tiny-f32.gguf` (the same weights unquantized),
//! `other.gguf` (seed 8: an index from `tiny.gguf` must be refused with it),
//! `tiny.index` (f32 flat index over `passages.json`, the long passage in
//! overlapping windows), `lexical.meta` + `lexical.<n>.block` (its BM25 index
//! in 4 term blocks) and `expected.json`: native embeddings of a passage batch
//! and of single queries for both models, and native top-10 results in every
//! mode (dense, lexical, hybrid by RRF and by a convex weight), which the wasm
//! build must reproduce; and, under "gpu", the native dense kernel's
//! embeddings and dense top-10, which the WebGPU backend must reproduce.
//!
//! Why two models: Q8_0 matmuls quantize their *activations* too (round(x / d)
//! per block of 32), so a last-bit difference between the native (AVX/FMA) and
//! wasm (simd128) arithmetic now and then flips one rounding and moves an
//! embedding by ~1e-4. The f32 twin has no such step and must agree tightly.

#[cfg(target_arch = "wasm32")]
fn main() {}

#[cfg(not(target_arch = "wasm32"))]
fn main() -> std::process::ExitCode {
    match native::run() {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("wasm_fixture: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}

#[cfg(not(target_arch = "wasm32"))]
mod native {
    use std::path::PathBuf;

    use ernie_search::format::model::WeightDType;
    use ernie_search::synthetic::{tiny_model, WORDS};
    use ernie_search::{
        format, Bm25Params, Embedder, FlatIndex, Fusion, Kernel, LexicalIndex, Mode, Pooling, Retriever, VectorDType,
    };
    use serde_json::json;

    type BoxResult<T> = std::result::Result<T, Box<dyn std::error::Error>>;

    /// Passages embedded as one batch, natively and in the browser.
    const PASSAGE_BATCH: usize = 8;
    const K: usize = 10;
    /// Window overlap for the long passage, BM25 term blocks, the convex weight.
    const OVERLAP: usize = 8;
    const BLOCKS: u32 = 4;
    const ALPHA: f32 = 0.4;

    /// Queries: plain, capitalised with punctuation, out-of-vocabulary words
    /// (spelled with letters), accents, and one longer than the 16-token window.
    const QUERIES: &[&str] = &[
        "what is the capital of france",
        "who wrote the first book",
        "largest planet near the sun",
        "Where is the river bridge?",
        "queen of england born in london",
        "zebra song album",
        "café in zürich",
        "which ship was in the battle of the ocean when the war of the world was in the century of the king",
        "red bird blue flower",
        "music",
        "the of and",
    ];

    /// SplitMix64, so the passages are the same on every machine.
    struct Rng(u64);
    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
            let mut z = self.0;
            z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
            z ^ (z >> 31)
        }
        fn below(&mut self, n: usize) -> usize {
            (self.next() % n as u64) as usize
        }
    }

    fn passages() -> Vec<(String, String)> {
        let mut rng = Rng(2024);
        let mut out: Vec<String> = (0..36)
            .map(|_| {
                let n = 4 + rng.below(14);
                (0..n).map(|_| WORDS[rng.below(WORDS.len())]).collect::<Vec<_>>().join(" ")
            })
            .collect();
        // Longer than the 48-token passage window: truncated identically on both sides.
        out.push((0..70).map(|_| WORDS[rng.below(WORDS.len())]).collect::<Vec<_>>().join(" "));
        // Capitals, punctuation, accents and words the vocabulary lacks.
        out.push("The Zebra, the Kangaroo and the Café: a Song from Zürich!".into());
        out.push("Paris is the capital of France; London, of England.".into());
        // An exact duplicate of an earlier passage: an exact score tie in every search.
        out.push(out[3].clone());
        out.into_iter().enumerate().map(|(i, t)| (format!("p{i:03}"), t)).collect()
    }

    pub fn run() -> BoxResult<()> {
        let dir = PathBuf::from(std::env::args().nth(1).ok_or("usage: wasm_fixture <output directory>")?);
        std::fs::create_dir_all(&dir)?;

        let model = tiny_model(7, WeightDType::Q8_0, Pooling::Mean)?;
        let other = tiny_model(8, WeightDType::Q8_0, Pooling::Mean)?;
        let twin = tiny_model(7, WeightDType::F32, Pooling::Mean)?;
        // The browser runs our fused kernel (Kernel::default() everywhere),
        // so the native reference does too.
        let embedder = Embedder::from_bytes_with(&model, Kernel::Fused)?;
        let fingerprint = embedder.card().fingerprint.clone();

        let passages = passages();
        let texts: Vec<&str> = passages.iter().map(|(_, t)| t.as_str()).collect();
        let (windows, _) = embedder.tokenize_passage_windows(&texts, OVERLAP, 16)?;
        let mut index = FlatIndex::new(embedder.dim(), VectorDType::F32, &fingerprint)?;
        for ((id, _), w) in passages.iter().zip(&windows) {
            index.push_windows(id, &embedder.embed_tokens(w)?)?;
        }
        assert!(index.rows() > index.len(), "the fixture must exercise windows");
        let index_bytes = format::index::to_bytes(&index)?;
        let ids: Vec<&str> = passages.iter().map(|(id, _)| id.as_str()).collect();
        let lexical = LexicalIndex::build(&ids, &texts, Bm25Params::default(), BLOCKS)?;
        std::fs::write(dir.join("lexical.meta"), format::lexical::meta_to_bytes(lexical.meta()))?;
        for b in 0..BLOCKS {
            let block = lexical.block(b).ok_or("block not built")?;
            std::fs::write(
                dir.join(format!("lexical.{b}.block")),
                format::lexical::block_to_bytes(lexical.meta(), b, block),
            )?;
        }

        let batch = &texts[..PASSAGE_BATCH];
        let batch_vectors = embedder.embed_passages(batch)?;
        let retriever = Retriever::new(embedder, index)?.with_lexical(lexical)?;
        let convex = Retriever::new(Embedder::from_bytes_with(&model, Kernel::Fused)?, retriever.index().clone())?
            .with_lexical(LexicalIndex::build(&ids, &texts, Bm25Params::default(), BLOCKS)?)?
            .with_fusion(Fusion::Convex { alpha: ALPHA });
        let twin_embedder = Embedder::from_bytes_with(&twin, Kernel::Fused)?;
        let twin_queries = QUERIES
            .iter()
            .map(|q| Ok(twin_embedder.embed_queries(&[q])?.remove(0)))
            .collect::<ernie_search::Result<Vec<_>>>()?;
        let twin_expected = json!({
            "model": "tiny-f32.gguf",
            "passage_batch": twin_embedder.embed_passages(batch)?,
            "queries": twin_queries,
        });
        let mut queries = Vec::new();
        for q in QUERIES {
            let embedding = retriever.embedder()?.embed_queries(&[q])?.remove(0);
            let dense = retriever.search(q, K, Mode::Dense)?;
            // Stop words only: lexical refuses (null here), hybrid answers densely.
            let lexical = retriever.search(q, K, Mode::Lexical).ok().map(|a| a.hits);
            let rrf = retriever.search(q, K, Mode::Hybrid)?;
            let convex = convex.search(q, K, Mode::Hybrid)?;
            queries.push(json!({"text": q, "embedding": embedding, "top": dense.hits, "lexical": lexical,
                "rrf": rrf, "convex": convex}));
        }
        // The WebGPU backend multiplies dequantized weights in f32, as the
        // native dense kernel does: its reference is that kernel's output.
        let dense = Retriever::new(Embedder::from_bytes_with(&model, Kernel::Dense)?, retriever.index().clone())?;
        let mut gpu_queries = Vec::new();
        for q in QUERIES {
            let embedding = dense.embedder()?.embed_queries(&[q])?.remove(0);
            gpu_queries.push(json!({"embedding": embedding, "top": dense.search(q, K, Mode::Dense)?.hits}));
        }
        let gpu_expected = json!({
            "kernel": "dense",
            "passage_batch": dense.embedder()?.embed_passages(batch)?,
            "queries": gpu_queries,
        });
        let expected = json!({
            "generator": "cargo run --release --example wasm_fixture",
            "model": "tiny.gguf",
            "other_model": "other.gguf",
            "index": "tiny.index",
            "lexical": {"meta": "lexical.meta", "blocks": (0..BLOCKS).map(|b| format!("lexical.{b}.block")).collect::<Vec<_>>()},
            "alpha": ALPHA,
            "rows": retriever.index().rows(),
            "passages": "passages.json",
            "fingerprint": fingerprint,
            "dim": retriever.embedder()?.dim(),
            "count": passages.len(),
            "k": K,
            "passage_batch": {"texts": batch, "embeddings": batch_vectors},
            "queries": queries,
            "f32_twin": twin_expected,
            "gpu": gpu_expected,
        });
        let passages_json: Vec<_> = passages.iter().map(|(id, text)| json!({"id": id, "text": text})).collect();

        std::fs::write(dir.join("tiny.gguf"), &model)?;
        std::fs::write(dir.join("other.gguf"), &other)?;
        std::fs::write(dir.join("tiny-f32.gguf"), &twin)?;
        std::fs::write(dir.join("tiny.index"), &index_bytes)?;
        std::fs::write(dir.join("passages.json"), serde_json::to_vec_pretty(&passages_json)?)?;
        std::fs::write(dir.join("expected.json"), serde_json::to_vec_pretty(&expected)?)?;
        println!(
            "wasm fixture in {}: model {} bytes, index {} bytes ({} passages), {} queries",
            dir.display(),
            model.len(),
            index_bytes.len(),
            passages.len(),
            QUERIES.len()
        );
        Ok(())
    }
}
