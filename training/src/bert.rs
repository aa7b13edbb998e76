//! A trainable BERT over `Params` (f32, any candle device). Same tensor names
//! and the same arithmetic as the library's inference encoder
//! (`ernie_search::model::Encoder`), built from differentiable candle ops and,
//! on the CPU, the fused layer norm, attention softmax and GELU of `ops` (candle-nn's
//! fused kernels have no backward pass).

use anyhow::{bail, Result};
use candle_core::{DType, Tensor};
use ernie_search::model::BertConfig;

use super::ops;
use super::params::Params;

/// Token ids of a padded batch, with what the encoder needs beside them.
pub struct Batch {
    /// [b, len] u32.
    pub ids: Tensor,
    /// [b, len] u32: 0 for the first segment, 1 for the second (cross-encoder pairs).
    pub types: Tensor,
    /// [b, len] f32: 1 for real tokens, 0 for padding.
    pub mask: Tensor,
    /// Real length of each row.
    pub lens: Vec<usize>,
}

impl Batch {
    /// Pads `rows` (ids, segment ids) to the longest.
    pub fn pad(rows: &[(Vec<u32>, Vec<u32>)], device: &candle_core::Device) -> Result<Self> {
        let len = rows.iter().map(|r| r.0.len()).max().unwrap_or(0).max(1);
        let b = rows.len();
        let (mut ids, mut types, mut mask) = (vec![0u32; b * len], vec![0u32; b * len], vec![0f32; b * len]);
        for (r, (i, t)) in rows.iter().enumerate() {
            ids[r * len..r * len + i.len()].copy_from_slice(i);
            types[r * len..r * len + t.len()].copy_from_slice(t);
            mask[r * len..r * len + i.len()].iter_mut().for_each(|m| *m = 1.0);
        }
        Ok(Self {
            ids: Tensor::from_vec(ids, (b, len), device)?,
            types: Tensor::from_vec(types, (b, len), device)?,
            mask: Tensor::from_vec(mask, (b, len), device)?,
            lens: rows.iter().map(|r| r.0.len()).collect(),
        })
    }

    /// Single-segment texts.
    pub fn from_ids(rows: &[Vec<u32>], device: &candle_core::Device) -> Result<Self> {
        let with_types: Vec<(Vec<u32>, Vec<u32>)> = rows.iter().map(|r| (r.clone(), vec![0; r.len()])).collect();
        Self::pad(&with_types, device)
    }
}

pub struct Bert {
    cfg: BertConfig,
    prefix: String,
}

pub struct BertOutput {
    /// [b, len, hidden].
    pub hidden: Tensor,
    /// The last layer's attention probabilities averaged over heads, [b, len, len],
    /// when asked for (interaction distillation).
    pub last_attention: Option<Tensor>,
}

impl Bert {
    /// The encoder whose parameters live under `prefix` in `params`.
    pub fn new(cfg: &BertConfig, prefix: &str, params: &Params) -> Result<Self> {
        cfg.validate()?;
        let bert = Self { cfg: cfg.clone(), prefix: prefix.to_string() };
        // Check every tensor now, so a wrong checkpoint fails before training starts.
        let (h, i) = (cfg.hidden_size, cfg.intermediate_size);
        params.get(&bert.name("embeddings.word_embeddings.weight"), &[cfg.vocab_size, h])?;
        for l in 0..cfg.num_hidden_layers {
            params.get(&bert.name(&format!("encoder.layer.{l}.intermediate.dense.weight")), &[i, h])?;
        }
        Ok(bert)
    }

    pub fn config(&self) -> &BertConfig {
        &self.cfg
    }

    fn name(&self, n: &str) -> String {
        format!("{}{n}", self.prefix)
    }

    fn linear(&self, p: &Params, name: &str, x: &Tensor, out: usize, inp: usize) -> Result<Tensor> {
        let w = p.get(&self.name(&format!("{name}.weight")), &[out, inp])?;
        let b = p.get(&self.name(&format!("{name}.bias")), &[out])?;
        let (bs, len, _) = x.dims3()?;
        let y = x.reshape((bs * len, inp))?.matmul(&w.t()?)?.broadcast_add(&b)?;
        Ok(y.reshape((bs, len, out))?)
    }

    fn norm(&self, p: &Params, name: &str, x: &Tensor) -> Result<Tensor> {
        let h = self.cfg.hidden_size;
        let w = p.get(&self.name(&format!("{name}.weight")), &[h])?;
        let b = p.get(&self.name(&format!("{name}.bias")), &[h])?;
        Ok(ops::layer_norm(x, &w, &b, self.cfg.layer_norm_eps)?)
    }

    pub fn forward(&self, p: &Params, batch: &Batch, want_attention: bool) -> Result<BertOutput> {
        let cfg = &self.cfg;
        let (b, len) = batch.ids.dims2()?;
        if len > cfg.max_position_embeddings {
            bail!("sequence of {len} tokens exceeds the model's {} positions", cfg.max_position_embeddings);
        }
        let h = cfg.hidden_size;
        let word = p.get(&self.name("embeddings.word_embeddings.weight"), &[cfg.vocab_size, h])?;
        let pos = p.get(&self.name("embeddings.position_embeddings.weight"), &[cfg.max_position_embeddings, h])?;
        let typ = p.get(&self.name("embeddings.token_type_embeddings.weight"), &[cfg.type_vocab_size, h])?;
        let x = word.index_select(&batch.ids.flatten_all()?, 0)?.reshape((b, len, h))?;
        let t = typ.index_select(&batch.types.flatten_all()?, 0)?.reshape((b, len, h))?;
        let x = x.broadcast_add(&pos.narrow(0, 0, len)?.unsqueeze(0)?)?.add(&t)?;
        let mut x = self.norm(p, "embeddings.LayerNorm", &x)?;
        let bias = ((batch.mask.to_dtype(DType::F32)? - 1.0)? * 1e4)?.reshape((b, 1, 1, len))?;
        let mut last_attention = None;
        for l in 0..cfg.num_hidden_layers {
            let want = want_attention && l + 1 == cfg.num_hidden_layers;
            let (y, attn) = self.layer(p, l, &x, &bias, want)?;
            x = y;
            last_attention = attn.or(last_attention);
        }
        Ok(BertOutput { hidden: x, last_attention })
    }

    fn layer(&self, p: &Params, l: usize, x: &Tensor, bias: &Tensor, want: bool) -> Result<(Tensor, Option<Tensor>)> {
        let cfg = &self.cfg;
        let (b, len, h) = x.dims3()?;
        let heads = cfg.num_attention_heads;
        let dh = h / heads;
        let pre = format!("encoder.layer.{l}");
        let split =
            |t: Tensor| -> Result<Tensor> { Ok(t.reshape((b, len, heads, dh))?.transpose(1, 2)?.contiguous()?) };
        let q = split(self.linear(p, &format!("{pre}.attention.self.query"), x, h, h)?)?;
        let k = split(self.linear(p, &format!("{pre}.attention.self.key"), x, h, h)?)?;
        let v = split(self.linear(p, &format!("{pre}.attention.self.value"), x, h, h)?)?;
        let probs = ops::attention_softmax(&q.matmul(&k.t()?)?, bias, 1.0 / (dh as f64).sqrt())?;
        let attn = if want { Some(probs.mean(1)?) } else { None };
        let ctx = probs.matmul(&v)?.transpose(1, 2)?.reshape((b, len, h))?;
        let attn_out = self.linear(p, &format!("{pre}.attention.output.dense"), &ctx, h, h)?;
        let x = self.norm(p, &format!("{pre}.attention.output.LayerNorm"), &(attn_out + x)?)?;
        let inter = self.linear(p, &format!("{pre}.intermediate.dense"), &x, cfg.intermediate_size, h)?;
        let inter = match cfg.hidden_act.as_str() {
            "relu" => inter.relu()?,
            "gelu_new" => inter.gelu()?,
            _ => ops::gelu(&inter)?,
        };
        let out = self.linear(p, &format!("{pre}.output.dense"), &inter, h, cfg.intermediate_size)?;
        Ok((self.norm(p, &format!("{pre}.output.LayerNorm"), &(out + x)?)?, attn))
    }
}
