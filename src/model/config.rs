//! Model hyper-parameters: BERT's `config.json` plus what retrieval needs.

use serde::{Deserialize, Serialize};

/// The BERT architecture, mirroring Hugging Face's `config.json` fields.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BertConfig {
    pub vocab_size: usize,
    pub hidden_size: usize,
    pub num_hidden_layers: usize,
    pub num_attention_heads: usize,
    pub intermediate_size: usize,
    pub max_position_embeddings: usize,
    #[serde(default = "default_type_vocab")]
    pub type_vocab_size: usize,
    #[serde(default = "default_eps")]
    pub layer_norm_eps: f64,
    #[serde(default = "default_act")]
    pub hidden_act: String,
}

fn default_type_vocab() -> usize {
    2
}
fn default_eps() -> f64 {
    1e-12
}
fn default_act() -> String {
    "gelu".to_string()
}

impl BertConfig {
    /// all-MiniLM-L6-v2 (sentence-transformers), the project's default student.
    pub fn minilm_l6() -> Self {
        Self {
            vocab_size: 30522,
            hidden_size: 384,
            num_hidden_layers: 6,
            num_attention_heads: 12,
            intermediate_size: 1536,
            max_position_embeddings: 512,
            type_vocab_size: 2,
            layer_norm_eps: 1e-12,
            hidden_act: "gelu".to_string(),
        }
    }

    /// Checks that the shapes fit together, so a foreign file fails here and not
    /// deep inside a matmul.
    pub fn validate(&self) -> crate::Result<()> {
        let bad = |m: String| Err(crate::Error::format("model config", m));
        if self.hidden_size == 0 || self.num_attention_heads == 0 || self.num_hidden_layers == 0 {
            return bad(format!("zero-sized dimension in {self:?}"));
        }
        if !self.hidden_size.is_multiple_of(self.num_attention_heads) {
            return bad(format!(
                "hidden_size {} is not divisible by num_attention_heads {}",
                self.hidden_size, self.num_attention_heads
            ));
        }
        if !matches!(self.hidden_act.as_str(), "gelu" | "gelu_new" | "relu") {
            return bad(format!("unsupported activation {:?}", self.hidden_act));
        }
        // Limits far above any retrieval student, so that a crafted file
        // cannot make shape arithmetic overflow or ask for absurd memory.
        let limits = [
            ("vocab_size", self.vocab_size, 1 << 20),
            ("hidden_size", self.hidden_size, 8192),
            ("num_hidden_layers", self.num_hidden_layers, 128),
            ("num_attention_heads", self.num_attention_heads, 256),
            ("intermediate_size", self.intermediate_size, 65536),
            ("max_position_embeddings", self.max_position_embeddings, 65536),
            ("type_vocab_size", self.type_vocab_size, 64),
        ];
        for (name, value, max) in limits {
            if value == 0 || value > max {
                return bad(format!("{name} = {value} is outside 1..={max}"));
            }
        }
        if !(self.layer_norm_eps.is_finite() && self.layer_norm_eps > 0.0) {
            return bad(format!("layer_norm_eps = {} is not a positive number", self.layer_norm_eps));
        }
        Ok(())
    }

    /// Every tensor the encoder reads, with its shape (`model::encoder` loads
    /// exactly these names): a model file holds these and nothing else.
    pub fn tensor_shapes(&self) -> Vec<(String, Vec<usize>)> {
        let (h, i) = (self.hidden_size, self.intermediate_size);
        let mut out = vec![
            ("embeddings.word_embeddings.weight".to_string(), vec![self.vocab_size, h]),
            ("embeddings.position_embeddings.weight".to_string(), vec![self.max_position_embeddings, h]),
            ("embeddings.token_type_embeddings.weight".to_string(), vec![self.type_vocab_size, h]),
        ];
        let norm = |out: &mut Vec<(String, Vec<usize>)>, p: String| {
            out.push((format!("{p}.weight"), vec![h]));
            out.push((format!("{p}.bias"), vec![h]));
        };
        norm(&mut out, "embeddings.LayerNorm".into());
        for l in 0..self.num_hidden_layers {
            let p = format!("encoder.layer.{l}");
            for (name, rows, cols) in [
                ("attention.self.query", h, h),
                ("attention.self.key", h, h),
                ("attention.self.value", h, h),
                ("attention.output.dense", h, h),
                ("intermediate.dense", i, h),
                ("output.dense", h, i),
            ] {
                out.push((format!("{p}.{name}.weight"), vec![rows, cols]));
                out.push((format!("{p}.{name}.bias"), vec![rows]));
            }
            norm(&mut out, format!("{p}.attention.output.LayerNorm"));
            norm(&mut out, format!("{p}.output.LayerNorm"));
        }
        out
    }
}

/// How token vectors become one passage vector.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Pooling {
    /// Average over the non-padding tokens.
    Mean,
    /// The first (`[CLS]`) token.
    Cls,
}

impl Pooling {
    pub fn as_str(self) -> &'static str {
        match self {
            Pooling::Mean => "mean",
            Pooling::Cls => "cls",
        }
    }
}

impl std::str::FromStr for Pooling {
    type Err = crate::Error;
    fn from_str(s: &str) -> crate::Result<Self> {
        match s {
            "mean" => Ok(Pooling::Mean),
            "cls" => Ok(Pooling::Cls),
            other => Err(crate::Error::Invalid(format!("pooling must be mean or cls, got {other:?}"))),
        }
    }
}

/// Everything about a retrieval model that is not a weight.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModelSpec {
    pub bert: BertConfig,
    pub pooling: Pooling,
    /// L2-normalise the pooled vector, so inner product is cosine.
    pub normalize: bool,
    pub max_query_len: usize,
    pub max_passage_len: usize,
}
