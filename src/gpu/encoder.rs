//! The quantized BERT on the GPU: the same model file, the same arithmetic as
//! `model::encoder` (weights dequantized exactly, f32 activations), so its
//! embeddings match the CPU's dense kernel to float rounding.
//!
//! Weights are uploaded once and stay resident. Q8_0 and Q4_0 matrices keep
//! their blocks, repacked so the shaders read them with aligned 32-bit loads
//! (scales apart as f32, quants as packed words: see `dequant.wgsl`); other
//! dtypes are widened to f32. Q, K and V are one fused matrix. A batch is
//! encoded in one command buffer and one submission (split only when its
//! activations would not fit one storage binding).
//!
//! Kernels (WGSL beside this file, binding order documented in each):
//! `embed.wgsl`, `layer_norm.wgsl`, `matmul.wgsl` (bias, GELU/ReLU, residual
//! fused), `attention.wgsl`, `pool.wgsl` (CLS/mean + L2 normalisation). The
//! two that read weight matrices share one dequantisation, `dequant.wgsl`,
//! appended to their sources (`EMBED_WGSL`, `MATMUL_WGSL`).

use std::collections::HashMap;
use std::sync::Arc;

use candle_core::quantized::{GgmlDType, QTensor};
use candle_core::Device;

use super::context::{bytes_f32, f32_bytes, u32_bytes, GpuContext};
use crate::model::{BertConfig, Pooling};
use crate::{Error, Result};

/// `embed.wgsl` with the shared weight dequantisation (WGSL has no include).
/// Appended, so the kernel's own line numbers stay those of its file in
/// compiler messages.
const EMBED_WGSL: &str = concat!(include_str!("embed.wgsl"), "\n", include_str!("dequant.wgsl"));
/// `matmul.wgsl` with the shared weight dequantisation.
const MATMUL_WGSL: &str = concat!(include_str!("matmul.wgsl"), "\n", include_str!("dequant.wgsl"));

/// Weight layouts (`kind` in `dequant.wgsl`).
const KIND_F32: u32 = 0;
const KIND_Q8_0: u32 = 1;
const KIND_Q4_0: u32 = 2;

/// A weight matrix [rows, cols] repacked for `matmul.wgsl` / `embed.wgsl`.
struct Matrix {
    kind: u32,
    rows: usize,
    cols: usize,
    words: wgpu::Buffer,
    scales: wgpu::Buffer,
}

/// Host-side repacking: (kind, words, scales).
fn repack(t: &QTensor) -> Result<(u32, Vec<u32>, Vec<f32>)> {
    let dims = t.shape().dims();
    let cols = *dims.last().unwrap_or(&0);
    match t.dtype() {
        GgmlDType::Q8_0 if cols.is_multiple_of(32) => {
            let raw = t.data()?;
            // block_q8_0: f16 d, then 32 i8.
            let blocks = raw.len() / 34;
            let mut words = Vec::with_capacity(blocks * 8);
            let mut scales = Vec::with_capacity(blocks);
            for (d, q) in crate::format::model::ggml_blocks(&raw, 34) {
                scales.push(d);
                words.extend(q.chunks_exact(4).map(|c| u32::from_le_bytes([c[0], c[1], c[2], c[3]])));
            }
            Ok((KIND_Q8_0, words, scales))
        }
        GgmlDType::Q4_0 if cols.is_multiple_of(32) => {
            let raw = t.data()?;
            // block_q4_0: f16 d, then 16 bytes of nibbles.
            let blocks = raw.len() / 18;
            let mut words = Vec::with_capacity(blocks * 4);
            let mut scales = Vec::with_capacity(blocks);
            for (d, q) in crate::format::model::ggml_blocks(&raw, 18) {
                scales.push(d);
                words.extend(q.chunks_exact(4).map(|c| u32::from_le_bytes([c[0], c[1], c[2], c[3]])));
            }
            Ok((KIND_Q4_0, words, scales))
        }
        _ => {
            let v = t.dequantize(&Device::Cpu)?.flatten_all()?.to_vec1::<f32>()?;
            Ok((KIND_F32, v.iter().map(|x| x.to_bits()).collect(), vec![0.0]))
        }
    }
}

struct Tensors<'a> {
    map: &'a HashMap<String, QTensor>,
}

impl Tensors<'_> {
    fn get(&self, name: &str, shape: &[usize]) -> Result<&QTensor> {
        let t = self.map.get(name).ok_or_else(|| Error::format("model file", format!("missing tensor {name}")))?;
        if t.shape().dims() != shape {
            return Err(Error::format(
                "model file",
                format!("tensor {name} has shape {:?}, expected {shape:?}", t.shape().dims()),
            ));
        }
        Ok(t)
    }
    fn f32(&self, name: &str, shape: &[usize]) -> Result<Vec<f32>> {
        Ok(self.get(name, shape)?.dequantize(&Device::Cpu)?.flatten_all()?.to_vec1::<f32>()?)
    }
}

struct Layer {
    qkv: Matrix,
    qkv_b: wgpu::Buffer,
    attn_out: Matrix,
    attn_out_b: wgpu::Buffer,
    attn_ln: (wgpu::Buffer, wgpu::Buffer),
    inter: Matrix,
    inter_b: wgpu::Buffer,
    out: Matrix,
    out_b: wgpu::Buffer,
    out_ln: (wgpu::Buffer, wgpu::Buffer),
}

struct Pipelines {
    embed: wgpu::ComputePipeline,
    layer_norm: wgpu::ComputePipeline,
    matmul: wgpu::ComputePipeline,
    attention: wgpu::ComputePipeline,
    pool: wgpu::ComputePipeline,
}

/// The encoder's weights resident on one device, and its pipelines.
pub struct GpuEncoder {
    ctx: Arc<GpuContext>,
    cfg: BertConfig,
    pooling: Pooling,
    normalize: bool,
    word: Matrix,
    position: wgpu::Buffer,
    token_type: wgpu::Buffer,
    emb_ln: (wgpu::Buffer, wgpu::Buffer),
    layers: Vec<Layer>,
    pipes: Pipelines,
    /// Bytes of weights on the device.
    bytes: u64,
}

impl GpuEncoder {
    /// Uploads the encoder's tensors (by the names `model::encoder` reads)
    /// and builds the pipelines; any validation, compilation or memory error
    /// is returned, and nothing is left half-usable.
    pub async fn upload(
        ctx: Arc<GpuContext>,
        tensors: &HashMap<String, QTensor>,
        cfg: &BertConfig,
        pooling: Pooling,
        normalize: bool,
    ) -> Result<Self> {
        cfg.validate()?;
        let (h, i) = (cfg.hidden_size, cfg.intermediate_size);
        let dh = h / cfg.num_attention_heads;
        if dh > 64 {
            return Err(Error::Gpu(format!("head size {dh} exceeds the attention kernel's 64")));
        }
        let t = Tensors { map: tensors };
        // Host-side repacking first (fallible on format grounds), then one
        // scoped upload.
        struct HostMatrix {
            kind: u32,
            rows: usize,
            cols: usize,
            words: Vec<u32>,
            scales: Vec<f32>,
        }
        let host = |q: &QTensor| -> Result<HostMatrix> {
            let (kind, words, scales) = repack(q)?;
            let d = q.shape().dims();
            Ok(HostMatrix { kind, rows: d[0], cols: d[1], words, scales })
        };
        // Q, K, V stacked into one [3h, h] matrix: one matmul per layer.
        let fuse = |ms: Vec<HostMatrix>| -> HostMatrix {
            let same = ms.iter().all(|m| m.kind == ms[0].kind);
            let cols = ms[0].cols;
            let rows = ms.iter().map(|m| m.rows).sum();
            if same {
                let kind = ms[0].kind;
                let mut words = Vec::new();
                let mut scales = Vec::new();
                for m in ms {
                    words.extend(m.words);
                    if kind != KIND_F32 {
                        scales.extend(m.scales);
                    }
                }
                if kind == KIND_F32 {
                    scales.push(0.0);
                }
                HostMatrix { kind, rows, cols, words, scales }
            } else {
                let mut words = Vec::new();
                for m in ms {
                    words.extend(widen(&m.words, &m.scales, m.kind, m.rows * m.cols).iter().map(|x| x.to_bits()));
                }
                HostMatrix { kind: KIND_F32, rows, cols, words, scales: vec![0.0] }
            }
        };
        let word = host(t.get("embeddings.word_embeddings.weight", &[cfg.vocab_size, h])?)?;
        let position = t.f32("embeddings.position_embeddings.weight", &[cfg.max_position_embeddings, h])?;
        let token_type = t.f32("embeddings.token_type_embeddings.weight", &[cfg.type_vocab_size, h])?;
        let emb_ln = (t.f32("embeddings.LayerNorm.weight", &[h])?, t.f32("embeddings.LayerNorm.bias", &[h])?);
        struct HostLayer {
            qkv: HostMatrix,
            qkv_b: Vec<f32>,
            attn_out: HostMatrix,
            attn_out_b: Vec<f32>,
            attn_ln: (Vec<f32>, Vec<f32>),
            inter: HostMatrix,
            inter_b: Vec<f32>,
            out: HostMatrix,
            out_b: Vec<f32>,
            out_ln: (Vec<f32>, Vec<f32>),
        }
        let mut host_layers = Vec::new();
        for l in 0..cfg.num_hidden_layers {
            let p = format!("encoder.layer.{l}");
            let lin = |n: &str, o: usize, inp: usize| -> Result<(HostMatrix, Vec<f32>)> {
                Ok((host(t.get(&format!("{p}.{n}.weight"), &[o, inp])?)?, t.f32(&format!("{p}.{n}.bias"), &[o])?))
            };
            let ln = |n: &str| -> Result<(Vec<f32>, Vec<f32>)> {
                Ok((t.f32(&format!("{p}.{n}.weight"), &[h])?, t.f32(&format!("{p}.{n}.bias"), &[h])?))
            };
            let (q, qb) = lin("attention.self.query", h, h)?;
            let (k, kb) = lin("attention.self.key", h, h)?;
            let (v, vb) = lin("attention.self.value", h, h)?;
            let (attn_out, attn_out_b) = lin("attention.output.dense", h, h)?;
            let (inter, inter_b) = lin("intermediate.dense", i, h)?;
            let (out, out_b) = lin("output.dense", h, i)?;
            host_layers.push(HostLayer {
                qkv: fuse(vec![q, k, v]),
                qkv_b: [qb, kb, vb].concat(),
                attn_out,
                attn_out_b,
                attn_ln: ln("attention.output.LayerNorm")?,
                inter,
                inter_b,
                out,
                out_b,
                out_ln: ln("output.LayerNorm")?,
            });
        }
        let bytes = std::cell::Cell::new(0u64);
        let c = ctx.clone();
        let enc = ctx
            .scoped("uploading the model to the GPU", || {
                let buf = |label: &str, b: Vec<u8>| {
                    bytes.set(bytes.get() + b.len() as u64);
                    c.storage(label, &b)
                };
                let matrix = |m: HostMatrix| {
                    let words = buf("weights", u32_bytes(&m.words));
                    let scales = buf("scales", f32_bytes(&m.scales));
                    Matrix { kind: m.kind, rows: m.rows, cols: m.cols, words, scales }
                };
                let word = matrix(word);
                let mut layers_m = Vec::new();
                for hl in host_layers {
                    layers_m.push((
                        matrix(hl.qkv),
                        matrix(hl.attn_out),
                        matrix(hl.inter),
                        matrix(hl.out),
                        hl.qkv_b,
                        hl.attn_out_b,
                        hl.attn_ln,
                        hl.inter_b,
                        hl.out_b,
                        hl.out_ln,
                    ));
                }
                let vec = |label: &str, v: &[f32]| {
                    bytes.set(bytes.get() + v.len() as u64 * 4);
                    c.storage(label, &f32_bytes(v))
                };
                let layers = layers_m
                    .into_iter()
                    .map(|(qkv, attn_out, inter, out, qkv_b, attn_out_b, attn_ln, inter_b, out_b, out_ln)| Layer {
                        qkv,
                        qkv_b: vec("bias", &qkv_b),
                        attn_out,
                        attn_out_b: vec("bias", &attn_out_b),
                        attn_ln: (vec("ln", &attn_ln.0), vec("ln", &attn_ln.1)),
                        inter,
                        inter_b: vec("bias", &inter_b),
                        out,
                        out_b: vec("bias", &out_b),
                        out_ln: (vec("ln", &out_ln.0), vec("ln", &out_ln.1)),
                    })
                    .collect();
                let position = vec("position", &position);
                let token_type = vec("token_type", &token_type);
                let emb_ln = (vec("ln", &emb_ln.0), vec("ln", &emb_ln.1));
                let pipes = Pipelines {
                    embed: c.pipeline("embed", EMBED_WGSL),
                    layer_norm: c.pipeline("layer_norm", include_str!("layer_norm.wgsl")),
                    matmul: c.pipeline("matmul", MATMUL_WGSL),
                    attention: c.pipeline("attention", include_str!("attention.wgsl")),
                    pool: c.pipeline("pool", include_str!("pool.wgsl")),
                };
                Ok(Self {
                    ctx: c.clone(),
                    cfg: cfg.clone(),
                    pooling,
                    normalize,
                    word,
                    position,
                    token_type,
                    emb_ln,
                    layers,
                    pipes,
                    bytes: 0,
                })
            })
            .await?;
        Ok(Self { bytes: bytes.get(), ..enc })
    }

    pub fn context(&self) -> &Arc<GpuContext> {
        &self.ctx
    }

    /// Bytes of weights resident on the device.
    pub fn weight_bytes(&self) -> u64 {
        self.bytes
    }

    /// Embeds a padded batch: `ids` and `mask` are [batch, len] row-major.
    /// Returns [batch, hidden] pooled (and normalised, per the model) vectors.
    pub async fn embed(&self, ids: &[u32], mask: &[f32], batch: usize, len: usize) -> Result<Vec<f32>> {
        if ids.len() != batch * len || mask.len() != batch * len {
            return Err(Error::Invalid(format!(
                "ids/mask of {}/{} values for a {batch}x{len} batch",
                ids.len(),
                mask.len()
            )));
        }
        if len > self.cfg.max_position_embeddings {
            return Err(Error::Invalid(format!(
                "sequence of {len} tokens exceeds the model's {} positions",
                self.cfg.max_position_embeddings
            )));
        }
        if let Some(&bad) = ids.iter().find(|&&t| t as usize >= self.cfg.vocab_size) {
            return Err(Error::Invalid(format!("token id {bad} is outside the vocabulary of {}", self.cfg.vocab_size)));
        }
        // The widest activation ([tokens, intermediate] or [tokens, 3*hidden])
        // must fit one binding: split the batch when it does not.
        let widest = self.cfg.intermediate_size.max(3 * self.cfg.hidden_size) as u64 * 4;
        let per_call = ((self.ctx.max_binding / (widest * len.max(1) as u64)) as usize).max(1);
        if per_call < batch {
            let mut out = Vec::with_capacity(batch * self.cfg.hidden_size);
            for start in (0..batch).step_by(per_call) {
                let n = per_call.min(batch - start);
                let r = start * len..(start + n) * len;
                out.extend(Box::pin(self.embed_one(&ids[r.clone()], &mask[r], n, len)).await?);
            }
            return Ok(out);
        }
        self.embed_one(ids, mask, batch, len).await
    }

    async fn embed_one(&self, ids: &[u32], mask: &[f32], batch: usize, len: usize) -> Result<Vec<f32>> {
        let c = &self.ctx;
        let cfg = &self.cfg;
        let (h, inter) = (cfg.hidden_size, cfg.intermediate_size);
        let tokens = batch * len;
        let out_words = batch * h;
        let readback = c.readback(out_words as u64 * 4);
        c.scoped("encoding on the GPU", || {
            let ids_b = c.storage("ids", &u32_bytes(ids));
            let mask_b = c.storage("mask", &f32_bytes(mask));
            let act = |label: &str, n: usize| c.scratch(label, n as u64 * 4);
            let tmp = act("tmp", tokens * h);
            let h0 = act("h0", tokens * h);
            let h1 = act("h1", tokens * h);
            let qkv = act("qkv", tokens * 3 * h);
            let ctxb = act("ctx", tokens * h);
            let mid = act("inter", tokens * inter);
            let out = c.poisoned_output("pooled", out_words);
            let mut enc = c.device.create_command_encoder(&wgpu::CommandEncoderDescriptor { label: Some("encode") });
            {
                let mut pass = enc
                    .begin_compute_pass(&wgpu::ComputePassDescriptor { label: Some("encode"), timestamp_writes: None });
                // Bind groups must outlive the pass: keep them here.
                let mut keep: Vec<wgpu::BindGroup> = Vec::new();
                let mut run = |pass: &mut wgpu::ComputePass,
                               pipe: &wgpu::ComputePipeline,
                               params: &[u32],
                               bufs: &[&wgpu::Buffer],
                               grid: (u32, u32)| {
                    let u = c.uniform(params);
                    let mut all: Vec<&wgpu::Buffer> = vec![&u];
                    all.extend_from_slice(bufs);
                    let bg = c.bind(pipe, &all);
                    pass.set_pipeline(pipe);
                    pass.set_bind_group(0, &bg, &[]);
                    pass.dispatch_workgroups(grid.0, grid.1, 1);
                    keep.push(bg);
                };
                let tk = tokens as u32;
                let (hh, ll) = (h as u32, len as u32);
                let eps = (cfg.layer_norm_eps as f32).to_bits();
                let e = &self.word;
                run(
                    &mut pass,
                    &self.pipes.embed,
                    &[tk, ll, hh, e.kind],
                    &[&ids_b, &e.words, &e.scales, &self.position, &self.token_type, &tmp],
                    c.grid((tokens * h).div_ceil(256) as u32),
                );
                run(
                    &mut pass,
                    &self.pipes.layer_norm,
                    &[tk, hh, eps, 0],
                    &[&tmp, &self.emb_ln.0, &self.emb_ln.1, &h0],
                    c.grid(tk),
                );
                let act_code = match cfg.hidden_act.as_str() {
                    "relu" => 3,
                    "gelu_new" => 2,
                    _ => 1,
                };
                #[allow(clippy::type_complexity)]
                let mm = |pass: &mut wgpu::ComputePass,
                          run: &mut dyn FnMut(
                    &mut wgpu::ComputePass,
                    &wgpu::ComputePipeline,
                    &[u32],
                    &[&wgpu::Buffer],
                    (u32, u32),
                ),
                          m: &Matrix,
                          bias: &wgpu::Buffer,
                          x: &wgpu::Buffer,
                          res: Option<&wgpu::Buffer>,
                          act: u32,
                          y: &wgpu::Buffer| {
                    let params = [tk, m.rows as u32, m.cols as u32, m.kind, act, res.is_some() as u32, 0, 0];
                    // An unused residual binding still needs a buffer that is not `y`.
                    let res = res.unwrap_or(bias);
                    run(
                        pass,
                        &self.pipes.matmul,
                        &params,
                        &[x, &m.words, &m.scales, bias, res, y],
                        ((m.rows as u32).div_ceil(16), tk.div_ceil(16)),
                    );
                };
                for l in &self.layers {
                    mm(&mut pass, &mut run, &l.qkv, &l.qkv_b, &h0, None, 0, &qkv);
                    let heads = cfg.num_attention_heads as u32;
                    let params = [batch as u32, ll, hh, heads, hh / heads, 0, 0, 0];
                    run(
                        &mut pass,
                        &self.pipes.attention,
                        &params,
                        &[&qkv, &mask_b, &ctxb],
                        c.grid((batch as u32 * heads * ll).div_ceil(64)),
                    );
                    mm(&mut pass, &mut run, &l.attn_out, &l.attn_out_b, &ctxb, Some(&h0), 0, &tmp);
                    run(
                        &mut pass,
                        &self.pipes.layer_norm,
                        &[tk, hh, eps, 0],
                        &[&tmp, &l.attn_ln.0, &l.attn_ln.1, &h1],
                        c.grid(tk),
                    );
                    mm(&mut pass, &mut run, &l.inter, &l.inter_b, &h1, None, act_code, &mid);
                    mm(&mut pass, &mut run, &l.out, &l.out_b, &mid, Some(&h1), 0, &tmp);
                    run(
                        &mut pass,
                        &self.pipes.layer_norm,
                        &[tk, hh, eps, 0],
                        &[&tmp, &l.out_ln.0, &l.out_ln.1, &h0],
                        c.grid(tk),
                    );
                }
                let params =
                    [batch as u32, ll, hh, (self.pooling == Pooling::Mean) as u32, self.normalize as u32, 0, 0, 0];
                run(&mut pass, &self.pipes.pool, &params, &[&h0, &mask_b, &out], c.grid(batch as u32));
            }
            enc.copy_buffer_to_buffer(&out, 0, &readback, 0, out_words as u64 * 4);
            c.queue.submit([enc.finish()]);
            Ok(())
        })
        .await?;
        let v = bytes_f32(&c.read(&readback).await?);
        if v.len() < out_words {
            return Err(Error::Gpu(format!("the GPU returned {} values instead of {out_words}", v.len())));
        }
        let v = v[..out_words].to_vec();
        if v.iter().any(|x| !x.is_finite()) {
            return Err(Error::Gpu("the GPU encoder left NaN or infinite values (unwritten output)".into()));
        }
        Ok(v)
    }
}

/// A repacked matrix back to f32 (for stacking matrices of mixed dtypes).
fn widen(words: &[u32], scales: &[f32], kind: u32, n: usize) -> Vec<f32> {
    (0..n)
        .map(|e| match kind {
            KIND_F32 => f32::from_bits(words[e]),
            KIND_Q8_0 => ((words[e / 4] >> ((e % 4) * 8)) as u8 as i8) as f32 * scales[e / 32],
            _ => {
                let (blk, j) = (e / 32, e % 32);
                let byte = j % 16;
                let shift = (byte % 4) * 8 + if j >= 16 { 4 } else { 0 };
                (((words[blk * 4 + byte / 4] >> shift) & 0xF) as i32 - 8) as f32 * scales[blk]
            }
        })
        .collect()
}

#[cfg(all(test, not(target_arch = "wasm32")))]
mod tests {
    use wgpu::naga;

    /// The composed sources parse and validate as WGSL without an adapter
    /// (tests/gpu.rs runs them, where there is one).
    #[test]
    fn composed_shaders_are_valid_wgsl() {
        for (label, source) in [("embed", super::EMBED_WGSL), ("matmul", super::MATMUL_WGSL)] {
            let module = naga::front::wgsl::parse_str(source).unwrap_or_else(|e| panic!("{label}: {e}"));
            naga::valid::Validator::new(naga::valid::ValidationFlags::all(), naga::valid::Capabilities::all())
                .validate(&module)
                .unwrap_or_else(|e| panic!("{label}: {e:?}"));
        }
    }
}
