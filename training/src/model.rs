//! The three scorers of ERNIE-Search over the trainable BERT:
//! the dual-encoder (DE) and the late-interaction model (LI, ColBERT) share
//! one encoder (the student, prefix `enc.`); the cross-encoder (CE) is a
//! separate BERT (prefix `ce.`) with a linear head on `[CLS]`.

use anyhow::Result;
use candle_core::{DType, Device, Tensor, D};
use ernie_search::model::{BertConfig, Pooling};

use super::bert::{Batch, Bert};
use super::params::Params;
use super::rng::Rng;

pub const STUDENT: &str = "enc.";
pub const COLBERT: &str = "colbert.weight";
pub const CE: &str = "ce.";
pub const CE_HEAD: &str = "ce_head.";

/// The student encoder with its DE pooling and its LI projection.
pub struct Student {
    pub bert: Bert,
    pub pooling: Pooling,
    pub normalize: bool,
    pub colbert_dim: usize,
}

/// What one encoder pass over a batch of texts gives both heads.
pub struct Encoded {
    /// [b, hidden]: the DE vectors.
    pub de: Tensor,
    /// [b, len, colbert_dim]: the LI token vectors, unit length, zero on padding.
    pub li: Tensor,
    pub mask: Tensor,
}

impl Student {
    /// Adds the ColBERT projection to `params` (seeded init) when it is not there yet.
    pub fn new(
        cfg: &BertConfig,
        params: &mut Params,
        pooling: Pooling,
        normalize: bool,
        colbert_dim: usize,
        seed: u64,
        device: &Device,
    ) -> Result<Self> {
        if !params.contains(COLBERT) {
            let std = (1.0 / cfg.hidden_size as f32).sqrt();
            params.insert_normal(
                COLBERT,
                &[colbert_dim, cfg.hidden_size],
                std,
                &mut Rng::derive(seed, "colbert-init", 0),
                device,
            )?;
        }
        Ok(Self { bert: Bert::new(cfg, STUDENT, params)?, pooling, normalize, colbert_dim })
    }

    pub fn encode(&self, p: &Params, batch: &Batch, with_li: bool) -> Result<Encoded> {
        let out = self.bert.forward(p, batch, false)?;
        let h = out.hidden;
        let m = batch.mask.unsqueeze(2)?;
        let de = match self.pooling {
            Pooling::Cls => h.narrow(1, 0, 1)?.squeeze(1)?,
            Pooling::Mean => h.broadcast_mul(&m)?.sum(1)?.broadcast_div(&m.sum(1)?.clamp(1e-9, f64::MAX)?)?,
        };
        let de = if self.normalize { l2(&de)? } else { de };
        let li = if with_li {
            let (b, len, hid) = h.dims3()?;
            let w = p.get(COLBERT, &[self.colbert_dim, hid])?;
            let t = h.reshape((b * len, hid))?.matmul(&w.t()?)?.reshape((b, len, self.colbert_dim))?;
            l2(&t)?.broadcast_mul(&m)?
        } else {
            Tensor::zeros((1, 1, 1), DType::F32, h.device())?
        };
        Ok(Encoded { de, li, mask: batch.mask.clone() })
    }
}

/// Rows scaled to unit length along the last dimension.
pub fn l2(x: &Tensor) -> Result<Tensor> {
    let n = x.sqr()?.sum_keepdim(D::Minus1)?.sqrt()?.clamp(1e-12, f64::MAX)?;
    Ok(x.broadcast_div(&n)?)
}

/// DE scores of every query against every passage: [queries, passages].
pub fn de_scores(q: &Encoded, p: &Encoded) -> Result<Tensor> {
    Ok(q.de.matmul(&p.de.t()?)?)
}

/// LI (MaxSim) scores of every query against every passage: for each query
/// token the best passage token, summed over the query's real tokens.
pub fn li_scores(q: &Encoded, p: &Encoded) -> Result<Tensor> {
    let (b, lq, c) = q.li.dims3()?;
    let (n, lp, _) = p.li.dims3()?;
    let sim = q.li.reshape((b * lq, c))?.matmul(&p.li.reshape((n * lp, c))?.t()?)?.reshape((b, lq, n, lp))?;
    // Padding tokens of the passage must never be the max.
    let pad = ((p.mask.reshape((1, 1, n, lp))? - 1.0)? * 1e4)?;
    let best = sim.broadcast_add(&pad)?.max(D::Minus1)?; // [b, lq, n]
    Ok(best.broadcast_mul(&q.mask.unsqueeze(2)?)?.sum(1)?)
}

/// The LI token-level distribution of query tokens over passage tokens for
/// one pair: softmax_j(<q_i, p_j> / tau), [lq, lp] over real tokens only.
pub fn li_token_attention(q_tokens: &Tensor, p_tokens: &Tensor, tau: f64) -> Result<Tensor> {
    Ok(candle_nn::ops::softmax(&(q_tokens.matmul(&p_tokens.t()?)? / tau)?, D::Minus1)?)
}

/// The cross-encoder: BERT over `[CLS] q [SEP] p [SEP]`, a linear head on `[CLS]`.
pub struct CrossEncoder {
    pub bert: Bert,
}

impl CrossEncoder {
    pub fn new(cfg: &BertConfig, params: &mut Params, seed: u64, device: &Device) -> Result<Self> {
        let head_w = format!("{CE_HEAD}weight");
        if !params.contains(&head_w) {
            let std = (1.0 / cfg.hidden_size as f32).sqrt();
            params.insert_normal(
                &head_w,
                &[1, cfg.hidden_size],
                std,
                &mut Rng::derive(seed, "ce-head-init", 0),
                device,
            )?;
            params.insert_zeros(&format!("{CE_HEAD}bias"), &[1], device)?;
        }
        Ok(Self { bert: Bert::new(cfg, CE, params)? })
    }

    /// One score per pair, and (when asked) the last layer's head-averaged attention.
    pub fn score(&self, p: &Params, pairs: &Batch, want_attention: bool) -> Result<(Tensor, Option<Tensor>)> {
        let out = self.bert.forward(p, pairs, want_attention)?;
        let h = self.bert.config().hidden_size;
        let cls = out.hidden.narrow(1, 0, 1)?.squeeze(1)?;
        let w = p.get(&format!("{CE_HEAD}weight"), &[1, h])?;
        let b = p.get(&format!("{CE_HEAD}bias"), &[1])?;
        let s = cls.matmul(&w.t()?)?.broadcast_add(&b)?.squeeze(1)?;
        Ok((s, out.last_attention))
    }
}

/// `[CLS] q [SEP]` + `p [SEP]` (the passage's own `[CLS]` dropped), with
/// segment ids, so query token i sits at position i and passage token j
/// (j >= 1 in the passage's own encoding) at position len(q) + j - 1.
pub fn pair_ids(q: &[u32], p: &[u32]) -> (Vec<u32>, Vec<u32>) {
    let mut ids = q.to_vec();
    ids.extend_from_slice(&p[1.min(p.len())..]);
    let mut types = vec![0u32; q.len()];
    types.resize(ids.len(), 1);
    (ids, types)
}
