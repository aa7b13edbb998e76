//! Our own inference path for the student: int8 GEMMs over the model file's
//! block-quantized weights ([`gemm`]), one sequence at a time with no padding,
//! every step writing into buffers that live as long as the encoder
//! (`Workspace`), and a batch split across threads (natively, and on
//! rayon's Web Workers in the browser's threaded build). candle still
//! reads the file and trains; this is only the hot path.
//!
//! Per layer: quantize `x` once for the fused Q|K|V product, attention in
//! f32, then `layer_norm(x + W_o ctx + b)`, `gelu(W_i x + b)` and
//! `layer_norm(x + W_2 h + b)`, each bias/activation/residual/norm one pass.

/// A kernel's tile function instantiated for the activation rows of one
/// call (1 to [`gemm::MR`]): each count gets its own register allocation.
macro_rules! by_rows {
    ($tile:ident, $rows:expr, ($($arg:expr),*)) => {
        match $rows {
            1 => $tile::<1>($($arg),*),
            2 => $tile::<2>($($arg),*),
            3 => $tile::<3>($($arg),*),
            _ => $tile::<4>($($arg),*),
        }
    };
}

pub mod gemm;
#[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
mod gemm_wasm;
#[cfg(target_arch = "x86_64")]
mod gemm_x86;
pub mod ops;

use std::collections::HashMap;
use std::sync::Mutex;

use candle_core::quantized::{GgmlDType, QTensor};
use candle_core::Device;

use self::gemm::{gemm_threads, Isa, Layout, PackedMatrix, QuantRows, Timing, BLOCK};
use self::ops::Activation;
use super::encoder::{Kernel, Weights};
use super::{BertConfig, Pooling};
use crate::format::model::ggml_blocks;
use crate::{Error, Result};

/// One encoder layer, weights packed for [`gemm`].
struct Layer {
    /// Queries, keys and values stacked: `[3 * hidden, hidden]`.
    qkv: PackedMatrix,
    qkv_bias: Vec<f32>,
    attn_out: PackedMatrix,
    attn_out_bias: Vec<f32>,
    attn_norm: (Vec<f32>, Vec<f32>),
    inter: PackedMatrix,
    inter_bias: Vec<f32>,
    out: PackedMatrix,
    out_bias: Vec<f32>,
    out_norm: (Vec<f32>, Vec<f32>),
}

/// The word embeddings stay int8 (the largest tensor; a row is widened when
/// a token needs it).
struct WordTable {
    dim: usize,
    values: Vec<i8>,
    scales: Vec<f32>,
}

impl WordTable {
    fn add_row(&self, id: usize, out: &mut [f32]) {
        let kb = self.dim / BLOCK;
        let vals = &self.values[id * self.dim..][..self.dim];
        for (b, (o, v)) in out.chunks_exact_mut(BLOCK).zip(vals.chunks_exact(BLOCK)).enumerate() {
            let s = self.scales[id * kb + b];
            for (o, &v) in o.iter_mut().zip(v) {
                *o += v as f32 * s;
            }
        }
    }
}

/// Buffers for one sequence, grown to the longest seen and reused.
#[derive(Default)]
struct Workspace {
    x: Vec<f32>,
    qkv: Vec<f32>,
    ctx: Vec<f32>,
    inter: Vec<f32>,
    y: Vec<f32>,
    attention: ops::AttentionScratch,
    quant: QuantRows,
    /// Threads each product is split across (1 when sequences are).
    gemm_threads: usize,
}

/// The fused encoder: token ids in, one pooled vector per text out.
pub struct FusedEncoder {
    cfg: BertConfig,
    eps: f32,
    act: Activation,
    isa: Isa,
    /// How `isa` was chosen, where the build times its kernels at load.
    timing: Option<Timing>,
    /// Threads one text's products are split across: `threads`, or 1 where
    /// the threaded browser build timed the split slower at load.
    query_threads: usize,
    /// That timing, in words.
    split_note: Option<String>,
    word: WordTable,
    position: Vec<f32>,
    token_type: Vec<f32>,
    emb_norm: (Vec<f32>, Vec<f32>),
    layers: Vec<Layer>,
    threads: usize,
    workspaces: Mutex<Vec<Workspace>>,
}

impl FusedEncoder {
    /// Whether this architecture fits the fused path: hidden and intermediate
    /// sizes in whole 32-blocks (every Q8_0/Q4_0 file has them). Other models
    /// run on candle.
    pub fn supports(cfg: &BertConfig) -> bool {
        cfg.hidden_size.is_multiple_of(BLOCK) && cfg.intermediate_size.is_multiple_of(BLOCK)
    }

    /// Takes the weights out of a model file's tensors (names as in
    /// [`super::encoder`]).
    pub fn load(tensors: &mut HashMap<String, QTensor>, cfg: &BertConfig) -> Result<Self> {
        cfg.validate()?;
        if !Self::supports(cfg) {
            return Err(Error::format(
                "model file",
                format!(
                    "the fused encoder needs sizes in 32-blocks, not {} / {}",
                    cfg.hidden_size, cfg.intermediate_size
                ),
            ));
        }
        let (h, i) = (cfg.hidden_size, cfg.intermediate_size);
        let timing = time_kernels(h, i);
        let isa = timing.as_ref().map_or_else(Isa::detect, Timing::fastest);
        let mut t = Tensors(Weights::new(tensors, Kernel::Fused), isa.layout());
        let (values, scales) = t.blocks("embeddings.word_embeddings.weight", &[cfg.vocab_size, h])?;
        let word = WordTable { dim: h, values, scales };
        let position = t.f32("embeddings.position_embeddings.weight", &[cfg.max_position_embeddings, h])?;
        let mut token_type = t.f32("embeddings.token_type_embeddings.weight", &[cfg.type_vocab_size, h])?;
        token_type.truncate(h);
        let emb_norm = t.norm("embeddings.LayerNorm", h)?;
        let layers = (0..cfg.num_hidden_layers)
            .map(|l| {
                let p = format!("encoder.layer.{l}");
                let a = format!("{p}.attention.self");
                let (mut qkv_v, mut qkv_s, mut qkv_bias) = (Vec::new(), Vec::new(), Vec::new());
                for part in ["query", "key", "value"] {
                    let (v, s) = t.blocks(&format!("{a}.{part}.weight"), &[h, h])?;
                    qkv_v.extend(v);
                    qkv_s.extend(s);
                    qkv_bias.extend(t.f32(&format!("{a}.{part}.bias"), &[h])?);
                }
                Ok(Layer {
                    qkv: PackedMatrix::from_rows(3 * h, h, &qkv_v, &qkv_s, isa.layout()),
                    qkv_bias,
                    attn_out: t.matrix(&format!("{p}.attention.output.dense.weight"), h, h)?,
                    attn_out_bias: t.f32(&format!("{p}.attention.output.dense.bias"), &[h])?,
                    attn_norm: t.norm(&format!("{p}.attention.output.LayerNorm"), h)?,
                    inter: t.matrix(&format!("{p}.intermediate.dense.weight"), i, h)?,
                    inter_bias: t.f32(&format!("{p}.intermediate.dense.bias"), &[i])?,
                    out: t.matrix(&format!("{p}.output.dense.weight"), h, i)?,
                    out_bias: t.f32(&format!("{p}.output.dense.bias"), &[h])?,
                    out_norm: t.norm(&format!("{p}.output.LayerNorm"), h)?,
                })
            })
            .collect::<Result<Vec<_>>>()?;
        let act = match cfg.hidden_act.as_str() {
            "relu" => Activation::Relu,
            "gelu_new" => Activation::GeluTanh,
            _ => Activation::Gelu,
        };
        let threads = default_threads();
        let mut enc = Self {
            cfg: cfg.clone(),
            eps: cfg.layer_norm_eps as f32,
            act,
            isa,
            timing,
            query_threads: threads,
            split_note: None,
            word,
            position,
            token_type,
            emb_norm,
            layers,
            threads,
            workspaces: Mutex::new(Vec::new()),
        };
        enc.time_query_split();
        Ok(enc)
    }

    /// The GEMM kernel in use.
    pub fn isa(&self) -> Isa {
        self.isa
    }

    /// What this build timed at load to choose how it runs, in words: the
    /// kernels (the relaxed-SIMD build, e.g. "timed at load on a 64 x 384 by
    /// 384 x 1536 product, best of 5: relaxed-simd 2.31 ms, simd128 2.10
    /// ms"), splitting a query across threads (the threaded build). None
    /// where it timed nothing.
    pub fn choices(&self) -> Option<String> {
        let notes: Vec<String> = self.timing.iter().map(ToString::to_string).chain(self.split_note.clone()).collect();
        (!notes.is_empty()).then(|| notes.join("; "))
    }

    /// In the threaded browser build, times a 16-token text with its
    /// products split across the pool and on one thread, taking turns after
    /// a warm-up, and keeps the faster for every single text: the split
    /// pays only where the pool's hand-offs (24 a text) cost less than the
    /// work they share, which depends on the CPU and the browser (1.28x
    /// faster on a 2-core Xeon, 0.87x on a 2-core EPYC). Elsewhere nothing.
    fn time_query_split(&mut self) {
        #[cfg(all(target_arch = "wasm32", feature = "threads"))]
        if self.threads > 1 {
            // A query's length, within the model's positions and vocabulary.
            let (vocab, len) = (self.cfg.vocab_size as u32, self.cfg.max_position_embeddings.min(16) as u32);
            let ids: Vec<u32> = (0..len).map(|t| (1000 + 37 * t) % vocab).collect();
            let mut ws = Workspace::default();
            let mut best = [f64::INFINITY; 2];
            for round in 0..4 {
                let order = if round % 2 == 0 { [0, 1] } else { [1, 0] };
                for k in order {
                    ws.gemm_threads = [1, self.threads][k];
                    let t0 = now_ms();
                    self.hidden(&mut ws, &ids);
                    if round > 0 {
                        best[k] = best[k].min(now_ms() - t0);
                    }
                }
            }
            // Its buffers serve the first query.
            self.give_back(ws);
            let split = best[1] < best[0];
            self.query_threads = if split { self.threads } else { 1 };
            self.split_note = Some(format!(
                "a {len}-token text timed at load, best of 3: split across {} threads {:.2} ms, on one {:.2} ms: {}",
                self.threads,
                best[1],
                best[0],
                if split { "split" } else { "one thread a text" }
            ));
        }
    }

    /// Uses `isa` (the scalar reference, or a slower kernel in a benchmark),
    /// repacking the weights when it reads another layout; an unavailable
    /// one runs the scalar kernel.
    pub fn set_isa(&mut self, isa: Isa) {
        let layout = isa.layout();
        for l in &mut self.layers {
            for m in [&mut l.qkv, &mut l.attn_out, &mut l.inter, &mut l.out] {
                if m.layout() != layout {
                    *m = m.repack(layout);
                }
            }
        }
        self.isa = isa;
    }

    /// Threads a batch is split across (1 in wasm32).
    pub fn threads(&self) -> usize {
        self.threads
    }

    pub fn set_threads(&mut self, n: usize) {
        self.threads = n.max(1);
        self.query_threads = self.threads;
    }

    /// Pooled vectors (L2-normalised when `normalize`), one per sequence of
    /// ids. Each id must be below the vocabulary size and each sequence no
    /// longer than the model's positions; an empty sequence gives zeros.
    pub fn embed(&self, seqs: &[&[u32]], pooling: Pooling, normalize: bool) -> Result<Vec<Vec<f32>>> {
        for s in seqs {
            self.check(s)?;
        }
        let mut out = vec![Vec::new(); seqs.len()];
        // Longest first, dealt round-robin: the threads finish together.
        let mut order: Vec<usize> = (0..seqs.len()).collect();
        order.sort_by_key(|&i| std::cmp::Reverse(seqs[i].len()));
        let threads = self.threads.min(seqs.len()).max(1);
        if threads == 1 {
            // One text (a query): its products are split across the cores.
            let mut ws = self.workspace();
            ws.gemm_threads = self.query_threads;
            for &i in &order {
                out[i] = self.embed_one(&mut ws, seqs[i], pooling, normalize);
            }
            self.give_back(ws);
            return Ok(out);
        }
        let share = |t: usize| -> Vec<(usize, Vec<f32>)> {
            let mut ws = self.workspace();
            ws.gemm_threads = 1;
            let v = order
                .iter()
                .skip(t)
                .step_by(threads)
                .map(|&i| (i, self.embed_one(&mut ws, seqs[i], pooling, normalize)))
                .collect();
            self.give_back(ws);
            v
        };
        // The browser has no `std::thread`: its threads are rayon's pool on
        // Web Workers (feature `threads`).
        #[cfg(all(target_arch = "wasm32", feature = "threads"))]
        let parts: Vec<Vec<(usize, Vec<f32>)>> = {
            use rayon::prelude::*;
            (0..threads).into_par_iter().map(share).collect()
        };
        #[cfg(not(all(target_arch = "wasm32", feature = "threads")))]
        let parts: Vec<Vec<(usize, Vec<f32>)>> = std::thread::scope(|scope| {
            let handles: Vec<_> = (0..threads).map(|t| scope.spawn(move || share(t))).collect();
            handles.into_iter().map(|h| h.join().unwrap_or_default()).collect()
        });
        for (i, v) in parts.into_iter().flatten() {
            out[i] = v;
        }
        if out.iter().any(Vec::is_empty) {
            return Err(Error::Invalid("an encoder thread panicked".into()));
        }
        Ok(out)
    }

    fn check(&self, ids: &[u32]) -> Result<()> {
        if ids.len() > self.cfg.max_position_embeddings {
            return Err(Error::Invalid(format!(
                "sequence of {} tokens exceeds the model's {} positions",
                ids.len(),
                self.cfg.max_position_embeddings
            )));
        }
        if let Some(&bad) = ids.iter().find(|&&id| id as usize >= self.cfg.vocab_size) {
            return Err(Error::Invalid(format!(
                "token id {bad} is outside the model's {} tokens",
                self.cfg.vocab_size
            )));
        }
        Ok(())
    }

    fn workspace(&self) -> Workspace {
        self.workspaces.lock().ok().and_then(|mut w| w.pop()).unwrap_or_default()
    }

    fn give_back(&self, ws: Workspace) {
        if let Ok(mut w) = self.workspaces.lock() {
            w.push(ws);
        }
    }

    /// One sequence through every layer, then pooled.
    fn embed_one(&self, ws: &mut Workspace, ids: &[u32], pooling: Pooling, normalize: bool) -> Vec<f32> {
        let (len, h) = (ids.len(), self.cfg.hidden_size);
        if len == 0 {
            return vec![0.0; h];
        }
        self.hidden(ws, ids);
        let mut v = match pooling {
            Pooling::Cls => ws.x[..h].to_vec(),
            Pooling::Mean => {
                let mut v = vec![0f32; h];
                for row in ws.x.chunks_exact(h) {
                    v.iter_mut().zip(row).for_each(|(a, b)| *a += b);
                }
                v.iter_mut().for_each(|a| *a /= len as f32);
                v
            }
        };
        if normalize {
            let norm = v.iter().map(|a| a * a).sum::<f32>().sqrt().max(1e-12);
            v.iter_mut().for_each(|a| *a /= norm);
        }
        v
    }

    /// The last layer's token vectors into `ws.x` (`[len, hidden]`).
    fn hidden(&self, ws: &mut Workspace, ids: &[u32]) {
        let (len, h, i) = (ids.len(), self.cfg.hidden_size, self.cfg.intermediate_size);
        ws.x.clear();
        ws.x.resize(len * h, 0.0);
        ws.qkv.resize(len * 3 * h, 0.0);
        ws.ctx.resize(len * h, 0.0);
        ws.y.resize(len * h, 0.0);
        ws.inter.resize(len * i, 0.0);
        for (t, (&id, row)) in ids.iter().zip(ws.x.chunks_exact_mut(h)).enumerate() {
            row.copy_from_slice(&self.position[t * h..][..h]);
            row.iter_mut().zip(&self.token_type).for_each(|(a, b)| *a += b);
            self.word.add_row(id as usize, row);
        }
        ops::layer_norm(&mut ws.x, &self.emb_norm.0, &self.emb_norm.1, self.eps);
        ws.quant.only_for(self.isa);
        for l in &self.layers {
            ws.quant.quantize(&ws.x, len, h);
            gemm_threads(self.isa, &ws.quant, &l.qkv, &mut ws.qkv, ws.gemm_threads);
            ops::add_bias(&mut ws.qkv, &l.qkv_bias);
            ops::attention(&ws.qkv, len, h, self.cfg.num_attention_heads, &mut ws.ctx, &mut ws.attention);
            ws.quant.quantize(&ws.ctx, len, h);
            gemm_threads(self.isa, &ws.quant, &l.attn_out, &mut ws.y, ws.gemm_threads);
            ops::bias_residual_norm(&ws.y, &l.attn_out_bias, &mut ws.x, &l.attn_norm.0, &l.attn_norm.1, self.eps);
            ws.quant.quantize(&ws.x, len, h);
            gemm_threads(self.isa, &ws.quant, &l.inter, &mut ws.inter, ws.gemm_threads);
            ops::bias_activation(&mut ws.inter, &l.inter_bias, self.act);
            ws.quant.quantize(&ws.inter, len, i);
            gemm_threads(self.isa, &ws.quant, &l.out, &mut ws.y, ws.gemm_threads);
            ops::bias_residual_norm(&ws.y, &l.out_bias, &mut ws.x, &l.out_norm.0, &l.out_norm.1, self.eps);
        }
    }
}

/// The relaxed-SIMD build carries both wasm kernels and keeps the one that
/// runs this model's FFN product (64 rows, a batch of passages) faster on
/// this machine: which one wins depends on the CPU under the browser (see
/// [`gemm::time_kernels`]), and about 20 ms at load decides it.
#[cfg(all(target_arch = "wasm32", feature = "relaxed-simd"))]
fn time_kernels(hidden: usize, intermediate: usize) -> Option<Timing> {
    let shape = (64, intermediate, hidden);
    Some(gemm::time_kernels(&[Isa::RelaxedSimd, Isa::Simd128], shape, 5, &mut now_ms))
}

/// Other builds have one SIMD kernel, or an order measured natively.
#[cfg(not(all(target_arch = "wasm32", feature = "relaxed-simd")))]
fn time_kernels(_hidden: usize, _intermediate: usize) -> Option<Timing> {
    None
}

/// `performance.now()`, in a page and in a worker alike: the browser
/// builds' clock for timing their choices at load.
#[cfg(all(target_arch = "wasm32", any(feature = "relaxed-simd", feature = "threads")))]
fn now_ms() -> f64 {
    #[wasm_bindgen::prelude::wasm_bindgen]
    extern "C" {
        #[wasm_bindgen(js_namespace = performance, js_name = now)]
        fn performance_now() -> f64;
    }
    performance_now()
}

/// Every core natively (`ERNIE_SEARCH_THREADS` overrides); in wasm32 the
/// threads of rayon's pool (feature `threads`: the page started it with
/// `initThreadPool`), else one.
fn default_threads() -> usize {
    #[cfg(all(target_arch = "wasm32", feature = "threads"))]
    return rayon::current_num_threads();
    #[cfg(all(target_arch = "wasm32", not(feature = "threads")))]
    return 1;
    #[cfg(not(target_arch = "wasm32"))]
    {
        let env = std::env::var("ERNIE_SEARCH_THREADS").ok().and_then(|v| v.parse().ok()).filter(|&n: &usize| n > 0);
        env.unwrap_or_else(|| std::thread::available_parallelism().map(usize::from).unwrap_or(1))
    }
}

/// Named tensors out of a model file (candle's loader checks names and
/// shapes), unpacked for our layouts.
struct Tensors<'a>(Weights<'a>, Layout);

impl Tensors<'_> {
    fn take(&mut self, name: &str, shape: &[usize]) -> Result<QTensor> {
        self.0.take(name, shape)
    }

    fn f32(&mut self, name: &str, shape: &[usize]) -> Result<Vec<f32>> {
        Ok(self.0.f32(name, shape)?.flatten_all()?.to_vec1::<f32>()?)
    }

    fn norm(&mut self, prefix: &str, dim: usize) -> Result<(Vec<f32>, Vec<f32>)> {
        Ok((self.f32(&format!("{prefix}.weight"), &[dim])?, self.f32(&format!("{prefix}.bias"), &[dim])?))
    }

    fn matrix(&mut self, name: &str, n: usize, k: usize) -> Result<PackedMatrix> {
        let (v, s) = self.blocks(name, &[n, k])?;
        Ok(PackedMatrix::from_rows(n, k, &v, &s, self.1))
    }

    /// A `[rows, k]` matrix as int8 values and a scale per 32: Q8_0 as stored,
    /// Q4_0 unpacked (value - 8), anything else quantized like Q8_0.
    fn blocks(&mut self, name: &str, shape: &[usize]) -> Result<(Vec<i8>, Vec<f32>)> {
        let t = self.take(name, shape)?;
        let count: usize = shape.iter().product();
        let bad = |what: &str| Error::format("model file", format!("tensor {name}: {what}"));
        match t.dtype() {
            GgmlDType::Q8_0 => {
                let raw = t.data()?;
                if raw.len() != count / BLOCK * 34 {
                    return Err(bad("Q8_0 data has the wrong size"));
                }
                let (values, scales) =
                    ggml_blocks(&raw, 34).fold((Vec::with_capacity(count), Vec::new()), |mut a, (d, q)| {
                        a.0.extend(q.iter().map(|&b| b as i8));
                        a.1.push(d);
                        a
                    });
                Ok((values, scales))
            }
            GgmlDType::Q4_0 => {
                let raw = t.data()?;
                if raw.len() != count / BLOCK * 18 {
                    return Err(bad("Q4_0 data has the wrong size"));
                }
                let (values, scales) =
                    ggml_blocks(&raw, 18).fold((Vec::with_capacity(count), Vec::new()), |mut a, (d, q)| {
                        // Low nibbles are the block's first 16 values, high nibbles the rest.
                        a.0.extend(q.iter().map(|&b| (b & 0x0f) as i8 - 8));
                        a.0.extend(q.iter().map(|&b| (b >> 4) as i8 - 8));
                        a.1.push(d);
                        a
                    });
                Ok((values, scales))
            }
            _ => {
                let x = t.dequantize(&Device::Cpu)?.flatten_all()?.to_vec1::<f32>()?;
                let mut q = QuantRows::default();
                q.quantize(&x, count / shape[shape.len() - 1], shape[shape.len() - 1]);
                Ok(q.into_parts())
            }
        }
    }
}
