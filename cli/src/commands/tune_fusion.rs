//! `ernie-search tune-fusion`: the hybrid weight tuned on a labelled split,
//! stored in the index's manifest.

use std::path::PathBuf;

use anyhow::{bail, Context, Result};
use ernie_search::format::shard::FusionSetting;
use ernie_search::index::dir::{set_fusion, IndexDir};
use ernie_search::Fusion;
use ernie_search_data::{beir, eval};

use crate::flags::CacheArg;

#[derive(clap::Args)]
pub struct Args {
    index: PathBuf,
    /// BEIR folder with queries.jsonl and qrels/, or `nq` / `drop`
    #[arg(long)]
    data: String,
    #[arg(long, default_value = "dev")]
    split: String,
    /// Model file [default: the one the index was built with]
    #[arg(long)]
    model: Option<PathBuf>,
    #[command(flatten)]
    cache: CacheArg,
}

pub fn run(a: Args) -> Result<()> {
    let (dir, split) = (&a.index, &a.split);
    let data = crate::load::beir_dir(&a.data, &a.cache.dir())?;
    let (mut r, shards, _) = crate::load::index(dir, a.model.as_deref())?;
    let Some(lexical) = r.lexical_mut() else {
        bail!("{} has no BM25 part (built by an older version): rebuild it with `ernie-search index`", dir.display());
    };
    IndexDir::load_blocks(&shards, lexical)?;
    let queries = beir::load_queries(&data.join("queries.jsonl"))?;
    let qrels = beir::load_qrels(&data, split)?;
    let lexical = r.lexical().context("lexical part")?;
    let cands = eval::candidates(r.embedder()?, r.index(), lexical, &queries, &qrels, split)?;
    let (alpha, curve) = eval::tune(&cands, &qrels, r.index().ids());
    println!("| alpha | MRR@10 | R@20 |\n|---|---|---|");
    for (x, s) in &curve {
        println!("| {x:.2}{} | {:.3} | {:.3} |", if *x == alpha { " (best)" } else { "" }, s.mrr_10, s.recall_20);
    }
    let best = curve.iter().find(|(x, _)| *x == alpha).map(|(_, s)| s.mrr_10).unwrap_or(0.0);
    let set = data.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let setting = FusionSetting {
        fusion: Fusion::convex(alpha)?,
        tuned_on: Some(format!("{set} {split}, {} queries (MRR@10 {best:.3})", cands.len())),
    };
    set_fusion(dir, setting)?;
    println!("stored alpha {alpha:.2} in {}", dir.join("manifest.json").display());
    Ok(())
}
