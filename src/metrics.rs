//! Retrieval metrics (MRR@10, Recall@k, nDCG@10 with binary gains) and TREC
//! run files. Conventions: every query in the qrels counts (a query with no
//! results scores 0); a run is ranked by score, ties by larger passage id
//! first (trec_eval's rule); a passage is relevant when its qrel score > 0.
//! Checked against pytrec_eval in `tests/metrics_pytrec.rs`.

use std::collections::{BTreeMap, HashSet};
use std::io::Write;

/// query id -> passage id -> relevance.
pub type Qrels = BTreeMap<String, BTreeMap<String, u32>>;
/// query id -> (passage id, score), in any order.
pub type Run = BTreeMap<String, Vec<(String, f32)>>;

pub const RECALL_CUTOFFS: [usize; 4] = [1, 5, 20, 100];

#[derive(Debug, Clone, Copy, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Scores {
    pub mrr_10: f64,
    pub recall_1: f64,
    pub recall_5: f64,
    pub recall_20: f64,
    pub recall_100: f64,
    pub ndcg_10: f64,
}

/// Mean over the qrels' queries, and the per-query values.
pub fn evaluate(qrels: &Qrels, run: &Run) -> (Scores, BTreeMap<String, Scores>) {
    let mut per_query = BTreeMap::new();
    let empty = Vec::new();
    for (qid, rels) in qrels {
        let relevant: HashSet<&str> = rels.iter().filter(|(_, r)| **r > 0).map(|(p, _)| p.as_str()).collect();
        if relevant.is_empty() {
            continue; // trec_eval skips queries without a relevant passage
        }
        let ranked = rank(run.get(qid).unwrap_or(&empty));
        per_query.insert(qid.clone(), score_query(&ranked, &relevant));
    }
    let n = per_query.len().max(1) as f64;
    let mut mean = Scores::default();
    for s in per_query.values() {
        mean.mrr_10 += s.mrr_10 / n;
        mean.recall_1 += s.recall_1 / n;
        mean.recall_5 += s.recall_5 / n;
        mean.recall_20 += s.recall_20 / n;
        mean.recall_100 += s.recall_100 / n;
        mean.ndcg_10 += s.ndcg_10 / n;
    }
    (mean, per_query)
}

/// Sorted by score (desc), ties by passage id (desc).
fn rank(results: &[(String, f32)]) -> Vec<&str> {
    let mut r: Vec<&(String, f32)> = results.iter().collect();
    r.sort_by(|a, b| b.1.total_cmp(&a.1).then_with(|| b.0.cmp(&a.0)));
    r.into_iter().map(|(p, _)| p.as_str()).collect()
}

fn score_query(ranked: &[&str], relevant: &HashSet<&str>) -> Scores {
    let hit = |i: usize| relevant.contains(ranked[i]);
    let first = (0..ranked.len().min(10)).find(|&i| hit(i));
    let recall = |k: usize| (0..ranked.len().min(k)).filter(|&i| hit(i)).count() as f64 / relevant.len() as f64;
    let dcg: f64 = (0..ranked.len().min(10)).filter(|&i| hit(i)).map(|i| 1.0 / ((i + 2) as f64).log2()).sum();
    let idcg: f64 = (0..relevant.len().min(10)).map(|i| 1.0 / ((i + 2) as f64).log2()).sum();
    Scores {
        mrr_10: first.map_or(0.0, |i| 1.0 / (i + 1) as f64),
        recall_1: recall(1),
        recall_5: recall(5),
        recall_20: recall(20),
        recall_100: recall(100),
        ndcg_10: dcg / idcg,
    }
}

/// Writes `qid Q0 pid rank score tag` lines, ranked as the metrics rank them.
pub fn write_trec_run<W: Write>(mut w: W, run: &Run, tag: &str) -> std::io::Result<()> {
    for (qid, results) in run {
        let scores: BTreeMap<&str, f32> = results.iter().map(|(p, s)| (p.as_str(), *s)).collect();
        for (i, pid) in rank(results).into_iter().enumerate() {
            writeln!(w, "{qid} Q0 {pid} {} {:.6} {tag}", i + 1, scores[pid])?;
        }
    }
    Ok(())
}

/// Parses a TREC run file. Errors name the 1-based line.
pub fn parse_trec_run(text: &str) -> Result<Run, String> {
    let mut run = Run::new();
    for (n, line) in text.lines().enumerate().filter(|(_, l)| !l.trim().is_empty()) {
        let f: Vec<&str> = line.split_whitespace().collect();
        if f.len() != 6 {
            return Err(format!("line {}: expected 6 fields, found {}", n + 1, f.len()));
        }
        let score: f32 = f[4].parse().map_err(|_| format!("line {}: score {:?} is not a number", n + 1, f[4]))?;
        run.entry(f[0].to_string()).or_default().push((f[2].to_string(), score));
    }
    Ok(run)
}

/// Parses BEIR qrels TSV (`query-id corpus-id score`, optional header).
pub fn parse_qrels_tsv(text: &str) -> Result<Qrels, String> {
    let mut q = Qrels::new();
    for (n, line) in text.lines().enumerate() {
        let f: Vec<&str> = line.split('\t').collect();
        if line.trim().is_empty() || (n == 0 && f.first() == Some(&"query-id")) {
            continue;
        }
        if f.len() != 3 {
            return Err(format!("line {}: expected 3 tab-separated fields", n + 1));
        }
        let rel: u32 = f[2].trim().parse().map_err(|_| format!("line {}: bad relevance {:?}", n + 1, f[2]))?;
        q.entry(f[0].to_string()).or_default().insert(f[1].to_string(), rel);
    }
    Ok(q)
}
