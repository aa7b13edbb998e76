//! What turns trained weights into things the rest of the project uses:
//! the student as a model file (and as a library `Embedder`), hard-negative
//! mining, and the dense evaluation every stage and the ablation report.

use std::path::Path;
use std::time::Instant;

use anyhow::{Context as _, Result};
use ernie_search::format::model::{quantize_tensors, write_model, WeightDType};
use ernie_search::metrics::{self, Qrels, Run, Scores};
use ernie_search::model::{ModelSpec, Pooling};
use ernie_search::{Bm25Params, Embedder, FlatIndex, Kernel, LexicalIndex, VectorDType};

use super::params::Params;
use super::stages::{student_tensors, Context};
use ernie_search::index::builder::{embed_passages, embed_queries, Windows};
use ernie_search_data::beir;
use ernie_search_data::progress::Bar;

/// The student's DE as a model file (GGUF bytes): the encoder only, the LI
/// projection is a training-time head.
pub fn export_bytes(
    ctx: &Context,
    params: &Params,
    layers: usize,
    weights: WeightDType,
    name: &str,
    provenance: &serde_json::Value,
) -> Result<Vec<u8>> {
    let e = &ctx.recipe.export;
    let spec = ModelSpec {
        bert: ctx.student_cfg(layers)?,
        pooling: ctx.recipe.model.pooling.parse::<Pooling>()?,
        normalize: ctx.recipe.model.normalize,
        max_query_len: e.max_query_len,
        max_passage_len: e.max_passage_len,
    };
    let tensors = student_tensors(params)?
        .into_iter()
        .map(|(n, t)| Ok((n, t.to_device(&candle_core::Device::Cpu)?)))
        .collect::<Result<Vec<_>>>()?;
    let q = quantize_tensors(tensors, weights)?;
    Ok(write_model(name, &spec, weights, &ctx.tokenizer_json, provenance, &q)?)
}

/// The student as the library loads it (what the browser will run).
pub fn embedder(ctx: &Context, params: &Params, layers: usize, weights: WeightDType) -> Result<Embedder> {
    let bytes = export_bytes(ctx, params, layers, weights, "student", &serde_json::json!({}))?;
    Ok(Embedder::from_bytes_with(&bytes, Kernel::Dense)?)
}

/// One dense evaluation: the mean figures, the run they were computed from
/// (top 100 per query, for per-query comparisons and standard evaluators)
/// and the seconds it took.
pub struct DenseEval {
    pub scores: Scores,
    pub run: Run,
    pub seconds: f64,
}

/// Dense retrieval over the whole corpus for the queries of `split`:
/// MRR@10, R@1/5/20/100, nDCG@10.
pub fn dense_eval(embedder: &Embedder, data_dir: &Path, split: &str, batch: usize) -> Result<DenseEval> {
    let start = Instant::now();
    let data = beir::BeirData::load(data_dir)?;
    let ids: Vec<String> = data.corpus.iter().map(|d| d.id.clone()).collect();
    let texts: Vec<String> = data.corpus.iter().map(ernie_search_data::corpus::doc_input).collect();
    let index = encode_corpus(embedder, &ids, &texts, batch, &format!("corpus ({split} eval)"))?;
    let e = dense_eval_on(embedder, &index, &data, data_dir, split, batch)?;
    Ok(DenseEval { seconds: start.elapsed().as_secs_f64(), ..e })
}

/// Every passage cut at the model's passage window (one vector each).
pub fn encode_corpus(
    embedder: &Embedder,
    ids: &[String],
    texts: &[String],
    batch: usize,
    label: &str,
) -> Result<FlatIndex> {
    let emb = embed_passages(embedder, texts, batch, Windows { overlap: None, max: 1 }, &mut Bar::new(0, label))?;
    let mut index = FlatIndex::new(embedder.dim(), VectorDType::F32, &embedder.card().fingerprint)?;
    for (id, v) in ids.iter().zip(&emb.vectors) {
        index.push_windows(id, v)?;
    }
    Ok(index)
}

/// [`dense_eval`] over a corpus already encoded by the same model.
pub fn dense_eval_on(
    embedder: &Embedder,
    index: &FlatIndex,
    data: &beir::BeirData,
    data_dir: &Path,
    split: &str,
    batch: usize,
) -> Result<DenseEval> {
    let start = Instant::now();
    let qrels: Qrels = beir::load_qrels(data_dir, split)?;
    let ids = index.ids();
    let qids: Vec<&String> = qrels.keys().collect();
    let qtexts: Vec<String> = qids
        .iter()
        .map(|q| {
            data.queries
                .get(*q)
                .cloned()
                .with_context(|| format!("query {q} is in qrels/{split}.tsv but not in queries.jsonl"))
        })
        .collect::<Result<_>>()?;
    let qv = embed_queries(embedder, &qtexts, batch, &mut Bar::new(0, split))?;
    let mut run = Run::new();
    for (q, v) in qids.iter().zip(&qv) {
        let hits = index.search(v, 100)?;
        run.insert((*q).clone(), hits.iter().map(|h| (ids[h.ordinal].clone(), h.score)).collect());
    }
    let scores = metrics::evaluate(&qrels, &run).0;
    Ok(DenseEval { scores, run, seconds: start.elapsed().as_secs_f64() })
}

/// Per training query: (passage ordinal, score), best first.
pub type Ranked = Vec<Vec<(usize, f32)>>;

/// Ranks the corpus for every training query with a dense model (top
/// `depth`); returns the encoded corpus too, for reuse.
pub fn rank_dense(ctx: &Context, embedder: &Embedder, depth: usize) -> Result<(Ranked, FlatIndex)> {
    let d = &ctx.data;
    let index = encode_corpus(embedder, &d.passage_ids, &d.passage_texts, ctx.recipe.eval.batch, "mine: corpus")?;
    let qv = embed_queries(embedder, &d.query_texts, ctx.recipe.eval.batch, &mut Bar::new(0, "mine: queries"))?;
    let ranked = qv
        .iter()
        .map(|v| Ok(index.search(v, depth)?.into_iter().map(|h| (h.ordinal, h.score)).collect()))
        .collect::<Result<_>>()?;
    Ok((ranked, index))
}

/// Ranks the corpus for every training query with BM25 (top `depth`).
pub fn rank_bm25(ctx: &Context, depth: usize) -> Result<Ranked> {
    let d = &ctx.data;
    let lex = LexicalIndex::build(&d.passage_ids, &d.passage_texts, Bm25Params::default(), 1)?;
    d.query_texts
        .iter()
        .map(|q| {
            let Some(scores) = lex.scores(q)? else { return Ok(Vec::new()) };
            Ok(ernie_search::index::top_k(scores.into_iter().enumerate(), &d.passage_ids, depth)
                .into_iter()
                .map(|h| (h.ordinal, h.score))
                .collect())
        })
        .collect()
}

pub fn scores_json(s: &Scores) -> serde_json::Value {
    serde_json::to_value(s).unwrap_or_default()
}
