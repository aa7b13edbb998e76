//! The method's own test on the token table (issue 19): the table taught by
//! the DE alone (MSE to its query vectors, contrastive against the frozen
//! passages) against the table also taught by the LI's distribution over
//! each query's candidates (KL, as SOFD teaches the DE) and by the CE's (the
//! cascade's terms).
//!
//! The DE is the model that built the index. The LI shares the DE's initial
//! encoder: the run's LI head, trained alone on it. The CE is the run's. The
//! candidates are the DE's top `depth` over the index, with the positive put
//! in. Every row starts from the same rows, trains the same steps on the same
//! queries, and is scored on the recipe's eval split against the whole index.
//! Each row is paired with the DE-alone row. A probe shows whether each
//! teacher knows more than the table: every scorer reranks the same dev
//! candidates.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{bail, Context as _, Result};
use ernie_search::index::builder::{embed_queries, Progress};
use ernie_search::index::dir::IndexDir;
use ernie_search::index::quant::{dot_f32, VectorDType};
use ernie_search::metrics::{self, Qrels, Run, Scores};
use ernie_search::table::TableEncoder;
use ernie_search::tokenize::TextTokenizer;
use ernie_search::{Embedder, FlatIndex};
use serde::{Deserialize, Serialize};

use super::ablate;
use super::bert::Batch;
use super::commands::{self, StageArgs};
use super::model::{self, CrossEncoder, Student, CE};
use super::params::Params;
use super::projection::Projection;
use super::stages::Context;
use super::table::{self, Lessons, Rows, SoftTargets, Teaching, TrainOptions};

pub struct TableAblateOptions<'a> {
    pub stage: StageArgs,
    /// The DE: the model that built `index`.
    pub embedder: &'a Embedder,
    pub index: PathBuf,
    /// Candidates per query.
    pub depth: usize,
    pub train: TrainOptions,
    /// Each teacher's KL weight (the contrastive term weighs 1).
    pub weight: f64,
    /// Dev queries of the teachers' probe (0: no probe).
    pub probe_queries: usize,
    /// Reduced dimensions to train the table in as well (a projection fitted
    /// on the passage vectors).
    pub dims: Vec<usize>,
    /// The split every row is scored on (None: the recipe's `[eval] split`).
    pub split: Option<String>,
    /// Where to write each full-dimension row's table (`<slug>.tbl`, for
    /// `table eval` or `index --table-base`).
    pub tables: Option<PathBuf>,
}

/// One row's figures on the eval split.
pub struct TableRow {
    pub label: String,
    /// A trained table, compared with the DE-alone row; otherwise a reference.
    pub taught: bool,
    pub scores: Scores,
    pub per_query: BTreeMap<String, Scores>,
    pub train_seconds: f64,
}

/// Each query's candidates (index ordinals) and every teacher's scores over them.
#[derive(Serialize, Deserialize)]
struct Teachers {
    fingerprint: String,
    queries: Vec<String>,
    candidates: Vec<Vec<usize>>,
    de: Vec<Vec<f32>>,
    li: Vec<Vec<f32>>,
    ce: Vec<Vec<f32>>,
}

/// The teachers that score candidates: the LI (student + head) and the CE.
struct Scorers {
    student: Student,
    student_params: Params,
    ce: CrossEncoder,
    ce_params: Params,
}

/// Runs every row and returns the markdown report.
pub fn ablate(opts: &TableAblateOptions, progress: &mut dyn Progress) -> Result<String> {
    let start = Instant::now();
    let e = opts.embedder;
    let index =
        IndexDir::open(&opts.index).with_context(|| format!("cannot open index {}", opts.index.display()))?.index;
    if index.fingerprint() != e.card().fingerprint {
        bail!("{} was built by another model than {}", opts.index.display(), e.card().name);
    }
    if opts.depth < 2 || opts.depth > index.len() {
        bail!("--depth {} must be at least 2 and at most the index's {} passages", opts.depth, index.len());
    }
    if !(opts.weight.is_finite() && opts.weight >= 0.0) {
        bail!("--kl {}: a KL term's weight is a finite number, 0 or more", opts.weight);
    }
    if let Some(&d) = opts.dims.iter().find(|&&d| d == 0 || d >= index.dim()) {
        bail!("--dims {d}: a reduced dimension is between 1 and the index's {} - 1", index.dim());
    }
    let mut ctx = commands::open(&opts.stage)?;
    let (ce_dir, _) = ablate::shared_work(&mut ctx)?;
    let data_of = data_ordinals(&ctx, &index)?;
    let scorers = load_scorers(&ctx, &ce_dir)?;

    // The training queries whose positive the index holds.
    let d = &ctx.data;
    let of_index: HashMap<&str, usize> = index.ids().iter().enumerate().map(|(i, id)| (id.as_str(), i)).collect();
    let mut picked = Vec::new();
    for (i, pos) in d.positives.iter().enumerate() {
        if let Some(&o) = pos.first().and_then(|&p| of_index.get(d.passage_ids[p].as_str())) {
            picked.push((i, o));
        }
    }
    if picked.len() < 2 {
        bail!("fewer than 2 training queries have their positive in {}", opts.index.display());
    }
    let texts: Vec<String> = picked.iter().map(|&(i, _)| d.query_texts[i].clone()).collect();
    let q_tokens: Vec<Vec<u32>> = picked.iter().map(|&(i, _)| d.query_tokens[i].clone()).collect();
    let teacher_vecs = embed_queries(e, &texts, 64, progress)?;
    let cache = ctx.run.join("table-teachers.json");
    let teachers = match read_teachers(&cache, &index, &picked, &ctx, opts.depth) {
        Some(t) => t,
        None => {
            let positives: Vec<usize> = picked.iter().map(|&(_, o)| o).collect();
            let candidates = de_candidates(&index, &teacher_vecs, Some(&positives), opts.depth)?;
            let t = score_all(&ctx, &scorers, &index, &data_of, &teacher_vecs, &q_tokens, candidates, progress)?;
            let t = Teachers { queries: picked.iter().map(|&(i, _)| d.query_ids[i].clone()).collect(), ..t };
            ernie_search::format::write_atomic(&cache, &serde_json::to_vec(&t)?)?;
            t
        }
    };
    let first = |o: usize| first_window(&index, o);
    let positives: Vec<Vec<f32>> = picked.iter().map(|&(_, o)| first(o)).collect::<Result<_>>()?;
    let cand_vecs: Vec<Vec<f32>> = teachers
        .candidates
        .iter()
        .map(|c| Ok(c.iter().map(|&o| first(o)).collect::<Result<Vec<_>>>()?.concat()))
        .collect::<Result<_>>()?;
    let ids = table::query_ids(e, &texts)?;

    eprintln!("table ablate: initial rows (encoder outputs, IDF)");
    let init = table::init(e, &d.passage_texts, 256, &mut |a, b| progress.advance(a, b))?;
    let l = &ctx.recipe.loss;
    let de = Teaching { scores: &teachers.de, tau: opts.train.tau, weight: opts.weight };
    let li = Teaching { scores: &teachers.li, tau: l.tau_li, weight: opts.weight };
    let ce = Teaching { scores: &teachers.ce, tau: l.tau_ce, weight: opts.weight };
    let dev = DevSet::load(&ctx, split(&ctx, opts))?;
    let full =
        Space { dim: init.dim, projection: None, init, teacher: teacher_vecs, positives, candidates: cand_vecs, index };
    let dev_vecs = embed_queries(e, &dev.texts, 64, progress)?;
    let mut rows = vec![full.transformer_row(&dev, &dev_vecs)?];
    let mut encoders = Vec::new();
    let plans: [(&str, &str, Option<Vec<Teaching>>); 6] = [
        ("init", "table, encoder rows + IDF (no training)", None),
        ("de", "DE alone: MSE + contrastive", Some(vec![])),
        ("de-kl", "DE + KL(DE) over the candidates", Some(vec![de])),
        ("li", "DE + KL(LI) (SOFD's term)", Some(vec![li])),
        ("ce", "DE + KL(CE) (direct CE -> table)", Some(vec![ce])),
        ("cascade", "DE + KL(LI) + KL(CE) (the cascade's terms)", Some(vec![li, ce])),
    ];
    if let Some(dir) = &opts.tables {
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    }
    for (slug, label, terms) in plans {
        let save = opts.tables.as_ref().map(|d| d.join(format!("{slug}.tbl")));
        let (row, encoder) = full.row(label, e, &ids, terms.as_deref(), opts, &dev, save.as_deref(), progress)?;
        rows.push(row);
        encoders.push(encoder);
    }
    for &dim in &opts.dims {
        let space = full.reduced(dim, ctx.recipe.seed)?;
        rows.push(space.transformer_row(&dev, &dev_vecs)?);
        for (label, terms) in [("DE alone", vec![]), ("DE + KL(LI) + KL(CE)", vec![li, ce])] {
            let label = format!("{label}, {dim} dims (the passages' principal subspace)");
            rows.push(space.row(&label, e, &ids, Some(&terms), opts, &dev, None, progress)?.0);
        }
    }
    let index = full.index;
    let probe = if opts.probe_queries > 0 {
        Some(probe(&ctx, &scorers, &index, &data_of, &dev, &dev_vecs, &encoders, opts, progress)?)
    } else {
        None
    };
    Ok(report(&ctx, opts, &rows, picked.len(), probe.as_ref(), start.elapsed().as_secs_f64()))
}

fn split<'a>(ctx: &'a Context, opts: &'a TableAblateOptions) -> &'a str {
    opts.split.as_deref().unwrap_or(&ctx.recipe.eval.split)
}

fn load_scorers(ctx: &Context, ce_dir: &Path) -> Result<Scorers> {
    let layers = ctx.init_cfg.num_hidden_layers;
    let mut student_params = commands::student_params(ctx, layers, None)?;
    ablate::apply_li_head(ctx, &student_params, layers)?;
    let student = ctx.student(&mut student_params, layers)?;
    let mut ce_params = ctx.init_params(CE, 0)?;
    let ce = CrossEncoder::new(&ctx.init_cfg, &mut ce_params, ctx.recipe.seed, &ctx.device)?;
    ctx.load_stage(ce_dir, &ce_params)?;
    Ok(Scorers { student, student_params, ce, ce_params })
}

/// The training data's ordinal of each index passage.
fn data_ordinals(ctx: &Context, index: &FlatIndex) -> Result<Vec<usize>> {
    index
        .ids()
        .iter()
        .map(|id| ctx.data.passage(id).with_context(|| format!("index passage {id:?} is not in the recipe's data set")))
        .collect()
}

/// The cached teachers when they were computed for these queries and depth.
fn read_teachers(
    path: &Path,
    index: &FlatIndex,
    picked: &[(usize, usize)],
    ctx: &Context,
    depth: usize,
) -> Option<Teachers> {
    let t: Teachers = serde_json::from_slice(&std::fs::read(path).ok()?).ok()?;
    let same_queries =
        t.queries.len() == picked.len() && t.queries.iter().zip(picked).all(|(q, &(i, _))| *q == ctx.data.query_ids[i]);
    let fits = t.candidates.iter().all(|c| c.len() == depth && c.iter().all(|&o| o < index.len()));
    let sized = [&t.de, &t.li, &t.ce].iter().all(|s| s.len() == picked.len());
    (t.fingerprint == index.fingerprint() && same_queries && fits && sized).then_some(t)
}

/// Each query's DE top `depth` over the index; a query's positive, when
/// given, replaces the last candidate if the DE missed it.
fn de_candidates(
    index: &FlatIndex,
    vecs: &[Vec<f32>],
    positives: Option<&[usize]>,
    depth: usize,
) -> Result<Vec<Vec<usize>>> {
    let mut all = Vec::with_capacity(vecs.len());
    for (q, v) in vecs.iter().enumerate() {
        let mut c: Vec<usize> = index.search(v, depth)?.into_iter().map(|h| h.ordinal).collect();
        if let Some(&p) = positives.and_then(|p| p.get(q)) {
            if !c.contains(&p) {
                c.truncate(depth - 1);
                c.push(p);
            }
        }
        all.push(c);
    }
    Ok(all)
}

/// The DE's, the LI's and the CE's scores over each query's candidates.
#[allow(clippy::too_many_arguments)]
fn score_all(
    ctx: &Context,
    s: &Scorers,
    index: &FlatIndex,
    data_of: &[usize],
    vecs: &[Vec<f32>],
    q_tokens: &[Vec<u32>],
    candidates: Vec<Vec<usize>>,
    progress: &mut dyn Progress,
) -> Result<Teachers> {
    let mut de = Vec::with_capacity(candidates.len());
    for (v, c) in vecs.iter().zip(&candidates) {
        let mut scores = Vec::with_capacity(c.len());
        for &o in c {
            scores.push(dot_f32(v, &first_window(index, o)?));
        }
        de.push(scores);
    }
    let in_data: Vec<Vec<usize>> = candidates.iter().map(|c| c.iter().map(|&o| data_of[o]).collect()).collect();
    eprintln!("table ablate: the LI scores {} queries' candidates", candidates.len());
    let li = li_scores(ctx, s, q_tokens, &in_data, progress)?;
    eprintln!("table ablate: the CE scores them");
    let ce = ce_scores(ctx, s, q_tokens, &in_data, progress)?;
    Ok(Teachers { fingerprint: index.fingerprint().to_string(), queries: Vec::new(), candidates, de, li, ce })
}

/// The LI's MaxSim scores: each distinct candidate passage encoded once.
fn li_scores(
    ctx: &Context,
    s: &Scorers,
    q_tokens: &[Vec<u32>],
    cands: &[Vec<usize>],
    progress: &mut dyn Progress,
) -> Result<Vec<Vec<f32>>> {
    let d = &ctx.data;
    let mut distinct: Vec<usize> = cands.iter().flatten().copied().collect::<HashSet<_>>().into_iter().collect();
    // By length, so a batch pads little.
    distinct.sort_by_key(|&p| (d.passage_tokens[p].len(), p));
    let mut tokens: HashMap<usize, Vec<Vec<f32>>> = HashMap::with_capacity(distinct.len());
    for (n, chunk) in distinct.chunks(32).enumerate() {
        let rows: Vec<Vec<u32>> = chunk.iter().map(|&p| d.passage_tokens[p].clone()).collect();
        for (p, t) in chunk.iter().zip(li_tokens(ctx, s, &rows)?) {
            tokens.insert(*p, t);
        }
        progress.advance((n * 32 + chunk.len()).min(distinct.len()), distinct.len());
    }
    let mut out = Vec::with_capacity(cands.len());
    for (chunk, qs) in cands.chunks(64).zip(q_tokens.chunks(64)) {
        for (c, q) in chunk.iter().zip(li_tokens(ctx, s, qs)?) {
            out.push(c.iter().map(|p| max_sim(&q, &tokens[p])).collect());
        }
    }
    Ok(out)
}

/// Each row's LI token vectors (its real tokens only).
fn li_tokens(ctx: &Context, s: &Scorers, rows: &[Vec<u32>]) -> Result<Vec<Vec<Vec<f32>>>> {
    let enc = s.student.encode(&s.student_params, &Batch::from_ids(rows, &ctx.device)?, true)?;
    let li: Vec<Vec<Vec<f32>>> = enc.li.to_vec3()?;
    Ok(li.into_iter().zip(rows).map(|(t, r)| t.into_iter().take(r.len()).collect()).collect())
}

/// A passage's first window's vector: the one the table learns against
/// (as `table distil` does; a wiki summary has one window).
fn first_window(index: &FlatIndex, ordinal: usize) -> Result<Vec<f32>> {
    index.passage_vectors(ordinal).and_then(|w| w.into_iter().next()).context("a passage with no vector")
}

/// Sum over query tokens of the best passage token's dot product (ColBERT).
fn max_sim(q: &[Vec<f32>], p: &[Vec<f32>]) -> f32 {
    q.iter().map(|qt| p.iter().map(|pt| dot_f32(qt, pt)).fold(f32::NEG_INFINITY, f32::max)).sum()
}

/// The CE's score of each query with each of its candidates.
fn ce_scores(
    ctx: &Context,
    s: &Scorers,
    q_tokens: &[Vec<u32>],
    cands: &[Vec<usize>],
    progress: &mut dyn Progress,
) -> Result<Vec<Vec<f32>>> {
    let mut out = Vec::with_capacity(cands.len());
    for (i, (q, c)) in q_tokens.iter().zip(cands).enumerate() {
        let pairs: Vec<(Vec<u32>, Vec<u32>)> =
            c.iter().map(|&p| model::pair_ids(q, &ctx.data.passage_tokens[p])).collect();
        let (scores, _) = s.ce.score(&s.ce_params, &Batch::pad(&pairs, &ctx.device)?, false)?;
        out.push(scores.to_vec1::<f32>()?);
        progress.advance(i + 1, cands.len());
    }
    Ok(out)
}

/// What a row trains and is scored in: the table's dimension, its initial
/// rows, and the teacher vectors, passages and index in that dimension.
struct Space {
    dim: usize,
    /// From the index's dimension to this space's (None: the index's own).
    projection: Option<Projection>,
    init: Rows,
    teacher: Vec<Vec<f32>>,
    positives: Vec<Vec<f32>>,
    /// Each query's candidates' vectors, concatenated.
    candidates: Vec<Vec<f32>>,
    index: FlatIndex,
}

impl Space {
    /// Trains a table from the initial rows (`terms` None: no training; empty:
    /// the DE alone) and scores it.
    #[allow(clippy::too_many_arguments)]
    fn row(
        &self,
        label: &str,
        e: &Embedder,
        ids: &[Vec<u32>],
        terms: Option<&[Teaching]>,
        opts: &TableAblateOptions,
        dev: &DevSet,
        save: Option<&Path>,
        progress: &mut dyn Progress,
    ) -> Result<(TableRow, TableEncoder)> {
        let t = Instant::now();
        let mut r = Rows { dim: self.dim, rows: self.init.rows.clone(), weights: self.init.weights.clone() };
        if let Some(terms) = terms {
            let soft = (!terms.is_empty()).then(|| SoftTargets {
                depth: opts.depth,
                candidates: &self.candidates,
                teachers: terms.to_vec(),
            });
            let lessons = Lessons { queries: ids, teacher: &self.teacher, positives: &self.positives, soft };
            table::train(&mut r, &lessons, &opts.train, &mut |a, b| progress.advance(a, b))?;
        }
        let train_seconds = t.elapsed().as_secs_f64();
        let file = table::table_file(e, r)?;
        if let Some(path) = save {
            let bytes = ernie_search::format::table::to_bytes(&file)?;
            ernie_search::format::write_atomic(path, &bytes)
                .with_context(|| format!("cannot write {}", path.display()))?;
        }
        let encoder = TableEncoder::from_file(file)?;
        let (scores, per_query) = dev.evaluate(&self.index, &encoder)?;
        eprintln!("table ablate: {label:<60} dense MRR@10 {:.3} ({train_seconds:.0} s)", scores.mrr_10);
        let taught = terms.is_some();
        Ok((TableRow { label: label.to_string(), taught, scores, per_query, train_seconds }, encoder))
    }

    /// The transformer's own dev queries in this space: what the table learns
    /// to approach (a reference row).
    fn transformer_row(&self, dev: &DevSet, dev_vecs: &[Vec<f32>]) -> Result<TableRow> {
        let vecs: Vec<Option<Vec<f32>>> =
            dev_vecs.iter().map(|v| Some(self.projection.as_ref().map_or_else(|| v.clone(), |p| p.apply(v)))).collect();
        let (scores, per_query) = dev.evaluate_vectors(&self.index, &vecs)?;
        let label = format!("reference: the transformer's own query vectors, {} dims", self.dim);
        eprintln!("table ablate: {label:<60} dense MRR@10 {:.3}", scores.mrr_10);
        Ok(TableRow { label, taught: false, scores, per_query, train_seconds: 0.0 })
    }

    /// The same space projected to `dim` dimensions fitted on the passages.
    fn reduced(&self, dim: usize, seed: u64) -> Result<Space> {
        let windows: Vec<Vec<Vec<f32>>> =
            (0..self.index.len()).map(|o| self.index.passage_vectors(o).unwrap_or_default()).collect();
        let all: Vec<Vec<f32>> = windows.iter().flatten().cloned().collect();
        let p = Projection::fit(&all, self.dim, dim, seed)?;
        let mut index = FlatIndex::new(dim, VectorDType::F32, self.index.fingerprint())?;
        for (id, w) in self.index.ids().iter().zip(&windows) {
            index.push_windows(id, &w.iter().map(|v| p.apply(v)).collect::<Vec<_>>())?;
        }
        let unit = |v: Vec<f32>| {
            let n = v.iter().map(|x| x * x).sum::<f32>().sqrt().max(1e-12);
            v.into_iter().map(|x| x / n).collect()
        };
        Ok(Space {
            dim,
            init: Rows { dim, rows: p.apply_rows(&self.init.rows), weights: self.init.weights.clone() },
            // The table's query vector is unit length: so is its target.
            teacher: self.teacher.iter().map(|t| unit(p.apply(t))).collect(),
            positives: self.positives.iter().map(|v| p.apply(v)).collect(),
            candidates: self.candidates.iter().map(|c| p.apply_rows(c)).collect(),
            index,
            projection: Some(p),
        })
    }
}

/// The eval split's queries and judgements.
struct DevSet {
    qrels: Qrels,
    qids: Vec<String>,
    texts: Vec<String>,
}

impl DevSet {
    fn load(ctx: &Context, split: &str) -> Result<Self> {
        let data = ernie_search_data::beir::BeirData::load(&ctx.data_dir)?;
        let qrels = ernie_search_data::beir::load_qrels(&ctx.data_dir, split)?;
        let qids: Vec<String> = qrels.keys().cloned().collect();
        let texts = qids
            .iter()
            .map(|q| data.queries.get(q).cloned().with_context(|| format!("query {q} has no text")))
            .collect::<Result<_>>()?;
        Ok(Self { qrels, qids, texts })
    }

    /// The table's dense ranking over the whole index (top 100). A query
    /// with no table token ranks nothing.
    fn evaluate(&self, index: &FlatIndex, encoder: &TableEncoder) -> Result<(Scores, BTreeMap<String, Scores>)> {
        let vecs: Vec<Option<Vec<f32>>> = self.texts.iter().map(|t| encoder.encode(t)).collect::<Result<_, _>>()?;
        self.evaluate_vectors(index, &vecs)
    }

    /// Each query's vector (None: it ranks nothing) against the whole index.
    fn evaluate_vectors(
        &self,
        index: &FlatIndex,
        vecs: &[Option<Vec<f32>>],
    ) -> Result<(Scores, BTreeMap<String, Scores>)> {
        let mut run = Run::new();
        for (q, v) in self.qids.iter().zip(vecs) {
            let hits = match v {
                Some(v) => index.search(v, 100)?,
                None => Vec::new(),
            };
            run.insert(q.clone(), hits.iter().map(|h| (index.ids()[h.ordinal].clone(), h.score)).collect());
        }
        Ok(metrics::evaluate(&self.qrels, &run))
    }
}

/// The teachers' probe: each scorer's figures over the same candidates.
struct Probe {
    rows: Vec<(String, Scores)>,
    /// The share of queries with a relevant passage among the candidates.
    ceiling: f64,
}

/// Every scorer reranks the same candidates (the DE's top `depth`) of the
/// first `probe_queries` queries of the scored split.
#[allow(clippy::too_many_arguments)]
fn probe(
    ctx: &Context,
    s: &Scorers,
    index: &FlatIndex,
    data_of: &[usize],
    dev: &DevSet,
    dev_vecs: &[Vec<f32>],
    encoders: &[TableEncoder],
    opts: &TableAblateOptions,
    progress: &mut dyn Progress,
) -> Result<Probe> {
    let n = opts.probe_queries.min(dev.qids.len());
    let (qids, texts) = (&dev.qids[..n], &dev.texts[..n]);
    let qrels: Qrels = qids.iter().map(|q| (q.clone(), dev.qrels[q].clone())).collect();
    let vecs = &dev_vecs[..n];
    let cands = de_candidates(index, vecs, None, opts.depth)?;
    let found = qids
        .iter()
        .zip(&cands)
        .filter(|(q, c)| c.iter().any(|&o| qrels[*q].get(&index.ids()[o]).is_some_and(|&r| r > 0)))
        .count();
    let tok = TextTokenizer::from_bytes(ctx.tokenizer_json.as_bytes(), ctx.recipe.data.query_max_len)?;
    let q_tokens: Vec<Vec<u32>> =
        tok.encode_batch(&texts.iter().map(String::as_str).collect::<Vec<_>>())?.into_iter().map(|t| t.ids).collect();
    let t = score_all(ctx, s, index, data_of, vecs, &q_tokens, cands.clone(), progress)?;
    let run_of = |scores: &[Vec<f32>]| -> Run {
        qids.iter()
            .zip(&cands)
            .zip(scores)
            .map(|((q, c), s)| (q.clone(), c.iter().zip(s).map(|(&o, &v)| (index.ids()[o].clone(), v)).collect()))
            .collect()
    };
    let mut rows = vec![
        ("the DE (the transformer that built the index)".to_string(), metrics::evaluate(&qrels, &run_of(&t.de)).0),
        ("the LI (its initial encoder + the run's LI head)".to_string(), metrics::evaluate(&qrels, &run_of(&t.li)).0),
        ("the CE (the run's)".to_string(), metrics::evaluate(&qrels, &run_of(&t.ce)).0),
    ];
    let tables = [
        ("the untrained table", &encoders[0]),
        ("the table taught by the DE alone", &encoders[1]),
        ("the table also taught by the LI and the CE", &encoders[5]),
    ];
    for (label, encoder) in tables {
        let mut scores = Vec::with_capacity(n);
        for (text, c) in texts.iter().zip(&cands) {
            // A query with no table token scores every candidate 0.
            let v = encoder.encode(text)?.unwrap_or_default();
            scores.push(c.iter().map(|&o| Ok(dot_f32(&v, &first_window(index, o)?))).collect::<Result<Vec<f32>>>()?);
        }
        rows.push((label.to_string(), metrics::evaluate(&qrels, &run_of(&scores)).0));
    }
    Ok(Probe { rows, ceiling: found as f64 / n as f64 })
}

/// The rows as markdown, each paired with the DE-alone row on MRR@10.
fn report(
    ctx: &Context,
    opts: &TableAblateOptions,
    rows: &[TableRow],
    queries: usize,
    probe: Option<&Probe>,
    seconds: f64,
) -> String {
    let t = &opts.train;
    let l = &ctx.recipe.loss;
    let mut md = format!(
        "Recipe `{}` (seed {}), index `{}`: {queries} training queries of `{}`, each with its DE top-{} candidates \
         (the positive put in); every row {} steps of {} at lr {}, tau {}, MSE weight {}; each KL term weight {} \
         (teacher temperatures: DE {}, LI {}, CE {}). Dense, on `{}` ({} queries) against the whole index; \
         the difference is paired per query against the DE-alone row (95 % interval, sign-flip p).\n\n\
         | table taught by | MRR@10 | R@20 | nDCG@10 | vs DE alone, MRR@10 points | p | train s |\n|---|---|---|---|---|---|---|\n",
        opts.stage.recipe.display(),
        ctx.recipe.seed,
        opts.index.display(),
        ctx.recipe.data.set,
        opts.depth,
        t.steps,
        t.batch,
        t.lr,
        t.tau,
        t.mse,
        opts.weight,
        t.tau,
        l.tau_li,
        l.tau_ce,
        split(ctx, opts),
        rows.first().map_or(0, |r| r.per_query.len()),
    );
    let base = rows.iter().find(|r| r.taught);
    for r in rows {
        let s = &r.scores;
        let paired = base.filter(|b| r.taught && !std::ptr::eq(*b, r)).and_then(|b| {
            metrics::paired(&b.per_query, &r.per_query, |s| s.mrr_10, metrics::RANDOMIZATION_ROUNDS, 7).ok()
        });
        let (diff, p) = paired.map_or(("".into(), "".into()), |p| (p.in_points(), format!("{:.3}", p.p)));
        md += &format!(
            "| {} | {:.3} | {:.3} | {:.3} | {diff} | {p} | {:.0} |\n",
            r.label, s.mrr_10, s.recall_20, s.ndcg_10, r.train_seconds
        );
    }
    if let Some(Probe { rows, ceiling }) = probe {
        md += &format!(
            "\nDo the teachers know more than the table? Each scorer reranks the same candidates, the DE's top-{} \
             of the first {} `{}` queries; the positive is among them for {:.1} % of the queries, every scorer's ceiling:\n\n\
             | scorer | MRR@10 | R@1 | nDCG@10 |\n|---|---|---|---|\n",
            opts.depth,
            opts.probe_queries,
            split(ctx, opts),
            100.0 * ceiling,
        );
        for (label, s) in rows {
            md += &format!("| {label} | {:.3} | {:.3} | {:.3} |\n", s.mrr_10, s.recall_1, s.ndcg_10);
        }
    }
    md += &format!("\nWhole command {seconds:.0} s (the teachers' scores are cached in the run folder).\n");
    md
}
