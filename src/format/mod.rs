//! Byte layouts. Only this module knows how files look on disk.

pub mod clusters;
pub mod crc32;
#[cfg(not(target_arch = "wasm32"))]
pub mod embed_cache;
pub mod index;
pub mod json;
pub mod lexical;
#[cfg(feature = "encoder")]
pub mod model;
pub mod shard;
pub mod table;
pub(crate) mod varint;

#[cfg(not(target_arch = "wasm32"))]
pub mod files;
#[cfg(not(target_arch = "wasm32"))]
pub use files::{read_capped, sibling, write_atomic, Staging};

/// Lowercase hex of `bytes` (fingerprints, content names).
pub(crate) fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
