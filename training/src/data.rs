//! Training data: a BEIR set checked for consistency, pre-tokenized once,
//! hard-negative files (JSONL), and deterministic batches. Batch `i` is a pure
//! function of (seed, i), so a resumed run sees exactly the batches the
//! uninterrupted run would have seen.

use std::collections::{HashMap, HashSet};
use std::io::Write;
use std::path::Path;

use anyhow::{bail, Context, Result};
use ernie_search::tokenize::TextTokenizer;

use super::rng::Rng;
use ernie_search_data::{beir, corpus::doc_input};

/// A query's ranked hard-negative candidates, as written by `mine`.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct NegativesLine {
    pub qid: String,
    /// Passage ids, best-ranked first (relevant ones already removed).
    pub negatives: Vec<String>,
    pub scores: Vec<f32>,
}

pub struct TrainData {
    pub passage_ids: Vec<String>,
    pub passage_texts: Vec<String>,
    pub passage_tokens: Vec<Vec<u32>>,
    pub query_ids: Vec<String>,
    pub query_texts: Vec<String>,
    pub query_tokens: Vec<Vec<u32>>,
    /// Per training query: its relevant passages (ordinals).
    pub positives: Vec<Vec<usize>>,
    pub relevant: Vec<HashSet<usize>>,
    /// Per training query: ranked hard-negative candidates (ordinals).
    pub negatives: Vec<Vec<usize>>,
    by_id: HashMap<String, usize>,
}

/// One query of a batch with its positive and hard negatives (passage ordinals).
#[derive(Debug, Clone, PartialEq)]
pub struct Example {
    pub query: usize,
    pub positive: usize,
    pub negatives: Vec<usize>,
}

impl TrainData {
    /// Loads `dir` (BEIR layout) for `split`, refusing inconsistent files.
    /// `max_queries` > 0 keeps that many training queries (a fixed subset).
    pub fn load(
        dir: &Path,
        split: &str,
        tokenizer_json: &str,
        query_len: usize,
        passage_len: usize,
        max_queries: usize,
    ) -> Result<Self> {
        let data =
            beir::BeirData::load(dir).with_context(|| format!("cannot load the BEIR set in {}", dir.display()))?;
        if data.corpus.is_empty() {
            bail!("{}: the corpus is empty", dir.join("corpus.jsonl").display());
        }
        let qrels = beir::load_qrels(dir, split)?;
        let passage_ids: Vec<String> = data.corpus.iter().map(|d| d.id.clone()).collect();
        let by_id: HashMap<String, usize> = passage_ids.iter().enumerate().map(|(i, id)| (id.clone(), i)).collect();
        let mut query_ids = Vec::new();
        let mut query_texts = Vec::new();
        let mut positives = Vec::new();
        let mut relevant: Vec<HashSet<usize>> = Vec::new();
        for (qid, judged) in &qrels {
            let text = data
                .queries
                .get(qid)
                .with_context(|| format!("qrels/{split}.tsv names query {qid:?}, which is not in queries.jsonl"))?;
            let mut pos = Vec::new();
            for (pid, &score) in judged {
                let &p = by_id.get(pid).with_context(|| {
                    format!("qrels/{split}.tsv names passage {pid:?} (query {qid:?}), which is not in corpus.jsonl")
                })?;
                if score > 0 {
                    pos.push(p);
                }
            }
            if pos.is_empty() {
                bail!("query {qid:?} has no positive passage in qrels/{split}.tsv (all scores are 0)");
            }
            query_ids.push(qid.clone());
            query_texts.push(text.clone());
            relevant.push(pos.iter().copied().collect());
            positives.push(pos);
        }
        if query_ids.is_empty() {
            bail!("qrels/{split}.tsv in {} holds no queries", dir.display());
        }
        if max_queries > 0 && max_queries < query_ids.len() {
            // A fixed subset: the first queries of a seed-independent shuffle.
            let mut order: Vec<usize> = (0..query_ids.len()).collect();
            Rng::derive(0, "query-subset", 0).shuffle(&mut order);
            order.truncate(max_queries);
            order.sort_unstable();
            query_ids = order.iter().map(|&i| query_ids[i].clone()).collect();
            query_texts = order.iter().map(|&i| query_texts[i].clone()).collect();
            positives = order.iter().map(|&i| positives[i].clone()).collect();
            relevant = order.iter().map(|&i| relevant[i].clone()).collect();
        }
        let passage_texts: Vec<String> = data.corpus.iter().map(doc_input).collect();
        let qt = TextTokenizer::from_bytes(tokenizer_json.as_bytes(), query_len)?;
        let pt = TextTokenizer::from_bytes(tokenizer_json.as_bytes(), passage_len)?;
        let query_tokens = qt.encode_batch(&refs(&query_texts))?.into_iter().map(|t| t.ids).collect();
        let passage_tokens = pt.encode_batch(&refs(&passage_texts))?.into_iter().map(|t| t.ids).collect();
        let negatives = vec![Vec::new(); query_ids.len()];
        Ok(Self {
            passage_ids,
            passage_texts,
            passage_tokens,
            query_ids,
            query_texts,
            query_tokens,
            positives,
            relevant,
            negatives,
            by_id,
        })
    }

    pub fn queries(&self) -> usize {
        self.query_ids.len()
    }

    /// Reads a negatives file (replacing any loaded before); every id must be
    /// in the corpus. Relevant passages are dropped here whatever the file says.
    pub fn load_negatives(&mut self, path: &Path) -> Result<usize> {
        let text =
            std::fs::read_to_string(path).with_context(|| format!("cannot read negatives {}", path.display()))?;
        let qindex: HashMap<&str, usize> = self.query_ids.iter().enumerate().map(|(i, q)| (q.as_str(), i)).collect();
        self.negatives.iter_mut().for_each(Vec::clear);
        let mut found = 0;
        for (n, line) in text.lines().enumerate().filter(|(_, l)| !l.trim().is_empty()) {
            let row: NegativesLine = serde_json::from_str(line)
                .with_context(|| format!("{}:{}: not a negatives line", path.display(), n + 1))?;
            let Some(&q) = qindex.get(row.qid.as_str()) else { continue };
            let mut negs = Vec::with_capacity(row.negatives.len());
            for pid in &row.negatives {
                let &p = self
                    .by_id
                    .get(pid)
                    .with_context(|| format!("{}:{}: passage {pid:?} is not in the corpus", path.display(), n + 1))?;
                if !self.relevant[q].contains(&p) {
                    negs.push(p);
                }
            }
            self.negatives[q] = negs;
            found += 1;
        }
        Ok(found)
    }

    /// Writes ranked candidates per query as a negatives file, skipping the
    /// top `skip` ranks (likely unlabelled positives) and relevant passages.
    pub fn write_negatives(&self, path: &Path, ranked: &[Vec<(usize, f32)>], skip: usize, depth: usize) -> Result<()> {
        let mut out = Vec::new();
        for (q, cands) in ranked.iter().enumerate() {
            let kept: Vec<(usize, f32)> =
                cands.iter().filter(|(p, _)| !self.relevant[q].contains(p)).skip(skip).take(depth).copied().collect();
            let line = NegativesLine {
                qid: self.query_ids[q].clone(),
                negatives: kept.iter().map(|(p, _)| self.passage_ids[*p].clone()).collect(),
                scores: kept.iter().map(|(_, s)| *s).collect(),
            };
            serde_json::to_writer(&mut out, &line)?;
            out.write_all(b"\n")?;
        }
        ernie_search::format::write_atomic(path, &out).with_context(|| format!("cannot write {}", path.display()))
    }

    /// Batch number `index`: `size` queries in a per-epoch shuffled order,
    /// each with a random positive and `n_neg` negatives drawn from its
    /// mined list (random non-relevant passages where the list runs short).
    pub fn batch(&self, seed: u64, index: u64, size: usize, n_neg: usize) -> Vec<Example> {
        let nq = self.queries();
        let start = index as usize * size;
        (start..start + size)
            .map(|slot| {
                let (epoch, pos) = (slot / nq, slot % nq);
                let q = self.epoch_order(seed, epoch as u64)[pos];
                let mut rng = Rng::derive(seed, "example", slot as u64);
                let positive = self.positives[q][rng.below(self.positives[q].len())];
                let mut pool: Vec<usize> = self.negatives[q].clone();
                rng.shuffle(&mut pool);
                let mut negatives: Vec<usize> = pool.into_iter().take(n_neg).collect();
                while negatives.len() < n_neg {
                    let p = rng.below(self.passage_ids.len());
                    if !self.relevant[q].contains(&p) && !negatives.contains(&p) {
                        negatives.push(p);
                    }
                }
                Example { query: q, positive, negatives }
            })
            .collect()
    }

    fn epoch_order(&self, seed: u64, epoch: u64) -> Vec<usize> {
        let mut order: Vec<usize> = (0..self.queries()).collect();
        Rng::derive(seed, "epoch", epoch).shuffle(&mut order);
        order
    }

    /// The candidate list of a batch (every query's positive then its
    /// negatives), the column of each query's positive, and the mask that
    /// hides candidates relevant to a query other than its own positive.
    pub fn candidates(&self, batch: &[Example]) -> (Vec<usize>, Vec<u32>, Vec<f32>) {
        let per = 1 + batch.first().map_or(0, |e| e.negatives.len());
        let cands: Vec<usize> =
            batch.iter().flat_map(|e| std::iter::once(e.positive).chain(e.negatives.iter().copied())).collect();
        let targets: Vec<u32> = (0..batch.len()).map(|i| (i * per) as u32).collect();
        let mut mask = vec![1f32; batch.len() * cands.len()];
        for (i, e) in batch.iter().enumerate() {
            for (j, p) in cands.iter().enumerate() {
                if j != i * per && self.relevant[e.query].contains(p) {
                    mask[i * cands.len() + j] = 0.0;
                }
            }
        }
        (cands, targets, mask)
    }

    pub fn passage(&self, id: &str) -> Option<usize> {
        self.by_id.get(id).copied()
    }
}

fn refs(v: &[String]) -> Vec<&str> {
    v.iter().map(String::as_str).collect()
}
