//! The flat vector index, the builder that makes it from passages and,
//! natively, its on-disk directory and the embedding cache of rebuilds.

pub mod builder;
pub mod clusters;
#[cfg(not(target_arch = "wasm32"))]
pub mod dir;
#[cfg(not(target_arch = "wasm32"))]
pub mod embed_cache;
mod flat;
pub mod quant;

pub use clusters::{ClusterMap, Clustering};
pub use flat::{check_query_vector, top_k, FlatIndex, Hit};
pub use quant::VectorDType;
