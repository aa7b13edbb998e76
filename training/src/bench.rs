//! `ernie-search bench train`: training samples/s at a fixed batch shape, the
//! figure BENCHMARKS.md compares with sentence-transformers.

use std::path::Path;
use std::time::Instant;

use anyhow::Result;

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
    use crate::{bert::Batch, loss, model, optim, params::Params, rng::Rng, stages};
    let device = stages::device(device)?;
    let (cfg, tensors, _) = ernie_search_data::convert::read_checkpoint(checkpoint)?;
    let longest = query_len.max(passage_len);
    if longest > cfg.max_position_embeddings {
        anyhow::bail!("a text of {longest} tokens does not fit the model's {} positions", cfg.max_position_embeddings);
    }
    // Word ids past BERT's specials (from 1000 in its vocabulary; in a small
    // one, its upper half), framed by [CLS] and [SEP] where the vocabulary has them.
    let first = 1000.min(cfg.vocab_size / 2);
    let (cls, sep) = if cfg.vocab_size > 102 { (101, 102) } else { (0, 0) };
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
                let mut ids: Vec<u32> = (0..len).map(|_| (first + rng.below(cfg.vocab_size - first)) as u32).collect();
                (ids[0], ids[len - 1]) = (cls, sep);
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
