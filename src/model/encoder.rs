//! BERT over quantized weights (candle's quantized matmul on the CPU).
//! Tensor names follow the Hugging Face checkpoint without the `bert.` prefix,
//! so the training crate's f32 model and this one read the same names.

use std::collections::HashMap;
use std::sync::Arc;

use candle_core::quantized::{QMatMul, QTensor};
use candle_core::{DType, Device, Module, Tensor, D};
use candle_nn::LayerNorm;

use super::BertConfig;
use crate::{Error, Result};

/// How the weight matrices are multiplied.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Kernel {
    /// Our own path ([`super::fused`]): int8 GEMMs straight over the Q8_0/Q4_0
    /// blocks (AVX-VNNI, AVX2 or wasm simd128, a scalar reference otherwise),
    /// no padding, buffers reused, a batch split across every core natively.
    /// The default everywhere; f32/f16 files and models whose sizes are not
    /// in 32-blocks run [`Kernel::Dense`] instead.
    #[default]
    Fused,
    /// candle's quantized matmul straight over the Q8_0/Q4_0 blocks.
    Quantized,
    /// Weights widened to f32 once at load and multiplied by candle's blocked
    /// GEMM (what training and the WebGPU backend's reference use).
    Dense,
}

impl std::str::FromStr for Kernel {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        match s {
            "fused" => Ok(Kernel::Fused),
            "quantized" => Ok(Kernel::Quantized),
            "dense" => Ok(Kernel::Dense),
            _ => Err(Error::Invalid(format!("unknown kernel {s:?} (fused, quantized or dense)"))),
        }
    }
}

/// Pulls tensors out of a model file by name, with errors that say which is missing.
pub struct Weights<'a> {
    tensors: &'a mut HashMap<String, QTensor>,
    kernel: Kernel,
}

impl<'a> Weights<'a> {
    pub fn new(tensors: &'a mut HashMap<String, QTensor>, kernel: Kernel) -> Self {
        Self { tensors, kernel }
    }
    pub(crate) fn take(&mut self, name: &str, shape: &[usize]) -> Result<QTensor> {
        let t =
            self.tensors.remove(name).ok_or_else(|| Error::format("model file", format!("missing tensor {name}")))?;
        if t.shape().dims() != shape {
            return Err(Error::format(
                "model file",
                format!("tensor {name} has shape {:?}, expected {shape:?}", t.shape().dims()),
            ));
        }
        Ok(t)
    }
    pub(crate) fn f32(&mut self, name: &str, shape: &[usize]) -> Result<Tensor> {
        Ok(self.take(name, shape)?.dequantize(&Device::Cpu)?)
    }
    fn linear(&mut self, prefix: &str, out: usize, inp: usize) -> Result<Linear> {
        let w = self.take(&format!("{prefix}.weight"), &[out, inp])?;
        let b = self.f32(&format!("{prefix}.bias"), &[out])?;
        let w = match self.kernel {
            Kernel::Quantized => Matrix::Quantized(QMatMul::from_arc(Arc::new(w))?),
            // Stored transposed ([in, out]) so the GEMM reads it row by row.
            // `Fused` reaches candle only for files ours does not take (f32,
            // f16, sizes not in 32-blocks): they run dense.
            Kernel::Dense | Kernel::Fused => Matrix::Dense(w.dequantize(&Device::Cpu)?.t()?.contiguous()?),
        };
        Ok(Linear { w, b })
    }
    fn layer_norm(&mut self, prefix: &str, dim: usize, eps: f64) -> Result<LayerNorm> {
        let w = self.f32(&format!("{prefix}.weight"), &[dim])?;
        let b = self.f32(&format!("{prefix}.bias"), &[dim])?;
        Ok(LayerNorm::new(w, b, eps))
    }
}

enum Matrix {
    Quantized(QMatMul),
    /// [in, out], f32.
    Dense(Tensor),
}

struct Linear {
    w: Matrix,
    b: Tensor,
}

impl Linear {
    /// `x`: [batch, len, in] -> [batch, len, out], as one 2-D product.
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let (b, len, inp) = x.dims3()?;
        let x2 = x.reshape((b * len, inp))?;
        let y = match &self.w {
            Matrix::Quantized(w) => w.forward(&x2)?,
            Matrix::Dense(w) => x2.matmul(w)?,
        };
        Ok(y.broadcast_add(&self.b)?.reshape((b, len, ()))?)
    }
}

struct Embeddings {
    /// Gathered row by row straight from the quantized table: the largest
    /// tensor of the model never needs an f32 copy.
    word: Arc<QTensor>,
    position: Tensor,
    token_type: Tensor,
    norm: LayerNorm,
}

struct Layer {
    query: Linear,
    key: Linear,
    value: Linear,
    attn_out: Linear,
    attn_norm: LayerNorm,
    inter: Linear,
    out: Linear,
    out_norm: LayerNorm,
}

/// The BERT encoder: token ids in, one vector per token out.
pub struct Encoder {
    cfg: BertConfig,
    embeddings: Embeddings,
    layers: Vec<Layer>,
}

impl Encoder {
    pub fn load(w: &mut Weights, cfg: &BertConfig) -> Result<Self> {
        cfg.validate()?;
        let (h, i, eps) = (cfg.hidden_size, cfg.intermediate_size, cfg.layer_norm_eps);
        let embeddings = Embeddings {
            word: Arc::new(w.take("embeddings.word_embeddings.weight", &[cfg.vocab_size, h])?),
            position: w.f32("embeddings.position_embeddings.weight", &[cfg.max_position_embeddings, h])?,
            token_type: w.f32("embeddings.token_type_embeddings.weight", &[cfg.type_vocab_size, h])?,
            norm: w.layer_norm("embeddings.LayerNorm", h, eps)?,
        };
        let layers = (0..cfg.num_hidden_layers)
            .map(|l| {
                let p = format!("encoder.layer.{l}");
                Ok(Layer {
                    query: w.linear(&format!("{p}.attention.self.query"), h, h)?,
                    key: w.linear(&format!("{p}.attention.self.key"), h, h)?,
                    value: w.linear(&format!("{p}.attention.self.value"), h, h)?,
                    attn_out: w.linear(&format!("{p}.attention.output.dense"), h, h)?,
                    attn_norm: w.layer_norm(&format!("{p}.attention.output.LayerNorm"), h, eps)?,
                    inter: w.linear(&format!("{p}.intermediate.dense"), i, h)?,
                    out: w.linear(&format!("{p}.output.dense"), h, i)?,
                    out_norm: w.layer_norm(&format!("{p}.output.LayerNorm"), h, eps)?,
                })
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(Self { cfg: cfg.clone(), embeddings, layers })
    }

    pub fn config(&self) -> &BertConfig {
        &self.cfg
    }

    /// `ids`: [batch, len] u32, padded with anything; `mask`: [batch, len] f32,
    /// 1 for real tokens and 0 for padding. Returns [batch, len, hidden].
    pub fn forward(&self, ids: &Tensor, mask: &Tensor) -> Result<Tensor> {
        let (b, len) = ids.dims2()?;
        if len > self.cfg.max_position_embeddings {
            return Err(Error::Invalid(format!(
                "sequence of {len} tokens exceeds the model's {} positions",
                self.cfg.max_position_embeddings
            )));
        }
        let e = &self.embeddings;
        let word = e.word.embedding(ids)?;
        let pos = e.position.narrow(0, 0, len)?.unsqueeze(0)?;
        let typ = e.token_type.narrow(0, 0, 1)?.unsqueeze(0)?;
        let mut x = e.norm.forward(&word.broadcast_add(&pos)?.broadcast_add(&typ)?)?;
        // Additive mask: padding keys get a large negative logit.
        let bias = ((mask.to_dtype(DType::F32)? - 1.0)? * 1e4)?.reshape((b, 1, 1, len))?;
        for layer in &self.layers {
            x = self.layer_forward(layer, &x, &bias)?;
        }
        Ok(x)
    }

    fn layer_forward(&self, l: &Layer, x: &Tensor, bias: &Tensor) -> Result<Tensor> {
        let (b, len, h) = x.dims3()?;
        let heads = self.cfg.num_attention_heads;
        let dh = h / heads;
        let split =
            |t: Tensor| -> Result<Tensor> { Ok(t.reshape((b, len, heads, dh))?.transpose(1, 2)?.contiguous()?) };
        let q = split(l.query.forward(x)?)?;
        let k = split(l.key.forward(x)?)?;
        let v = split(l.value.forward(x)?)?;
        let scores = (q.matmul(&k.t()?)? / (dh as f64).sqrt())?.broadcast_add(bias)?;
        let probs = candle_nn::ops::softmax_last_dim(&scores)?;
        let ctx = probs.matmul(&v)?.transpose(1, 2)?.reshape((b, len, h))?;
        let x = l.attn_norm.forward(&(l.attn_out.forward(&ctx)? + x)?)?;
        let inter = l.inter.forward(&x)?;
        let inter = match self.cfg.hidden_act.as_str() {
            "relu" => inter.relu()?,
            "gelu_new" => inter.gelu()?,
            _ => inter.gelu_erf()?,
        };
        Ok(l.out_norm.forward(&(l.out.forward(&inter)? + x)?)?)
    }
}

/// Index of the last dimension, for readers of pooling code.
pub(crate) const HIDDEN: D = D::Minus1;
