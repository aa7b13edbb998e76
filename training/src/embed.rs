//! Embedding a whole corpus: long passages cut into overlapping windows, all
//! windows sorted by length so each batch pads little, with a progress bar
//! and a passages/s figure at the end.

use std::time::Instant;

use anyhow::Result;
use ernie_search::Embedder;
use indicatif::{ProgressBar, ProgressStyle};

/// How passages longer than the model's window are covered.
#[derive(Debug, Clone, Copy)]
pub struct Windows {
    /// Tokens shared by consecutive windows; `None`: a quarter of the window.
    pub overlap: Option<usize>,
    /// Windows kept per passage; 1 means "cut at the window" (no windows).
    pub max: usize,
}

pub struct Embedded {
    /// Per input, in input order: one vector per window.
    pub vectors: Vec<Vec<Vec<f32>>>,
    pub seconds: f64,
    /// Inputs longer than one window.
    pub windowed: usize,
    /// Inputs with text left after the last window kept.
    pub truncated: usize,
    /// Vectors in all.
    pub rows: usize,
    /// The overlap used.
    pub overlap: usize,
}

impl Embedded {
    pub fn per_second(&self) -> f64 {
        self.vectors.len() as f64 / self.seconds.max(1e-9)
    }
}

pub fn embed_passages(
    embedder: &Embedder,
    texts: &[String],
    batch: usize,
    windows: Windows,
    label: &str,
) -> Result<Embedded> {
    let start = Instant::now();
    let refs: Vec<&str> = texts.iter().map(String::as_str).collect();
    let overlap = windows.overlap.unwrap_or(embedder.card().spec.max_passage_len / 4);
    let (tokens, truncated) = embedder.tokenize_passage_windows(&refs, overlap, windows.max)?;
    // Every window of every passage, longest first.
    let mut order: Vec<(usize, usize)> =
        tokens.iter().enumerate().flat_map(|(p, w)| (0..w.len()).map(move |i| (p, i))).collect();
    order.sort_by_key(|&(p, i)| std::cmp::Reverse(tokens[p][i].ids.len()));
    let rows = order.len();
    let bar = progress(rows as u64, label);
    let mut vectors: Vec<Vec<Vec<f32>>> = tokens.iter().map(|w| vec![Vec::new(); w.len()]).collect();
    let log = bar.is_hidden();
    let mut next_report = rows / 10;
    for chunk in order.chunks(batch.max(1)) {
        let batch_tokens: Vec<_> = chunk.iter().map(|&(p, i)| tokens[p][i].clone()).collect();
        for (&(p, i), v) in chunk.iter().zip(embedder.embed_tokens(&batch_tokens)?) {
            vectors[p][i] = v;
        }
        bar.inc(chunk.len() as u64);
        if log && bar.position() as usize >= next_report {
            eprintln!("{label}: {}/{rows} windows in {:.0}s", bar.position(), start.elapsed().as_secs_f64());
            next_report += rows / 10;
        }
    }
    bar.finish_and_clear();
    let windowed = tokens.iter().filter(|w| w.len() > 1).count();
    Ok(Embedded { vectors, seconds: start.elapsed().as_secs_f64(), windowed, truncated, rows, overlap })
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
