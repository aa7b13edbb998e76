//! Diagnostics of the distillation's teachers.
//! - The probe: every scorer (each student's DE and LI, the CE) reranks the
//!   same candidates, each dev query's BM25 top-k, so one can see whether a
//!   teacher knows more than its student before blaming the distillation for
//!   what it did or did not add.
//! - The LI temperature: SOFD's `KL(P_li || P_de)` compares two softmaxes of
//!   scores on different scales (a sum of MaxSims against one cosine); at the
//!   wrong `tau_li` the DE is pulled toward a flatter or sharper distribution
//!   than its own, not toward a better ranking.

use std::path::PathBuf;

use anyhow::{bail, Context as _, Result};
use candle_core::Tensor;
use ernie_search::metrics::{self, Qrels, Run, Scores};
use ernie_search::tokenize::TextTokenizer;
use ernie_search::{Bm25Params, LexicalIndex};

use super::bert::Batch;
use super::commands;
use super::loss;
use super::model::{self, CrossEncoder, CE};
use super::stages::Context;
use ernie_search_data::beir;

pub struct ProbeOptions {
    /// The first `queries` dev queries (in id order).
    pub queries: usize,
    /// Candidates per query: its BM25 top `depth`.
    pub depth: usize,
    /// Students to probe: a stage or row folder with model.safetensors, or
    /// `init` for the initial model (with `init_li`'s LI head when given).
    pub students: Vec<String>,
    pub init_li: Option<PathBuf>,
    /// The trained cross-encoder's folder (none: no CE row).
    pub ce: Option<PathBuf>,
}

/// One scorer's figures over the candidates.
pub struct ProbeRow {
    pub label: String,
    pub scores: Scores,
}

/// The dev queries, their candidates and the figures of every scorer.
pub fn probe(ctx: &Context, opts: &ProbeOptions) -> Result<Vec<ProbeRow>> {
    let split = &ctx.recipe.eval.split;
    let data = beir::BeirData::load(&ctx.data_dir)?;
    let qrels_all: Qrels = beir::load_qrels(&ctx.data_dir, split)?;
    let qids: Vec<String> = qrels_all.keys().take(opts.queries).cloned().collect();
    if qids.is_empty() {
        bail!("no {split} queries to probe");
    }
    let qrels: Qrels = qids.iter().map(|q| (q.clone(), qrels_all[q].clone())).collect();
    let texts: Vec<String> = qids
        .iter()
        .map(|q| {
            data.queries
                .get(q)
                .cloned()
                .with_context(|| format!("query {q} is in qrels/{split}.tsv but not in queries.jsonl"))
        })
        .collect::<Result<_>>()?;
    let d = &ctx.data;
    let lexical = LexicalIndex::build(&d.passage_ids, &d.passage_texts, Bm25Params::default(), 1)?;
    let mut candidates = Vec::with_capacity(qids.len());
    for t in &texts {
        // A query of stop words only has no BM25 candidates: the first passages stand in.
        let s = lexical.scores(t)?.unwrap_or_else(|| vec![0.0; d.passage_ids.len()]);
        candidates.push(top(&s, opts.depth));
    }
    let qt = TextTokenizer::from_bytes(ctx.tokenizer_json.as_bytes(), ctx.recipe.data.query_max_len)?;
    let q_tokens: Vec<Vec<u32>> =
        qt.encode_batch(&texts.iter().map(String::as_str).collect::<Vec<_>>())?.into_iter().map(|t| t.ids).collect();

    let run_of = |scores: &[Vec<f32>]| -> Run {
        qids.iter()
            .zip(&candidates)
            .zip(scores)
            .map(|((q, c), s)| (q.clone(), c.iter().zip(s).map(|(&p, &v)| (d.passage_ids[p].clone(), v)).collect()))
            .collect()
    };
    let bm25: Vec<Vec<f32>> = candidates.iter().map(|c| (0..c.len()).map(|r| -(r as f32)).collect()).collect();
    let mut rows = vec![ProbeRow {
        label: format!("BM25 top-{} (the candidates, in BM25 order)", opts.depth),
        scores: metrics::evaluate(&qrels, &run_of(&bm25)).0,
    }];

    for s in &opts.students {
        let (label, dir) =
            if s == "init" { ("initial model".to_string(), None) } else { (s.clone(), Some(PathBuf::from(s))) };
        let (student, params) = load_student(ctx, dir.as_deref(), opts.init_li.as_deref())?;
        let (mut de, mut li) = (Vec::new(), Vec::new());
        for (i, c) in candidates.iter().enumerate() {
            let q = student.encode(&params, &Batch::from_ids(&q_tokens[i..i + 1], &ctx.device)?, true)?;
            let rows: Vec<Vec<u32>> = c.iter().map(|&p| d.passage_tokens[p].clone()).collect();
            let p = student.encode(&params, &Batch::from_ids(&rows, &ctx.device)?, true)?;
            de.push(model::de_scores(&q, &p)?.squeeze(0)?.to_vec1()?);
            li.push(model::li_scores(&q, &p)?.squeeze(0)?.to_vec1()?);
        }
        rows.push(ProbeRow { label: format!("{label}: DE"), scores: metrics::evaluate(&qrels, &run_of(&de)).0 });
        rows.push(ProbeRow { label: format!("{label}: LI"), scores: metrics::evaluate(&qrels, &run_of(&li)).0 });
        eprintln!("probe: {label} done");
    }

    if let Some(ce_dir) = &opts.ce {
        let mut params = ctx.init_params(CE, 0)?;
        let ce = CrossEncoder::new(&ctx.init_cfg, &mut params, ctx.recipe.seed, &ctx.device)?;
        ctx.load_stage(ce_dir, &params)?;
        let mut all = Vec::new();
        for (i, c) in candidates.iter().enumerate() {
            let pairs: Vec<(Vec<u32>, Vec<u32>)> =
                c.iter().map(|&p| model::pair_ids(&q_tokens[i], &d.passage_tokens[p])).collect();
            let (s, _) = ce.score(&params, &Batch::pad(&pairs, &ctx.device)?, false)?;
            all.push(s.to_vec1::<f32>()?);
        }
        rows.push(ProbeRow {
            label: format!("cross-encoder {}", ce_dir.display()),
            scores: metrics::evaluate(&qrels, &run_of(&all)).0,
        });
    }
    Ok(rows)
}

/// The markdown table of a probe.
pub fn table(rows: &[ProbeRow], queries: usize, depth: usize, split: &str) -> String {
    let mut t = format!(
        "Reranking probe: the first {queries} `{split}` queries, each scorer reranking the same candidates (the query's BM25 top-{depth}); \
         R@{depth} is the ceiling every scorer shares.\n\n| scorer | MRR@10 | R@1 | R@5 | R@20 | nDCG@10 |\n|---|---|---|---|---|---|\n"
    );
    for r in rows {
        let s = &r.scores;
        t += &format!(
            "| {} | {:.3} | {:.3} | {:.3} | {:.3} | {:.3} |\n",
            r.label, s.mrr_10, s.recall_1, s.recall_5, s.recall_20, s.ndcg_10
        );
    }
    t
}

/// The `k` best ordinals by score, best first.
fn top(scores: &[f32], k: usize) -> Vec<usize> {
    let mut idx: Vec<usize> = (0..scores.len()).collect();
    idx.sort_by(|&a, &b| scores[b].total_cmp(&scores[a]).then(a.cmp(&b)));
    idx.truncate(k);
    idx
}

/// A saved student (its depth read from the file), or the initial model with
/// `init_li`'s LI head when given.
fn load_student(
    ctx: &Context,
    dir: Option<&std::path::Path>,
    init_li: Option<&std::path::Path>,
) -> Result<(model::Student, super::params::Params)> {
    let layers = match dir {
        Some(dir) => student_layers(dir)?,
        None => ctx.init_cfg.num_hidden_layers,
    };
    let mut params = commands::student_params(ctx, layers, dir)?;
    match (dir, init_li) {
        (None, Some(li)) => ctx.load_stage(li, &params.subset(model::COLBERT))?,
        (None, None) => eprintln!(
            "probe: the initial model's LI head is a seeded random projection (pass --init-li for a trained one)"
        ),
        _ => {}
    }
    Ok((ctx.student(&mut params, layers)?, params))
}

/// The encoder depth of a saved student (its `enc.encoder.layer.N.` names).
fn student_layers(dir: &std::path::Path) -> Result<usize> {
    let path = super::fit::model_path(dir);
    let t = candle_core::safetensors::load(&path, &candle_core::Device::Cpu)
        .with_context(|| format!("cannot read {}", path.display()))?;
    let n = t
        .keys()
        .filter_map(|k| k.strip_prefix("enc.encoder.layer.")?.split('.').next()?.parse::<usize>().ok())
        .max()
        .map(|m| m + 1)
        .with_context(|| format!("{} holds no student encoder (enc.encoder.layer.*)", path.display()))?;
    Ok(n)
}

/// Mean `KL(P_li || P_de)` over the first `batches` training batches at the
/// student's current weights, for each LI temperature of `grid`.
pub fn calibrate_tau_li(
    ctx: &Context,
    student_dir: Option<&std::path::Path>,
    init_li: Option<&std::path::Path>,
    grid: &[f64],
    batches: u64,
) -> Result<Vec<(f64, f64)>> {
    let (student, params) = load_student(ctx, student_dir, init_li)?;
    let (l, stage) = (&ctx.recipe.loss, &ctx.recipe.cascade);
    let mut sums = vec![0f64; grid.len()];
    for index in 0..batches {
        let batch = ctx.data.batch(ctx.recipe.seed, index, stage.batch, ctx.recipe.negatives(stage));
        let (cands, _, mask) = ctx.data.candidates(&batch);
        let mask = Tensor::from_vec(mask, (batch.len(), cands.len()), &ctx.device)?;
        let q = student.encode(&params, &ctx.query_batch(&batch)?, true)?;
        let p = student.encode(&params, &ctx.passage_batch(&cands)?, true)?;
        let (s_de, s_li) = (model::de_scores(&q, &p)?, model::li_scores(&q, &p)?);
        for (sum, &tau) in sums.iter_mut().zip(grid) {
            *sum += loss::kl(&s_li, tau, &s_de, l.tau_de, &mask)?.to_scalar::<f32>()? as f64;
        }
    }
    Ok(grid.iter().zip(sums).map(|(&t, s)| (t, s / batches.max(1) as f64)).collect())
}

/// The calibration as markdown, the smallest mismatch marked.
pub fn calibration_table(rows: &[(f64, f64)], tau_de: f64, batches: u64) -> String {
    let best = rows.iter().map(|r| r.1).fold(f64::INFINITY, f64::min);
    let mut t = format!("KL(P_li || P_de) at the current weights, mean over {batches} training batches (tau_de {tau_de}):\n\n| tau_li | KL |\n|---|---|\n");
    for &(tau, kl) in rows {
        t += &format!("| {tau} | {kl:.4}{} |\n", if kl == best { " (smallest)" } else { "" });
    }
    t
}
