//! The model's tokenizer: Hugging Face `tokenizers` loaded from the JSON text
//! stored in the model file, with padding off (we pad per batch ourselves, so
//! mean pooling never averages padding) and truncation set to the model's
//! query or passage window. The token table reads queries with our own
//! WordPiece ([`wordpiece`]), which the light build carries alone.

mod accents;
mod categories;
mod runs;
mod vocab;
pub mod wordpiece;

#[cfg(feature = "encoder")]
use tokenizers::{Tokenizer, TruncationDirection, TruncationParams, TruncationStrategy};

#[cfg(feature = "encoder")]
use crate::{Error, Result};
pub use wordpiece::WordPiece;

/// Token ids of one text, `[CLS] ... [SEP]`, already truncated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tokens {
    pub ids: Vec<u32>,
}

/// A tokenizer bound to one window length (queries and passages get one each).
#[cfg(feature = "encoder")]
pub struct TextTokenizer {
    inner: Tokenizer,
    /// `inner` without truncation, for windows: made once, on first use
    /// (cloning a tokenizer per passage cost more than tokenizing it).
    whole: std::sync::OnceLock<Tokenizer>,
    max_len: usize,
}

#[cfg(feature = "encoder")]
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
        Ok(Self { inner, whole: std::sync::OnceLock::new(), max_len })
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

    /// Covers the whole text with windows of at most `max_len` tokens
    /// (`[CLS] ... [SEP]` each), consecutive windows sharing `overlap` tokens,
    /// keeping the first `max_windows`. Returns the windows and whether text
    /// was left over.
    ///
    /// Cut by hand rather than with the tokenizer's truncation stride:
    /// tokenizers 0.23 stops tokenizing at `max_length` tokens before it
    /// builds the overflowing windows, so every window past the second is lost.
    pub fn encode_windows(&self, text: &str, overlap: usize, max_windows: usize) -> Result<(Vec<Tokens>, bool)> {
        if max_windows == 0 {
            return Err(Error::Invalid("at least one window per passage is needed".into()));
        }
        let enc = self.whole()?.encode(text, true).map_err(|e| Error::Tokenizer(e.to_string()))?;
        let (ids, special) = (enc.get_ids(), enc.get_special_tokens_mask());
        // The template's leading and trailing special tokens frame every window.
        let head = special.iter().take_while(|&&m| m == 1).count();
        let tail = special[head..].iter().rev().take_while(|&&m| m == 1).count();
        let (prefix, content, suffix) = (&ids[..head], &ids[head..ids.len() - tail], &ids[ids.len() - tail..]);
        let room = self.max_len.saturating_sub(head + tail);
        if overlap >= room {
            return Err(Error::Invalid(format!(
                "window overlap {overlap} leaves no new tokens in a window of {} ({} special)",
                self.max_len,
                head + tail
            )));
        }
        let step = room - overlap;
        let mut windows = Vec::new();
        let mut start = 0;
        loop {
            let end = (start + room).min(content.len());
            windows.push(Tokens { ids: [prefix, &content[start..end], suffix].concat() });
            if end == content.len() {
                return Ok((windows, false));
            }
            if windows.len() == max_windows {
                return Ok((windows, true));
            }
            start += step;
        }
    }

    fn whole(&self) -> Result<&Tokenizer> {
        if let Some(t) = self.whole.get() {
            return Ok(t);
        }
        let mut whole = self.inner.clone();
        whole.with_truncation(None).map_err(|e| Error::Tokenizer(e.to_string()))?;
        Ok(self.whole.get_or_init(|| whole))
    }

    pub fn vocab_size(&self) -> usize {
        self.inner.get_vocab_size(true)
    }
}
