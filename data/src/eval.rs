//! `ernie-search eval`: index a BEIR corpus (vectors and BM25), search a
//! split's queries exhaustively in every mode, report MRR@10,
//! Recall@1/5/20/100 and nDCG@10, write a TREC run per mode. Also the tuning
//! of the hybrid weight, shared with `tune-fusion`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{bail, Context, Result};
use ernie_search::fusion::{Candidates, Fusion, FUSION_DEPTH};
use ernie_search::metrics::{self, Qrels, Run, Scores};
use ernie_search::{Bm25Params, Embedder, FlatIndex, LexicalIndex, VectorDType};

use ernie_search::index::builder::{embed_passages, embed_queries, Windows};

use crate::progress::Bar;
use crate::{beir, corpus::doc_input};

/// Depth of every run (Recall@100 needs 100).
const RUN_DEPTH: usize = 100;
/// The weights tried when tuning the convex fusion.
pub const ALPHA_GRID: usize = 20;

pub struct EvalOptions {
    pub dtype: VectorDType,
    pub batch: usize,
    pub windows: Windows,
    pub bm25: Bm25Params,
    /// A fixed hybrid weight; `None`: tune it on `tune_split`.
    pub alpha: Option<f32>,
    pub tune_split: String,
    /// Run files go to `<run_prefix>.<split>.<mode>.trec`.
    pub run_prefix: Option<PathBuf>,
}

/// One split's figures.
pub struct SplitReport {
    pub split: String,
    pub queries: usize,
    /// (mode, scores): dense, lexical, hybrid-rrf, hybrid (convex).
    pub rows: Vec<(String, Scores)>,
}

pub struct EvalReport {
    pub splits: Vec<SplitReport>,
    pub alpha: f32,
    /// Where alpha came from, e.g. "tuned on dev" or "given".
    pub alpha_source: String,
    pub passages: usize,
    pub vectors: usize,
    pub windowed: usize,
    pub overlap: usize,
    pub encode_seconds: f64,
    pub total_seconds: f64,
}

/// Both sides' scores for one query, as candidates.
pub struct QueryCandidates {
    pub qid: String,
    pub cands: Candidates,
}

/// Evaluates every split in `splits` (the corpus is encoded once).
pub fn evaluate(embedder: &Embedder, data: &Path, splits: &[String], opts: &EvalOptions) -> Result<EvalReport> {
    let start = Instant::now();
    let corpus = beir::load_corpus(&data.join("corpus.jsonl"))?;
    let queries = beir::load_queries(&data.join("queries.jsonl"))?;
    let ids: Vec<String> = corpus.iter().map(|d| d.id.clone()).collect();
    let texts: Vec<String> = corpus.iter().map(doc_input).collect();
    let lexical = LexicalIndex::build(&ids, &texts, opts.bm25, 1)?;
    let encode = Instant::now();
    let emb = embed_passages(embedder, &texts, opts.batch, opts.windows, &mut Bar::new(0, "corpus"))?;
    let encode_seconds = encode.elapsed().as_secs_f64();
    let mut index = FlatIndex::new(embedder.dim(), opts.dtype, &embedder.card().fingerprint)?;
    for (id, v) in ids.iter().zip(&emb.vectors) {
        index.push_windows(id, v)?;
    }

    let mut per_split = Vec::new();
    for split in splits {
        let qrels = beir::load_qrels(data, split)?;
        let cands = candidates(embedder, &index, &lexical, &queries, &qrels, split)?;
        per_split.push((split.clone(), qrels, cands));
    }
    let (alpha, alpha_source) = match opts.alpha {
        Some(a) => (a, "given".to_string()),
        None => {
            let tuned = match per_split.iter().find(|(s, ..)| *s == opts.tune_split) {
                Some((_, qrels, cands)) => tune(cands, qrels, &ids).0,
                None => {
                    let tq = beir::load_qrels(data, &opts.tune_split)?;
                    let tc = candidates(embedder, &index, &lexical, &queries, &tq, &opts.tune_split)?;
                    tune(&tc, &tq, &ids).0
                }
            };
            (tuned, format!("tuned on {}", opts.tune_split))
        }
    };

    let named = |hits: Vec<ernie_search::Hit>| -> Vec<(String, f32)> {
        hits.iter().map(|h| (ids[h.ordinal].clone(), h.score)).collect()
    };
    let mut reports = Vec::new();
    for (split, qrels, cands) in &per_split {
        let dense_run: Run = cands.iter().map(|q| (q.qid.clone(), named(q.cands.dense_top()))).collect();
        let lexical_run: Run = cands.iter().map(|q| (q.qid.clone(), named(q.cands.lexical_top()))).collect();
        let rrf_run = fused_run(cands, Fusion::default(), &ids);
        let convex_run = fused_run(cands, Fusion::Convex { alpha }, &ids);
        let mut rows = Vec::new();
        for (mode, run) in
            [("dense", &dense_run), ("lexical", &lexical_run), ("hybrid-rrf", &rrf_run), ("hybrid", &convex_run)]
        {
            rows.push((mode.to_string(), metrics::evaluate(qrels, run).0));
            if let Some(prefix) = &opts.run_prefix {
                let path = PathBuf::from(format!("{}.{split}.{mode}.trec", prefix.display()));
                let mut out = Vec::new();
                metrics::write_trec_run(&mut out, run, &format!("ernie-search-{mode}"))?;
                ernie_search::format::write_atomic(&path, &out)
                    .with_context(|| format!("cannot write {}", path.display()))?;
            }
        }
        reports.push(SplitReport { split: split.clone(), queries: qrels.len(), rows });
    }
    Ok(EvalReport {
        splits: reports,
        alpha,
        alpha_source,
        passages: corpus.len(),
        vectors: emb.rows,
        windowed: emb.windowed,
        overlap: emb.overlap,
        encode_seconds,
        total_seconds: start.elapsed().as_secs_f64(),
    })
}

/// Embeds the queries of `qrels` and gathers both sides' candidates for each.
pub fn candidates(
    embedder: &Embedder,
    index: &FlatIndex,
    lexical: &LexicalIndex,
    queries: &BTreeMap<String, String>,
    qrels: &Qrels,
    split: &str,
) -> Result<Vec<QueryCandidates>> {
    let mut qids: Vec<&String> = qrels.keys().collect();
    qids.sort();
    let mut texts = Vec::with_capacity(qids.len());
    for q in &qids {
        match queries.get(*q) {
            Some(t) => texts.push(t.clone()),
            None => bail!("query {q} is in qrels/{split}.tsv but not in queries.jsonl"),
        }
    }
    let vecs = embed_queries(embedder, &texts, 64, &mut Bar::new(0, split))?;
    let qids: Vec<String> = qids.into_iter().cloned().collect();
    let vecs: Vec<Option<Vec<f32>>> = vecs.into_iter().map(Some).collect();
    candidates_from(index, lexical, &qids, &texts, &vecs)
}

/// Both sides' candidates for queries whose vectors are given (from any
/// query encoder). A query without a vector (no token the encoder knows)
/// falls back to BM25: its dense side repeats the lexical scores.
pub fn candidates_from(
    index: &FlatIndex,
    lexical: &LexicalIndex,
    qids: &[String],
    texts: &[String],
    vectors: &[Option<Vec<f32>>],
) -> Result<Vec<QueryCandidates>> {
    let mut dense = Vec::new();
    let mut out = Vec::with_capacity(qids.len());
    for ((qid, text), v) in qids.iter().zip(texts).zip(vectors) {
        let lex = lexical.scores(text)?;
        match (v, &lex) {
            (Some(v), _) => index.passage_scores(v, &mut dense)?,
            (None, Some(l)) => dense.clone_from(l),
            (None, None) => dense = vec![0.0; index.len()],
        }
        out.push(QueryCandidates {
            qid: qid.clone(),
            cands: Candidates::gather(&dense, lex.as_deref(), index.ids(), FUSION_DEPTH),
        });
    }
    Ok(out)
}

/// A query encoder's rows over gathered candidates: dense, hybrid by RRF, and
/// hybrid by a convex weight (given, or tuned on these very queries).
pub fn encoder_rows(
    name: &str,
    cands: &[QueryCandidates],
    qrels: &Qrels,
    ids: &[String],
    alpha: Option<f32>,
) -> Vec<(String, Scores)> {
    let named = |hits: Vec<ernie_search::Hit>| -> Vec<(String, f32)> {
        hits.iter().map(|h| (ids[h.ordinal].clone(), h.score)).collect()
    };
    let dense: Run = cands.iter().map(|q| (q.qid.clone(), named(q.cands.dense_top()))).collect();
    let (alpha, how) = match alpha {
        Some(a) => (a, "given"),
        None => (tune(cands, qrels, ids).0, "tuned here"),
    };
    vec![
        (format!("{name} dense"), metrics::evaluate(qrels, &dense).0),
        (format!("{name} hybrid-rrf"), metrics::evaluate(qrels, &fused_run(cands, Fusion::default(), ids)).0),
        (
            format!("{name} hybrid alpha {alpha:.2} ({how})"),
            metrics::evaluate(qrels, &fused_run(cands, Fusion::Convex { alpha }, ids)).0,
        ),
    ]
}

/// BM25 alone over gathered candidates.
pub fn lexical_row(cands: &[QueryCandidates], qrels: &Qrels, ids: &[String]) -> (String, Scores) {
    let run: Run = cands
        .iter()
        .map(|q| (q.qid.clone(), q.cands.lexical_top().iter().map(|h| (ids[h.ordinal].clone(), h.score)).collect()))
        .collect();
    ("lexical".to_string(), metrics::evaluate(qrels, &run).0)
}

fn fused_run(cands: &[QueryCandidates], fusion: Fusion, ids: &[String]) -> Run {
    cands
        .iter()
        .map(|q| {
            let hits = q.cands.fuse(fusion, ids, RUN_DEPTH);
            (q.qid.clone(), hits.iter().map(|h| (ids[h.ordinal].clone(), h.score)).collect())
        })
        .collect()
}

/// The convex weight with the best MRR@10 (then R@20) on these queries, and
/// the whole curve: (alpha, scores) for alpha = 0, 0.05, ..., 1.
pub fn tune(cands: &[QueryCandidates], qrels: &Qrels, ids: &[String]) -> (f32, Vec<(f32, Scores)>) {
    let curve: Vec<(f32, Scores)> = (0..=ALPHA_GRID)
        .map(|i| {
            let alpha = i as f32 / ALPHA_GRID as f32;
            (alpha, metrics::evaluate(qrels, &fused_run(cands, Fusion::Convex { alpha }, ids)).0)
        })
        .collect();
    let scores: Vec<Scores> = curve.iter().map(|(_, s)| *s).collect();
    let best = curve.get(best_of(&scores)).map_or(0.5, |b| b.0);
    (best, curve)
}

/// One-sided z of a paired test at 95 %: a weight whose MRR@10 falls short
/// of the best by more than this many standard errors is worse.
const WORSE_Z: f64 = 1.645;

/// The convex weight tuned on queries known to favour keywords (pseudo-
/// queries copied from the passages): from the best weight, the largest one
/// above it whose per-query MRR@10 is not worse than the best's by a paired
/// one-sided test at 95 %. Among the weights these queries cannot tell apart,
/// it takes the one leaning most to the dense side, since people's questions
/// share fewer words with their passage than a copied span does. Returns the
/// weight, the best one and the curve.
pub fn tune_leaning_dense(cands: &[QueryCandidates], qrels: &Qrels, ids: &[String]) -> (f32, f32, Vec<(f32, Scores)>) {
    let per_query: Vec<(f32, Scores, Vec<f64>)> = (0..=ALPHA_GRID)
        .map(|i| {
            let alpha = i as f32 / ALPHA_GRID as f32;
            let (mean, per) = metrics::evaluate(qrels, &fused_run(cands, Fusion::Convex { alpha }, ids));
            (alpha, mean, per.values().map(|s| s.mrr_10).collect())
        })
        .collect();
    let rr: Vec<&[f64]> = per_query.iter().map(|(_, _, r)| r.as_slice()).collect();
    let scores: Vec<Scores> = per_query.iter().map(|(_, s, _)| *s).collect();
    let best = best_of(&scores);
    let chosen = lean_from(best, &rr);
    let curve = per_query.into_iter().map(|(a, s, _)| (a, s)).collect();
    (chosen as f32 / ALPHA_GRID as f32, best as f32 / ALPHA_GRID as f32, curve)
}

/// The grid point with the best MRR@10 (then R@20).
fn best_of(scores: &[Scores]) -> usize {
    (0..scores.len())
        .max_by(|&a, &b| {
            let key = |i: usize| (scores[i].mrr_10, scores[i].recall_20);
            key(a).partial_cmp(&key(b)).unwrap_or(std::cmp::Ordering::Equal)
        })
        .unwrap_or(0)
}

/// Walks up the grid from `best` while each point's per-query values are
/// not significantly below `best`'s (paired, one-sided z-test); returns the
/// last such point.
fn lean_from(best: usize, per_query: &[&[f64]]) -> usize {
    let mut chosen = best;
    for (i, rr) in per_query.iter().enumerate().skip(best + 1) {
        let diffs: Vec<f64> = per_query[best].iter().zip(rr.iter()).map(|(b, x)| b - x).collect();
        if paired_z(&diffs) > WORSE_Z {
            break;
        }
        chosen = i;
    }
    chosen
}

/// Mean over standard error of paired differences (0 when they are all
/// equal, +inf when they all favour one side by the same amount).
fn paired_z(diffs: &[f64]) -> f64 {
    let n = diffs.len() as f64;
    if n < 2.0 {
        return 0.0;
    }
    let mean = diffs.iter().sum::<f64>() / n;
    let var = diffs.iter().map(|d| (d - mean).powi(2)).sum::<f64>() / (n - 1.0);
    if mean == 0.0 {
        0.0
    } else if var == 0.0 {
        mean.signum() * f64::INFINITY
    } else {
        mean / (var / n).sqrt()
    }
}

/// A markdown table, one row per mode.
pub fn table(rows: &[(String, Scores)]) -> String {
    let mut t = String::from("| mode | MRR@10 | R@1 | R@5 | R@20 | R@100 | nDCG@10 |\n|---|---|---|---|---|---|---|");
    for (mode, s) in rows {
        t += &format!(
            "\n| {mode} | {:.3} | {:.3} | {:.3} | {:.3} | {:.3} | {:.3} |",
            s.mrr_10, s.recall_1, s.recall_5, s.recall_20, s.recall_100, s.ndcg_10
        );
    }
    t
}

/// A TREC run file; errors name the file (and the line).
pub fn read_run(path: &Path) -> Result<Run> {
    let text = std::fs::read_to_string(path).with_context(|| format!("cannot read run {}", path.display()))?;
    metrics::parse_trec_run(&text).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))
}

/// `ernie-search compare`: TREC runs of the same qrels, each against a
/// baseline run query by query (paired randomization test), as a markdown
/// table: is a difference more than the queries' noise?
pub fn compare(qrels: &Qrels, baseline: &Path, runs: &[PathBuf], seed: u64) -> Result<String> {
    let per_query = |path: &Path| -> Result<(Scores, BTreeMap<String, Scores>)> {
        let run = read_run(path)?;
        // Queries missing from a run score 0 and unjudged ones are skipped (trec_eval's rules); none in common is a mistake.
        if !run.keys().any(|q| qrels.contains_key(q)) {
            bail!("{}: none of its queries is in the qrels: is it a run of another split?", path.display());
        }
        Ok(metrics::evaluate(qrels, &run))
    };
    let (base_mean, base) = per_query(baseline)?;
    let mut t = format!(
        "{} queries; Δ: the run minus the baseline ({}), in points, with the 95% confidence interval; \
         p: paired randomization test ({} sign flips).\n\n\
         | run | MRR@10 | R@20 | nDCG@10 | Δ MRR@10 [95% CI] | p | Δ nDCG@10 [95% CI] | p |\n|---|---|---|---|---|---|---|---|\n",
        base.len(),
        baseline.display(),
        metrics::RANDOMIZATION_ROUNDS
    );
    t += &format!(
        "| {} (baseline) | {:.3} | {:.3} | {:.3} | | | | |\n",
        baseline.display(),
        base_mean.mrr_10,
        base_mean.recall_20,
        base_mean.ndcg_10
    );
    for path in runs {
        let (mean, this) = per_query(path)?;
        let cell = |metric: fn(&Scores) -> f64| -> Result<String> {
            let p = metrics::paired(&base, &this, metric, metrics::RANDOMIZATION_ROUNDS, seed)
                .map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
            Ok(format!("{} | {:.3}", p.in_points(), p.p))
        };
        t += &format!(
            "| {} | {:.3} | {:.3} | {:.3} | {} | {} |\n",
            path.display(),
            mean.mrr_10,
            mean.recall_20,
            mean.ndcg_10,
            cell(|s| s.mrr_10)?,
            cell(|s| s.ndcg_10)?
        );
    }
    Ok(t)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paired_z_is_signed_and_handles_ties() {
        assert_eq!(paired_z(&[0.0, 0.0, 0.0]), 0.0);
        assert_eq!(paired_z(&[0.5, 0.5]), f64::INFINITY);
        assert!(paired_z(&[1.0, 0.0, 1.0, 0.0]) > 1.0);
        assert!(paired_z(&[-1.0, 0.0, -1.0, 0.0]) < -1.0);
        assert_eq!(paired_z(&[0.3]), 0.0, "one query tells nothing");
    }

    /// 100 queries: grid point 1 is the best; point 2 loses one query's
    /// rank (not significant), point 3 loses 30 of them (significant), point
    /// 4 would be fine again but the walk has stopped.
    #[test]
    fn leans_up_the_grid_while_no_worse_than_the_best() {
        let best: Vec<f64> = vec![1.0; 100];
        let mut one_worse = best.clone();
        one_worse[7] = 0.5;
        let mut many_worse = best.clone();
        many_worse[..30].iter_mut().for_each(|x| *x = 0.5);
        let low = vec![0.9; 100];
        let grid: Vec<&[f64]> = vec![&low, &best, &one_worse, &many_worse, &best];
        assert_eq!(lean_from(1, &grid), 2);
        assert_eq!(lean_from(4, &grid), 4, "the top of the grid stays");
        assert_eq!(lean_from(3, &grid), 4, "from a best at 3, point 4 is better still");
        // Never below the best, however close the points under it are.
        let flat: Vec<&[f64]> = vec![&best, &best, &many_worse];
        assert_eq!(lean_from(1, &flat), 1);
    }
}
