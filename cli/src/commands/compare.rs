//! `ernie-search compare`: runs against a baseline, query by query.

use std::path::PathBuf;

use anyhow::Result;
use ernie_search_data::{beir, eval};

#[derive(clap::Args)]
pub struct Args {
    /// Qrels (BEIR TSV: query-id, corpus-id, score), e.g. <data>/qrels/dev.tsv
    #[arg(long)]
    qrels: PathBuf,
    /// The run every other run is compared with
    #[arg(long)]
    baseline: PathBuf,
    /// Runs to compare (TREC format, as `eval` and `ablate` write them)
    #[arg(required = true)]
    runs: Vec<PathBuf>,
    /// Seed of the randomization test's sign flips
    #[arg(long, default_value_t = 42)]
    seed: u64,
}

pub fn run(a: Args) -> Result<()> {
    let qrels = beir::read_qrels_file(&a.qrels)?;
    print!("{}", eval::compare(&qrels, &a.baseline, &a.runs, a.seed)?);
    Ok(())
}
