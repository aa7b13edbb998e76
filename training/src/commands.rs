//! The stage subcommands over one recipe and one run folder:
//! warm-up -> mine -> train-ce -> cascade -> export (`distill` runs them in
//! order). Each stage resumes from its checkpoint with `--resume`; a finished
//! stage (its model.safetensors exists) is skipped under `--resume`.

use std::path::{Path, PathBuf};

use anyhow::{bail, Result};
use ernie_search::format::model::WeightDType;

use super::params::Params;
use super::pipeline::{self, scores_json};
use super::plot;
use super::recipe::{LossConfig, Recipe};
use super::stages::{self, Context, StudentRun, Teacher};
use super::{fit, model::STUDENT};

pub struct StageArgs {
    pub recipe: PathBuf,
    pub run: PathBuf,
    pub resume: bool,
    pub cache: PathBuf,
    /// Stop each trained stage after this many steps (leaves a checkpoint to resume).
    pub stop_after: Option<u64>,
}

/// Where each stage writes, inside the run folder.
pub fn stage_dir(ctx: &Context, name: &str) -> PathBuf {
    ctx.run.join(name)
}
pub fn bm25_negatives(ctx: &Context) -> PathBuf {
    ctx.run.join("negatives-bm25.jsonl")
}
pub fn mined_negatives(ctx: &Context) -> PathBuf {
    ctx.run.join("negatives.jsonl")
}
pub fn ce_scores(ctx: &Context) -> PathBuf {
    ctx.run.join("ce-scores.tsv")
}
pub fn student_file(ctx: &Context) -> PathBuf {
    ctx.run.join("student.gguf")
}

pub fn open(args: &StageArgs) -> Result<Context> {
    let recipe = Recipe::load(&args.recipe)?;
    Context::open(recipe, &args.run, &args.cache)
}

fn done(dir: &Path) -> bool {
    fit::model_path(dir).exists()
}

/// Refuses to retrain a finished stage unless resuming (which skips it).
fn check_fresh(dir: &Path, resume: bool) -> Result<bool> {
    if done(dir) {
        if resume {
            eprintln!("{} is finished: skipped", dir.display());
            return Ok(false);
        }
        bail!("{} is finished; pass --resume to skip it, or remove it to train again", dir.display());
    }
    Ok(true)
}

/// Evaluates the student on the recipe's dev split, writes dev.json and the plot.
pub fn report(
    ctx: &Context,
    params: &Params,
    layers: usize,
    dir: &Path,
    title: &str,
) -> Result<Option<ernie_search::metrics::Scores>> {
    let dev = if ctx.recipe.eval.split.is_empty() {
        None
    } else {
        let e = pipeline::embedder(ctx, params, layers, WeightDType::F32)?;
        let pipeline::DenseEval { scores: s, seconds: secs, .. } =
            pipeline::dense_eval(&e, &ctx.data_dir, &ctx.recipe.eval.split, ctx.recipe.eval.batch)?;
        eprintln!(
            "{title}: {} MRR@10 {:.3} R@20 {:.3} nDCG@10 {:.3} ({secs:.0} s)",
            ctx.recipe.eval.split, s.mrr_10, s.recall_20, s.ndcg_10
        );
        std::fs::write(dir.join("dev.json"), serde_json::to_vec_pretty(&scores_json(&s))?)?;
        Some(s)
    };
    plot::plot_stage(dir, title, dev.as_ref())?;
    eprintln!("{title}: plot in {}", dir.join("loss.svg").display());
    Ok(dev)
}

/// The student from the initial checkpoint (cut to `layers`), or from a finished stage.
pub fn student_params(ctx: &Context, layers: usize, from: Option<&Path>) -> Result<Params> {
    let mut p = ctx.init_params(STUDENT, layers)?;
    ctx.student(&mut p, layers)?; // adds the LI projection
    if let Some(dir) = from {
        ctx.load_stage(dir, &p)?;
    }
    Ok(p)
}

/// Stage 1: DE + LI with SOFD, on BM25 negatives.
pub fn warmup(ctx: &mut Context, args: &StageArgs) -> Result<()> {
    let dir = stage_dir(ctx, "warmup");
    if !check_fresh(&dir, args.resume)? {
        return Ok(());
    }
    let path = bm25_negatives(ctx);
    if !path.exists() {
        eprintln!("warmup: mining BM25 negatives for {} queries", ctx.data.queries());
        let m = &ctx.recipe.mine;
        let ranked = pipeline::rank_bm25(ctx, m.depth + 16)?;
        ctx.data.write_negatives(&path, &ranked, 0, m.depth)?;
    }
    ctx.data.load_negatives(&path)?;
    let layers = ctx.recipe.model.student_layers;
    let mut params = student_params(ctx, layers, None)?;
    let losses = LossConfig { cascade: 0.0, direct: 0.0, id: 0.0, ..ctx.recipe.loss.clone() };
    let stage = ctx.recipe.warmup.clone();
    let run = StudentRun {
        name: "warmup",
        dir: dir.clone(),
        stage: &stage,
        losses: &losses,
        layers,
        resume: args.resume,
        stop_after: args.stop_after,
        only: None,
    };
    stages::train_student(ctx, &run, &mut params, None, None)?;
    if done(&dir) {
        report(ctx, &params, layers, &dir, "warm-up: DE + LI with SOFD")?;
    }
    Ok(())
}

/// Stage 2: hard negatives from the warm-up DE (or the initial model when
/// there is no warm-up), skipping the top ranks.
pub fn mine(ctx: &mut Context, from_init: bool) -> Result<PathBuf> {
    mine_keep(ctx, from_init).map(|(p, _)| p)
}

/// [`mine`], also returning the encoded corpus (the zero-shot row reuses it).
pub fn mine_keep(ctx: &mut Context, from_init: bool) -> Result<(PathBuf, ernie_search::FlatIndex)> {
    let layers = ctx.recipe.model.student_layers;
    let warm = stage_dir(ctx, "warmup");
    let (params, label) = if from_init || !done(&warm) {
        (student_params(ctx, layers, None)?, "the initial model")
    } else {
        (student_params(ctx, layers, Some(&warm))?, "the warm-up student")
    };
    let m = ctx.recipe.mine.clone();
    eprintln!(
        "mine: ranking the corpus for {} queries with {label} (skip {}, keep {})",
        ctx.data.queries(),
        m.skip,
        m.depth
    );
    let e = pipeline::embedder(ctx, &params, layers, WeightDType::F32)?;
    let (ranked, index) = pipeline::rank_dense(ctx, &e, m.skip + m.depth + 8)?;
    let path = if from_init { ctx.run.join("negatives-init.jsonl") } else { mined_negatives(ctx) };
    ctx.data.write_negatives(&path, &ranked, m.skip, m.depth)?;
    eprintln!("mine: wrote {}", path.display());
    Ok((path, index))
}

/// Stage 3: the cross-encoder on the mined negatives, from the initial
/// checkpoint or (`from`) from a finished CE that is to train longer.
pub fn train_ce(ctx: &mut Context, args: &StageArgs, negatives: &Path, from: Option<&Path>) -> Result<()> {
    let dir = stage_dir(ctx, "ce");
    if !check_fresh(&dir, args.resume)? {
        return Ok(());
    }
    ctx.data.load_negatives(negatives)?;
    let stage = ctx.recipe.ce.clone();
    let start = from.map(stages::CeStart::load).transpose()?;
    stages::train_ce(ctx, dir.clone(), &stage, args.resume, args.stop_after, start.as_ref())?;
    if done(&dir) {
        plot::plot_stage(&dir, "cross-encoder", None)?;
    }
    Ok(())
}

/// Stage 4: the cascade CE -> LI -> DE (+ SOFD, optional ID), from the
/// warm-up student when there is one.
pub fn cascade(ctx: &mut Context, args: &StageArgs) -> Result<()> {
    let dir = stage_dir(ctx, "cascade");
    if !check_fresh(&dir, args.resume)? {
        return Ok(());
    }
    ctx.data.load_negatives(&mined_negatives(ctx))?;
    let layers = ctx.recipe.model.student_layers;
    let warm = stage_dir(ctx, "warmup");
    let mut params = student_params(ctx, layers, done(&warm).then_some(warm.as_path()))?;
    let mut teacher = Teacher::load(ctx, &stage_dir(ctx, "ce"), &ce_scores(ctx))?;
    let stage = ctx.recipe.cascade.clone();
    let losses = ctx.recipe.loss.clone();
    let run = StudentRun {
        name: "cascade",
        dir: dir.clone(),
        stage: &stage,
        losses: &losses,
        layers,
        resume: args.resume,
        stop_after: args.stop_after,
        only: None,
    };
    stages::train_student(ctx, &run, &mut params, Some(&mut teacher), None)?;
    if done(&dir) {
        report(ctx, &params, layers, &dir, "cascade: CE -> LI -> DE")?;
    }
    Ok(())
}

/// Stage 5: the DE alone into one model file, with its figures as provenance.
pub fn export(ctx: &Context, out: Option<PathBuf>) -> Result<PathBuf> {
    let layers = ctx.recipe.model.student_layers;
    let from = ["cascade", "warmup"].iter().map(|s| stage_dir(ctx, s)).find(|d| done(d));
    let Some(from) = from else { bail!("no finished student stage (cascade or warmup) in {}", ctx.run.display()) };
    let params = student_params(ctx, layers, Some(&from))?;
    let weights: WeightDType = ctx.recipe.export.weights.parse()?;
    let f32_dev =
        std::fs::read(from.join("dev.json")).ok().and_then(|b| serde_json::from_slice::<serde_json::Value>(&b).ok());
    let mut quant_dev = serde_json::Value::Null;
    if !ctx.recipe.eval.split.is_empty() {
        let e = pipeline::embedder(ctx, &params, layers, weights)?;
        let s = pipeline::dense_eval(&e, &ctx.data_dir, &ctx.recipe.eval.split, ctx.recipe.eval.batch)?.scores;
        eprintln!(
            "export: {} {} MRR@10 {:.3} R@20 {:.3}",
            weights.as_str(),
            ctx.recipe.eval.split,
            s.mrr_10,
            s.recall_20
        );
        quant_dev = scores_json(&s);
    }
    let provenance = serde_json::json!({
        "method": "ERNIE-Search distillation (arXiv 2205.09153): warm-up DE+LI with SOFD, mined negatives, CE -> LI -> DE cascade",
        "stage": from.file_name().map(|n| n.to_string_lossy().into_owned()),
        "init": ctx.recipe.model.init,
        "data": ctx.recipe.data.set,
        "layers": ctx.student_cfg(layers)?.num_hidden_layers,
        "weights": weights.as_str(),
        "seed": ctx.recipe.seed,
        "eval_split": ctx.recipe.eval.split,
        "metrics_f32": f32_dev,
        "metrics": quant_dev,
        "tool": concat!("ernie-search ", env!("CARGO_PKG_VERSION")),
    });
    let name = format!("ernie-search-student-{}", weights.as_str());
    let bytes = pipeline::export_bytes(ctx, &params, layers, weights, &name, &provenance)?;
    let out = out.unwrap_or_else(|| student_file(ctx));
    ernie_search::format::write_atomic(&out, &bytes)?;
    eprintln!("export: wrote {} ({:.1} MB)", out.display(), bytes.len() as f64 / 1e6);
    Ok(out)
}

/// Every stage in order, skipping finished ones.
pub fn distill(args: &StageArgs) -> Result<PathBuf> {
    let mut ctx = open(args)?;
    let resume = StageArgs { resume: true, ..clone_args(args) };
    let fresh = |ctx: &Context, s: &str| !stage_dir(ctx, s).exists();
    let a = |ctx: &Context, s: &str| if fresh(ctx, s) { clone_args(args) } else { clone_args(&resume) };
    let w = a(&ctx, "warmup");
    warmup(&mut ctx, &w)?;
    if !mined_negatives(&ctx).exists() {
        mine(&mut ctx, false)?;
    }
    let neg = mined_negatives(&ctx);
    let c = a(&ctx, "ce");
    train_ce(&mut ctx, &c, &neg, None)?;
    let c = a(&ctx, "cascade");
    cascade(&mut ctx, &c)?;
    export(&ctx, None)
}

fn clone_args(a: &StageArgs) -> StageArgs {
    StageArgs {
        recipe: a.recipe.clone(),
        run: a.run.clone(),
        resume: a.resume,
        cache: a.cache.clone(),
        stop_after: a.stop_after,
    }
}
