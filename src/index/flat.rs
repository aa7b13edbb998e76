//! Exact search: score every vector, keep the best k.

use std::cmp::Ordering;
use std::collections::BinaryHeap;

use super::quant::{Store, VectorDType};
use crate::{Error, Result};

/// One result: the passage's position in the index and its score.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Hit {
    pub ordinal: usize,
    pub score: f32,
}

/// A flat (brute-force) inner-product index.
#[derive(Debug, Clone, PartialEq)]
pub struct FlatIndex {
    pub(crate) dim: usize,
    pub(crate) ids: Vec<String>,
    pub(crate) store: Store,
    /// Fingerprint of the model that made the vectors (hex sha256).
    pub(crate) fingerprint: String,
}

impl FlatIndex {
    pub fn new(dim: usize, dtype: VectorDType, fingerprint: &str) -> Result<Self> {
        if dim == 0 {
            return Err(Error::Invalid("index dimension must be positive".into()));
        }
        Ok(Self { dim, ids: Vec::new(), store: Store::empty(dtype), fingerprint: fingerprint.to_string() })
    }

    pub fn push(&mut self, id: &str, v: &[f32]) -> Result<()> {
        if v.len() != self.dim {
            return Err(Error::Invalid(format!("vector for {id} has {} values, the index {}", v.len(), self.dim)));
        }
        if v.iter().any(|x| !x.is_finite()) {
            return Err(Error::Invalid(format!("vector for {id} holds NaN or infinity")));
        }
        self.ids.push(id.to_string());
        self.store.push(v);
        Ok(())
    }

    pub fn len(&self) -> usize {
        self.ids.len()
    }
    pub fn is_empty(&self) -> bool {
        self.ids.is_empty()
    }
    pub fn dim(&self) -> usize {
        self.dim
    }
    pub fn dtype(&self) -> VectorDType {
        self.store.dtype()
    }
    pub fn fingerprint(&self) -> &str {
        &self.fingerprint
    }
    pub fn id(&self, ordinal: usize) -> Option<&str> {
        self.ids.get(ordinal).map(String::as_str)
    }
    pub fn ids(&self) -> &[String] {
        &self.ids
    }
    /// Bytes one query scans.
    pub fn scan_bytes(&self) -> usize {
        self.store.bytes()
    }

    /// Top `k` by inner product. Equal scores are ordered as trec_eval does
    /// (larger passage id first), so our metrics and a TREC run file agree.
    pub fn search(&self, query: &[f32], k: usize) -> Result<Vec<Hit>> {
        let mut scores = Vec::with_capacity(self.len());
        self.search_with(query, k, &mut scores)
    }

    /// As [`search`](Self::search), reusing a score buffer across queries.
    pub fn search_with(&self, query: &[f32], k: usize, scores: &mut Vec<f32>) -> Result<Vec<Hit>> {
        if query.len() != self.dim {
            return Err(Error::Invalid(format!("query has {} values, the index {}", query.len(), self.dim)));
        }
        self.store.scan(self.dim, query, scores);
        Ok(self.top_k(scores, k))
    }

    fn top_k(&self, scores: &[f32], k: usize) -> Vec<Hit> {
        // A k past the index size (a caller asking for "everything") must not
        // size the heap: with_capacity(k + 1) panics or aborts for huge k.
        let k = k.min(scores.len());
        if k == 0 {
            return Vec::new();
        }
        // Min-heap of the best k so far: its top is the worst kept hit.
        let mut heap: BinaryHeap<Ranked> = BinaryHeap::with_capacity(k + 1);
        for (ordinal, &score) in scores.iter().enumerate() {
            if heap.len() == k {
                let worst = heap.peek().map(|r| r.score).unwrap_or(f32::NEG_INFINITY);
                if score < worst {
                    continue; // the common case: one comparison per vector
                }
            }
            heap.push(Ranked { score, ordinal, ids: &self.ids });
            if heap.len() > k {
                heap.pop();
            }
        }
        let mut hits: Vec<Ranked> = heap.into_vec();
        hits.sort_by(|a, b| b.better(a));
        hits.into_iter().map(|r| Hit { ordinal: r.ordinal, score: r.score }).collect()
    }
}

struct Ranked<'a> {
    score: f32,
    ordinal: usize,
    ids: &'a [String],
}

impl Ranked<'_> {
    /// Greater = better: higher score, then larger id.
    fn better(&self, other: &Self) -> Ordering {
        self.score
            .total_cmp(&other.score)
            .then_with(|| self.ids[self.ordinal].cmp(&other.ids[other.ordinal]))
    }
}

impl PartialEq for Ranked<'_> {
    fn eq(&self, o: &Self) -> bool {
        self.better(o) == Ordering::Equal
    }
}
impl Eq for Ranked<'_> {}
impl PartialOrd for Ranked<'_> {
    fn partial_cmp(&self, o: &Self) -> Option<Ordering> {
        Some(self.cmp(o))
    }
}
impl Ord for Ranked<'_> {
    /// Reversed, so the BinaryHeap (a max-heap) keeps the worst on top.
    fn cmp(&self, o: &Self) -> Ordering {
        o.better(self)
    }
}
