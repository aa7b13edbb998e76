//! ernie-search: in-browser passage retrieval.
//!
//! Data flows one way: a model file (GGUF, [`format::model`]) is read by the
//! [`Embedder`]; the indexer writes an index ([`format::index`]) and passage
//! shards ([`format::shard`]); a [`Retriever`] reads both and answers queries.
//! The same code runs natively and in wasm32 (see `wasm.rs`).

pub mod error;
pub mod format;
pub mod index;
pub mod metrics;
pub mod model;
pub mod retriever;
pub mod synthetic;
pub mod tokenize;

#[cfg(target_arch = "wasm32")]
pub mod wasm;

pub use error::{Error, Result};
pub use index::{FlatIndex, Hit, VectorDType};
pub use model::{BertConfig, Embedder, Kernel, Pooling};
pub use retriever::{Retriever, SearchHit};
pub use tokenize::TextTokenizer;

/// Longest query, in characters, that the engine accepts. A question is short;
/// the model sees only its first `max_query_len` tokens anyway.
pub const MAX_QUERY_CHARS: usize = 4096;
