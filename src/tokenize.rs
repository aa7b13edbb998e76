//! The model's tokenizer: Hugging Face `tokenizers` loaded from the JSON text
//! stored in the model file, with padding off (we pad per batch ourselves, so
//! mean pooling never averages padding) and truncation set to the model's
//! query or passage window.

use tokenizers::{Tokenizer, TruncationDirection, TruncationParams, TruncationStrategy};

use crate::{Error, Result};

/// Token ids of one text, `[CLS] ... [SEP]`, already truncated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tokens {
    pub ids: Vec<u32>,
}

/// A tokenizer bound to one window length (queries and passages get one each).
pub struct TextTokenizer {
    inner: Tokenizer,
    max_len: usize,
}

impl TextTokenizer {
    /// `max_len` counts special tokens; longer texts are cut at the end.
    pub fn from_bytes(json: &[u8], max_len: usize) -> Result<Self> {
        if max_len < 2 {
            return Err(Error::Invalid(format!("max length {max_len} leaves no room for [CLS] and [SEP]")));
        }
        let mut inner =
            Tokenizer::from_bytes(json).map_err(|e| Error::Tokenizer(format!("cannot parse tokenizer JSON: {e}")))?;
        inner.with_padding(None);
        inner
            .with_truncation(Some(TruncationParams {
                max_length: max_len,
                strategy: TruncationStrategy::LongestFirst,
                stride: 0,
                direction: TruncationDirection::Right,
            }))
            .map_err(|e| Error::Tokenizer(e.to_string()))?;
        Ok(Self { inner, max_len })
    }

    pub fn max_len(&self) -> usize {
        self.max_len
    }

    /// Tokenizes `texts`, each cut to the window.
    pub fn encode_batch(&self, texts: &[&str]) -> Result<Vec<Tokens>> {
        texts
            .iter()
            .map(|t| {
                let enc = self.inner.encode(*t, true).map_err(|e| Error::Tokenizer(e.to_string()))?;
                Ok(Tokens { ids: enc.get_ids().to_vec() })
            })
            .collect()
    }

    pub fn vocab_size(&self) -> usize {
        self.inner.get_vocab_size(true)
    }
}
