//! The student encoder: tokenizer + quantized BERT + pooling.

// The model's hyper-parameters and spec: what `format::model` reads and
// writes. It imports nothing from `format` (no module cycle).
pub(crate) mod config;
// The transformer (candle): only in builds with the `encoder` feature; the
// light build encodes queries with the token table (`crate::table`).
#[cfg(feature = "encoder")]
mod embedder;
#[cfg(feature = "encoder")]
pub mod encoder;
// Our own int8 inference path (GEMM kernels, fused layers, threads).
#[cfg(feature = "encoder")]
pub mod fused;
#[cfg(feature = "encoder")]
pub mod pool;

pub use config::{BertConfig, ModelSpec, Pooling};
#[cfg(feature = "encoder")]
pub use embedder::Embedder;
#[cfg(feature = "encoder")]
pub use encoder::Kernel;

use crate::{Error, Result, MAX_QUERY_CHARS};

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
