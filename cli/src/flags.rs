//! Flags several commands share, and how they become the libraries' options.

use std::path::PathBuf;

use clap::Args;
use ernie_search::index::builder::{Windows, DEFAULT_MAX_WINDOWS};
use ernie_search::index::clusters::ValueBits;
use ernie_search::Bm25Params;
use ernie_search_data::fetch;
use ernie_search_train::table::{AdaptOptions, TrainOptions};

#[derive(Args, Clone)]
pub struct CacheArg {
    /// Cache folder for fetched packages, models and data
    /// [default: $ERNIE_SEARCH_CACHE or the user's cache dir + /ernie-search]
    #[arg(long, global = true)]
    pub cache_dir: Option<PathBuf>,
}

impl CacheArg {
    pub fn dir(&self) -> PathBuf {
        fetch::cache_dir(self.cache_dir.as_deref())
    }
}

/// The token-table query encoder `index` and `index-site` build beside the
/// vectors, adapted to the corpus (`ernie_search_train::table::adapt`).
#[derive(Args, Clone)]
pub struct TableArgs {
    /// Build no token table (the query encoder with no transformer)
    #[arg(long)]
    pub no_table: bool,
    /// Start from this distilled table (`ernie-search table distil`) instead
    /// of the encoder's own rows with the corpus's IDF
    #[arg(long)]
    pub table_base: Option<PathBuf>,
    /// The most pseudo-queries (titles, spans of the passages) the table learns from
    #[arg(long, default_value_t = AdaptOptions::default().max_queries)]
    pub table_queries: usize,
    /// Adaptation steps (0: no adaptation)
    #[arg(long, default_value_t = AdaptOptions::default().train.steps)]
    pub table_steps: usize,
    /// The seed every pseudo-query and batch derives from
    #[arg(long, default_value_t = AdaptOptions::default().train.seed)]
    pub table_seed: u64,
    /// Bits per value in the table's rows (2, 4 or 8): each halving halves
    /// what a browser fetches per table chunk (measured on the wiki set: the
    /// served hybrid ranking unchanged at 2, the table's dense mode alone
    /// 0.003 MRR@10 below int4's; BENCHMARKS.md)
    #[arg(long, default_value = "2")]
    pub table_bits: ValueBits,
    #[command(flatten)]
    pub cache: CacheArg,
}

impl TableArgs {
    pub fn options(&self) -> AdaptOptions {
        let d = AdaptOptions::default();
        AdaptOptions {
            max_queries: self.table_queries,
            train: TrainOptions { steps: self.table_steps, seed: self.table_seed, ..d.train },
        }
    }
}

/// How the vectors are stored for readers that fetch by need.
#[derive(Args, Clone, Copy)]
pub struct VectorArgs {
    /// `flat`: one vector file a reader loads whole; `clusters`: the same,
    /// plus the vectors split by k-means cluster, so a browser fetches only
    /// the clusters a query probes
    #[arg(long, value_enum)]
    pub vectors: Option<VectorLayout>,
    /// Clusters [default: one per ~100 rows]
    #[arg(long, value_parser = positive)]
    pub clusters: Option<usize>,
    /// Clusters a query probes [default: the fewest (1, 2, 4, ...) whose
    /// top-10, in the mode the folder serves, keeps --probe-recall of the
    /// exact scan's on the corpus's pseudo-queries]
    #[arg(long, value_parser = positive)]
    pub nprobe: Option<usize>,
    /// The share of the exact top-10 the chosen probe must keep
    #[arg(long, default_value_t = 0.8)]
    pub probe_recall: f64,
    /// Bits per value in the cluster files (2, 4 or 8): each halving halves
    /// what a browser fetches per probed cluster and the centroids of the
    /// head (measured on the wiki set: the served hybrid ranking unchanged
    /// at 2, the dense mode alone about 0.01 MRR@10 below int4's; BENCHMARKS.md)
    #[arg(long, default_value = "2")]
    pub cluster_bits: ValueBits,
}

#[derive(clap::ValueEnum, Clone, Copy, PartialEq, Eq, Debug)]
pub enum VectorLayout {
    Flat,
    Clusters,
}

/// How passages longer than the model's window are indexed.
#[derive(Args, Clone, Copy)]
pub struct WindowArgs {
    /// Tokens shared by consecutive windows of a long passage (window = the
    /// model's passage length; stride = window - 2 - overlap)
    /// [default: a quarter of the window, 64 for 256]
    #[arg(long)]
    pub overlap: Option<usize>,
    /// Windows kept per passage (1: cut passages at the window)
    #[arg(long, default_value_t = DEFAULT_MAX_WINDOWS, value_parser = positive)]
    pub max_windows: usize,
}

impl From<WindowArgs> for Windows {
    fn from(w: WindowArgs) -> Self {
        Windows { overlap: w.overlap, max: w.max_windows }
    }
}

/// BM25 parameters (defaults: bm25s's; Lucene's own k1 is 1.2).
#[derive(Args, Clone, Copy)]
pub struct Bm25Args {
    #[arg(long, default_value_t = Bm25Params::default().k1)]
    pub k1: f32,
    #[arg(long, default_value_t = Bm25Params::default().b)]
    pub b: f32,
}

impl From<Bm25Args> for Bm25Params {
    fn from(a: Bm25Args) -> Self {
        Bm25Params { k1: a.k1, b: a.b }
    }
}

/// What every training stage takes.
#[derive(Args, Clone)]
pub struct StageFlags {
    /// The training recipe (TOML; see training/recipes/)
    #[arg(long)]
    pub recipe: PathBuf,
    /// The run folder (checkpoints, metrics, negatives, models)
    #[arg(long)]
    pub run: PathBuf,
    /// Continue from the last checkpoint (and skip finished stages)
    #[arg(long)]
    pub resume: bool,
    /// Stop after this many steps of this invocation, leaving a checkpoint
    #[arg(long, hide = true)]
    pub stop_after: Option<u64>,
    #[command(flatten)]
    pub cache: CacheArg,
}

impl From<&StageFlags> for ernie_search_train::commands::StageArgs {
    fn from(f: &StageFlags) -> Self {
        Self {
            recipe: f.recipe.clone(),
            run: f.run.clone(),
            resume: f.resume,
            cache: f.cache.dir(),
            stop_after: f.stop_after,
        }
    }
}

/// For counts that must be at least 1 (batch sizes, samples, vectors).
pub fn positive(s: &str) -> Result<usize, String> {
    match s.parse::<usize>() {
        Ok(0) => Err("must be at least 1".into()),
        Ok(n) => Ok(n),
        Err(e) => Err(e.to_string()),
    }
}

/// A token window must hold [CLS], [SEP] and at least one token of text.
pub fn token_window(s: &str) -> Result<usize, String> {
    match s.parse::<usize>() {
        Ok(n) if n < 3 => Err("must be at least 3 ([CLS] + text + [SEP])".into()),
        Ok(n) => Ok(n),
        Err(e) => Err(e.to_string()),
    }
}

/// A hybrid weight in 0..1, checked by the library's rule.
pub fn alpha(s: &str) -> Result<f32, String> {
    let a: f32 = s.parse().map_err(|e: std::num::ParseFloatError| e.to_string())?;
    ernie_search::Fusion::convex(a).map(|_| a).map_err(|e| e.to_string())
}
