//! AdamW with linear warm-up then linear decay to zero, global-norm gradient
//! clipping and gradient accumulation. Its state (moments, step) is plain
//! named tensors, so a checkpoint restores it exactly.

use std::collections::HashMap;

use anyhow::Result;
use candle_core::backprop::GradStore;
use candle_core::{Tensor, Var};

use super::params::Params;

#[derive(Debug, Clone, Copy, serde::Serialize, serde::Deserialize)]
pub struct AdamWConfig {
    pub lr: f64,
    pub beta1: f64,
    pub beta2: f64,
    pub eps: f64,
    pub weight_decay: f64,
    /// Fraction of the steps spent warming up.
    pub warmup: f64,
    /// Largest global gradient norm; 0 turns clipping off.
    pub clip: f64,
}

pub struct AdamW {
    pub cfg: AdamWConfig,
    pub total_steps: u64,
    /// Updates applied so far (bias correction counts these).
    pub step: u64,
    m: HashMap<String, Tensor>,
    v: HashMap<String, Tensor>,
    /// Summed gradients of the micro-batches since the last step.
    acc: HashMap<String, Tensor>,
    micro: usize,
}

impl AdamW {
    pub fn new(cfg: AdamWConfig, total_steps: u64) -> Self {
        Self { cfg, total_steps, step: 0, m: HashMap::new(), v: HashMap::new(), acc: HashMap::new(), micro: 0 }
    }

    /// Learning rate at optimizer step `step` (0-based).
    pub fn lr_at(&self, step: u64) -> f64 {
        let total = self.total_steps.max(1) as f64;
        let warm = (self.cfg.warmup * total).round().max(1.0);
        let s = step as f64 + 1.0;
        if s <= warm {
            self.cfg.lr * s / warm
        } else {
            self.cfg.lr * ((total - s) / (total - warm).max(1.0)).max(0.0)
        }
    }

    /// Adds one micro-batch's gradients.
    pub fn accumulate(&mut self, params: &Params, grads: &GradStore) -> Result<()> {
        for (name, var) in params.iter() {
            if let Some(g) = grads.get(var.as_tensor()) {
                let sum = match self.acc.remove(name) {
                    Some(a) => (a + g)?,
                    None => g.clone(),
                };
                self.acc.insert(name.clone(), sum);
            }
        }
        self.micro += 1;
        Ok(())
    }

    /// Drops accumulated gradients (a skipped, non-finite step).
    pub fn discard(&mut self) {
        self.acc.clear();
        self.micro = 0;
    }

    /// Applies the averaged accumulated gradients at schedule position `at`;
    /// returns (grad norm before clipping, learning rate used). A non-finite
    /// gradient norm applies nothing and returns the norm.
    pub fn step(&mut self, params: &Params, at: u64) -> Result<(f64, f64)> {
        let micro = self.micro.max(1) as f64;
        let grads: Vec<(String, Tensor)> =
            std::mem::take(&mut self.acc).into_iter().map(|(n, g)| Ok((n, (g / micro)?))).collect::<Result<_>>()?;
        self.micro = 0;
        let mut sq = 0f64;
        for (_, g) in &grads {
            sq += g.sqr()?.sum_all()?.to_scalar::<f32>()? as f64;
        }
        let norm = sq.sqrt();
        if !norm.is_finite() {
            return Ok((norm, 0.0));
        }
        let scale = if self.cfg.clip > 0.0 && norm > self.cfg.clip { self.cfg.clip / norm } else { 1.0 };
        let lr = self.lr_at(at);
        self.step += 1;
        let (b1, b2) = (self.cfg.beta1, self.cfg.beta2);
        let (c1, c2) = (1.0 - b1.powi(self.step as i32), 1.0 - b2.powi(self.step as i32));
        let vars: HashMap<&String, &Var> = params.iter().collect();
        for (name, g) in grads {
            let Some(var) = vars.get(&name) else { continue };
            let g = (g * scale)?;
            let m = match self.m.remove(&name) {
                Some(m) => ((m * b1)? + (&g * (1.0 - b1))?)?,
                None => (&g * (1.0 - b1))?,
            };
            let v = match self.v.remove(&name) {
                Some(v) => ((v * b2)? + (g.sqr()? * (1.0 - b2))?)?,
                None => (g.sqr()? * (1.0 - b2))?,
            };
            let update = ((&m / c1)? / ((&v / c2)?.sqrt()? + self.cfg.eps)?)?;
            let theta = var.as_tensor();
            let next = ((theta * (1.0 - lr * self.cfg.weight_decay))? - (update * lr)?)?;
            var.set(&next)?;
            self.m.insert(name.clone(), m);
            self.v.insert(name, v);
        }
        Ok((norm, lr))
    }

    /// The moments as named tensors (`m.<param>`, `v.<param>`), for a checkpoint.
    pub fn state(&self) -> HashMap<String, Tensor> {
        let mut out = HashMap::new();
        for (n, t) in &self.m {
            out.insert(format!("m.{n}"), t.clone());
        }
        for (n, t) in &self.v {
            out.insert(format!("v.{n}"), t.clone());
        }
        out
    }

    pub fn restore(&mut self, step: u64, state: HashMap<String, Tensor>, params: &Params) -> Result<()> {
        self.step = step;
        self.m.clear();
        self.v.clear();
        for (key, t) in state {
            let (kind, name) = key.split_at(2);
            anyhow::ensure!(
                params.contains(name),
                "optimizer state names {name}, which the model does not have: another model shape"
            );
            match kind {
                "m." => self.m.insert(name.to_string(), t),
                "v." => self.v.insert(name.to_string(), t),
                _ => anyhow::bail!("optimizer state holds an unknown tensor {key}"),
            };
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schedule_warms_up_then_decays_to_zero() {
        let cfg =
            AdamWConfig { lr: 1.0, beta1: 0.9, beta2: 0.999, eps: 1e-8, weight_decay: 0.0, warmup: 0.1, clip: 1.0 };
        let o = AdamW::new(cfg, 100);
        assert!((o.lr_at(0) - 0.1).abs() < 1e-9);
        assert!((o.lr_at(9) - 1.0).abs() < 1e-9);
        assert!(o.lr_at(50) < 1.0 && o.lr_at(50) > o.lr_at(80));
        assert!(o.lr_at(99).abs() < 1e-9);
    }

    #[test]
    fn adamw_minimises_a_quadratic() -> Result<()> {
        let mut p = Params::default();
        p.insert("x".into(), Tensor::new(&[3.0f32, -2.0], &candle_core::Device::Cpu)?)?;
        let cfg =
            AdamWConfig { lr: 0.1, beta1: 0.9, beta2: 0.999, eps: 1e-8, weight_decay: 0.0, warmup: 0.0, clip: 0.0 };
        let mut o = AdamW::new(cfg, 1000);
        for _ in 0..300 {
            let x = p.get("x", &[2])?;
            let g = x.sqr()?.sum_all()?.backward()?;
            o.accumulate(&p, &g)?;
            o.step(&p, 0)?;
        }
        let x: Vec<f32> = p.get("x", &[2])?.to_vec1()?;
        assert!(x.iter().all(|v| v.abs() < 0.2), "{x:?}");
        Ok(())
    }
}
