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

/// A qrels row that cannot be read, at its 1-based line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QrelsError {
    pub line: usize,
    /// The pair was judged on an earlier line.
    pub duplicate: bool,
    pub what: String,
}

impl std::fmt::Display for QrelsError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let kind = if self.duplicate { "duplicate" } else { "bad TSV row:" };
        write!(f, "line {}: {kind} {}", self.line, self.what)
    }
}

impl std::error::Error for QrelsError {}

/// Parses BEIR qrels TSV (`query-id \t corpus-id \t score` rows after an
/// optional header; blank lines skipped): the one qrels reader, for the CLI,
/// the data sets and the tests alike.
pub fn parse_qrels_tsv(text: &str) -> Result<Qrels, QrelsError> {
    let mut q = Qrels::new();
    for (n, line) in text.lines().enumerate() {
        let row = |what: String| QrelsError { line: n + 1, duplicate: false, what };
        let fields: Vec<&str> = line.split('\t').collect();
        if line.trim().is_empty() || (n == 0 && fields.first() == Some(&"query-id")) {
            continue;
        }
        let [query, passage, score] = fields[..] else {
            return Err(row(format!("expected 3 tab-separated fields, found {}", fields.len())));
        };
        if query.is_empty() || passage.is_empty() {
            return Err(row("empty query or corpus id".into()));
        }
        let score: u32 =
            score.trim().parse().map_err(|_| row(format!("score {score:?} is not a non-negative integer")))?;
        if q.entry(query.to_string()).or_default().insert(passage.to_string(), score).is_some() {
            return Err(QrelsError { line: n + 1, duplicate: true, what: format!("pair {query:?} {passage:?}") });
        }
    }
    Ok(q)
}

/// Two systems compared query by query over the same queries (`b - a`):
/// is a difference in a mean metric more than the queries' noise?
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Paired {
    pub queries: usize,
    /// Mean of the per-query differences `b - a`.
    pub mean_diff: f64,
    /// Standard error of that mean (sample standard deviation / sqrt(n)).
    pub std_err: f64,
    /// The paired t statistic, `mean_diff / std_err` (scipy's `ttest_rel`).
    pub t: f64,
    /// Two-sided p-value of the paired randomization (sign-flip) test, the
    /// usual significance test for IR metrics (Smucker et al., CIKM 2007).
    pub p: f64,
}

impl Paired {
    /// The 95% confidence interval of `mean_diff` (normal approximation:
    /// within 1% of Student's t from about 40 queries on).
    pub fn ci95(&self) -> (f64, f64) {
        (self.mean_diff - 1.96 * self.std_err, self.mean_diff + 1.96 * self.std_err)
    }

    /// `+0.2 [-0.5, +0.9]`: the difference and its interval in points (x 100).
    pub fn in_points(&self) -> String {
        let (lo, hi) = self.ci95();
        format!("{:+.1} [{:+.1}, {:+.1}]", 100.0 * self.mean_diff, 100.0 * lo, 100.0 * hi)
    }
}

/// Sign-flip rounds of [`paired`]'s randomization test: the p-value's own
/// Monte Carlo error is below 0.005.
pub const RANDOMIZATION_ROUNDS: usize = 10_000;

/// Compares `b` against `a` on `metric`, per query. Both must hold the same
/// queries (as [`evaluate`]'s per-query maps of one qrels do). Deterministic
/// given `seed`.
pub fn paired(
    a: &BTreeMap<String, Scores>,
    b: &BTreeMap<String, Scores>,
    metric: impl Fn(&Scores) -> f64,
    rounds: usize,
    seed: u64,
) -> Result<Paired, String> {
    if let Some(q) = a.keys().find(|q| !b.contains_key(*q)).or_else(|| b.keys().find(|q| !a.contains_key(*q))) {
        return Err(format!("query {q:?} is scored in one run and not the other: compare runs of the same qrels"));
    }
    if a.is_empty() {
        return Err("no queries to compare".into());
    }
    let d: Vec<f64> = a.iter().map(|(q, sa)| metric(&b[q]) - metric(sa)).collect();
    let n = d.len() as f64;
    let mean = d.iter().sum::<f64>() / n;
    let var = if d.len() > 1 { d.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (n - 1.0) } else { 0.0 };
    let std_err = (var / n).sqrt();
    let t = if std_err > 0.0 {
        mean / std_err
    } else if mean == 0.0 {
        0.0
    } else {
        mean.signum() * f64::INFINITY
    };
    Ok(Paired { queries: d.len(), mean_diff: mean, std_err, t, p: sign_flip_p(&d, rounds, seed) })
}

/// P(|mean of randomly sign-flipped d| >= |mean of d|), counting the
/// observed assignment once: `(hits + 1) / (rounds + 1)`.
fn sign_flip_p(d: &[f64], rounds: usize, seed: u64) -> f64 {
    let observed = d.iter().sum::<f64>().abs();
    if observed == 0.0 {
        return 1.0;
    }
    // Sums compare with a tolerance so that ties (common: metrics take few values) count as hits.
    let tol = 1e-9 * d.iter().map(|x| x.abs()).sum::<f64>();
    let mut state = seed;
    let mut hits = 0usize;
    for _ in 0..rounds {
        let mut sum = 0.0;
        for chunk in d.chunks(64) {
            let bits = crate::rng::splitmix64(&mut state);
            sum += chunk.iter().enumerate().map(|(i, x)| if bits >> i & 1 == 1 { *x } else { -*x }).sum::<f64>();
        }
        if sum.abs() >= observed - tol {
            hits += 1;
        }
    }
    (hits + 1) as f64 / (rounds + 1) as f64
}
