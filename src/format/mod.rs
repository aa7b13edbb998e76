//! Byte layouts. Only this module knows how files look on disk.

pub mod index;
pub mod lexical;
pub mod model;
pub mod shard;
pub mod table;
pub(crate) mod varint;

#[cfg(not(target_arch = "wasm32"))]
pub mod files;
#[cfg(not(target_arch = "wasm32"))]
pub use files::{read_capped, sibling, write_atomic, Staging};
