//! `ernie-search eval`: encode a BEIR corpus and a split's queries, search
//! exhaustively, report MRR@10, Recall@1/5/20/100, nDCG@10, write a TREC run.

use std::path::Path;
use std::time::Instant;

use anyhow::{bail, Context, Result};
use ernie_search::metrics::{self, Run, Scores};
use ernie_search::{Embedder, FlatIndex, VectorDType};

use crate::data::{beir, corpus::passage_input};
use crate::embed;

pub struct EvalReport {
    pub scores: Scores,
    pub queries: usize,
    pub passages: usize,
    pub encode_seconds: f64,
    pub total_seconds: f64,
}

pub fn evaluate(
    embedder: &Embedder,
    data: &Path,
    split: &str,
    dtype: VectorDType,
    batch: usize,
    run_out: Option<&Path>,
) -> Result<EvalReport> {
    let start = Instant::now();
    let corpus = beir::load_corpus(&data.join("corpus.jsonl"))?;
    let queries = beir::load_queries(&data.join("queries.jsonl"))?;
    let qrels = beir::load_qrels(data, split)?;
    let texts: Vec<String> = corpus
        .iter()
        .map(|d| passage_input(&ernie_search::format::shard::Passage {
            id: d.id.clone(),
            title: d.title.clone(),
            text: d.text.clone(),
            url: None,
        }))
        .collect();
    let emb = embed::embed_passages(embedder, &texts, batch, "corpus")?;
    let mut index = FlatIndex::new(embedder.dim(), dtype, &embedder.card().fingerprint)?;
    for (d, v) in corpus.iter().zip(&emb.vectors) {
        index.push(&d.id, v)?;
    }
    let qids: Vec<&String> = qrels.keys().collect();
    let mut qtexts = Vec::with_capacity(qids.len());
    for q in &qids {
        match queries.get(*q) {
            Some(t) => qtexts.push(t.clone()),
            None => bail!("query {q} is in qrels/{split}.tsv but not in queries.jsonl"),
        }
    }
    let qvecs = embed::embed_queries(embedder, &qtexts, 64, "queries")?;
    let mut run = Run::new();
    let mut buf = Vec::new();
    for (qid, v) in qids.iter().zip(&qvecs) {
        let hits = index.search_with(v, 100, &mut buf)?;
        run.insert((*qid).clone(), hits.iter().map(|h| (index.ids()[h.ordinal].clone(), h.score)).collect());
    }
    let (scores, _) = metrics::evaluate(&qrels, &run);
    if let Some(path) = run_out {
        let mut out = Vec::new();
        metrics::write_trec_run(&mut out, &run, "ernie-search")?;
        ernie_search::format::write_atomic(path, &out).with_context(|| format!("cannot write {}", path.display()))?;
    }
    Ok(EvalReport {
        scores,
        queries: qids.len(),
        passages: corpus.len(),
        encode_seconds: emb.seconds,
        total_seconds: start.elapsed().as_secs_f64(),
    })
}

/// A markdown row: `| MRR@10 | R@1 | R@5 | R@20 | R@100 | nDCG@10 |`.
pub fn table(s: &Scores) -> String {
    format!(
        "| MRR@10 | R@1 | R@5 | R@20 | R@100 | nDCG@10 |\n|---|---|---|---|---|---|\n| {:.3} | {:.3} | {:.3} | {:.3} | {:.3} | {:.3} |",
        s.mrr_10, s.recall_1, s.recall_5, s.recall_20, s.recall_100, s.ndcg_10
    )
}
