//! A model and an index that belong together: text in, ranked passages out,
//! by vectors, by keywords (BM25) or both fused.

use serde::Serialize;

use crate::fusion::{Candidates, Fusion, Mode, FUSION_DEPTH};
use crate::lexical::{corpus_digest, LexicalIndex};
use crate::model::{check_query, Embedder};
use crate::{Error, FlatIndex, Result};

/// One ranked passage.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SearchHit {
    pub id: String,
    /// Position in the index; locates the passage's text shard.
    pub ordinal: usize,
    /// The score the ranking used (fused in hybrid mode).
    pub score: f32,
    /// Cosine of the query and the passage's best window, when computed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dense: Option<f32>,
    /// BM25 score, when computed (0: no query term in the passage).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub lexical: Option<f32>,
}

/// What a search returns: the hits, the mode that made them, and why it
/// differs from the mode asked for, if it does.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Answer {
    pub hits: Vec<SearchHit>,
    pub mode: Mode,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

pub struct Retriever {
    embedder: Embedder,
    index: FlatIndex,
    lexical: Option<LexicalIndex>,
    fusion: Fusion,
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
        Ok(Self { embedder, index, lexical: None, fusion: Fusion::default() })
    }

    /// Adds the lexical index built over the same passages, in the same order.
    pub fn with_lexical(mut self, lexical: LexicalIndex) -> Result<Self> {
        self.set_lexical(lexical)?;
        Ok(self)
    }

    /// As [`with_lexical`](Self::with_lexical); on a mismatch nothing changes.
    pub fn set_lexical(&mut self, lexical: LexicalIndex) -> Result<()> {
        if lexical.len() != self.index.len() || lexical.meta().corpus != corpus_digest(self.index.ids()) {
            return Err(Error::format(
                "lexical index",
                format!(
                    "built over other passages than the vector index ({} vs {} passages, or other ids); rebuild the index",
                    lexical.len(),
                    self.index.len()
                ),
            ));
        }
        self.lexical = Some(lexical);
        Ok(())
    }

    pub fn with_fusion(mut self, fusion: Fusion) -> Self {
        self.fusion = fusion;
        self
    }

    pub fn set_fusion(&mut self, fusion: Fusion) {
        self.fusion = fusion;
    }

    pub fn embedder(&self) -> &Embedder {
        &self.embedder
    }
    pub fn index(&self) -> &FlatIndex {
        &self.index
    }
    pub fn lexical(&self) -> Option<&LexicalIndex> {
        self.lexical.as_ref()
    }
    /// For loading term blocks on demand.
    pub fn lexical_mut(&mut self) -> Option<&mut LexicalIndex> {
        self.lexical.as_mut()
    }
    pub fn fusion(&self) -> Fusion {
        self.fusion
    }

    /// Indexes `(id, text)` passages at run time (a user's own documents in
    /// the browser): their windows into the vectors, their words into BM25.
    /// `overlap` defaults to a quarter of the window. Nothing is added if any
    /// id is already taken or a text cannot be embedded.
    pub fn add_passages(&mut self, passages: &[(String, String)], overlap: Option<usize>, max_windows: usize) -> Result<()> {
        let mut seen: std::collections::HashSet<&str> = self.index.ids().iter().map(String::as_str).collect();
        if let Some((id, _)) = passages.iter().find(|(id, _)| !seen.insert(id.as_str())) {
            return Err(Error::Invalid(format!("passage id {id:?} is already in the index")));
        }
        if let Some((id, _)) = passages.iter().find(|(_, t)| t.trim().is_empty()) {
            return Err(Error::Invalid(format!("passage {id:?} has no text")));
        }
        let texts: Vec<&str> = passages.iter().map(|(_, t)| t.as_str()).collect();
        let overlap = overlap.unwrap_or(self.embedder.card().spec.max_passage_len / 4);
        let (windows, _) = self.embedder.tokenize_passage_windows(&texts, overlap, max_windows)?;
        let mut vectors = Vec::with_capacity(windows.len());
        for w in &windows {
            vectors.push(self.embedder.embed_tokens(w)?);
        }
        let was_empty = self.index.is_empty();
        for ((id, _), v) in passages.iter().zip(&vectors) {
            self.index.push_windows(id, v)?;
        }
        match &mut self.lexical {
            Some(l) => l.add(&texts),
            None if was_empty => {
                let mut l = LexicalIndex::empty(crate::Bm25Params::default())?;
                l.add(&texts);
                self.lexical = Some(l);
            }
            None => {} // an index built without BM25 stays dense
        }
        Ok(())
    }

    /// The best `k` passages for `query`. Hybrid falls back to dense, with a
    /// note, when the index has no lexical part or the query no keyword;
    /// lexical mode refuses both.
    pub fn search(&self, query: &str, k: usize, mode: Mode) -> Result<Answer> {
        check_query(query)?;
        if self.index.is_empty() {
            return Err(Error::Invalid("no index is loaded: load an index or add passages to search".into()));
        }
        let lexical = match (&self.lexical, mode) {
            (_, Mode::Dense) => None,
            (None, Mode::Lexical) => {
                return Err(Error::Invalid("this index has no lexical part; rebuild it with `ernie-search index`".into()))
            }
            (None, _) => return self.dense(query, k, Some("the index has no lexical part: dense ranking only")),
            (Some(l), _) => Some(l.scores(query)?),
        };
        match (mode, lexical) {
            (Mode::Dense, _) => self.dense(query, k, None),
            (Mode::Lexical, Some(None)) | (Mode::Lexical, None) => {
                Err(Error::Query("the query has no keyword to match (only stop words or punctuation)".into()))
            }
            (Mode::Lexical, Some(Some(scores))) => Ok(self.lexical_only(&scores, k)),
            (Mode::Hybrid, Some(None)) | (Mode::Hybrid, None) => {
                self.dense(query, k, Some("the query has no keyword (only stop words or punctuation): dense ranking only"))
            }
            (Mode::Hybrid, Some(Some(scores))) => self.hybrid(query, &scores, k),
        }
    }

    fn query_scores(&self, query: &str) -> Result<Vec<f32>> {
        let q = self.embedder.embed_queries(&[query])?;
        let q = q.first().ok_or_else(|| Error::Query("no embedding produced".into()))?;
        let mut scores = Vec::new();
        self.index.passage_scores(q, &mut scores)?;
        Ok(scores)
    }

    fn dense(&self, query: &str, k: usize, note: Option<&str>) -> Result<Answer> {
        let scores = self.query_scores(query)?;
        let hits = crate::index::top_k(scores.iter().copied().enumerate(), self.index.ids(), k);
        let hits = hits.iter().map(|h| self.hit(h.ordinal, h.score, Some(h.score), None)).collect();
        Ok(Answer { hits, mode: Mode::Dense, note: note.map(str::to_string) })
    }

    fn lexical_only(&self, scores: &[f32], k: usize) -> Answer {
        let positive = scores.iter().copied().enumerate().filter(|(_, s)| *s > 0.0);
        let hits = crate::index::top_k(positive, self.index.ids(), k);
        let hits = hits.iter().map(|h| self.hit(h.ordinal, h.score, None, Some(h.score))).collect();
        Answer { hits, mode: Mode::Lexical, note: None }
    }

    fn hybrid(&self, query: &str, lexical: &[f32], k: usize) -> Result<Answer> {
        let dense = self.query_scores(query)?;
        let ids = self.index.ids();
        let cands = Candidates::gather(&dense, Some(lexical), ids, FUSION_DEPTH.max(k));
        let hits = cands.fuse(self.fusion, ids, k);
        let hits = hits.iter().map(|h| self.hit(h.ordinal, h.score, Some(dense[h.ordinal]), Some(lexical[h.ordinal])));
        Ok(Answer { hits: hits.collect(), mode: Mode::Hybrid, note: None })
    }

    fn hit(&self, ordinal: usize, score: f32, dense: Option<f32>, lexical: Option<f32>) -> SearchHit {
        SearchHit { id: self.index.ids()[ordinal].clone(), ordinal, score, dense, lexical }
    }
}

fn short(fp: &str) -> String {
    fp.chars().take(12).collect()
}
