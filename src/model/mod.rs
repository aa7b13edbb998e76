//! The student encoder: tokenizer + quantized BERT + pooling.

mod config;
pub mod encoder;
pub mod pool;

pub use config::{BertConfig, ModelSpec, Pooling};

use candle_core::{Device, Tensor};

use crate::format::model::{read_model, ModelCard, ModelFile};
use crate::tokenize::{TextTokenizer, Tokens};
use crate::{Error, Result, MAX_QUERY_CHARS};
pub use encoder::Kernel;
use encoder::{Encoder, Weights};

/// Turns texts into vectors with one model file.
pub struct Embedder {
    card: ModelCard,
    encoder: Encoder,
    query_tok: TextTokenizer,
    passage_tok: TextTokenizer,
}

impl Embedder {
    /// Loads a model file (GGUF bytes, see [`crate::format::model`]).
    /// With the platform's default [`Kernel`].
    pub fn from_bytes(bytes: &[u8]) -> Result<Self> {
        Self::from_model_file(read_model(bytes)?, Kernel::default())
    }

    pub fn from_bytes_with(bytes: &[u8], kernel: Kernel) -> Result<Self> {
        Self::from_model_file(read_model(bytes)?, kernel)
    }

    pub fn from_model_file(file: ModelFile, kernel: Kernel) -> Result<Self> {
        let ModelFile { card, mut tensors } = file;
        let spec = &card.spec;
        let encoder = Encoder::load(&mut Weights::new(&mut tensors, kernel), &spec.bert)?;
        let json = card.tokenizer_json.as_bytes();
        let max_pos = spec.bert.max_position_embeddings;
        let query_tok = TextTokenizer::from_bytes(json, spec.max_query_len.min(max_pos))?;
        let passage_tok = TextTokenizer::from_bytes(json, spec.max_passage_len.min(max_pos))?;
        if query_tok.vocab_size() > spec.bert.vocab_size {
            return Err(Error::format(
                "model file",
                format!("tokenizer has {} tokens but the model only {}", query_tok.vocab_size(), spec.bert.vocab_size),
            ));
        }
        Ok(Self { card, encoder, query_tok, passage_tok })
    }

    pub fn card(&self) -> &ModelCard {
        &self.card
    }

    /// Length of the vectors this model produces.
    pub fn dim(&self) -> usize {
        self.card.spec.bert.hidden_size
    }

    /// Embeds questions. Empty and absurdly long queries are refused.
    pub fn embed_queries(&self, texts: &[&str]) -> Result<Vec<Vec<f32>>> {
        for t in texts {
            check_query(t)?;
        }
        let tokens = self.query_tok.encode_batch(texts)?;
        self.embed_tokens(&tokens)
    }

    /// Embeds passages as one batch; each is cut to the passage window.
    pub fn embed_passages(&self, texts: &[&str]) -> Result<Vec<Vec<f32>>> {
        let tokens = self.passage_tok.encode_batch(texts)?;
        self.embed_tokens(&tokens)
    }

    /// Tokenizes passages (the indexer sorts them by length before batching).
    pub fn tokenize_passages(&self, texts: &[&str]) -> Result<Vec<Tokens>> {
        self.passage_tok.encode_batch(texts)
    }

    /// Tokenizes passages into windows of the passage length (see
    /// [`TextTokenizer::encode_windows`]); a passage that fits is one window.
    /// Also returns how many passages had text past the last window kept.
    pub fn tokenize_passage_windows(&self, texts: &[&str], overlap: usize, max_windows: usize) -> Result<(Vec<Vec<Tokens>>, usize)> {
        let mut cut = 0;
        let mut out = Vec::with_capacity(texts.len());
        for t in texts {
            let (w, more) = self.passage_tok.encode_windows(t, overlap, max_windows)?;
            cut += more as usize;
            out.push(w);
        }
        Ok((out, cut))
    }

    /// One forward pass over a batch, padded to its longest member.
    pub fn embed_tokens(&self, batch: &[Tokens]) -> Result<Vec<Vec<f32>>> {
        if batch.is_empty() {
            return Ok(Vec::new());
        }
        let len = batch.iter().map(|t| t.ids.len()).max().unwrap_or(0).max(1);
        let mut ids = vec![0u32; batch.len() * len];
        let mut mask = vec![0f32; batch.len() * len];
        for (row, t) in batch.iter().enumerate() {
            ids[row * len..row * len + t.ids.len()].copy_from_slice(&t.ids);
            mask[row * len..row * len + t.ids.len()].fill(1.0);
        }
        let ids = Tensor::from_vec(ids, (batch.len(), len), &Device::Cpu)?;
        let mask = Tensor::from_vec(mask, (batch.len(), len), &Device::Cpu)?;
        let hidden = self.encoder.forward(&ids, &mask)?;
        let mut pooled = pool::pool(&hidden, &mask, self.card.spec.pooling)?;
        if self.card.spec.normalize {
            pooled = pool::l2_normalize(&pooled)?;
        }
        Ok(pooled.to_vec2::<f32>()?)
    }
}

/// The rules every entry point applies to a query.
pub fn check_query(text: &str) -> Result<()> {
    if text.trim().is_empty() {
        return Err(Error::Query("the query is empty".into()));
    }
    let chars = text.chars().count();
    if chars > MAX_QUERY_CHARS {
        return Err(Error::Query(format!(
            "the query has {chars} characters; the limit is {MAX_QUERY_CHARS} (ask a question, not a document)"
        )));
    }
    Ok(())
}
