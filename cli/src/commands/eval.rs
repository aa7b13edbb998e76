//! `ernie-search eval`: dense, BM25 and hybrid search on a BEIR set.

use std::path::PathBuf;

use anyhow::Result;
use ernie_search::index::builder::{BuildOptions, DEFAULT_BATCH};
use ernie_search_data::eval;

use crate::flags::{alpha, positive, Bm25Args, CacheArg, WindowArgs};

#[derive(clap::Args)]
pub struct Args {
    #[arg(long)]
    model: PathBuf,
    /// BEIR folder, or `nq` / `drop` for the fetched sets
    #[arg(long)]
    data: String,
    /// Splits to evaluate, comma-separated (the corpus is encoded once)
    #[arg(long, default_value = "dev", value_delimiter = ',')]
    split: Vec<String>,
    #[arg(long, default_value_t = BuildOptions::default().dtype.as_str().into())]
    dtype: String,
    #[arg(long, default_value_t = DEFAULT_BATCH, value_parser = positive)]
    batch: usize,
    #[command(flatten)]
    windows: WindowArgs,
    #[command(flatten)]
    bm25: Bm25Args,
    /// Hybrid weight of the dense side [default: tuned on --tune-split]
    #[arg(long, value_parser = alpha)]
    alpha: Option<f32>,
    #[arg(long, default_value = "dev")]
    tune_split: String,
    /// TREC runs go to <prefix>.<split>.<mode>.trec [default: runs/<model>.<data>]
    #[arg(long)]
    run_prefix: Option<PathBuf>,
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    cache: CacheArg,
}

pub fn run(a: Args) -> Result<()> {
    let data_dir = crate::load::beir_dir(&a.data, &a.cache.dir())?;
    let embedder = crate::load::model(&a.model)?;
    let set = data_dir.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let stem = a.model.file_stem().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let run_prefix = a.run_prefix.unwrap_or_else(|| PathBuf::from(format!("runs/{stem}.{set}")));
    let opts = eval::EvalOptions {
        dtype: a.dtype.parse()?,
        batch: a.batch,
        windows: a.windows.into(),
        bm25: a.bm25.into(),
        alpha: a.alpha,
        tune_split: a.tune_split,
        run_prefix: Some(run_prefix.clone()),
    };
    let r = eval::evaluate(&embedder, &data_dir, &a.split, &opts)?;
    let (windows, bm25) = (a.windows, a.bm25);
    if a.json {
        let splits: serde_json::Map<String, serde_json::Value> = r
            .splits
            .iter()
            .map(|s| {
                let modes: serde_json::Map<String, serde_json::Value> =
                    s.rows.iter().map(|(m, x)| (m.clone(), serde_json::json!(x))).collect();
                (s.split.clone(), serde_json::json!({"queries": s.queries, "modes": modes}))
            })
            .collect();
        println!(
            "{}",
            serde_json::json!({"model": embedder.card().name, "data": data_dir,
            "passages": r.passages, "vectors": r.vectors, "windowed": r.windowed,
            "overlap": r.overlap, "max_windows": windows.max_windows, "k1": bm25.k1, "b": bm25.b,
            "alpha": r.alpha, "alpha_source": r.alpha_source, "splits": splits,
            "encode_seconds": r.encode_seconds, "total_seconds": r.total_seconds})
        );
        return Ok(());
    }
    println!(
        "{} on {set}: {} passages as {} {} vectors ({} in windows, overlap {}); BM25 k1 {} b {}; hybrid alpha {:.2} {}",
        embedder.card().name,
        r.passages,
        r.vectors,
        a.dtype,
        r.windowed,
        r.overlap,
        bm25.k1,
        bm25.b,
        r.alpha,
        r.alpha_source
    );
    for s in &r.splits {
        println!("\n{set} {} ({} queries)\n{}", s.split, s.queries, eval::table(&s.rows));
    }
    println!(
        "\ncorpus encoded in {:.0}s, total {:.0}s; runs {}.<split>.<mode>.trec",
        r.encode_seconds,
        r.total_seconds,
        run_prefix.display()
    );
    Ok(())
}
