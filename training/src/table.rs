//! The cascade's last step: the dual-encoder (DE) teaches a token table, a
//! query encoder with no transformer (`ernie_search::table`). Rows start as
//! each token's own output vector (`[CLS] t [SEP]` through the encoder),
//! weights as the token's IDF over the corpus; then rows and weights are
//! trained on labelled queries with the mean squared error to the DE's query
//! vector plus a contrastive term against the frozen passage vectors of the
//! index (in-batch negatives): on a data set's labelled training queries
//! ([`distil`]), or, at index time, on pseudo-queries made from the corpus
//! itself ([`adapt`]: titles and spans of each passage, no labels).
//! Teachers that know more than the DE (the LI, the CE) may add their
//! distributions over each query's candidates as KL terms ([`SoftTargets`];
//! `table_ablate` measures what they add).

use anyhow::{bail, Context, Result};
use candle_core::{DType, Device, Tensor, Var};
use ernie_search::format::shard::Passage;
use ernie_search::format::table::{TableFile, DEFAULT_CHUNK_ROWS};
use ernie_search::index::builder::{embed_queries, embed_queries_cached, Progress};
use ernie_search::index::dir::IndexDir;
use ernie_search::index::embed_cache::EmbedCache;
use ernie_search::index::quant::ValueBits;
use ernie_search::metrics::Qrels;
use ernie_search::table::TokenTable;
use ernie_search::tokenize::{Tokens, WordPiece};
use ernie_search::LexicalIndex;
use ernie_search::{Embedder, FlatIndex};
use ernie_search_data::eval;

use crate::loss;
use crate::rng::Rng;

/// Token rows and weights as floats, before int8 quantization.
pub struct Rows {
    pub dim: usize,
    pub rows: Vec<f32>,
    pub weights: Vec<f32>,
}

impl Rows {
    pub fn into_table(self, fingerprint: &str) -> Result<TokenTable> {
        Ok(TokenTable::from_f32(fingerprint, self.dim, &self.rows, self.weights, DEFAULT_CHUNK_ROWS, ValueBits::Int8)?)
    }
}

/// `[CLS]` and `[SEP]` (or the tokenizer's own frame) around no text.
fn frame(embedder: &Embedder) -> Result<(Vec<u32>, Vec<u32>)> {
    let empty = embedder.query_tokenizer().encode_batch(&[""])?;
    let ids = empty.first().map(|t| t.ids.clone()).unwrap_or_default();
    if ids.is_empty() {
        bail!("the tokenizer adds no special tokens around a text");
    }
    let head = ids.len().div_ceil(2);
    Ok((ids[..head].to_vec(), ids[head..].to_vec()))
}

/// Each token's own output vector, and its IDF over `texts`.
pub fn init(
    embedder: &Embedder,
    texts: &[String],
    batch: usize,
    progress: &mut dyn FnMut(usize, usize),
) -> Result<Rows> {
    let rows = encoder_rows(embedder, batch, progress)?;
    Ok(Rows { dim: embedder.dim(), rows, weights: idf_weights(embedder, texts)? })
}

/// Each token's own output vector (`[CLS] t [SEP]` through the encoder),
/// centred: a pure function of the model, so callers may cache it.
pub fn encoder_rows(embedder: &Embedder, batch: usize, progress: &mut dyn FnMut(usize, usize)) -> Result<Vec<f32>> {
    let vocab = embedder.card().spec.bert.vocab_size;
    let dim = embedder.dim();
    let (head, tail) = frame(embedder)?;
    let mut rows = Vec::with_capacity(vocab * dim);
    for start in (0..vocab).step_by(batch.max(1)) {
        let end = (start + batch.max(1)).min(vocab);
        let tokens: Vec<Tokens> =
            (start..end).map(|t| Tokens { ids: [&head[..], &[t as u32], &tail[..]].concat() }).collect();
        for v in embedder.embed_tokens(&tokens)? {
            rows.extend(v);
        }
        progress(end, vocab);
    }
    // Mean pooling spreads [CLS] and [SEP]'s outputs, nearly the same for
    // every token, over each row: take that shared part out, or every query
    // points the same way.
    let mut mean = vec![0f32; dim];
    rows.chunks(dim).for_each(|r| mean.iter_mut().zip(r).for_each(|(m, x)| *m += x / vocab as f32));
    rows.chunks_mut(dim).for_each(|r| r.iter_mut().zip(&mean).for_each(|(x, m)| *x -= m));
    Ok(rows)
}

/// Each token's IDF over `texts` (BM25's, `ln(1 + (N - df + 0.5) / (df + 0.5))`);
/// special tokens weigh 0.
pub fn idf_weights(embedder: &Embedder, texts: &[String]) -> Result<Vec<f32>> {
    let vocab = embedder.card().spec.bert.vocab_size;
    let (head, tail) = frame(embedder)?;
    let mut df = vec![0u32; vocab];
    let tok = embedder.query_tokenizer();
    let mut seen = std::collections::HashSet::new();
    for text in texts {
        let (windows, _) = tok.encode_windows(text, 0, usize::MAX)?;
        seen.clear();
        seen.extend(windows.iter().flat_map(|w| w.ids.iter().copied()));
        for &id in &seen {
            if let Some(d) = df.get_mut(id as usize) {
                *d += 1;
            }
        }
    }
    let n = texts.len() as f32;
    let mut weights: Vec<f32> = df.iter().map(|&d| (1.0 + (n - d as f32 + 0.5) / (d as f32 + 0.5)).ln()).collect();
    for &special in head.iter().chain(&tail) {
        if let Some(w) = weights.get_mut(special as usize) {
            *w = 0.0;
        }
    }
    Ok(weights)
}

/// What the table learns from.
pub struct Lessons<'a> {
    /// Each training query's token ids.
    pub queries: &'a [Vec<u32>],
    /// The DE's vector of each query (the MSE target).
    pub teacher: &'a [Vec<f32>],
    /// The frozen vector of each query's relevant passage.
    pub positives: &'a [Vec<f32>],
    /// Teachers' distributions over each query's candidates (none: the DE
    /// alone teaches).
    pub soft: Option<SoftTargets<'a>>,
}

/// The cascade's KL terms for the table: `KL(P_teacher || P_table)` over
/// each query's candidates, as SOFD's LI and the cascade's CE teach a DE.
/// The table scores a candidate as its query vector against the candidate's
/// frozen passage vector.
pub struct SoftTargets<'a> {
    /// Candidates per query.
    pub depth: usize,
    /// Each query's candidates' frozen vectors, `depth` rows of the table's dim.
    pub candidates: &'a [Vec<f32>],
    pub teachers: Vec<Teaching<'a>>,
}

/// One teacher's term.
#[derive(Clone, Copy)]
pub struct Teaching<'a> {
    /// Each query's teacher scores over its candidates.
    pub scores: &'a [Vec<f32>],
    /// The teacher's softmax temperature (its scores' own scale).
    pub tau: f64,
    pub weight: f64,
}

impl SoftTargets<'_> {
    fn check(&self, n: usize, dim: usize) -> Result<()> {
        if self.depth < 2 {
            bail!("a teacher's distribution needs at least 2 candidates per query");
        }
        if self.candidates.len() != n || self.candidates.iter().any(|c| c.len() != self.depth * dim) {
            bail!("each of the {n} queries needs {} candidate vectors of {dim}", self.depth);
        }
        for t in &self.teachers {
            if t.scores.len() != n || t.scores.iter().any(|s| s.len() != self.depth || s.iter().any(|x| !x.is_finite()))
            {
                bail!("each of the {n} queries needs {} finite teacher scores", self.depth);
            }
            if !(t.tau > 0.0 && t.weight >= 0.0) {
                bail!("a teacher's temperature must be > 0 and its weight >= 0");
            }
        }
        Ok(())
    }
}

#[derive(Debug, Clone, Copy)]
pub struct TrainOptions {
    pub steps: usize,
    pub batch: usize,
    pub lr: f64,
    /// Temperature of the contrastive term.
    pub tau: f64,
    /// Weight of the MSE term (the contrastive term weighs 1).
    pub mse: f64,
    pub seed: u64,
}

impl Default for TrainOptions {
    fn default() -> Self {
        Self { steps: 600, batch: 64, lr: 2e-3, tau: 0.05, mse: 100.0, seed: 7 }
    }
}

/// Trains rows and (log-)weights; tokens that weigh 0 stay at 0. Returns the
/// mean loss of the first and the last tenth of the steps.
pub fn train(
    rows: &mut Rows,
    lessons: &Lessons,
    opts: &TrainOptions,
    progress: &mut dyn FnMut(usize, usize),
) -> Result<(f64, f64)> {
    let n = lessons.queries.len();
    if n < 2 || lessons.teacher.len() != n || lessons.positives.len() != n {
        bail!("the table needs at least 2 training queries, each with a teacher vector and a positive");
    }
    let (vocab, dim) = (rows.weights.len(), rows.dim);
    if rows.rows.len() != vocab * dim {
        bail!("{} row values for {vocab} tokens of {dim}", rows.rows.len());
    }
    if let Some(soft) = &lessons.soft {
        soft.check(n, dim)?;
    }
    let mask: Vec<f32> = rows.weights.iter().map(|&w| if w > 0.0 { 1.0 } else { 0.0 }).collect();
    let mut lw: Vec<f32> = rows.weights.iter().map(|w| w.max(1e-6).ln()).collect();
    let mut adam = LazyAdam::new(opts.lr, vocab, dim);
    let batch = opts.batch.clamp(2, n);
    let mut order: Vec<usize> = (0..n).collect();
    let (mut first, mut last, tenth) = (Vec::new(), Vec::new(), (opts.steps / 10).max(1));
    for step in 0..opts.steps {
        let epoch_pos = (step * batch) % n;
        if epoch_pos < batch {
            Rng::derive(opts.seed, "table-order", (step * batch / n) as u64).shuffle(&mut order);
        }
        let picked: Vec<usize> = (0..batch).map(|i| order[(epoch_pos + i) % n]).collect();
        let l = adam.step(&mut rows.rows, &mut lw, &mask, lessons, &picked, opts)?;
        if !l.is_finite() {
            bail!("the table's loss is not finite at step {step}");
        }
        if step < tenth {
            first.push(l);
        }
        if step + tenth >= opts.steps {
            last.push(l);
        }
        progress(step + 1, opts.steps);
    }
    rows.weights = lw.iter().zip(&mask).map(|(l, m)| l.exp() * m).collect();
    let mean = |v: &[f64]| v.iter().sum::<f64>() / v.len().max(1) as f64;
    Ok((mean(&first), mean(&last)))
}

/// Adam over the rows (and log-weights) a batch touches, as PyTorch's
/// SparseAdam: each step builds the loss over those rows alone and moves
/// only them; an untouched row keeps its moments and does not move. candle's
/// AdamW stepped all 30,522 x 384 values and both moments every step: 80 ms
/// of a step that touches a few hundred rows, and at index time most of a
/// rebuild (BENCHMARKS.md, "Incremental rebuild").
struct LazyAdam {
    lr: f32,
    dim: usize,
    /// First and second moments of every row value, then of every log-weight.
    m: Vec<f32>,
    v: Vec<f32>,
    mw: Vec<f32>,
    vw: Vec<f32>,
    t: i32,
    /// Each token's place in the current batch's rows (u32::MAX: absent).
    local: Vec<u32>,
}

impl LazyAdam {
    const B1: f32 = 0.9;
    const B2: f32 = 0.999;
    const EPS: f32 = 1e-8;

    fn new(lr: f64, vocab: usize, dim: usize) -> Self {
        let zeros = |n| vec![0f32; n];
        Self {
            lr: lr as f32,
            dim,
            m: zeros(vocab * dim),
            v: zeros(vocab * dim),
            mw: zeros(vocab),
            vw: zeros(vocab),
            t: 0,
            local: vec![u32::MAX; vocab],
        }
    }

    /// One step on the queries `picked`; returns the loss.
    fn step(
        &mut self,
        rows: &mut [f32],
        lw: &mut [f32],
        mask: &[f32],
        lessons: &Lessons,
        picked: &[usize],
        opts: &TrainOptions,
    ) -> Result<f64> {
        let (dim, dev) = (self.dim, Device::Cpu);
        let mut touched: Vec<u32> = picked.iter().flat_map(|&i| lessons.queries[i].iter().copied()).collect();
        touched.sort_unstable();
        touched.dedup();
        if touched.is_empty() {
            bail!("a training batch of queries with no tokens");
        }
        if let Some(&t) = touched.iter().find(|&&t| t as usize >= lw.len()) {
            bail!("token id {t} is outside the table's {} rows", lw.len());
        }
        for (k, &t) in touched.iter().enumerate() {
            self.local[t as usize] = k as u32;
        }
        let gather = |all: &[f32], width: usize| -> Vec<f32> {
            touched.iter().flat_map(|&t| all[t as usize * width..(t as usize + 1) * width].iter().copied()).collect()
        };
        let u = touched.len();
        let e = Var::from_vec(gather(rows, dim), (u, dim), &dev)?;
        let w = Var::from_vec(gather(lw, 1), u, &dev)?;
        let sub_mask = Tensor::from_vec(gather(mask, 1), u, &dev)?;
        let loss = step_loss(&e, &w, &sub_mask, lessons, picked, &self.local, dim, opts);
        for &t in &touched {
            self.local[t as usize] = u32::MAX;
        }
        let loss = loss?;
        let grads = loss.backward()?;
        self.t += 1;
        let (c1, c2) = (1.0 - Self::B1.powi(self.t), 1.0 - Self::B2.powi(self.t));
        let lr = self.lr;
        let update = |p: &mut [f32], m: &mut [f32], v: &mut [f32], g: &[f32]| {
            for (((p, m), v), &g) in p.iter_mut().zip(m.iter_mut()).zip(v.iter_mut()).zip(g) {
                *m = Self::B1 * *m + (1.0 - Self::B1) * g;
                *v = Self::B2 * *v + (1.0 - Self::B2) * g * g;
                *p -= lr * (*m / c1) / ((*v / c2).sqrt() + Self::EPS);
            }
        };
        let ge: Vec<f32> = grads.get(e.as_tensor()).context("no gradient for the rows")?.flatten_all()?.to_vec1()?;
        let gw: Vec<f32> = grads.get(w.as_tensor()).context("no gradient for the weights")?.to_vec1()?;
        for (k, &t) in touched.iter().enumerate() {
            let (at, g) = (t as usize * dim..(t as usize + 1) * dim, &ge[k * dim..(k + 1) * dim]);
            update(&mut rows[at.clone()], &mut self.m[at.clone()], &mut self.v[at], g);
            let t = t as usize;
            update(&mut lw[t..t + 1], &mut self.mw[t..t + 1], &mut self.vw[t..t + 1], &gw[k..k + 1]);
        }
        Ok(loss.to_scalar::<f32>()? as f64)
    }
}

/// The loss over the batch `picked`, whose tokens' rows are `e` and
/// log-weights `lw` (token `t` at row `local[t]`).
#[allow(clippy::too_many_arguments)]
fn step_loss(
    e: &Var,
    lw: &Var,
    mask: &Tensor,
    lessons: &Lessons,
    picked: &[usize],
    local: &[u32],
    dim: usize,
    opts: &TrainOptions,
) -> Result<Tensor> {
    let dev = Device::Cpu;
    let b = picked.len();
    let len = picked.iter().map(|&i| lessons.queries[i].len()).max().unwrap_or(1).max(1);
    // Padding points at row 0 with its weight masked to 0 below.
    let mut ids = vec![0u32; b * len];
    let mut pad = vec![0f32; b * len];
    for (r, &i) in picked.iter().enumerate() {
        for (c, &t) in lessons.queries[i].iter().enumerate() {
            ids[r * len + c] = local[t as usize];
            pad[r * len + c] = 1.0;
        }
    }
    let ids = Tensor::from_vec(ids, b * len, &dev)?;
    let pad = Tensor::from_vec(pad, (b, len), &dev)?;
    let w = (lw.as_tensor().index_select(&ids, 0)?.exp()? * mask.index_select(&ids, 0)?)?.reshape((b, len))?;
    let w = (w * pad)?;
    let rows = e.as_tensor().index_select(&ids, 0)?.reshape((b, len, dim))?;
    let sum = (w.sum_keepdim(1)? + 1e-6)?;
    let q = rows.broadcast_mul(&w.unsqueeze(2)?)?.sum(1)?.broadcast_div(&sum)?;
    let q = q.broadcast_div(&(q.sqr()?.sum_keepdim(1)?.sqrt()? + 1e-6)?)?;
    let flat = |vs: &[Vec<f32>]| -> Result<Tensor> {
        let data: Vec<f32> = picked.iter().flat_map(|&i| vs[i].iter().copied()).collect();
        Ok(Tensor::from_vec(data, (b, dim), &dev)?)
    };
    let (teacher, pos) = (flat(lessons.teacher)?, flat(lessons.positives)?);
    let mse = (q.sub(&teacher)?.sqr()?.sum(1)?.mean_all()? * opts.mse)?;
    let logits = (q.matmul(&pos.t()?)? / opts.tau)?;
    let labels = Tensor::arange(0u32, b as u32, &dev)?;
    let ce = candle_nn::loss::cross_entropy(&logits.to_dtype(DType::F32)?, &labels)?;
    let mut total = (mse + ce)?;
    if let Some(soft) = &lessons.soft {
        let k = soft.depth;
        let cands: Vec<f32> = picked.iter().flat_map(|&i| soft.candidates[i].iter().copied()).collect();
        let scores = Tensor::from_vec(cands, (b, k, dim), &dev)?.matmul(&q.unsqueeze(2)?)?.squeeze(2)?;
        let all = Tensor::ones((b, k), DType::F32, &dev)?;
        for t in &soft.teachers {
            let ts: Vec<f32> = picked.iter().flat_map(|&i| t.scores[i].iter().copied()).collect();
            let ts = Tensor::from_vec(ts, (b, k), &dev)?;
            total = (total + (loss::kl(&ts, t.tau, &scores, opts.tau, &all)? * t.weight)?)?;
        }
    }
    Ok(total)
}

/// Token ids of `texts` as the table reads them at query time (our
/// WordPiece over the model's tokenizer, cut at the query length).
pub fn query_ids(embedder: &Embedder, texts: &[String]) -> Result<Vec<Vec<u32>>> {
    let card = embedder.card();
    let tok = WordPiece::from_json(card.tokenizer_json.as_bytes(), card.spec.max_query_len)
        .context("the table's tokenizer")?;
    Ok(texts.iter().map(|t| tok.encode(t)).collect())
}

/// One `table` run: a DE model, the index its passages were encoded into
/// (the frozen passage vectors), a BEIR set's training split.
pub struct TableJob<'a> {
    pub embedder: &'a Embedder,
    pub index_dir: &'a std::path::Path,
    pub data_dir: &'a std::path::Path,
    pub split: &'a str,
    /// `None`: keep the initial table (rows from the encoder, IDF weights).
    pub train: Option<TrainOptions>,
}

pub struct TableReport {
    pub file: TableFile,
    pub queries: usize,
    pub init_seconds: f64,
    pub train_seconds: f64,
    /// Mean loss over the first and the last tenth of the steps.
    pub loss: Option<(f64, f64)>,
}

/// Distils a table from `job.embedder` and returns its file contents.
pub fn distil(job: &TableJob, progress: &mut dyn Progress) -> Result<TableReport> {
    let e = job.embedder;
    let fingerprint = e.card().fingerprint.clone();
    let opened =
        IndexDir::open(job.index_dir).with_context(|| format!("cannot open index {}", job.index_dir.display()))?;
    let index = opened.index;
    if index.fingerprint() != fingerprint {
        bail!(
            "{} was built by another model than {}: its passage vectors cannot teach this table",
            job.index_dir.display(),
            e.card().name
        );
    }
    let data = ernie_search_data::beir::BeirData::load(job.data_dir)?;
    let texts: Vec<String> = data.corpus.iter().map(ernie_search_data::corpus::doc_input).collect();
    let t = std::time::Instant::now();
    let mut rows = init(e, &texts, 256, &mut |d, n| progress.advance(d, n))?;
    let init_seconds = t.elapsed().as_secs_f64();
    let (mut loss, mut queries, t) = (None, 0, std::time::Instant::now());
    if let Some(opts) = &job.train {
        let qrels = ernie_search_data::beir::load_qrels(job.data_dir, job.split)?;
        let ordinal: std::collections::HashMap<&str, usize> =
            index.ids().iter().enumerate().map(|(i, id)| (id.as_str(), i)).collect();
        let (mut qtexts, mut positives) = (Vec::new(), Vec::new());
        for (qid, judged) in &qrels {
            let best = judged.iter().filter(|(_, &s)| s > 0).max_by_key(|(_, &s)| s);
            let (Some(text), Some((pid, _))) = (data.queries.get(qid), best) else { continue };
            let Some(&o) = ordinal.get(pid.as_str()) else { continue };
            let Some(v) = index.passage_vectors(o).and_then(|w| w.into_iter().next()) else { continue };
            qtexts.push(text.clone());
            positives.push(v);
        }
        queries = qtexts.len();
        let teacher = embed_queries(e, &qtexts, 64, progress)?;
        let ids = query_ids(e, &qtexts)?;
        let lessons = Lessons { queries: &ids, teacher: &teacher, positives: &positives, soft: None };
        loss = Some(train(&mut rows, &lessons, opts, &mut |d, n| progress.advance(d, n))?);
    }
    let train_seconds = t.elapsed().as_secs_f64();
    let file = table_file(e, rows)?;
    Ok(TableReport { file, queries, init_seconds, train_seconds, loss })
}

/// A query made from the corpus: a title or a span of a passage's text.
#[derive(Debug, Clone, PartialEq)]
pub struct PseudoQuery {
    pub text: String,
    /// The passage it came from (its positive).
    pub ordinal: usize,
}

/// Span lengths in words: about a question's length.
const SPAN_WORDS: (usize, usize) = (4, 10);

/// Up to `max` pseudo-queries, a pure function of the passages and the seed:
/// each distinct title once (its first passage), and for each passage one span
/// of 4-10 words from a sentence of it. Passages are visited in a shuffled
/// order, so a cap keeps a sample of the whole corpus.
pub fn pseudo_queries(passages: &[Passage], max: usize, seed: u64) -> Vec<PseudoQuery> {
    let mut order: Vec<usize> = (0..passages.len()).collect();
    Rng::derive(seed, "pseudo-order", 0).shuffle(&mut order);
    let mut titles = std::collections::HashSet::new();
    let mut out = Vec::new();
    for &i in &order {
        if out.len() >= max {
            break;
        }
        let p = &passages[i];
        let title = p.title.trim();
        if !title.is_empty() && titles.insert(title.to_lowercase()) {
            out.push(PseudoQuery { text: title.to_string(), ordinal: i });
        }
        if let Some(span) = span_of(&p.text, &mut Rng::derive(seed, "pseudo-span", i as u64)) {
            out.push(PseudoQuery { text: span, ordinal: i });
        }
    }
    out.truncate(max);
    out
}

/// A span of words inside one sentence of `text` (the longest sentences
/// first among a random pick of two).
fn span_of(text: &str, rng: &mut Rng) -> Option<String> {
    let sentences: Vec<Vec<&str>> = text
        .split(['.', '!', '?', '\n'])
        .map(|s| s.split_whitespace().collect::<Vec<_>>())
        .filter(|w| w.len() >= SPAN_WORDS.0)
        .collect();
    if sentences.is_empty() {
        return None;
    }
    let (a, b) = (rng.below(sentences.len()), rng.below(sentences.len()));
    let words = if sentences[a].len() >= sentences[b].len() { &sentences[a] } else { &sentences[b] };
    let len = (SPAN_WORDS.0 + rng.below(SPAN_WORDS.1 - SPAN_WORDS.0 + 1)).min(words.len());
    let start = rng.below(words.len() - len + 1);
    Some(words[start..start + len].join(" "))
}

/// How the indexer adapts the table to its corpus.
#[derive(Debug, Clone, Copy)]
pub struct AdaptOptions {
    /// The most pseudo-queries (their teacher vectors cost one short
    /// transformer pass each).
    pub max_queries: usize,
    pub train: TrainOptions,
}

impl Default for AdaptOptions {
    fn default() -> Self {
        Self { max_queries: 16_384, train: TrainOptions { steps: 400, ..TrainOptions::default() } }
    }
}

pub struct AdaptReport {
    pub queries: usize,
    /// Seconds spent on the teacher's query vectors.
    pub teacher_seconds: f64,
    pub train_seconds: f64,
    pub loss: (f64, f64),
}

/// Teaches the table a corpus's own words, with no labels: pseudo-queries
/// from `passages`, the transformer's vectors of them as the MSE targets and
/// their passages' vectors (the window nearest the teacher vector) in `index`
/// as positives. `rows` is the start: a distilled table's, or the encoder's
/// own rows ([`encoder_rows`]) with the corpus's IDF ([`idf_weights`]).
/// The teacher vectors come from `cache` where it holds them (a rebuild
/// encodes only the pseudo-queries it has not seen).
pub fn adapt(
    embedder: &Embedder,
    passages: &[Passage],
    index: &FlatIndex,
    mut rows: Rows,
    opts: &AdaptOptions,
    cache: Option<&mut EmbedCache>,
    progress: &mut dyn Progress,
) -> Result<(TableFile, AdaptReport)> {
    if index.fingerprint() != embedder.card().fingerprint || index.len() != passages.len() {
        bail!("the table adapts to an index built by the same model over the same passages");
    }
    let mut report = AdaptReport { queries: 0, teacher_seconds: 0.0, train_seconds: 0.0, loss: (0.0, 0.0) };
    let queries = pseudo_queries(passages, opts.max_queries, opts.train.seed);
    if opts.train.steps == 0 || queries.len() < 2 {
        return Ok((table_file(embedder, rows)?, report));
    }
    let texts: Vec<String> = queries.iter().map(|q| q.text.clone()).collect();
    let t = std::time::Instant::now();
    let teacher = embed_queries_cached(embedder, &texts, 64, cache, progress)?;
    report.teacher_seconds = t.elapsed().as_secs_f64();
    let mut positives = Vec::with_capacity(queries.len());
    for (q, v) in queries.iter().zip(&teacher) {
        let windows = index.passage_vectors(q.ordinal).context("a pseudo-query's passage is not in the index")?;
        let dot = |w: &Vec<f32>| w.iter().zip(v).map(|(a, b)| a * b).sum::<f32>();
        let best = windows.into_iter().max_by(|a, b| dot(a).total_cmp(&dot(b)));
        positives.push(best.context("a passage without vectors")?);
    }
    let ids = query_ids(embedder, &texts)?;
    let lessons = Lessons { queries: &ids, teacher: &teacher, positives: &positives, soft: None };
    let t = std::time::Instant::now();
    report.loss = train(&mut rows, &lessons, &opts.train, &mut |d, n| progress.advance(d, n))?;
    report.train_seconds = t.elapsed().as_secs_f64();
    report.queries = queries.len();
    Ok((table_file(embedder, rows)?, report))
}

/// How many held-out pseudo-queries tune the table's hybrid weight.
pub const FUSION_QUERIES: usize = 1000;

/// The table's hybrid weight, chosen with no labels, and how it compares.
#[derive(Debug, Clone, Copy)]
pub struct FusionTuning {
    pub alpha: f32,
    /// The weight with the best MRR@10 on the pseudo-queries (`alpha` is the
    /// largest not worse than it: `eval::tune_leaning_dense`).
    pub best_alpha: f32,
    pub queries: usize,
    /// MRR@10 on the held-out pseudo-queries: the tuned hybrid, RRF, BM25 alone.
    pub mrr: f64,
    pub rrf_mrr: f64,
    pub lexical_mrr: f64,
}

/// Tunes the convex weight of the table's hybrid ranking on pseudo-queries
/// the table did not learn from (another seed, other texts), each judged
/// relevant to its own passage. BM25 alone (alpha 0) is on the grid, so on
/// these queries the fused ranking is never significantly worse than
/// keywords: the unlabelled default. Copied spans favour keywords more than
/// questions do (on the wiki set the pseudo-queries' best weight is 0.10, the
/// train questions' 0.40), so the weight leans to the dense side as far as
/// these queries allow (`eval::tune_leaning_dense`). `None` when the corpus
/// gives too few queries.
pub fn tune_fusion(
    file: &TableFile,
    passages: &[Passage],
    index: &FlatIndex,
    lexical: &LexicalIndex,
    opts: &AdaptOptions,
) -> Result<Option<FusionTuning>> {
    let learnt: std::collections::HashSet<String> =
        pseudo_queries(passages, opts.max_queries, opts.train.seed).into_iter().map(|q| q.text).collect();
    let held_out: Vec<PseudoQuery> = pseudo_queries(passages, usize::MAX, opts.train.seed ^ 0x7e57)
        .into_iter()
        .filter(|q| !learnt.contains(&q.text))
        .take(FUSION_QUERIES)
        .collect();
    if held_out.len() < 20 {
        return Ok(None);
    }
    let ids = index.ids();
    let qids: Vec<String> = (0..held_out.len()).map(|i| format!("pq{i}")).collect();
    let texts: Vec<String> = held_out.iter().map(|q| q.text.clone()).collect();
    let qrels: Qrels =
        qids.iter().zip(&held_out).map(|(q, p)| (q.clone(), [(ids[p.ordinal].clone(), 1)].into())).collect();
    let tok = WordPiece::from_json(file.tokenizer_json.as_bytes(), file.max_query_len)?;
    let vectors: Vec<Option<Vec<f32>>> =
        texts.iter().map(|t| file.table.encode_ids(&tok.encode(t))).collect::<Result<_, _>>()?;
    let cands = eval::candidates_from(index, lexical, &qids, &texts, &vectors)?;
    let (alpha, best_alpha, curve) = eval::tune_leaning_dense(&cands, &qrels, ids);
    let rows = eval::encoder_rows("table", &cands, &qrels, ids, Some(alpha));
    let mrr = curve.iter().find(|(a, _)| *a == alpha).map_or(0.0, |(_, s)| s.mrr_10);
    Ok(Some(FusionTuning {
        alpha,
        best_alpha,
        queries: held_out.len(),
        mrr,
        rrf_mrr: rows[1].1.mrr_10,
        lexical_mrr: eval::lexical_row(&cands, &qrels, ids).1.mrr_10,
    }))
}

/// A table's rows back as floats (a distilled table as the start of an adaptation).
pub fn rows_of(table: &TokenTable) -> Result<Rows> {
    let mut rows = Vec::with_capacity(table.vocab() * table.dim);
    for id in 0..table.vocab() {
        rows.extend(table.row(id).context("the base table is not wholly loaded")?);
    }
    let weights =
        (0..table.n_chunks()).filter_map(|c| table.chunk(c)).flat_map(|c| c.weights.iter().copied()).collect();
    Ok(Rows { dim: table.dim, rows, weights })
}

/// The table file of `rows`, with the compact tokenizer its reader needs.
pub fn table_file(embedder: &Embedder, rows: Rows) -> Result<TableFile> {
    Ok(TableFile {
        table: rows.into_table(&embedder.card().fingerprint)?,
        // What the browser downloads first: only what WordPiece reads.
        tokenizer_json: WordPiece::compact_json(&embedder.card().tokenizer_json)?,
        max_query_len: embedder.card().spec.max_query_len,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn passage(title: &str, text: &str) -> Passage {
        Passage { id: title.into(), title: title.into(), text: text.into(), url: None }
    }

    #[test]
    fn pseudo_queries_are_titles_and_spans_drawn_by_the_seed() {
        let ps = vec![
            passage("Alpha", "The quick brown fox jumps over the lazy dog. Short."),
            passage("alpha", "Tiny. Words."),
            passage("Gamma", "One two three four five six seven eight nine ten eleven twelve thirteen"),
        ];
        let q = pseudo_queries(&ps, 100, 7);
        assert_eq!(q, pseudo_queries(&ps, 100, 7), "deterministic");
        let titles: Vec<&str> = q.iter().filter(|q| q.text == ps[q.ordinal].title).map(|q| q.text.as_str()).collect();
        assert_eq!(titles.len(), 2, "one query per distinct title (case-insensitive): {q:?}");
        for pq in q.iter().filter(|q| q.text != ps[q.ordinal].title) {
            let n = pq.text.split_whitespace().count();
            assert!((4..=10).contains(&n) && ps[pq.ordinal].text.contains(&pq.text), "{pq:?}");
        }
        assert!(q.iter().all(|q| q.ordinal != 1 || q.text == "alpha"), "no sentence of 4 words in passage 1");
        assert_eq!(pseudo_queries(&ps, 2, 7).len(), 2);
    }

    /// Six tokens of 4 dims; four queries over tokens 1-4: 0 and 5 are never touched.
    fn toy() -> (Rows, Vec<Vec<u32>>, Vec<Vec<f32>>) {
        let unit = |i: usize| (0..4).map(|d| if d == i % 4 { 1.0 } else { 0.1 }).collect::<Vec<f32>>();
        let rows = Rows {
            dim: 4,
            rows: (0..6).flat_map(|t| unit(t + 1)).collect(),
            weights: vec![0.0, 1.0, 1.0, 1.0, 1.0, 1.0],
        };
        let queries = vec![vec![1, 2], vec![2, 3], vec![3, 4], vec![4, 1]];
        let targets = (0..4).map(unit).collect();
        (rows, queries, targets)
    }

    #[test]
    fn lazy_adam_moves_only_the_rows_a_batch_touches_and_lowers_the_loss() {
        let (mut rows, queries, targets) = toy();
        let before = rows.rows.clone();
        let lessons = Lessons { queries: &queries, teacher: &targets, positives: &targets, soft: None };
        let opts = TrainOptions { steps: 60, batch: 4, lr: 0.05, tau: 0.1, mse: 10.0, seed: 3 };
        let (first, last) = train(&mut rows, &lessons, &opts, &mut |_, _| {}).unwrap();
        assert!(last < first * 0.8, "the loss falls: {first} -> {last}");
        assert_eq!(rows.rows[..4], before[..4], "token 0 is in no query: unmoved");
        assert_eq!(rows.rows[20..], before[20..], "token 5 is in no query: unmoved");
        assert!(rows.rows[4..20] != before[4..20]);
        assert_eq!(rows.weights[0], 0.0, "a token that weighs 0 stays at 0");
        let (mut again, _, _) = toy();
        train(&mut again, &lessons, &opts, &mut |_, _| {}).unwrap();
        assert_eq!(again.rows, rows.rows, "deterministic given the seed");
        // A token id past the table is an error, not a panic.
        let bad = vec![vec![1, 9], vec![2, 3]];
        let lessons = Lessons { queries: &bad, teacher: &targets[..2], positives: &targets[..2], soft: None };
        assert!(train(&mut again, &lessons, &opts, &mut |_, _| {}).is_err());
    }

    /// The table's softmax over a query's two candidates (at `tau`).
    fn second_prob(rows: &Rows, query: &[u32], cands: &[f32], tau: f32) -> f32 {
        let mut q = vec![0f32; rows.dim];
        let total: f32 = query.iter().map(|&t| rows.weights[t as usize]).sum();
        for &t in query {
            let w = rows.weights[t as usize] / total;
            q.iter_mut().zip(&rows.rows[t as usize * 4..(t as usize + 1) * 4]).for_each(|(a, x)| *a += w * x);
        }
        let n = q.iter().map(|x| x * x).sum::<f32>().sqrt();
        let s: Vec<f32> =
            cands.chunks(4).map(|c| c.iter().zip(&q).map(|(a, b)| a * b).sum::<f32>() / n / tau).collect();
        1.0 / (1.0 + (s[0] - s[1]).exp())
    }

    #[test]
    fn a_teachers_distribution_pulls_the_table_toward_its_choice() {
        let (rows, queries, targets) = toy();
        // Each query's candidates: its own target first, then the next query's;
        // the teacher prefers the second.
        let cands: Vec<Vec<f32>> =
            (0..4).map(|i| [targets[i].clone(), targets[(i + 1) % 4].clone()].concat()).collect();
        let prefers_second = vec![vec![0.0f32, 1.0]; 4];
        let opts = TrainOptions { steps: 60, batch: 4, lr: 0.05, tau: 0.1, mse: 1.0, seed: 3 };
        let run = |weight: f64| {
            let soft = SoftTargets {
                depth: 2,
                candidates: &cands,
                teachers: vec![Teaching { scores: &prefers_second, tau: 0.2, weight }],
            };
            let lessons = Lessons { queries: &queries, teacher: &targets, positives: &targets, soft: Some(soft) };
            let mut r = Rows { dim: rows.dim, rows: rows.rows.clone(), weights: rows.weights.clone() };
            train(&mut r, &lessons, &opts, &mut |_, _| {}).unwrap();
            (0..4).map(|i| second_prob(&r, &queries[i], &cands[i], 0.1)).sum::<f32>() / 4.0
        };
        let (without, with) = (run(0.0), run(5.0));
        assert!(with > without + 0.1, "P(teacher's choice): {without} without the KL term, {with} with it");

        // Malformed teachers are errors, not panics.
        let short = vec![vec![0.0f32]; 4];
        let nan = vec![vec![f32::NAN, 1.0]; 4];
        for (scores, depth) in [(&short, 2), (&nan, 2), (&prefers_second, 1)] {
            let soft =
                SoftTargets { depth, candidates: &cands, teachers: vec![Teaching { scores, tau: 1.0, weight: 1.0 }] };
            let lessons = Lessons { queries: &queries, teacher: &targets, positives: &targets, soft: Some(soft) };
            let mut r = Rows { dim: rows.dim, rows: rows.rows.clone(), weights: rows.weights.clone() };
            assert!(train(&mut r, &lessons, &opts, &mut |_, _| {}).is_err());
        }
    }
}
