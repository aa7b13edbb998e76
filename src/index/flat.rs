//! Exact search: score every vector, keep the best k.

use std::cmp::Ordering;
use std::collections::BinaryHeap;

use super::clusters::ClusterMap;
use super::quant::{Store, VectorDType};
use crate::{Error, Result};

/// One result: the passage's position in the index and its score.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Hit {
    pub ordinal: usize,
    pub score: f32,
}

/// A flat (brute-force) inner-product index over passages. A passage longer
/// than the model's window has one vector per window (consecutive rows); its
/// score is its best window's.
#[derive(Debug, Clone, PartialEq)]
pub struct FlatIndex {
    pub(crate) dim: usize,
    /// Passage ids, by ordinal.
    pub(crate) ids: Vec<String>,
    /// How many rows (windows) each passage has, by ordinal; at least 1.
    pub(crate) windows: Vec<u32>,
    pub(crate) store: Store,
    /// Fingerprint of the model that made the vectors (hex sha256).
    pub(crate) fingerprint: String,
    /// Set when the rows arrive by cluster (`format::clusters`): rows of
    /// clusters not loaded hold zeros and score as their centroid.
    pub(crate) clusters: Option<ClusterMap>,
}

impl FlatIndex {
    pub fn new(dim: usize, dtype: VectorDType, fingerprint: &str) -> Result<Self> {
        if dim == 0 {
            return Err(Error::Invalid("index dimension must be positive".into()));
        }
        Ok(Self {
            dim,
            ids: Vec::new(),
            windows: Vec::new(),
            store: Store::empty(dtype),
            fingerprint: fingerprint.to_string(),
            clusters: None,
        })
    }

    /// Adds a passage with one vector.
    pub fn push(&mut self, id: &str, v: &[f32]) -> Result<()> {
        self.push_windows(id, std::slice::from_ref(&v))
    }

    /// Adds a passage with one vector per window (at least one).
    pub fn push_windows<V: AsRef<[f32]>>(&mut self, id: &str, windows: &[V]) -> Result<()> {
        if self.clusters.is_some() {
            return Err(Error::Invalid("passages cannot be added to an index read by cluster".into()));
        }
        if windows.is_empty() {
            return Err(Error::Invalid(format!("passage {id} has no vector")));
        }
        for v in windows.iter().map(AsRef::as_ref) {
            if v.len() != self.dim {
                return Err(Error::Invalid(format!("vector for {id} has {} values, the index {}", v.len(), self.dim)));
            }
            if v.iter().any(|x| !x.is_finite()) {
                return Err(Error::Invalid(format!("vector for {id} holds NaN or infinity")));
            }
        }
        windows.iter().for_each(|v| self.store.push(v.as_ref()));
        self.ids.push(id.to_string());
        self.windows.push(windows.len() as u32);
        Ok(())
    }

    /// The vectors of passage `ordinal`, one per window.
    pub fn passage_vectors(&self, ordinal: usize) -> Option<Vec<Vec<f32>>> {
        let first: usize = self.windows.get(..ordinal)?.iter().map(|&w| w as usize).sum();
        let n = *self.windows.get(ordinal)? as usize;
        (first..first + n).map(|r| self.store.row(self.dim, r)).collect()
    }

    pub fn len(&self) -> usize {
        self.ids.len()
    }
    pub fn is_empty(&self) -> bool {
        self.ids.is_empty()
    }
    /// Vectors stored: one per window, so at least `len()`.
    pub fn rows(&self) -> usize {
        self.windows.iter().map(|&w| w as usize).sum()
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
    /// The vectors, row by row (windows are consecutive rows).
    pub fn store(&self) -> &Store {
        &self.store
    }

    /// The cluster map, when rows arrive by cluster.
    pub fn clusters(&self) -> Option<&ClusterMap> {
        self.clusters.as_ref()
    }
    pub fn clusters_mut(&mut self) -> Option<&mut ClusterMap> {
        self.clusters.as_mut()
    }

    /// Bytes one query scans.
    pub fn scan_bytes(&self) -> usize {
        self.store.bytes()
    }

    /// Top `k` passages by inner product (a passage scores as its best
    /// window). Equal scores are ordered as trec_eval does (larger passage id
    /// first), so our metrics and a TREC run file agree.
    pub fn search(&self, query: &[f32], k: usize) -> Result<Vec<Hit>> {
        let mut scores = Vec::with_capacity(self.rows());
        self.search_with(query, k, &mut scores)
    }

    /// As [`search`](Self::search), reusing a score buffer across queries.
    pub fn search_with(&self, query: &[f32], k: usize, scores: &mut Vec<f32>) -> Result<Vec<Hit>> {
        self.passage_scores(query, scores)?;
        Ok(top_k(scores.iter().copied().enumerate(), &self.ids, k))
    }

    /// Every passage's score, by ordinal, into `scores`.
    pub fn passage_scores(&self, query: &[f32], scores: &mut Vec<f32>) -> Result<()> {
        if query.len() != self.dim {
            return Err(Error::Invalid(format!("query has {} values, the index {}", query.len(), self.dim)));
        }
        check_query_vector(query)?;
        match &self.clusters {
            Some(c) => _ = c.scores(&self.store, query, scores),
            None => self.store.scan(self.dim, query, scores),
        }
        if scores.len() != self.ids.len() {
            // Windows are consecutive rows: keep each passage's best, in place.
            let mut row = 0;
            for (p, &w) in self.windows.iter().enumerate() {
                let best = scores[row..row + w as usize].iter().copied().fold(f32::NEG_INFINITY, f32::max);
                scores[p] = best;
                row += w as usize;
            }
            scores.truncate(self.ids.len());
        }
        Ok(())
    }
}

/// Refuses a query vector holding NaN or infinity: scores would be NaN and the
/// ranking random. Only a damaged model produces one.
pub fn check_query_vector(query: &[f32]) -> Result<()> {
    if query.iter().all(|x| x.is_finite()) {
        return Ok(());
    }
    Err(Error::Query(
        "the query vector holds NaN or infinity: the model file is damaged (reload it from a good copy)".into(),
    ))
}

/// The best `k` of `(ordinal, score)` pairs, best first; equal scores put the
/// larger id first (trec_eval's rule).
pub fn top_k(scored: impl Iterator<Item = (usize, f32)>, ids: &[String], k: usize) -> Vec<Hit> {
    // A k past the index size (a caller asking for "everything") must not
    // size the heap: with_capacity(k + 1) panics or aborts for huge k.
    let k = k.min(ids.len());
    if k == 0 {
        return Vec::new();
    }
    // Min-heap of the best k so far: its top is the worst kept hit.
    let mut heap: BinaryHeap<Ranked> = BinaryHeap::with_capacity(k + 1);
    for (ordinal, score) in scored {
        if heap.len() == k {
            let worst = heap.peek().map(|r| r.score).unwrap_or(f32::NEG_INFINITY);
            if score < worst {
                continue; // the common case: one comparison per vector
            }
        }
        heap.push(Ranked { score, ordinal, ids });
        if heap.len() > k {
            heap.pop();
        }
    }
    let mut hits: Vec<Ranked> = heap.into_vec();
    // By `Ord` (best first), not by a closure: a closure inside this generic
    // function is a new type for each caller's iterator, and so would be the
    // sort compiled for it (4 KiB of wasm each).
    hits.sort();
    hits.into_iter().map(|r| Hit { ordinal: r.ordinal, score: r.score }).collect()
}

struct Ranked<'a> {
    score: f32,
    ordinal: usize,
    ids: &'a [String],
}

impl Ranked<'_> {
    /// Greater = better: higher score, then larger id.
    fn better(&self, other: &Self) -> Ordering {
        self.score.total_cmp(&other.score).then_with(|| self.ids[self.ordinal].cmp(&other.ids[other.ordinal]))
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
