//! The training commands: the ERNIE-Search stages (`warmup`, `mine`,
//! `train-ce`, `cascade`, `export`, `distill`) and the studies over them
//! (`ablate`, `probe`, `calibrate`). Each turns its flags into
//! `ernie_search_train`'s options; the work is all there.

use std::path::PathBuf;

use anyhow::{bail, Context, Result};
use ernie_search_train::commands::{self, StageArgs};
use ernie_search_train::{ablate as ablation, probe as probing};

use crate::flags::{positive, StageFlags};

pub fn warmup(f: &StageFlags) -> Result<()> {
    let args = StageArgs::from(f);
    commands::warmup(&mut commands::open(&args)?, &args)
}

#[derive(clap::Args)]
pub struct MineArgs {
    #[command(flatten)]
    flags: StageFlags,
    /// Mine with the initial model instead of the warm-up student
    #[arg(long)]
    from_init: bool,
}

pub fn mine(a: MineArgs) -> Result<()> {
    commands::mine(&mut commands::open(&StageArgs::from(&a.flags))?, a.from_init).map(|_| ())
}

#[derive(clap::Args)]
pub struct TrainCeArgs {
    #[command(flatten)]
    flags: StageFlags,
    /// Start from a finished CE (a folder holding model.safetensors and metrics.jsonl) and train it
    /// for the recipe's [ce] steps more, on a fresh schedule, continuing its data stream
    #[arg(long)]
    from: Option<PathBuf>,
}

pub fn train_ce(a: TrainCeArgs) -> Result<()> {
    let args = StageArgs::from(&a.flags);
    let mut ctx = commands::open(&args)?;
    let neg = commands::mined_negatives(&ctx);
    if !neg.exists() {
        bail!("{} is missing: run `ernie-search mine` first", neg.display());
    }
    commands::train_ce(&mut ctx, &args, &neg, a.from.as_deref())
}

pub fn cascade(f: &StageFlags) -> Result<()> {
    let args = StageArgs::from(f);
    commands::cascade(&mut commands::open(&args)?, &args)
}

#[derive(clap::Args)]
pub struct ExportArgs {
    #[command(flatten)]
    flags: StageFlags,
    /// Output file [default: RUN/student.gguf]
    #[arg(long, short)]
    out: Option<PathBuf>,
}

pub fn export(a: ExportArgs) -> Result<()> {
    commands::export(&commands::open(&StageArgs::from(&a.flags))?, a.out).map(|_| ())
}

pub fn distill(f: &StageFlags) -> Result<()> {
    commands::distill(&StageArgs::from(f)).map(|p| println!("{}", p.display()))
}

#[derive(clap::Args)]
pub struct AblateArgs {
    #[command(flatten)]
    flags: StageFlags,
    /// Only these rows (comma-separated slugs: zero-shot, de, de-li, sofd, direct, cascade, cascade-id,
    /// cascade-q8, cascade-q4, l3-zero-shot, l3-de, l3-sofd, l3-cascade, l3-deep, l3-deep-mse)
    #[arg(long, value_delimiter = ',')]
    rows: Vec<String>,
    /// Layers of the smaller student rows (0: none)
    #[arg(long, default_value_t = 3)]
    small_layers: usize,
    /// Replace the ablation section of this markdown file with the table
    #[arg(long)]
    benchmarks: Option<PathBuf>,
}

pub fn ablate(a: AblateArgs) -> Result<()> {
    let opts = ablation::AblateOptions {
        stage: StageArgs::from(&a.flags),
        only: a.rows,
        small_layers: a.small_layers,
        benchmarks: a.benchmarks,
    };
    ablation::ablate(&opts).map(|_| ())
}

#[derive(clap::Args)]
pub struct ProbeArgs {
    #[command(flatten)]
    flags: StageFlags,
    /// Students: stage or row folders holding model.safetensors, or `init` for the initial model
    #[arg(long, value_delimiter = ',', default_value = "init")]
    students: Vec<String>,
    /// The LI head given to `init` (a folder holding model.safetensors, e.g. RUN/li-head-L6)
    #[arg(long)]
    init_li: Option<PathBuf>,
    /// The cross-encoder's folder (e.g. RUN/ce)
    #[arg(long)]
    ce: Option<PathBuf>,
    #[arg(long, default_value_t = 200, value_parser = positive)]
    queries: usize,
    #[arg(long, default_value_t = 20, value_parser = positive)]
    depth: usize,
}

pub fn probe(a: ProbeArgs) -> Result<()> {
    let ctx = commands::open(&StageArgs::from(&a.flags))?;
    let opts = probing::ProbeOptions {
        queries: a.queries,
        depth: a.depth,
        students: a.students,
        init_li: a.init_li,
        ce: a.ce,
    };
    let rows = probing::probe(&ctx, &opts)?;
    let t = probing::table(&rows, a.queries, a.depth, &ctx.recipe.eval.split);
    std::fs::write(ctx.run.join("probe.md"), &t)?;
    println!("{t}");
    Ok(())
}

#[derive(clap::Args)]
pub struct CalibrateArgs {
    #[command(flatten)]
    flags: StageFlags,
    /// A student folder holding model.safetensors [default: the initial model]
    #[arg(long)]
    student: Option<PathBuf>,
    /// The LI head given to the initial model (e.g. RUN/li-head-L6)
    #[arg(long)]
    init_li: Option<PathBuf>,
    #[arg(long, value_delimiter = ',', default_value = "2,1,0.7,0.5,0.3,0.2,0.1")]
    tau_li: Vec<f64>,
    /// Training batches to average over
    #[arg(long, default_value_t = 8, value_parser = positive)]
    batches: usize,
    /// Hard negatives (JSONL) [default: the run's negatives.jsonl, negatives-init.jsonl or negatives-bm25.jsonl]
    #[arg(long)]
    negatives: Option<PathBuf>,
}

pub fn calibrate(a: CalibrateArgs) -> Result<()> {
    if let Some(bad) = a.tau_li.iter().find(|t| !(**t > 0.0 && t.is_finite())) {
        bail!("--tau-li {bad}: temperatures must be positive");
    }
    let mut ctx = commands::open(&StageArgs::from(&a.flags))?;
    // The batches the stages see: with their hard negatives.
    let found = ["negatives.jsonl", "negatives-init.jsonl", "negatives-bm25.jsonl"]
        .map(|f| ctx.run.join(f))
        .into_iter()
        .find(|p| p.exists());
    let neg = a.negatives.or(found).with_context(|| {
        format!("no negatives in {}: run `ernie-search mine` first or pass --negatives", ctx.run.display())
    })?;
    ctx.data.load_negatives(&neg)?;
    let rows =
        probing::calibrate_tau_li(&ctx, a.student.as_deref(), a.init_li.as_deref(), &a.tau_li, a.batches as u64)?;
    println!("{}", probing::calibration_table(&rows, ctx.recipe.loss.tau_de, a.batches as u64));
    Ok(())
}
