//! Passage texts and the manifest that ties an index directory together.
//!
//! Texts live in JSON shards of `shard_size` passages, in index order, named by
//! content hash (cache forever); a client fetches only the shards of the hits it
//! shows. `manifest.json` is the one file without a hash in its name.

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::{Error, Result};

/// Version 2 added windows, the lexical index and the fusion setting;
/// version 1 manifests (dense only) are still read.
pub const MANIFEST_VERSION: u32 = 2;
pub const MANIFEST_FILE: &str = "manifest.json";

/// One passage as the user sees it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Passage {
    pub id: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub title: String,
    pub text: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Manifest {
    pub format_version: u32,
    pub model_name: String,
    pub model_fingerprint: String,
    /// Where the model file was when the index was built (a hint for the CLI).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model_path: Option<String>,
    /// The model file inside the folder (`model.<hash>.gguf`), when bundled:
    /// what a browser loads, so the folder deploys as it is.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model_file: Option<String>,
    pub dim: usize,
    /// Passages (results are passages, whatever the windows).
    pub count: usize,
    pub dtype: crate::VectorDType,
    pub index_file: String,
    pub index_bytes: u64,
    pub shard_size: usize,
    pub shards: Vec<String>,
    /// How long passages were cut into windows; absent: one vector per passage.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub windows: Option<WindowSpec>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lexical: Option<LexicalFiles>,
    /// How `hybrid` fuses; absent: reciprocal rank fusion.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fusion: Option<FusionSetting>,
}

#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct WindowSpec {
    /// Tokens per window, [CLS] and [SEP] included (the model's passage length).
    pub window: usize,
    /// Tokens shared by consecutive windows.
    pub overlap: usize,
    pub max_windows: usize,
    /// Vectors in the index (at least `count`).
    pub rows: usize,
}

/// The BM25 part: a meta file every query needs, and term blocks loaded on demand.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LexicalFiles {
    pub meta: String,
    /// Block `i` holds the terms with `lexical::block_of(term, blocks.len()) == i`.
    pub blocks: Vec<String>,
    /// Meta and blocks together.
    pub bytes: u64,
    pub terms: usize,
    pub k1: f32,
    pub b: f32,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FusionSetting {
    #[serde(flatten)]
    pub fusion: crate::Fusion,
    /// Where a convex weight was tuned, e.g. "nq dev (MRR@10 0.612)".
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tuned_on: Option<String>,
}

impl Manifest {
    pub fn from_bytes(bytes: &[u8]) -> Result<Self> {
        let v: serde_json::Value =
            serde_json::from_slice(bytes).map_err(|e| Error::format("manifest", format!("not JSON: {e}")))?;
        match v.get("format_version").and_then(|x| x.as_u64()) {
            Some(x) if (1..=MANIFEST_VERSION as u64).contains(&x) => {}
            Some(x) => return Err(Error::Version { what: "manifest", found: x as u32, supported: MANIFEST_VERSION }),
            None => return Err(Error::format("manifest", "no format_version: not an ernie-search manifest")),
        }
        let m: Manifest = serde_json::from_value(v).map_err(|e| Error::format("manifest", e.to_string()))?;
        if m.shard_size == 0 || m.shards.len() != m.count.div_ceil(m.shard_size) {
            return Err(Error::format("manifest", format!("{} shards cannot hold {} passages of {} per shard", m.shards.len(), m.count, m.shard_size)));
        }
        Ok(m)
    }

    /// Which shard holds the passage at `ordinal`, and its position inside it.
    pub fn locate(&self, ordinal: usize) -> Option<(usize, usize)> {
        (ordinal < self.count).then(|| (ordinal / self.shard_size, ordinal % self.shard_size))
    }
}

pub fn shard_to_bytes(passages: &[Passage]) -> Result<Vec<u8>> {
    Ok(serde_json::to_vec(passages)?)
}

pub fn shard_from_bytes(bytes: &[u8]) -> Result<Vec<Passage>> {
    serde_json::from_slice(bytes).map_err(|e| Error::format("passage shard", e.to_string()))
}

/// `stem.<first 16 hex of sha256>.ext`: a new content gets a new name.
pub fn content_name(stem: &str, bytes: &[u8], ext: &str) -> String {
    let h = Sha256::digest(bytes);
    format!("{stem}.{}.{ext}", &crate::format::model::hex(&h)[..16])
}
