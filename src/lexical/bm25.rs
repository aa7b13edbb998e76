//! BM25 over the passages of an index, split into term blocks so a browser
//! loads only the blocks its query's terms live in (as Pagefind does).
//!
//! Scoring is Lucene's BM25 (bm25s `method="lucene"`):
//! `idf = ln(1 + (N - df + 0.5) / (df + 0.5))`,
//! `score = sum over query terms of idf * tf / (tf + k1 * (1 - b + b * len / avglen))`.
//! Lucene drops the constant `(k1 + 1)` factor; it does not change a ranking.

use std::collections::{BTreeMap, HashMap};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::analyze::Analyzer;
use crate::{Error, Result};

/// BM25's two knobs. The defaults are bm25s's (k1 1.5, b 0.75), so our scores
/// can be checked against it; Lucene's own default k1 is 1.2.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Bm25Params {
    pub k1: f32,
    pub b: f32,
}

impl Default for Bm25Params {
    fn default() -> Self {
        Self { k1: 1.5, b: 0.75 }
    }
}

impl Bm25Params {
    pub fn check(&self) -> Result<()> {
        if !self.k1.is_finite() || self.k1 < 0.0 || !(0.0..=1.0).contains(&self.b) {
            return Err(Error::Invalid(format!(
                "BM25 needs k1 >= 0 and 0 <= b <= 1, got k1 {} b {}",
                crate::error::show_f32(self.k1),
                crate::error::show_f32(self.b)
            )));
        }
        Ok(())
    }
}

/// The passages containing one term, by ordinal (ascending), with counts.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Postings {
    pub docs: Vec<u32>,
    pub tfs: Vec<u32>,
}

/// What every query needs whatever its terms: parameters, passage lengths,
/// and the identity of the corpus (so blocks and vectors of another build
/// are refused).
#[derive(Debug, Clone, PartialEq)]
pub struct LexicalMeta {
    pub params: Bm25Params,
    pub doc_len: Vec<u32>,
    pub n_blocks: u32,
    /// sha256 of the passage ids in index order.
    pub corpus: [u8; 32],
}

/// One block's terms.
pub type TermBlock = HashMap<String, Postings>;

/// A BM25 index; all of it when built, only some blocks when loaded piecewise.
#[derive(Debug, Clone)]
pub struct LexicalIndex {
    meta: LexicalMeta,
    avg_len: f32,
    blocks: Vec<Option<TermBlock>>,
    /// Postings of passages added after the build ([`add`](Self::add)):
    /// in memory only, whatever block their terms hash to.
    added: TermBlock,
    analyzer: std::sync::Arc<Analyzer>,
}

/// The identity of a corpus: sha256 over its passage ids, in order.
pub fn corpus_digest<S: AsRef<str>>(ids: &[S]) -> [u8; 32] {
    let mut h = Sha256::new();
    for id in ids {
        h.update((id.as_ref().len() as u64).to_le_bytes());
        h.update(id.as_ref().as_bytes());
    }
    h.finalize().into()
}

/// Which block a term lives in: FNV-1a, the same on every platform.
pub fn block_of(term: &str, n_blocks: u32) -> u32 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in term.as_bytes() {
        h ^= *b as u64;
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    (h % n_blocks.max(1) as u64) as u32
}

impl LexicalIndex {
    /// Indexes `texts` (passage ordinal = position), spreading the terms over
    /// `n_blocks` blocks. `ids` names the passages, in the same order.
    pub fn build<S: AsRef<str>>(ids: &[S], texts: &[S], params: Bm25Params, n_blocks: u32) -> Result<Self> {
        params.check()?;
        if texts.is_empty() {
            return Err(Error::Invalid("the corpus holds no passages: nothing to index".into()));
        }
        if ids.len() != texts.len() {
            return Err(Error::Invalid(format!("{} ids for {} texts", ids.len(), texts.len())));
        }
        let n_blocks = n_blocks.clamp(1, crate::format::shard::MAX_LEXICAL_BLOCKS as u32);
        let analyzer = Analyzer::default();
        let mut doc_len = Vec::with_capacity(texts.len());
        let mut all: BTreeMap<String, Postings> = BTreeMap::new();
        for (doc, text) in texts.iter().enumerate() {
            let terms = analyzer.terms(text.as_ref());
            doc_len.push(terms.len() as u32);
            let mut tf: HashMap<String, u32> = HashMap::new();
            for t in terms {
                *tf.entry(t).or_default() += 1;
            }
            for (t, n) in tf {
                let p = all.entry(t).or_default();
                p.docs.push(doc as u32);
                p.tfs.push(n);
            }
        }
        let mut blocks: Vec<TermBlock> = vec![HashMap::new(); n_blocks as usize];
        for (term, p) in all {
            blocks[block_of(&term, n_blocks) as usize].insert(term, p);
        }
        let meta = LexicalMeta { params, doc_len, n_blocks, corpus: corpus_digest(ids) };
        let mut index = Self::from_meta(meta)?;
        index.blocks = blocks.into_iter().map(Some).collect();
        Ok(index)
    }

    /// The same index with its terms spread over `n_blocks` blocks. Every
    /// block must be loaded.
    pub fn split(self, n_blocks: u32) -> Result<Self> {
        let n_blocks = n_blocks.clamp(1, crate::format::shard::MAX_LEXICAL_BLOCKS as u32);
        let mut blocks: Vec<TermBlock> = vec![HashMap::new(); n_blocks as usize];
        for (i, b) in self.blocks.into_iter().enumerate() {
            let b = b.ok_or_else(|| Error::Invalid(format!("lexical block {i} is not loaded; cannot re-split")))?;
            for (term, p) in b {
                blocks[block_of(&term, n_blocks) as usize].insert(term, p);
            }
        }
        let meta = LexicalMeta { n_blocks, ..self.meta };
        let mut index = Self::from_meta(meta)?;
        index.blocks = blocks.into_iter().map(Some).collect();
        Ok(index)
    }

    /// An index of no passages, to [`add`](Self::add) to.
    pub fn empty(params: Bm25Params) -> Result<Self> {
        params.check()?;
        let meta = LexicalMeta { params, doc_len: Vec::new(), n_blocks: 1, corpus: corpus_digest::<&str>(&[]) };
        Ok(Self {
            meta,
            avg_len: 1.0,
            blocks: vec![Some(TermBlock::new())],
            added: TermBlock::new(),
            analyzer: Default::default(),
        })
    }

    /// An index with no block loaded yet (add them with [`add_block`](Self::add_block)).
    pub fn from_meta(meta: LexicalMeta) -> Result<Self> {
        meta.params.check()?;
        if meta.doc_len.is_empty() || meta.n_blocks == 0 {
            return Err(Error::format("lexical index", "no passages or no blocks"));
        }
        if meta.n_blocks as usize > crate::format::shard::MAX_LEXICAL_BLOCKS {
            return Err(Error::format("lexical index", format!("{} blocks is over the limit", meta.n_blocks)));
        }
        let total: u64 = meta.doc_len.iter().map(|&l| l as u64).sum();
        let avg_len = (total as f64 / meta.doc_len.len() as f64).max(1e-9) as f32;
        let blocks = vec![None; meta.n_blocks as usize];
        Ok(Self { meta, avg_len, blocks, added: TermBlock::new(), analyzer: Default::default() })
    }

    pub fn meta(&self) -> &LexicalMeta {
        &self.meta
    }
    pub fn len(&self) -> usize {
        self.meta.doc_len.len()
    }
    pub fn is_empty(&self) -> bool {
        self.meta.doc_len.is_empty()
    }
    pub fn n_blocks(&self) -> u32 {
        self.meta.n_blocks
    }
    pub fn block(&self, i: u32) -> Option<&TermBlock> {
        self.blocks.get(i as usize).and_then(Option::as_ref)
    }
    pub fn term_count(&self) -> usize {
        self.blocks.iter().flatten().map(HashMap::len).sum()
    }

    /// Adds a block read from a file; it must belong to this corpus.
    pub fn add_block(&mut self, number: u32, corpus: &[u8; 32], block: TermBlock) -> Result<()> {
        if corpus != &self.meta.corpus {
            return Err(Error::format("lexical block", "belongs to another corpus than this index"));
        }
        let n = self.len() as u32;
        if block.values().any(|p| p.docs.last().is_some_and(|&d| d >= n)) {
            return Err(Error::format("lexical block", format!("names a passage past the last of {n}")));
        }
        let slot = self
            .blocks
            .get_mut(number as usize)
            .ok_or_else(|| Error::format("lexical block", format!("block {number} of {}", self.meta.n_blocks)))?;
        *slot = Some(block);
        Ok(())
    }

    /// Appends passages (ordinals `len()..`), e.g. a user's own documents in
    /// the browser. They live in memory only: an index with additions is not
    /// written back to files.
    pub fn add<S: AsRef<str>>(&mut self, texts: &[S]) {
        for text in texts {
            let doc = self.meta.doc_len.len() as u32;
            let terms = self.analyzer.terms(text.as_ref());
            self.meta.doc_len.push(terms.len() as u32);
            let mut tf: HashMap<String, u32> = HashMap::new();
            for t in terms {
                *tf.entry(t).or_default() += 1;
            }
            for (t, n) in tf {
                let p = self.added.entry(t).or_default();
                p.docs.push(doc);
                p.tfs.push(n);
            }
        }
        let total: u64 = self.meta.doc_len.iter().map(|&l| l as u64).sum();
        self.avg_len = (total as f64 / self.meta.doc_len.len().max(1) as f64).max(1e-9) as f32;
    }

    /// Whether passages were added after the build (see [`add`](Self::add)).
    pub fn has_additions(&self) -> bool {
        !self.added.is_empty()
    }

    /// The query's terms (distinct, in first-seen order).
    pub fn query_terms(&self, query: &str) -> Vec<String> {
        let mut seen = std::collections::HashSet::new();
        self.analyzer.terms(query).into_iter().filter(|t| seen.insert(t.clone())).collect()
    }

    /// Blocks the query needs that are not loaded yet.
    pub fn missing_blocks(&self, query: &str) -> Vec<u32> {
        let mut need: Vec<u32> = self
            .query_terms(query)
            .iter()
            .map(|t| block_of(t, self.meta.n_blocks))
            .filter(|&b| self.blocks[b as usize].is_none())
            .collect();
        need.sort_unstable();
        need.dedup();
        need
    }

    /// BM25 score of every passage (0 for those sharing no term). `None` when
    /// the query has no searchable term (only stop words or punctuation).
    pub fn scores(&self, query: &str) -> Result<Option<Vec<f32>>> {
        let terms = self.query_terms(query);
        if terms.is_empty() {
            return Ok(None);
        }
        let Bm25Params { k1, b } = self.meta.params;
        let n = self.len() as f32;
        let mut out = vec![0f32; self.len()];
        for t in &terms {
            let nb = block_of(t, self.meta.n_blocks);
            let block = self.blocks[nb as usize].as_ref().ok_or_else(|| {
                Error::Invalid(format!("lexical block {nb} (term {t:?}) is not loaded; load `missing_blocks` first"))
            })?;
            let lists: Vec<&Postings> = [block.get(t), self.added.get(t)].into_iter().flatten().collect();
            let df = lists.iter().map(|p| p.docs.len()).sum::<usize>() as f32;
            let idf = (1.0 + (n - df + 0.5) / (df + 0.5)).ln();
            for p in lists {
                for (&d, &tf) in p.docs.iter().zip(&p.tfs) {
                    let tf = tf as f32;
                    let norm = k1 * (1.0 - b + b * self.meta.doc_len[d as usize] as f32 / self.avg_len);
                    out[d as usize] += idf * tf / (tf + norm);
                }
            }
        }
        Ok(Some(out))
    }
}

impl std::fmt::Debug for Analyzer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Analyzer(english)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tiny() -> LexicalIndex {
        let ids = ["a", "b", "c"];
        let texts = ["the cat sat on the mat", "dogs chase cats", "a bird in the sky"];
        LexicalIndex::build(&ids, &texts, Bm25Params::default(), 4).unwrap()
    }

    #[test]
    fn scores_match_the_formula() {
        let idx = tiny();
        let s = idx.scores("cat").unwrap().unwrap();
        // "cat" is in passages 0 ("cat sat mat": 3 terms) and 1 ("dog chase cat").
        let (n, df, avg) = (3.0f32, 2.0f32, 8.0f32 / 3.0);
        let idf = (1.0 + (n - df + 0.5) / (df + 0.5)).ln();
        let want = idf / (1.0 + 1.5 * (0.25 + 0.75 * 3.0 / avg));
        assert!((s[0] - want).abs() < 1e-6, "{} vs {want}", s[0]);
        assert!(s[1] > 0.0 && s[2] == 0.0);
    }

    #[test]
    fn stop_word_queries_have_no_terms() {
        assert_eq!(tiny().scores("the and of").unwrap(), None);
    }

    #[test]
    fn missing_blocks_are_named_and_refused() {
        let full = tiny();
        let mut part = LexicalIndex::from_meta(full.meta().clone()).unwrap();
        let need = part.missing_blocks("cat bird");
        assert!(!need.is_empty());
        assert!(part.scores("cat bird").is_err());
        for b in need {
            part.add_block(b, &full.meta().corpus, full.block(b).unwrap().clone()).unwrap();
        }
        assert!(part.missing_blocks("cat bird").is_empty());
        assert_eq!(part.scores("cat bird").unwrap(), full.scores("cat bird").unwrap());
        assert!(part.add_block(0, &[7; 32], TermBlock::new()).is_err());
    }

    #[test]
    fn added_passages_score_as_if_built_together() {
        let ids = ["a", "b", "c", "d"];
        let texts = ["the cat sat on the mat", "dogs chase cats", "a bird in the sky", "cat and bird"];
        let all = LexicalIndex::build(&ids, &texts, Bm25Params::default(), 2).unwrap();
        let mut some = LexicalIndex::build(&ids[..2], &texts[..2], Bm25Params::default(), 2).unwrap();
        some.add(&texts[2..]);
        let mut none = LexicalIndex::empty(Bm25Params::default()).unwrap();
        assert_eq!(none.scores("cat").unwrap(), Some(vec![]));
        none.add(&texts);
        for q in ["cat", "bird sky", "dog mat"] {
            let want = all.scores(q).unwrap().unwrap();
            for got in [some.scores(q).unwrap().unwrap(), none.scores(q).unwrap().unwrap()] {
                assert!(want.iter().zip(&got).all(|(a, b)| (a - b).abs() < 1e-6), "{q}: {want:?} vs {got:?}");
            }
        }
        assert!(some.has_additions() && !all.has_additions());
    }

    #[test]
    fn empty_corpus_and_bad_params_are_refused() {
        let none: [&str; 0] = [];
        assert!(LexicalIndex::build(&none, &none, Bm25Params::default(), 1).is_err());
        assert!(LexicalIndex::build(&["a"], &["x"], Bm25Params { k1: 1.2, b: 2.0 }, 1).is_err());
    }
}
