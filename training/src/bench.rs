//! `ernie-search bench`: encode throughput and scan latency, printed as JSON
//! so `bench/run.sh` can put them next to the Python peers of the same run.

use std::path::Path;
use std::time::Instant;

use anyhow::Result;
use ernie_search::{Embedder, FlatIndex, VectorDType};
use serde_json::json;

use crate::data::corpus::read_corpus;

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
pub fn load(bytes: &[u8], runs: usize) -> Result<serde_json::Value> {
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
pub fn encode(embedder: &Embedder, passages: &Path, batch: usize, queries: usize) -> Result<serde_json::Value> {
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
        "threads": candle_core::utils::get_num_threads(),
    }))
}

/// Top-k latency over `n` random unit vectors, against the copy-bandwidth floor.
pub fn scan(n: usize, dim: usize, dtype: VectorDType, queries: usize, k: usize) -> Result<serde_json::Value> {
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
pub fn copy_bandwidth_gbps() -> f64 {
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

/// Training throughput of the student (DE + LI heads on one encoder):
/// forward, backward and an AdamW step on a fixed batch shape — `batch`
/// queries of `query_len` tokens, each with one positive and one hard
/// negative of `passage_len` tokens, in-batch negatives. Token ids are
/// random words of the vocabulary: speed does not depend on the text.
pub fn train(
    checkpoint: &Path,
    batch: usize,
    query_len: usize,
    passage_len: usize,
    steps: usize,
    device: &str,
) -> Result<serde_json::Value> {
    use crate::train::{bert::Batch, loss, model, optim, params::Params, rng::Rng, stages};
    let device = stages::device(device)?;
    let (cfg, tensors, _) = crate::convert::read_checkpoint(checkpoint)?;
    let mut params = Params::from_tensors(tensors, model::STUDENT, &device)?;
    let student = model::Student::new(&cfg, &mut params, ernie_search::Pooling::Mean, true, 128, 1, &device)?;
    let adamw = optim::AdamWConfig {
        lr: 5e-5,
        beta1: 0.9,
        beta2: 0.999,
        eps: 1e-6,
        weight_decay: 0.01,
        warmup: 0.1,
        clip: 1.0,
    };
    let mut opt = optim::AdamW::new(adamw, steps as u64 + 2);
    let mut rng = Rng::new(7);
    let mut text = |len: usize, n: usize| -> Vec<Vec<u32>> {
        (0..n)
            .map(|_| {
                let mut ids: Vec<u32> = (0..len).map(|_| 1000 + rng.below(cfg.vocab_size - 1000) as u32).collect();
                (ids[0], ids[len - 1]) = (101, 102);
                ids
            })
            .collect()
    };
    let mut step = |i: u64| -> Result<()> {
        let q = Batch::from_ids(&text(query_len, batch), &device)?;
        let p = Batch::from_ids(&text(passage_len, 2 * batch), &device)?;
        let (qe, pe) = (student.encode(&params, &q, true)?, student.encode(&params, &p, true)?);
        let (de, li) = (model::de_scores(&qe, &pe)?, model::li_scores(&qe, &pe)?);
        let mask = candle_core::Tensor::ones(de.dims(), candle_core::DType::F32, &device)?;
        let t: Vec<u32> = (0..batch as u32).map(|i| 2 * i).collect();
        let t = candle_core::Tensor::from_vec(t, batch, &device)?;
        let l = (loss::contrastive(&de, 0.05, &mask, &t)? + loss::contrastive(&li, 1.0, &mask, &t)?)?;
        let l = (l + loss::kl(&li, 1.0, &de, 0.05, &mask)?)?;
        opt.accumulate(&params, &l.backward()?)?;
        opt.step(&params, i)?;
        Ok(())
    };
    step(0)?; // warm-up: allocations, thread pools
    let start = Instant::now();
    for i in 0..steps {
        step(i as u64 + 1)?;
    }
    let secs = start.elapsed().as_secs_f64();
    Ok(serde_json::json!({
        "bench": "train", "model": checkpoint.display().to_string(), "layers": cfg.num_hidden_layers,
        "batch": batch, "query_len": query_len, "passage_len": passage_len, "steps": steps,
        "threads": std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1),
        "seconds": secs, "samples_per_s": (steps * batch) as f64 / secs,
        "losses": "DE contrastive + LI contrastive + KL(P_li || P_de), in-batch + 1 hard negative",
    }))
}
