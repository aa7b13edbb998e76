//! `ernie-search bench`: encode throughput and scan latency, printed as JSON
//! so `bench/run.sh` can put them next to the Python peers of the same run.

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Context, Result};
use ernie_search::{Embedder, FlatIndex, VectorDType};
use ernie_search_data::corpus::read_corpus;
use serde_json::json;

use crate::flags::{positive, CacheArg};

#[derive(clap::Subcommand)]
pub enum What {
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
        /// fused (ours, the default), quantized or dense (candle's)
        #[arg(long, default_value = "fused")]
        kernel: ernie_search::Kernel,
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

pub fn run(what: What) -> Result<()> {
    let v = match what {
        What::Train { checkpoint, batch, query_len, passage_len, steps, device, cache } => {
            let dir = match checkpoint {
                Some(d) => d,
                None => ernie_search_data::fetch::fetch_model(&cache.dir())?,
            };
            ernie_search_train::bench::train(&dir, batch, query_len, passage_len, steps, &device)?
        }
        What::Load { model, runs } => load(&crate::load::model_file(&model)?, runs)?,
        What::Encode { model, passages, batch, queries, kernel } => {
            let bytes = crate::load::model_file(&model)?;
            let embedder = Embedder::from_bytes_with(&bytes, kernel).with_context(|| format!("{}", model.display()))?;
            encode(&embedder, &passages, batch, queries)?
        }
        What::Scan { n, dim, dtype, queries, k } => scan(n, dim, dtype.parse()?, queries, k)?,
    };
    println!("{v}");
    Ok(())
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}
fn p90(v: &mut [f64]) -> f64 {
    v.sort_by(f64::total_cmp);
    v[(v.len() * 9 / 10).min(v.len() - 1)]
}

/// Milliseconds (median of `runs`) to read a model file's card, to verify it
/// (the fingerprint recomputed over every tensor byte), and to load it whole.
fn load(bytes: &[u8], runs: usize) -> Result<serde_json::Value> {
    use ernie_search::format::model::{read_card, verify_model};
    let time = |f: &dyn Fn() -> Result<()>| -> Result<f64> {
        let mut ms = Vec::with_capacity(runs);
        for _ in 0..runs {
            let t = Instant::now();
            f()?;
            ms.push(t.elapsed().as_secs_f64() * 1e3);
        }
        Ok(median(&mut ms))
    };
    let card_ms = time(&|| Ok(read_card(bytes).map(drop)?))?;
    let verify_ms = time(&|| Ok(verify_model(bytes).map(drop)?))?;
    let load_ms = time(&|| Ok(Embedder::from_bytes(bytes).map(drop)?))?;
    Ok(json!({
        "bench": "load", "model_mb": bytes.len() as f64 / 1e6, "runs": runs,
        "card_ms": card_ms, "verify_ms": verify_ms, "fingerprint_ms": verify_ms - card_ms, "load_ms": load_ms,
        "fingerprint_share_of_load": (verify_ms - card_ms) / load_ms,
    }))
}

/// Passages/s in batches of `batch`, and single-query latency.
fn encode(embedder: &Embedder, passages: &Path, batch: usize, queries: usize) -> Result<serde_json::Value> {
    let texts: Vec<String> = read_corpus(passages)?.into_iter().map(|p| p.text).collect();
    let refs: Vec<&str> = texts.iter().map(String::as_str).collect();
    embedder.embed_passages(&refs[..batch.min(refs.len())])?; // warm-up
    let mut batch_ms = Vec::new();
    let start = Instant::now();
    for chunk in refs.chunks(batch) {
        let t = Instant::now();
        embedder.embed_passages(chunk)?;
        batch_ms.push(t.elapsed().as_secs_f64() * 1e3);
    }
    let total = start.elapsed().as_secs_f64();
    // Queries: the first 12 words of each passage, as the Python peer does.
    let qs: Vec<String> =
        texts.iter().cycle().take(queries).map(|t| t.split(' ').take(12).collect::<Vec<_>>().join(" ")).collect();
    embedder.embed_queries(&[qs[0].as_str()])?;
    let mut q_ms: Vec<f64> = qs
        .iter()
        .map(|q| {
            let t = Instant::now();
            embedder.embed_queries(&[q.as_str()]).map(|_| t.elapsed().as_secs_f64() * 1e3)
        })
        .collect::<ernie_search::Result<_>>()?;
    Ok(json!({
        "engine": "ernie-search",
        "model": embedder.card().name,
        "weights": embedder.card().weights,
        "passages": texts.len(),
        "batch": batch,
        "max_len": embedder.card().spec.max_passage_len,
        "passages_per_s": texts.len() as f64 / total,
        "batch_ms_median": median(&mut batch_ms),
        "query_ms_median": median(&mut q_ms),
        "query_ms_p90": p90(&mut q_ms),
        "kernel": embedder.cpu_kernel(),
        "threads": candle_core::utils::get_num_threads(),
    }))
}

/// Top-k latency over `n` random unit vectors, against the copy-bandwidth floor.
fn scan(n: usize, dim: usize, dtype: VectorDType, queries: usize, k: usize) -> Result<serde_json::Value> {
    let mut state = 0x2545_F491_4F6C_DD1Du64;
    let mut rand = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        (state >> 40) as f32 / (1u64 << 24) as f32 - 0.5
    };
    let fp = "0".repeat(64);
    let mut index = FlatIndex::new(dim, dtype, &fp)?;
    let mut v = vec![0f32; dim];
    for i in 0..n {
        v.iter_mut().for_each(|x| *x = rand());
        let norm = v.iter().map(|x| x * x).sum::<f32>().sqrt();
        v.iter_mut().for_each(|x| *x /= norm);
        index.push(&format!("p{i:07}"), &v)?;
    }
    let qs: Vec<Vec<f32>> = (0..queries).map(|_| (0..dim).map(|_| rand()).collect()).collect();
    let mut buf = Vec::new();
    index.search_with(&qs[0], k, &mut buf)?;
    let mut ms: Vec<f64> = Vec::with_capacity(queries);
    for q in &qs {
        let t = Instant::now();
        index.search_with(q, k, &mut buf)?;
        ms.push(t.elapsed().as_secs_f64() * 1e3);
    }
    let gbps = copy_bandwidth_gbps();
    let bytes = index.scan_bytes();
    let floor_ms = bytes as f64 / (gbps * 1e9) * 1e3;
    let med = median(&mut ms);
    Ok(json!({
        "engine": "ernie-search",
        "n": n, "dim": dim, "dtype": dtype.as_str(), "k": k, "queries": queries,
        "query_ms_median": med,
        "query_ms_p90": p90(&mut ms),
        "bytes_scanned": bytes,
        "copy_gbps": gbps,
        "floor_ms": floor_ms,
        "ratio_to_floor": med / floor_ms,
        "threads": 1,
    }))
}

/// Bytes read per second by a 256 MiB memcpy, best of 5 (one thread).
fn copy_bandwidth_gbps() -> f64 {
    let len = 256 << 20;
    let src = vec![1u8; len];
    let mut dst = vec![0u8; len];
    (0..5)
        .map(|_| {
            let t = Instant::now();
            dst.copy_from_slice(std::hint::black_box(&src));
            std::hint::black_box(&dst);
            len as f64 / t.elapsed().as_secs_f64() / 1e9
        })
        .fold(0.0, f64::max)
}
