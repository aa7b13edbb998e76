//! Tiny, deterministic models for tests, examples and browser checks: a real
//! BERT architecture and a real WordPiece tokenizer, with seeded random
//! weights. The same seed gives the same bytes on every platform, so native
//! and wasm builds can be compared on one model.
//!
//! A test hook: compiled with the cargo feature `testing` only, never in a
//! shipped build (this crate's tests and examples turn it on through their
//! dev-dependency on the crate itself).

use candle_core::{Device, Tensor};

use crate::format::model::{quantize_tensors, write_model, WeightDType};
use crate::model::{BertConfig, ModelSpec, Pooling};
use crate::{Error, Result};

/// Words the tiny tokenizer knows whole; anything else falls back to letters.
pub const WORDS: &[&str] = &[
    "the",
    "a",
    "of",
    "in",
    "is",
    "was",
    "who",
    "what",
    "when",
    "where",
    "which",
    "how",
    "river",
    "city",
    "king",
    "queen",
    "war",
    "music",
    "song",
    "album",
    "film",
    "team",
    "game",
    "world",
    "cup",
    "water",
    "mountain",
    "capital",
    "france",
    "paris",
    "london",
    "england",
    "president",
    "born",
    "wrote",
    "book",
    "first",
    "largest",
    "planet",
    "sun",
    "moon",
    "star",
    "ocean",
    "island",
    "language",
    "spoken",
    "country",
    "population",
    "year",
    "century",
    "church",
    "bridge",
    "battle",
    "ship",
    "train",
    "car",
    "bird",
    "dog",
    "cat",
    "tree",
    "flower",
    "color",
    "red",
    "blue",
];

pub fn tiny_config() -> BertConfig {
    BertConfig {
        vocab_size: 5 + WORDS.len() + 2 * 26,
        hidden_size: 64,
        num_hidden_layers: 2,
        num_attention_heads: 4,
        intermediate_size: 128,
        max_position_embeddings: 64,
        type_vocab_size: 2,
        layer_norm_eps: 1e-12,
        hidden_act: "gelu".into(),
    }
}

/// A BERT WordPiece tokenizer.json over [`WORDS`] plus single letters.
pub fn tiny_tokenizer_json() -> String {
    let mut vocab = serde_json::Map::new();
    // Dense ids, each token once (WORDS holds "a", which the letters add again).
    let mut add = |t: String| {
        let id = vocab.len();
        vocab.entry(t).or_insert(id.into());
    };
    for s in ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"] {
        add(s.to_string());
    }
    WORDS.iter().for_each(|w| add(w.to_string()));
    for c in 'a'..='z' {
        add(c.to_string());
        add(format!("##{c}"));
    }
    let special = |id: u32, content: &str| {
        serde_json::json!({"id": id, "content": content, "single_word": false, "lstrip": false,
            "rstrip": false, "normalized": false, "special": true})
    };
    serde_json::json!({
        "version": "1.0",
        "truncation": null,
        "padding": null,
        "added_tokens": [special(0, "[PAD]"), special(1, "[UNK]"), special(2, "[CLS]"), special(3, "[SEP]"), special(4, "[MASK]")],
        "normalizer": {"type": "BertNormalizer", "clean_text": true, "handle_chinese_chars": true,
            "strip_accents": null, "lowercase": true},
        "pre_tokenizer": {"type": "BertPreTokenizer"},
        "post_processor": {"type": "TemplateProcessing",
            "single": [{"SpecialToken": {"id": "[CLS]", "type_id": 0}}, {"Sequence": {"id": "A", "type_id": 0}},
                       {"SpecialToken": {"id": "[SEP]", "type_id": 0}}],
            "pair": [{"SpecialToken": {"id": "[CLS]", "type_id": 0}}, {"Sequence": {"id": "A", "type_id": 0}},
                     {"SpecialToken": {"id": "[SEP]", "type_id": 0}}, {"Sequence": {"id": "B", "type_id": 1}},
                     {"SpecialToken": {"id": "[SEP]", "type_id": 1}}],
            "special_tokens": {"[CLS]": {"id": "[CLS]", "ids": [2], "tokens": ["[CLS]"]},
                               "[SEP]": {"id": "[SEP]", "ids": [3], "tokens": ["[SEP]"]}}},
        "decoder": {"type": "WordPiece", "prefix": "##", "cleanup": true},
        "model": {"type": "WordPiece", "unk_token": "[UNK]", "continuing_subword_prefix": "##",
            "max_input_chars_per_word": 100, "vocab": vocab}
    })
    .to_string()
}

/// Uniform in [-1, 1) from SplitMix64.
struct Rng(u64);
impl Rng {
    fn next_f32(&mut self) -> f32 {
        let z = crate::rng::splitmix64(&mut self.0);
        (z >> 40) as f32 / (1u64 << 24) as f32 * 2.0 - 1.0
    }
}

/// The f32 tensors of a random BERT with `cfg`, named as in Hugging Face checkpoints.
pub fn random_bert(cfg: &BertConfig, seed: u64) -> Result<Vec<(String, Tensor)>> {
    let mut rng = Rng(seed);
    let mut t = |shape: &[usize], scale: f32, offset: f32| -> Result<Tensor> {
        let n: usize = shape.iter().product();
        let v: Vec<f32> = (0..n).map(|_| offset + scale * rng.next_f32()).collect();
        Ok(Tensor::from_vec(v, shape, &Device::Cpu)?)
    };
    let ws = 1.0 / (cfg.hidden_size as f32).sqrt();
    let mut out = Vec::new();
    // The encoder's own list (names, shapes, order), each drawn at its scale.
    for (name, shape) in cfg.tensor_shapes() {
        let (scale, offset) = match name.as_str() {
            n if n.ends_with("LayerNorm.weight") => (0.1, 1.0),
            n if n.ends_with("LayerNorm.bias") => (0.1, 0.0),
            "embeddings.word_embeddings.weight" => (0.5, 0.0),
            n if n.starts_with("embeddings.") => (0.1, 0.0),
            _ if shape.len() == 2 => (ws * 1.7, 0.0),
            _ => (0.05, 0.0),
        };
        let tensor = t(&shape, scale, offset)?;
        out.push((name, tensor));
    }
    Ok(out)
}

/// A complete tiny model file (GGUF bytes).
pub fn tiny_model(seed: u64, weights: WeightDType, pooling: Pooling) -> Result<Vec<u8>> {
    let cfg = tiny_config();
    let spec = ModelSpec { bert: cfg.clone(), pooling, normalize: true, max_query_len: 16, max_passage_len: 48 };
    let tensors = quantize_tensors(random_bert(&cfg, seed)?, weights)?;
    let provenance = serde_json::json!({"method": "synthetic", "seed": seed});
    write_model("tiny-synthetic", &spec, weights, &tiny_tokenizer_json(), &provenance, &tensors)
}

/// A Hugging Face-style checkpoint folder (`config.json`, `tokenizer.json`,
/// `model.safetensors` with random weights) at `dir/ck`, named as real
/// checkpoints are (`bert.` prefix, a pooler), for the CLI's and training's tests.
#[cfg(not(target_arch = "wasm32"))]
pub fn write_checkpoint(dir: &std::path::Path, seed: u64) -> Result<std::path::PathBuf> {
    let ck = dir.join("ck");
    std::fs::create_dir_all(&ck)?;
    let cfg = tiny_config();
    std::fs::write(ck.join("config.json"), serde_json::to_vec(&cfg).map_err(|e| Error::Invalid(e.to_string()))?)?;
    std::fs::write(ck.join("tokenizer.json"), tiny_tokenizer_json())?;
    let pooler = Tensor::zeros(cfg.hidden_size, candle_core::DType::F32, &Device::Cpu)?;
    let map: std::collections::HashMap<String, Tensor> = random_bert(&cfg, seed)?
        .into_iter()
        .map(|(n, t)| (format!("bert.{n}"), t))
        .chain([("bert.pooler.dense.bias".to_string(), pooler)])
        .collect();
    candle_core::safetensors::save(&map, ck.join("model.safetensors"))?;
    Ok(ck)
}
