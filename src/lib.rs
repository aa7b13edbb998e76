//! ernie-search: in-browser passage retrieval.
//!
//! Data flows one way: a model file (GGUF, [`format::model`]) is read by the
//! [`Embedder`]; the indexer writes a vector index ([`format::index`]), a BM25
//! index ([`lexical`], [`format::lexical`]) and passage shards
//! ([`format::shard`]); a [`Retriever`] reads them and answers queries by
//! vectors, keywords or both ([`fusion`]), its query vector from the
//! transformer or from a token table distilled from it ([`table`]).
//! The same code runs natively and in wasm32 (see `wasm.rs`).

pub mod backend;
pub mod error;
pub mod format;
pub mod fusion;
#[cfg(feature = "gpu")]
pub mod gpu;
pub mod index;
pub mod lexical;
pub mod metrics;
pub mod model;
pub mod retriever;
pub mod rng;
#[cfg(all(feature = "testing", feature = "encoder"))]
pub mod synthetic;
pub mod table;
pub mod tokenize;

#[cfg(target_arch = "wasm32")]
pub mod wasm;

#[cfg(feature = "testing")]
pub use backend::Fault;
pub use backend::{AdapterReport, Backend, BackendInfo, GpuOptions};
pub use error::{Error, Result};
pub use fusion::{Fusion, Mode, QueryEncoder};
pub use index::{FlatIndex, Hit, VectorDType};
pub use lexical::{Bm25Params, LexicalIndex};
pub use model::{BertConfig, Pooling};
#[cfg(feature = "encoder")]
pub use model::{Embedder, Kernel};
pub use retriever::{Answer, Retriever, SearchHit};
pub use table::{TableEncoder, TokenTable};
#[cfg(feature = "encoder")]
pub use tokenize::TextTokenizer;
pub use tokenize::WordPiece;

/// Longest query, in characters, that the engine accepts. A question is short;
/// the model sees only its first `max_query_len` tokens anyway.
pub const MAX_QUERY_CHARS: usize = 4096;
