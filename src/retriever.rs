//! A model and an index that belong together: text in, ranked passages out.

use crate::model::Embedder;
use crate::{Error, FlatIndex, Result};

/// One ranked passage.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct SearchHit {
    pub id: String,
    /// Position in the index; locates the passage's text shard.
    pub ordinal: usize,
    pub score: f32,
}

pub struct Retriever {
    embedder: Embedder,
    index: FlatIndex,
}

impl Retriever {
    /// Refuses an index built by another model: its vectors live in another space.
    pub fn new(embedder: Embedder, index: FlatIndex) -> Result<Self> {
        let model = &embedder.card().fingerprint;
        if index.fingerprint() != model {
            return Err(Error::ModelMismatch { index: short(index.fingerprint()), model: short(model) });
        }
        if index.dim() != embedder.dim() {
            return Err(Error::Invalid(format!("index dimension {} != model dimension {}", index.dim(), embedder.dim())));
        }
        Ok(Self { embedder, index })
    }

    pub fn embedder(&self) -> &Embedder {
        &self.embedder
    }
    pub fn index(&self) -> &FlatIndex {
        &self.index
    }

    pub fn search(&self, query: &str, k: usize) -> Result<Vec<SearchHit>> {
        let q = self.embedder.embed_queries(&[query])?;
        let q = q.first().ok_or_else(|| Error::Query("no embedding produced".into()))?;
        let hits = self.index.search(q, k)?;
        Ok(hits
            .into_iter()
            .map(|h| SearchHit { id: self.index.ids()[h.ordinal].clone(), ordinal: h.ordinal, score: h.score })
            .collect())
    }
}

fn short(fp: &str) -> String {
    fp.chars().take(12).collect()
}
