//! `ernie-search ablate`: every row of the method's ablation from the same
//! initial model, data, seed and step budget (the recipe's `[cascade]` stage),
//! evaluated on the dev split against the whole corpus. What every row
//! shares is computed once and cached in the run folder: the negatives mined
//! with the initial model, the trained cross-encoder and its scores.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Context as _, Result};
use ernie_search::format::model::WeightDType;
use ernie_search::metrics::{self, Paired, Scores};
use ernie_search::{Embedder, Kernel};

use super::commands::{self, StageArgs};
use super::pipeline;
use super::recipe::LossConfig;
use super::stages::{self, Context, DeepTeacher, StudentRun, Teacher};
use super::{fit, plot};

/// One row: how it is trained (or that it is not), at which depth, stored how.
pub struct Row {
    pub slug: &'static str,
    pub label: &'static str,
    /// Student layers (0: all of the initial model's).
    pub layers: usize,
    /// None: not trained (zero-shot).
    pub losses: Option<LossConfig>,
    /// A quantized export of another row's weights instead of its own training.
    pub quantized_from: Option<(&'static str, WeightDType)>,
}

/// The rows of DESIGN.md section 1, then the smaller student's; `teacher_weight`
/// weighs the deeper student's term in the smaller student's taught rows.
pub fn rows(base: &LossConfig, small_layers: usize, teacher_weight: f64) -> Vec<Row> {
    let off = LossConfig { de: false, li: false, sofd: 0.0, cascade: 0.0, direct: 0.0, id: 0.0, ..base.clone() };
    let de = LossConfig { de: true, ..off.clone() };
    let multi = LossConfig { li: true, ..de.clone() };
    let sofd = LossConfig { sofd: base.sofd.max(1e-9), ..multi.clone() };
    let direct = LossConfig { direct: base.cascade.max(1e-9), ..de.clone() };
    let cascade = LossConfig { cascade: base.cascade.max(1e-9), ..sofd.clone() };
    let with_id = LossConfig { id: if base.id > 0.0 { base.id } else { 0.1 }, ..cascade.clone() };
    // The smaller student's cascade from the trained full-depth student:
    // its LI teaches this LI, which teaches this DE (SOFD).
    let deep = LossConfig { deep: teacher_weight, ..sofd.clone() };
    // Beside the method: the same teacher's DE vectors as regression targets.
    let deep_mse = LossConfig { deep_mse: teacher_weight, ..de.clone() };
    let row = |slug, label, layers, losses: Option<&LossConfig>| Row {
        slug,
        label,
        layers,
        losses: losses.cloned(),
        quantized_from: None,
    };
    let mut v = vec![
        row("zero-shot", "zero-shot init", 0, None),
        row("de", "DE alone", 0, Some(&de)),
        row("de-li", "DE + LI multi-task, no KL", 0, Some(&multi)),
        row("sofd", "DE + SOFD (LI -> DE)", 0, Some(&sofd)),
        row("direct", "DE + direct CE -> DE", 0, Some(&direct)),
        row("cascade", "cascade CE -> LI -> DE (+ SOFD)", 0, Some(&cascade)),
        row("cascade-id", "cascade + ID", 0, Some(&with_id)),
        Row {
            slug: "cascade-q8",
            label: "cascade, Q8_0 export",
            layers: 0,
            losses: None,
            quantized_from: Some(("cascade", WeightDType::Q8_0)),
        },
        Row {
            slug: "cascade-q4",
            label: "cascade, Q4_0 export",
            layers: 0,
            losses: None,
            quantized_from: Some(("cascade", WeightDType::Q4_0)),
        },
    ];
    if small_layers > 0 {
        v.extend([
            row("l3-zero-shot", "3-layer cut, zero-shot", small_layers, None),
            row("l3-de", "3-layer: DE alone", small_layers, Some(&de)),
            row("l3-sofd", "3-layer: DE + SOFD", small_layers, Some(&sofd)),
            row("l3-cascade", "3-layer: cascade (6-layer CE)", small_layers, Some(&cascade)),
            row("l3-deep", "3-layer: cascade 6-layer LI -> LI -> DE", small_layers, Some(&deep)),
            row("l3-deep-mse", "3-layer: DE + 6-layer DE vectors (MSE)", small_layers, Some(&deep_mse)),
        ]);
    }
    v
}

/// A finished row's figures, cached in its folder as result.json.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct RowResult {
    pub slug: String,
    pub label: String,
    pub layers: usize,
    pub scores: Scores,
    pub train_seconds: f64,
    pub eval_seconds: f64,
}

pub struct AblateOptions {
    pub stage: StageArgs,
    /// Only these rows (slugs); empty: all.
    pub only: Vec<String>,
    pub small_layers: usize,
    /// Markdown file whose ablation section is replaced by the table.
    pub benchmarks: Option<PathBuf>,
}

pub fn ablate(opts: &AblateOptions) -> Result<Vec<RowResult>> {
    let start = Instant::now();
    let mut ctx = commands::open(&opts.stage)?;
    let full = ctx.init_cfg.num_hidden_layers;
    // Checked before the shared work, which takes minutes.
    let all = rows(&ctx.recipe.loss, opts.small_layers, ctx.recipe.ablate.small_teacher_weight);
    if let Some(bad) = opts.only.iter().find(|s| !all.iter().any(|r| r.slug == s.as_str())) {
        let known: Vec<&str> = all.iter().map(|r| r.slug).collect();
        anyhow::bail!("--rows: no row {bad:?}; rows are {}", known.join(", "));
    }
    let t0 = Instant::now();
    let (ce_dir, mut init_corpus) = shared_work(&mut ctx)?;
    let shared_seconds = t0.elapsed().as_secs_f64();
    let mut teacher = Teacher::load(&ctx, &ce_dir, &commands::ce_scores(&ctx))?;
    let mut deep = None; // loaded when a row needs it
    let mut results = Vec::new();
    // Run the rows that answer the main questions first; report in table order.
    let mut order: Vec<usize> = (0..all.len()).collect();
    order.sort_by_key(|&i| RUN_FIRST.iter().position(|s| *s == all[i].slug).unwrap_or(RUN_FIRST.len()));
    for i in order {
        let row = &all[i];
        if !opts.only.is_empty() && !opts.only.iter().any(|s| s == row.slug) {
            continue;
        }
        let r =
            run_row(&ctx, row, &mut teacher, &mut deep, full, init_corpus.take().filter(|_| row.slug == "zero-shot"))?;
        eprintln!(
            "ablate: {:<34} MRR@10 {:.3} R@20 {:.3} ({:.0} s train, {:.0} s eval)",
            r.label, r.scores.mrr_10, r.scores.recall_20, r.train_seconds, r.eval_seconds
        );
        results.push((i, r));
        // The table so far, so a long run shows its progress.
        let mut done: Vec<_> = results.clone();
        done.sort_by_key(|(i, _)| *i);
        let done: Vec<RowResult> = done.into_iter().map(|(_, r)| r).collect();
        std::fs::write(
            ctx.run.join("ablation.md"),
            table(
                &ctx,
                &all,
                &done,
                shared_seconds,
                start.elapsed().as_secs_f64(),
                &opts.stage.recipe,
                opts.small_layers,
            ),
        )?;
    }
    results.sort_by_key(|(i, _)| *i);
    let results: Vec<RowResult> = results.into_iter().map(|(_, r)| r).collect();
    let table = table(
        &ctx,
        &all,
        &results,
        shared_seconds,
        start.elapsed().as_secs_f64(),
        &opts.stage.recipe,
        opts.small_layers,
    );
    std::fs::write(ctx.run.join("ablation.md"), &table)?;
    println!("{table}");
    if let Some(path) = &opts.benchmarks {
        replace_section(path, &table)?;
        eprintln!("ablate: table written into {}", path.display());
    }
    Ok(results)
}

/// What every row shares, done once and kept in the run folder: negatives
/// mined with the initial model (loaded into `ctx.data`) and the trained CE.
/// Returns the CE's folder, and the corpus encoded by the initial model when
/// this call mined it.
pub fn shared_work(ctx: &mut Context) -> Result<(PathBuf, Option<ernie_search::FlatIndex>)> {
    let negatives = ctx.run.join("negatives-init.jsonl");
    let mut init_corpus = None;
    if !negatives.exists() {
        let (_, index) = commands::mine_keep(ctx, true)?;
        init_corpus = Some(index);
    }
    ctx.data.load_negatives(&negatives)?;
    let ce_dir = commands::stage_dir(ctx, "ce");
    if !fit::model_path(&ce_dir).exists() {
        let resume = ce_dir.join("checkpoints").exists();
        let stage = ctx.recipe.ce.clone();
        stages::train_ce(ctx, ce_dir.clone(), &stage, resume, None, None)?;
        plot::plot_stage(&ce_dir, "cross-encoder", None)?;
    }
    Ok((ce_dir, init_corpus))
}

/// The order rows run in: the method's main comparison first.
const RUN_FIRST: &[&str] = &[
    "zero-shot",
    "de",
    "cascade",
    "sofd",
    "direct",
    "de-li",
    "cascade-q8",
    "l3-zero-shot",
    "l3-de",
    "l3-deep",
    "l3-deep-mse",
    "l3-cascade",
    "l3-sofd",
    "cascade-id",
    "cascade-q4",
];

fn run_row(
    ctx: &Context,
    row: &Row,
    teacher: &mut Teacher,
    deep: &mut Option<DeepTeacher>,
    full: usize,
    encoded: Option<ernie_search::FlatIndex>,
) -> Result<RowResult> {
    let dir = ctx.run.join("rows").join(row.slug);
    let cached = dir.join("result.json");
    if let Ok(bytes) = std::fs::read(&cached) {
        if let Ok(r) = serde_json::from_slice::<RowResult>(&bytes) {
            return Ok(r);
        }
    }
    std::fs::create_dir_all(&dir)?;
    let layers = if row.layers == 0 { full } else { row.layers };
    let t0 = Instant::now();
    let (params, weights) = match (&row.losses, &row.quantized_from) {
        (_, Some((from, w))) => {
            let src = ctx.run.join("rows").join(from);
            (
                commands::student_params(ctx, layers, Some(&src))
                    .with_context(|| format!("row {} needs row {from} first", row.slug))?,
                *w,
            )
        }
        (None, None) => (commands::student_params(ctx, layers, None)?, WeightDType::F32),
        (Some(losses), None) => {
            let mut params = commands::student_params(ctx, layers, None)?;
            let resume = dir.join("checkpoints").exists();
            let stage = row_stage(ctx, layers, full);
            if losses.uses_li() && ctx.recipe.ablate.li_head_steps > 0 {
                apply_li_head(ctx, &params, layers)?;
            }
            if fit::model_path(&dir).exists() {
                ctx.load_stage(&dir, &params)?; // trained by an earlier run that stopped before its evaluation
            } else {
                let taught = losses.deep > 0.0 || losses.deep_mse > 0.0;
                if taught && deep.is_none() {
                    let from = &ctx.recipe.ablate.small_teacher;
                    let src = ctx.run.join("rows").join(from);
                    let t = DeepTeacher::load(ctx, &src, full).with_context(|| {
                        format!("row {} is taught by row {from} ([ablate] small_teacher): run that row first", row.slug)
                    })?;
                    *deep = Some(t);
                }
                let run = StudentRun {
                    name: row.slug,
                    dir: dir.clone(),
                    stage: &stage,
                    losses,
                    layers,
                    resume,
                    stop_after: None,
                    only: None,
                };
                let ce = if losses.uses_ce() { Some(&mut *teacher) } else { None };
                stages::train_student(ctx, &run, &mut params, ce, deep.as_mut().filter(|_| taught))?;
            }
            (params, WeightDType::F32)
        }
    };
    let train_seconds = t0.elapsed().as_secs_f64();
    // Quantized rows keep their quantized weights, multiplied as f32 (the
    // native dense kernel): the error measured is the stored weights'.
    let bytes =
        pipeline::export_bytes(ctx, &params, layers, weights, row.slug, &serde_json::json!({"row": row.label}))?;
    let embedder = Embedder::from_bytes_with(&bytes, Kernel::Dense)?;
    let t1 = Instant::now();
    let eval = match encoded {
        Some(index) => {
            let data = ernie_search_data::beir::BeirData::load(&ctx.data_dir)?;
            pipeline::dense_eval_on(
                &embedder,
                &index,
                &data,
                &ctx.data_dir,
                &ctx.recipe.eval.split,
                ctx.recipe.eval.batch,
            )?
        }
        None => pipeline::dense_eval(&embedder, &ctx.data_dir, &ctx.recipe.eval.split, ctx.recipe.eval.batch)?,
    };
    let eval_seconds = t1.elapsed().as_secs_f64();
    // Before result.json, which marks the row done: a row is never done without its run.
    let mut trec = std::io::BufWriter::new(std::fs::File::create(run_file(ctx, row.slug))?);
    metrics::write_trec_run(&mut trec, &eval.run, row.slug)?;
    trec.into_inner().map_err(|e| e.into_error())?.sync_all()?;
    let scores = eval.scores;
    if row.losses.is_some() {
        plot::plot_stage(&dir, row.label, Some(&scores))?;
    }
    let r = RowResult { slug: row.slug.into(), label: row.label.into(), layers, scores, train_seconds, eval_seconds };
    std::fs::write(&cached, serde_json::to_vec_pretty(&r)?)?;
    Ok(r)
}

/// A trained row's step budget: the [cascade] stage's, or for the smaller
/// student [ablate.small] when given.
fn row_stage(ctx: &Context, layers: usize, full: usize) -> super::recipe::StageConfig {
    match &ctx.recipe.ablate.small {
        Some(small) if layers < full => small.clone(),
        _ => ctx.recipe.cascade.clone(),
    }
}

/// The shared LI head for students of `layers` layers: the projection alone
/// trained with the LI contrastive loss on the initial encoder (frozen),
/// cached in `li-head-L<layers>/`, then copied into `params`.
pub fn apply_li_head(ctx: &Context, params: &super::params::Params, layers: usize) -> Result<()> {
    let dir = ctx.run.join(format!("li-head-L{layers}"));
    if !fit::model_path(&dir).exists() {
        let mut p = commands::student_params(ctx, layers, None)?;
        let losses = LossConfig {
            de: false,
            li: true,
            sofd: 0.0,
            cascade: 0.0,
            direct: 0.0,
            id: 0.0,
            ..ctx.recipe.loss.clone()
        };
        let a = &ctx.recipe.ablate;
        let stage = super::recipe::StageConfig {
            steps: a.li_head_steps,
            batch: ctx.recipe.cascade.batch,
            accumulate: 1,
            lr: Some(a.li_head_lr),
            negatives: ctx.recipe.cascade.negatives,
        };
        let resume = dir.join("checkpoints").exists();
        let name = "li-head";
        let run = StudentRun {
            name,
            dir: dir.clone(),
            stage: &stage,
            losses: &losses,
            layers,
            resume,
            stop_after: None,
            only: Some(super::model::COLBERT),
        };
        stages::train_student(ctx, &run, &mut p, None, None)?;
        plot::plot_stage(&dir, "LI head (encoder frozen)", None)?;
    }
    let t = candle_core::safetensors::load(fit::model_path(&dir), &ctx.device)?;
    params.subset(super::model::COLBERT).load(&t, &format!("{}", fit::model_path(&dir).display()))
}

/// A row's TREC run on the eval split (top 100 per query).
fn run_file(ctx: &Context, slug: &str) -> PathBuf {
    ctx.run.join("rows").join(slug).join(format!("run.{}.trec", ctx.recipe.eval.split))
}

/// The row each row is compared with query by query: a quantized export with
/// its f32 source, every other row with DE alone at its depth.
fn peer(row: &Row) -> Option<&'static str> {
    if let Some((from, _)) = row.quantized_from {
        return Some(from);
    }
    let de = if row.layers == 0 { "de" } else { "l3-de" };
    (row.slug != de).then_some(de)
}

/// Per-query figures of each of `slugs` that has a run file in the run
/// folder (a peer finished by an earlier command counts; rows cached before
/// run files were kept have none).
fn per_query<'a>(
    ctx: &Context,
    slugs: impl Iterator<Item = &'a str>,
) -> Result<HashMap<String, BTreeMap<String, Scores>>> {
    let qrels = ernie_search_data::beir::load_qrels(&ctx.data_dir, &ctx.recipe.eval.split)?;
    let mut out = HashMap::new();
    for slug in slugs {
        let path = run_file(ctx, slug);
        if !path.exists() {
            continue;
        }
        let run = ernie_search_data::eval::read_run(&path)?;
        out.insert(slug.to_string(), metrics::evaluate(&qrels, &run).1);
    }
    Ok(out)
}

/// The table's comparison cells: `+0.2 [-0.5, +0.9] vs de` (MRR@10 points) and the p-value.
fn comparison_cells(p: Option<(Paired, &str)>) -> (String, String) {
    let Some((p, against)) = p else { return ("".into(), "".into()) };
    (format!("{} vs {against}", p.in_points()), format!("{:.3}", p.p))
}

/// The set a table names: "nq" as NQ, a folder by its own name.
fn set_label(set: &str) -> String {
    match set {
        "nq" => "NQ".into(),
        s => Path::new(s).file_name().map_or(s.into(), |n| n.to_string_lossy().into_owned()),
    }
}

fn table(
    ctx: &Context,
    all: &[Row],
    rows: &[RowResult],
    shared: f64,
    total: f64,
    recipe: &Path,
    small: usize,
) -> String {
    let r = &ctx.recipe;
    let mut t = format!(
        "Recipe `{}` (seed {}): {} training queries, batch {} x (1 positive + {} hard negatives + in-batch), {} steps per row, \
         query {} / passage {} tokens, lr {}, tau_de {} / tau_li {} / tau_ce {}; negatives mined once with the initial model (skip {}, keep {}); \
         CE: {} steps of batch {} x (1 positive + {} hard negatives); LI head: {}. Evaluated on {} `{}` ({} tokens per passage, one window) against the whole corpus. \
         Δ: the row's MRR@10 minus its peer's (in points), query by query, with the 95% confidence interval; \
         p: the paired randomization test's ({} sign flips).\n\n\
         | row | layers | MRR@10 | R@1 | R@5 | R@20 | R@100 | nDCG@10 | Δ MRR@10 [95% CI] | p | train s | eval s |\n|---|---|---|---|---|---|---|---|---|---|---|---|\n",
        recipe.display(), r.seed, ctx.data.queries(), r.cascade.batch, r.negatives(&r.cascade), r.cascade.steps,
        r.data.query_max_len, r.data.passage_max_len, r.cascade.lr.unwrap_or(r.optim.lr), r.loss.tau_de, r.loss.tau_li, r.loss.tau_ce, r.mine.skip, r.mine.depth,
        r.ce.steps, r.ce.batch, r.negatives(&r.ce),
        if r.ablate.li_head_steps > 0 { format!("{} steps alone on the frozen initial encoder, shared by the LI rows", r.ablate.li_head_steps) } else { "random (seeded)".into() },
        set_label(&r.data.set), r.eval.split, r.export.max_passage_len, metrics::RANDOMIZATION_ROUNDS,
    );
    let peers = rows.iter().filter_map(|x| all.iter().find(|row| row.slug == x.slug).and_then(peer));
    let pq = per_query(ctx, rows.iter().map(|x| x.slug.as_str()).chain(peers)).unwrap_or_else(|e| {
        eprintln!("ablate: no per-query comparisons: {e:#}");
        HashMap::new()
    });
    for x in rows {
        let s = &x.scores;
        let against = all.iter().find(|row| row.slug == x.slug).and_then(peer);
        let compared = against.and_then(|a| Some((a, pq.get(a)?, pq.get(&x.slug)?))).and_then(|(a, base, this)| {
            match metrics::paired(base, this, |s| s.mrr_10, metrics::RANDOMIZATION_ROUNDS, r.seed) {
                Ok(p) => Some((p, a)),
                Err(e) => {
                    eprintln!("ablate: {} against {a}: {e}", x.slug);
                    None
                }
            }
        });
        let (delta, p) = comparison_cells(compared);
        t += &format!(
            "| {} | {} | {:.3} | {:.3} | {:.3} | {:.3} | {:.3} | {:.3} | {delta} | {p} | {:.0} | {:.0} |\n",
            x.label,
            x.layers,
            s.mrr_10,
            s.recall_1,
            s.recall_5,
            s.recall_20,
            s.recall_100,
            s.ndcg_10,
            x.train_seconds,
            x.eval_seconds
        );
    }
    t += &format!(
        "\nShared work (mining with the initial model, CE training): {shared:.0} s; whole command {total:.0} s{}.\n",
        if small > 0 { small_rows_note(r, small, ctx.init_cfg.num_hidden_layers) } else { String::new() }
    );
    t
}

fn small_rows_note(r: &super::recipe::Recipe, small: usize, full: usize) -> String {
    let budget = match &r.ablate.small {
        Some(s) => format!(
            "{} steps of batch {} x (1 + {} hard negatives), lr {}",
            s.steps,
            s.batch,
            r.negatives(s),
            s.lr.unwrap_or(r.optim.lr)
        ),
        None => "the same budget".into(),
    };
    format!(
        "; the {small}-layer rows keep layers {:?} of the initial model ([model] layer_pick = \"{}\"), trained {budget}; \
         their cascade is taught by the full-depth CE, and their `6-layer LI` row by the LI of the trained full-depth row `{}` (the MSE row by its DE vectors), \
         that teacher's term weighted {}",
        r.model.layer_pick.layers(small, full),
        r.model.layer_pick.as_str(),
        r.ablate.small_teacher,
        r.ablate.small_teacher_weight
    )
}

const START: &str = "<!-- ablation:start -->";
const END: &str = "<!-- ablation:end -->";

/// Replaces the text between the ablation markers (appending them if absent).
fn replace_section(path: &Path, table: &str) -> Result<()> {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let block = format!("{START}\n{table}{END}");
    let out = match (text.find(START), text.find(END)) {
        (Some(a), Some(b)) if b > a => format!("{}{block}{}", &text[..a], &text[b + END.len()..]),
        _ => format!("{text}\n{block}\n"),
    };
    ernie_search::format::write_atomic(path, out.as_bytes())?;
    Ok(())
}
