//! Embedding a whole corpus: sorted by length so each batch pads little,
//! with a progress bar and a passages/s figure at the end.

use std::time::Instant;

use anyhow::Result;
use ernie_search::Embedder;
use indicatif::{ProgressBar, ProgressStyle};

pub struct Embedded {
    /// One vector per input, in input order.
    pub vectors: Vec<Vec<f32>>,
    pub seconds: f64,
    /// How many inputs were longer than the passage window and got cut.
    pub truncated: usize,
}

impl Embedded {
    pub fn per_second(&self) -> f64 {
        self.vectors.len() as f64 / self.seconds.max(1e-9)
    }
}

pub fn embed_passages(embedder: &Embedder, texts: &[String], batch: usize, label: &str) -> Result<Embedded> {
    let start = Instant::now();
    let refs: Vec<&str> = texts.iter().map(String::as_str).collect();
    let tokens = embedder.tokenize_passages(&refs)?;
    let window = embedder.card().spec.max_passage_len;
    let truncated = tokens.iter().filter(|t| t.ids.len() >= window).count();
    let mut order: Vec<usize> = (0..tokens.len()).collect();
    order.sort_by_key(|&i| std::cmp::Reverse(tokens[i].ids.len()));
    let bar = progress(texts.len() as u64, label);
    let mut vectors = vec![Vec::new(); texts.len()];
    let log = bar.is_hidden();
    let mut next_report = texts.len() / 10;
    for chunk in order.chunks(batch.max(1)) {
        let batch_tokens: Vec<_> = chunk.iter().map(|&i| tokens[i].clone()).collect();
        for (&i, v) in chunk.iter().zip(embedder.embed_tokens(&batch_tokens)?) {
            vectors[i] = v;
        }
        bar.inc(chunk.len() as u64);
        if log && bar.position() as usize >= next_report {
            eprintln!("{label}: {}/{} in {:.0}s", bar.position(), texts.len(), start.elapsed().as_secs_f64());
            next_report += texts.len() / 10;
        }
    }
    bar.finish_and_clear();
    Ok(Embedded { vectors, seconds: start.elapsed().as_secs_f64(), truncated })
}

pub fn embed_queries(embedder: &Embedder, texts: &[String], batch: usize, label: &str) -> Result<Vec<Vec<f32>>> {
    let bar = progress(texts.len() as u64, label);
    let mut out = Vec::with_capacity(texts.len());
    for chunk in texts.chunks(batch.max(1)) {
        let refs: Vec<&str> = chunk.iter().map(String::as_str).collect();
        out.extend(embedder.embed_queries(&refs)?);
        bar.inc(chunk.len() as u64);
    }
    bar.finish_and_clear();
    Ok(out)
}

/// A bar on a terminal; in logs (CI, redirected output) indicatif draws
/// nothing, so `embed_passages` also prints a line every tenth of the work.
pub fn progress(len: u64, label: &str) -> ProgressBar {
    let bar = ProgressBar::new(len);
    bar.set_style(
        ProgressStyle::with_template("{msg:>10} [{bar:40}] {pos}/{len} {per_sec} eta {eta}")
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> "),
    );
    bar.set_message(label.to_string());
    bar
}
