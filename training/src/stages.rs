//! The training stages over one recipe and one run folder: the student
//! (DE + LI on one encoder) under any mix of losses, and the cross-encoder.

use std::collections::HashMap;
use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context as _, Result};
use candle_core::{DType, Device, Tensor};
use ernie_search::model::{BertConfig, Pooling};

use super::bert::Batch;
use super::data::{Example, TrainData};
use super::fit::{self, FitOptions, MicroStep};
use super::loss;
use super::model::{self, CrossEncoder, Student, CE, STUDENT};
use super::params::Params;
use super::recipe::{LossConfig, Recipe, StageConfig};

/// Everything the stages share: the recipe, the device, the initial
/// checkpoint and the tokenized training data.
pub struct Context {
    pub recipe: Recipe,
    pub run: PathBuf,
    pub device: Device,
    pub data_dir: PathBuf,
    pub init_cfg: BertConfig,
    pub init_tensors: Vec<(String, Tensor)>,
    pub tokenizer_json: String,
    pub data: TrainData,
}

pub fn device(name: &str) -> Result<Device> {
    match name {
        "cpu" => Ok(Device::Cpu),
        "cuda" if cfg!(feature = "cuda") => Device::new_cuda(0).context("no CUDA device"),
        "cuda" => {
            bail!("this build has no CUDA: rebuild with `cargo build --release -p ernie-search-cli --features cuda`")
        }
        other => bail!("unknown device {other:?}"),
    }
}

/// Every stage's negatives must fit in the corpus beside each query's
/// relevant passages (the batch draws them until it has enough).
fn check_negatives(recipe: &Recipe, data: &TrainData) -> Result<()> {
    let relevant = data.relevant.iter().map(|r| r.len()).max().unwrap_or(0);
    for (name, stage) in recipe.stages() {
        let n = recipe.negatives(stage);
        if n + relevant > data.passage_ids.len() {
            bail!("[{name}]: {n} hard negatives per query do not fit in a corpus of {} passages ({relevant} relevant to one query)", data.passage_ids.len());
        }
    }
    Ok(())
}

impl Context {
    pub fn open(recipe: Recipe, run: &Path, cache: &Path) -> Result<Self> {
        let device = device(&recipe.device)?;
        let init_dir = match recipe.model.init.as_str() {
            "minilm" => ernie_search_data::fetch::fetch_model(cache)?,
            path => PathBuf::from(path),
        };
        let (init_cfg, init_tensors, tokenizer_json) = ernie_search_data::convert::read_checkpoint(&init_dir)?;
        let data_dir = ernie_search_data::fetch::fetch_set(cache, &recipe.data.set)?;
        let d = &recipe.data;
        let data = TrainData::load(
            &data_dir,
            &d.train_split,
            &tokenizer_json,
            d.query_max_len,
            d.passage_max_len,
            d.max_train_queries,
        )?;
        check_negatives(&recipe, &data)?;
        std::fs::create_dir_all(run).with_context(|| format!("cannot create {}", run.display()))?;
        std::fs::write(run.join("recipe.resolved.toml"), toml::to_string(&recipe)?)?;
        Ok(Self { recipe, run: run.to_path_buf(), device, data_dir, init_cfg, init_tensors, tokenizer_json, data })
    }

    /// The student's architecture: the initial model cut to `layers` (0: all).
    pub fn student_cfg(&self, layers: usize) -> Result<BertConfig> {
        let mut cfg = self.init_cfg.clone();
        if layers > 0 {
            if layers > cfg.num_hidden_layers {
                bail!("model.student_layers {layers}: the initial model has {} layers", cfg.num_hidden_layers);
            }
            cfg.num_hidden_layers = layers;
        }
        Ok(cfg)
    }

    /// Fresh parameters from the initial checkpoint under `prefix`, cut to
    /// `layers` layers ([model] layer_pick chooses which).
    pub fn init_params(&self, prefix: &str, layers: usize) -> Result<Params> {
        let mut cfg = self.init_cfg.clone();
        let mut tensors = self.init_tensors.clone();
        if layers > 0 && layers < cfg.num_hidden_layers {
            ernie_search_data::convert::cut_layers(&mut cfg, &mut tensors, layers, self.recipe.model.layer_pick)?;
        }
        Params::from_tensors(tensors, prefix, &self.device)
    }

    pub fn student(&self, params: &mut Params, layers: usize) -> Result<Student> {
        let m = &self.recipe.model;
        let pooling: Pooling = m.pooling.parse()?;
        Student::new(
            &self.student_cfg(layers)?,
            params,
            pooling,
            m.normalize,
            m.colbert_dim,
            self.recipe.seed,
            &self.device,
        )
    }

    /// Parameters saved by a finished stage, checked against `like`'s names and shapes.
    pub fn load_stage(&self, stage_dir: &Path, like: &Params) -> Result<()> {
        let path = fit::model_path(stage_dir);
        let t = candle_core::safetensors::load(&path, &self.device)
            .with_context(|| format!("cannot read {} (has that stage finished?)", path.display()))?;
        like.load_subset(&t, &path.display().to_string())
    }

    fn fit_options<'a>(
        &'a self,
        stage: &'a str,
        dir: PathBuf,
        cfg: &StageConfig,
        resume: bool,
        stop_after: Option<u64>,
    ) -> FitOptions<'a> {
        let o = &self.recipe.optim;
        FitOptions {
            stage,
            dir,
            steps: cfg.steps,
            accumulate: cfg.accumulate,
            adamw: self.recipe.adamw(cfg),
            seed: self.recipe.seed,
            recipe_digest: self.recipe.digest(stage),
            checkpoint_every: o.checkpoint_every,
            log_every: o.log_every,
            resume,
            device: &self.device,
            stop_after,
        }
    }

    pub fn query_batch(&self, batch: &[Example]) -> Result<Batch> {
        let rows: Vec<Vec<u32>> = batch.iter().map(|e| self.data.query_tokens[e.query].clone()).collect();
        Batch::from_ids(&rows, &self.device)
    }

    pub fn passage_batch(&self, cands: &[usize]) -> Result<Batch> {
        let rows: Vec<Vec<u32>> = cands.iter().map(|&p| self.data.passage_tokens[p].clone()).collect();
        Batch::from_ids(&rows, &self.device)
    }

    /// Cross-encoder inputs for every query's own list (positive, then negatives).
    fn pair_batch(&self, batch: &[Example]) -> Result<Batch> {
        let rows: Vec<(Vec<u32>, Vec<u32>)> = batch
            .iter()
            .flat_map(|e| {
                let q = &self.data.query_tokens[e.query];
                std::iter::once(e.positive)
                    .chain(e.negatives.iter().copied())
                    .map(move |p| model::pair_ids(q, &self.data.passage_tokens[p]))
            })
            .collect();
        Batch::pad(&rows, &self.device)
    }
}

/// The cross-encoder as a teacher: frozen, its scores cached on disk so every
/// run over the same batches computes each pair once.
pub struct Teacher {
    pub ce: CrossEncoder,
    pub params: Params,
    cache: HashMap<(usize, usize), f32>,
    cache_file: Option<std::fs::File>,
    pub computed: usize,
    pub reused: usize,
}

impl Teacher {
    /// The CE trained by the `ce` stage in `ce_dir`, with its score cache at `cache`.
    pub fn load(ctx: &Context, ce_dir: &Path, cache: &Path) -> Result<Self> {
        let mut params = ctx.init_params(CE, 0)?;
        let ce = CrossEncoder::new(&ctx.init_cfg, &mut params, ctx.recipe.seed, &ctx.device)?;
        ctx.load_stage(ce_dir, &params)?;
        let mut scores = HashMap::new();
        if let Ok(text) = std::fs::read_to_string(cache) {
            for line in text.lines() {
                let mut f = line.split('\t');
                if let (Some(q), Some(p), Some(s)) = (f.next(), f.next(), f.next()) {
                    let q = ctx.data.query_ids.iter().position(|x| x == q);
                    if let (Some(q), Some(p), Ok(s)) = (q, ctx.data.passage(p), s.parse::<f32>()) {
                        scores.insert((q, p), s);
                    }
                }
            }
        }
        let file = std::fs::OpenOptions::new().create(true).append(true).open(cache)?;
        Ok(Self { ce, params, cache: scores, cache_file: Some(file), computed: 0, reused: 0 })
    }

    /// CE scores of each query's own list with their graph (joint training).
    pub fn scores_trained(&self, ctx: &Context, batch: &[Example]) -> Result<Tensor> {
        let per = 1 + batch[0].negatives.len();
        let (s, _) = self.ce.score(&self.params, &ctx.pair_batch(batch)?, false)?;
        Ok(s.reshape((batch.len(), per))?)
    }

    /// CE scores of each query's own list, [b, 1 + negatives], from the cache.
    pub fn scores(&mut self, ctx: &Context, batch: &[Example]) -> Result<Tensor> {
        let per = 1 + batch[0].negatives.len();
        let pairs: Vec<(usize, usize)> = batch
            .iter()
            .flat_map(|e| std::iter::once(e.positive).chain(e.negatives.iter().copied()).map(move |p| (e.query, p)))
            .collect();
        let missing: Vec<usize> = (0..pairs.len()).filter(|&i| !self.cache.contains_key(&pairs[i])).collect();
        self.reused += pairs.len() - missing.len();
        if !missing.is_empty() {
            let rows: Vec<(Vec<u32>, Vec<u32>)> = missing
                .iter()
                .map(|&i| model::pair_ids(&ctx.data.query_tokens[pairs[i].0], &ctx.data.passage_tokens[pairs[i].1]))
                .collect();
            let (s, _) = self.ce.score(&self.params, &Batch::pad(&rows, &ctx.device)?, false)?;
            let s: Vec<f32> = s.detach().to_vec1()?;
            let mut lines = String::new();
            for (&i, v) in missing.iter().zip(s) {
                self.cache.insert(pairs[i], v);
                let (q, p) = pairs[i];
                lines += &format!("{}\t{}\t{v}\n", ctx.data.query_ids[q], ctx.data.passage_ids[p]);
            }
            if let Some(f) = self.cache_file.as_mut() {
                f.write_all(lines.as_bytes())?;
            }
            self.computed += missing.len();
        }
        let all: Vec<f32> = pairs.iter().map(|k| self.cache[k]).collect();
        Ok(Tensor::from_vec(all, (batch.len(), per), &ctx.device)?)
    }
}

/// A frozen deeper student as a teacher (the smaller student's cascade): its
/// DE vector and LI token vectors are computed once per text and kept, so
/// each step only pays for MaxSim over the batch's candidates.
pub struct DeepTeacher {
    student: Student,
    params: Params,
    queries: HashMap<usize, TextVectors>,
    passages: HashMap<usize, TextVectors>,
    pub encoded: usize,
}

/// One text's outputs from the deep teacher.
struct TextVectors {
    de: Vec<f32>,
    /// [len * colbert_dim], real tokens only.
    li: Vec<f32>,
}

impl DeepTeacher {
    /// The student trained in `dir` (`layers` layers, LI head included).
    pub fn load(ctx: &Context, dir: &Path, layers: usize) -> Result<Self> {
        let mut params = ctx.init_params(STUDENT, layers)?;
        let student = ctx.student(&mut params, layers)?;
        ctx.load_stage(dir, &params)?;
        Ok(Self { student, params, queries: HashMap::new(), passages: HashMap::new(), encoded: 0 })
    }

    /// LI scores of each query of `batch` against every candidate, [b, n], detached.
    pub fn scores(&mut self, ctx: &Context, batch: &[Example], cands: &[usize]) -> Result<Tensor> {
        let qs: Vec<usize> = batch.iter().map(|e| e.query).collect();
        let dim = self.student.colbert_dim;
        let q = padded_li(self.cached(ctx, &qs, true)?, &qs, dim, &ctx.device)?;
        let p = padded_li(self.cached(ctx, cands, false)?, cands, dim, &ctx.device)?;
        Ok(model::li_scores(&q, &p)?.detach())
    }

    /// DE vectors of the batch's queries, [b, hidden], and of `cands`, [n, hidden].
    pub fn de_vectors(&mut self, ctx: &Context, batch: &[Example], cands: &[usize]) -> Result<(Tensor, Tensor)> {
        let qs: Vec<usize> = batch.iter().map(|e| e.query).collect();
        let q = de_rows(self.cached(ctx, &qs, true)?, &qs, &ctx.device)?;
        Ok((q, de_rows(self.cached(ctx, cands, false)?, cands, &ctx.device)?))
    }

    /// The query or passage cache, with every text of `ids` in it (the missing ones encoded now).
    fn cached(&mut self, ctx: &Context, ids: &[usize], queries: bool) -> Result<&HashMap<usize, TextVectors>> {
        let (tokens, cache) = if queries {
            (&ctx.data.query_tokens, &mut self.queries)
        } else {
            (&ctx.data.passage_tokens, &mut self.passages)
        };
        let mut missing: Vec<usize> = ids.iter().copied().filter(|i| !cache.contains_key(i)).collect();
        missing.sort_unstable();
        missing.dedup();
        for chunk in missing.chunks(32) {
            let rows: Vec<Vec<u32>> = chunk.iter().map(|&i| tokens[i].clone()).collect();
            let b = Batch::from_ids(&rows, &ctx.device)?;
            let e = self.student.encode(&self.params, &b, true)?;
            let (de, li) = (e.de.detach().to_vec2::<f32>()?, e.li.detach().to_vec3::<f32>()?);
            for (((&i, de), li), &len) in chunk.iter().zip(de).zip(li).zip(&b.lens) {
                cache.insert(i, TextVectors { de, li: li[..len].concat() });
            }
            self.encoded += chunk.len();
        }
        Ok(cache)
    }
}

/// The LI token vectors of `ids`, zero-padded to the longest, with their mask.
fn padded_li(
    cache: &HashMap<usize, TextVectors>,
    ids: &[usize],
    dim: usize,
    device: &Device,
) -> Result<model::Encoded> {
    let len = ids.iter().map(|i| cache[i].li.len() / dim).max().unwrap_or(1).max(1);
    let (mut li, mut mask) = (vec![0f32; ids.len() * len * dim], vec![0f32; ids.len() * len]);
    for (k, i) in ids.iter().enumerate() {
        let v = &cache[i].li;
        li[k * len * dim..k * len * dim + v.len()].copy_from_slice(v);
        mask[k * len..k * len + v.len() / dim].fill(1.0);
    }
    Ok(model::Encoded {
        de: Tensor::zeros((1, 1), DType::F32, device)?, // not used by MaxSim
        li: Tensor::from_vec(li, (ids.len(), len, dim), device)?,
        mask: Tensor::from_vec(mask, (ids.len(), len), device)?,
    })
}

/// The DE vectors of `ids` as rows, [ids, hidden].
fn de_rows(cache: &HashMap<usize, TextVectors>, ids: &[usize], device: &Device) -> Result<Tensor> {
    let hidden = ids.first().map_or(0, |i| cache[i].de.len());
    let de: Vec<f32> = ids.iter().flat_map(|i| cache[i].de.iter().copied()).collect();
    Ok(Tensor::from_vec(de, (ids.len(), hidden), device)?)
}

/// Column indices of each query's own list inside the batch's candidates.
fn own_columns(b: usize, per: usize, device: &Device) -> Result<Tensor> {
    let idx: Vec<u32> = (0..b).flat_map(|i| (0..per).map(move |k| (i * per + k) as u32)).collect();
    Ok(Tensor::from_vec(idx, (b, per), device)?)
}

pub struct StudentRun<'a> {
    pub name: &'a str,
    pub dir: PathBuf,
    pub stage: &'a StageConfig,
    pub losses: &'a LossConfig,
    pub layers: usize,
    pub resume: bool,
    pub stop_after: Option<u64>,
    /// Train only the parameters under this prefix (the rest frozen).
    pub only: Option<&'a str>,
}

/// Trains the student (shared encoder, DE and LI heads) under `run.losses`,
/// starting from `params`; `teacher` is needed by the CE-based terms, `deep`
/// by the deeper-student term.
pub fn train_student(
    ctx: &Context,
    run: &StudentRun,
    params: &mut Params,
    mut teacher: Option<&mut Teacher>,
    mut deep: Option<&mut DeepTeacher>,
) -> Result<u64> {
    let student = ctx.student(params, run.layers)?;
    let l = run.losses;
    let uses_ce = l.uses_ce();
    if uses_ce && teacher.is_none() {
        bail!("{}: the cascade, direct and id terms need the trained cross-encoder (run `train-ce` first)", run.name);
    }
    if (l.deep > 0.0 || l.deep_mse > 0.0) && deep.is_none() {
        bail!("{}: the deep term needs a trained deeper student as its teacher", run.name);
    }
    if !(l.de || l.li || l.sofd > 0.0 || uses_ce || l.deep > 0.0 || l.deep_mse > 0.0) {
        bail!("{}: every loss term is off", run.name);
    }
    let need_li = l.uses_li();
    let opts = ctx.fit_options(run.name, run.dir.clone(), run.stage, run.resume, run.stop_after);
    let (seed, size, n_neg) = (ctx.recipe.seed, run.stage.batch, ctx.recipe.negatives(run.stage));
    let device = &ctx.device;
    let joint = l.joint_ce && uses_ce;
    // Jointly: one optimizer over the student and the CE (shared variables).
    let trained = match (&teacher, joint, run.only) {
        (_, _, Some(prefix)) => params.subset(prefix),
        (Some(t), true, None) => params.union(&t.params)?,
        _ => params.union(&Params::default())?,
    };
    fit::fit(&trained, &opts, |index| {
        let batch = ctx.data.batch(seed, index, size, n_neg);
        let (cands, targets, mask) = ctx.data.candidates(&batch);
        let (b, n, per) = (batch.len(), cands.len(), 1 + n_neg);
        let targets = Tensor::from_vec(targets, b, device)?;
        let mask = Tensor::from_vec(mask, (b, n), device)?;
        let qb = ctx.query_batch(&batch)?;
        let pb = ctx.passage_batch(&cands)?;
        let q = student.encode(params, &qb, need_li)?;
        let p = student.encode(params, &pb, need_li)?;
        let s_de = model::de_scores(&q, &p)?;
        let s_li = if need_li { Some(model::li_scores(&q, &p)?) } else { None };
        let mut total = Tensor::zeros((), DType::F32, device)?;
        let mut terms = Vec::new();
        let mut add = |name: &'static str, t: Tensor, w: f64| -> Result<()> {
            terms.push((name, t.to_scalar::<f32>()?));
            total = (&total + (t * w)?)?;
            Ok(())
        };
        if l.de {
            add("l_de", loss::contrastive(&s_de, l.tau_de, &mask, &targets)?, 1.0)?;
        }
        if l.deep_mse > 0.0 {
            let (tq, tp) = deep.as_deref_mut().context("deep teacher")?.de_vectors(ctx, &batch, &cands)?;
            let mse = (loss::squared_distance(&q.de, &tq)? + loss::squared_distance(&p.de, &tp)?)?;
            add("mse_deep_de", (mse / 2.0)?, l.deep_mse)?;
        }
        if let Some(s_li) = &s_li {
            if l.li {
                add("l_li", loss::contrastive(s_li, l.tau_li, &mask, &targets)?, 1.0)?;
            }
            if l.sofd > 0.0 {
                add("kl_li_de", loss::kl(s_li, l.tau_li, &s_de, l.tau_de, &mask)?, l.sofd)?;
            }
            if l.deep > 0.0 {
                let t = deep.as_deref_mut().context("deep teacher")?.scores(ctx, &batch, &cands)?;
                add("kl_deep_li", loss::kl(&t, l.tau_li, s_li, l.tau_li, &mask)?, l.deep)?;
            }
        }
        if uses_ce {
            let t = teacher.as_deref_mut().context("teacher")?;
            let ce = if joint {
                let s = t.scores_trained(ctx, &batch)?;
                let zeros = Tensor::zeros(b, DType::U32, device)?;
                let own = Tensor::ones((b, per), DType::F32, device)?;
                add("l_ce", loss::contrastive(&s, l.tau_ce, &own, &zeros)?, 1.0)?;
                s
            } else {
                t.scores(ctx, &batch)?
            };
            let cols = own_columns(b, per, device)?;
            let own_mask = Tensor::ones((b, per), DType::F32, device)?;
            if l.cascade > 0.0 {
                let own_li = s_li.as_ref().context("li")?.gather(&cols, 1)?;
                add("kl_ce_li", loss::kl(&ce, l.tau_ce, &own_li, l.tau_li, &own_mask)?, l.cascade)?;
            }
            if l.direct > 0.0 {
                let own_de = s_de.gather(&cols, 1)?;
                add("kl_ce_de", loss::kl(&ce, l.tau_ce, &own_de, l.tau_de, &own_mask)?, l.direct)?;
            }
            if l.id > 0.0 {
                add("l_id", interaction_loss(ctx, t, &batch, &q, &qb, &p, &pb, per, l.tau_id)?, l.id)?;
            }
        }
        Ok(MicroStep { loss: total, terms, samples: b })
    })
}

/// Interaction distillation on each query's positive: the CE's last-layer
/// attention from query token i over the passage tokens (mean over heads,
/// renormalised over the passage) teaches the LI's softmax over the same
/// passage tokens. [CLS]/[SEP] are left out on both sides.
#[allow(clippy::too_many_arguments)]
fn interaction_loss(
    ctx: &Context,
    t: &Teacher,
    batch: &[Example],
    q: &model::Encoded,
    qb: &Batch,
    p: &model::Encoded,
    pb: &Batch,
    per: usize,
    tau: f64,
) -> Result<Tensor> {
    let rows: Vec<(Vec<u32>, Vec<u32>)> = batch
        .iter()
        .map(|e| model::pair_ids(&ctx.data.query_tokens[e.query], &ctx.data.passage_tokens[e.positive]))
        .collect();
    let (_, attn) = t.ce.score(&t.params, &Batch::pad(&rows, &ctx.device)?, true)?;
    let attn = attn.context("attention")?.detach();
    let mut total = Tensor::zeros((), DType::F32, &ctx.device)?;
    let mut counted = 0usize;
    for (i, _) in batch.iter().enumerate() {
        let (lq, lp) = (qb.lens[i], pb.lens[i * per]);
        if lq < 3 || lp < 3 {
            continue;
        }
        // CE positions: query tokens 1..lq-1, passage tokens lq..lq+lp-2.
        let a = attn.get(i)?.narrow(0, 1, lq - 2)?.narrow(1, lq, lp - 2)?;
        let a = a.broadcast_div(&a.sum_keepdim(1)?.clamp(1e-12, f64::MAX)?)?;
        let qt = q.li.get(i)?.narrow(0, 1, lq - 2)?;
        let pt = p.li.get(i * per)?.narrow(0, 1, lp - 2)?;
        let li = model::li_token_attention(&qt, &pt, tau)?.clamp(1e-12, 1.0)?.log()?;
        total = (total + loss::kl_rows(&a, &li)?)?;
        counted += 1;
    }
    Ok((total / counted.max(1) as f64)?)
}

/// A finished CE to go on training: its folder and how many batches it saw
/// (the last step in its metrics.jsonl), so the data stream continues
/// instead of repeating the batches it was trained on.
pub struct CeStart {
    pub dir: PathBuf,
    pub batches: u64,
}

impl CeStart {
    pub fn load(dir: &Path) -> Result<Self> {
        let metrics = dir.join("metrics.jsonl");
        let text = std::fs::read_to_string(&metrics).with_context(|| {
            format!("cannot read {} (is {} a finished CE stage?)", metrics.display(), dir.display())
        })?;
        let last = text
            .lines()
            .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
            .filter_map(|v| v["step"].as_u64())
            .max();
        let Some(batches) = last else { bail!("{} names no step: not a CE stage's metrics", metrics.display()) };
        if !fit::model_path(dir).exists() {
            bail!("{} has no model.safetensors: that CE stage has not finished", dir.display());
        }
        Ok(Self { dir: dir.to_path_buf(), batches })
    }
}

/// Trains the cross-encoder on each query's own list (positive + hard negatives).
pub fn train_ce(
    ctx: &Context,
    dir: PathBuf,
    stage: &StageConfig,
    resume: bool,
    stop_after: Option<u64>,
    start: Option<&CeStart>,
) -> Result<(Params, u64)> {
    let mut params = ctx.init_params(CE, 0)?;
    let ce = CrossEncoder::new(&ctx.init_cfg, &mut params, ctx.recipe.seed, &ctx.device)?;
    if let Some(s) = start {
        ctx.load_stage(&s.dir, &params)?;
        eprintln!("ce: starting from {} (after its {} batches)", s.dir.display(), s.batches);
    }
    let offset = start.map_or(0, |s| s.batches);
    let mut opts = ctx.fit_options("ce", dir, stage, resume, stop_after);
    if offset > 0 {
        // A continuation's checkpoints resume only as a continuation of the same start.
        opts.recipe_digest = format!("{}+after{offset}", opts.recipe_digest);
    }
    let (seed, size, n_neg, tau) = (ctx.recipe.seed, stage.batch, ctx.recipe.negatives(stage), ctx.recipe.loss.tau_ce);
    let steps = fit::fit(&params, &opts, |index| {
        let batch = ctx.data.batch(seed, offset + index, size, n_neg);
        let per = 1 + n_neg;
        let (s, _) = ce.score(&params, &ctx.pair_batch(&batch)?, false)?;
        let s = s.reshape((batch.len(), per))?;
        let mask = Tensor::ones((batch.len(), per), DType::F32, &ctx.device)?;
        let targets = Tensor::zeros(batch.len(), DType::U32, &ctx.device)?;
        let l = loss::contrastive(&s, tau, &mask, &targets)?;
        let acc = s.argmax(1)?.to_dtype(DType::F32)?.eq(0f32)?.to_dtype(DType::F32)?.mean_all()?.to_scalar::<f32>()?;
        // ce_list: the list each positive competes in (ce_top1's chance level is its inverse).
        Ok(MicroStep {
            terms: vec![("l_ce", l.to_scalar::<f32>()?), ("ce_top1", acc), ("ce_list", per as f32)],
            loss: l,
            samples: batch.len(),
        })
    })?;
    Ok((params, steps))
}

/// The student's encoder weights under the library's names (prefix removed).
pub fn student_tensors(params: &Params) -> Result<Vec<(String, Tensor)>> {
    params.with_prefix(STUDENT)
}
