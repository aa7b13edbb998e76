//! The trainable weights: named candle `Var`s in a fixed (sorted) order, so
//! the optimizer state, checkpoints and exports always line up by name.

use std::collections::BTreeMap;

use anyhow::{bail, Context, Result};
use candle_core::{DType, Device, Tensor, Var};

use super::rng::Rng;

#[derive(Default)]
pub struct Params {
    vars: BTreeMap<String, Var>,
}

impl Params {
    /// Wraps f32 tensors (e.g. a checkpoint) as trainable variables on `device`.
    pub fn from_tensors(tensors: Vec<(String, Tensor)>, prefix: &str, device: &Device) -> Result<Self> {
        let mut p = Self::default();
        for (name, t) in tensors {
            p.insert(format!("{prefix}{name}"), t.to_dtype(DType::F32)?.to_device(device)?)?;
        }
        Ok(p)
    }

    pub fn insert(&mut self, name: String, t: Tensor) -> Result<()> {
        if self.vars.contains_key(&name) {
            bail!("parameter {name} defined twice");
        }
        self.vars.insert(name, Var::from_tensor(&t)?);
        Ok(())
    }

    /// A new parameter drawn from N(0, std²) with the run's seeded generator
    /// (candle's own `randn` is not seedable on the CPU).
    pub fn insert_normal(
        &mut self,
        name: &str,
        shape: &[usize],
        std: f32,
        rng: &mut Rng,
        device: &Device,
    ) -> Result<()> {
        let n: usize = shape.iter().product();
        let data: Vec<f32> = (0..n).map(|_| rng.normal() * std).collect();
        self.insert(name.to_string(), Tensor::from_vec(data, shape, device)?)
    }

    pub fn insert_zeros(&mut self, name: &str, shape: &[usize], device: &Device) -> Result<()> {
        self.insert(name.to_string(), Tensor::zeros(shape, DType::F32, device)?)
    }

    /// The tensor of parameter `name` (tracked for gradients), checked against `shape`.
    pub fn get(&self, name: &str, shape: &[usize]) -> Result<Tensor> {
        let v = self.vars.get(name).with_context(|| format!("missing parameter {name}"))?;
        if v.dims() != shape {
            bail!("parameter {name} has shape {:?}, expected {shape:?}", v.dims());
        }
        Ok(v.as_tensor().clone())
    }

    pub fn contains(&self, name: &str) -> bool {
        self.vars.contains_key(name)
    }

    pub fn iter(&self) -> impl Iterator<Item = (&String, &Var)> {
        self.vars.iter()
    }

    pub fn len(&self) -> usize {
        self.vars.len()
    }

    pub fn is_empty(&self) -> bool {
        self.vars.is_empty()
    }

    pub fn count(&self) -> usize {
        self.vars.values().map(|v| v.elem_count()).sum()
    }

    /// Copies of the current values, under their names (for checkpoints and export).
    pub fn snapshot(&self) -> Result<Vec<(String, Tensor)>> {
        self.vars.iter().map(|(n, v)| Ok((n.clone(), v.as_tensor().copy()?))).collect()
    }

    /// Overwrites every parameter from `tensors`; names and shapes must match
    /// exactly, so a checkpoint of another model shape is refused.
    pub fn load(&self, tensors: &std::collections::HashMap<String, Tensor>, what: &str) -> Result<()> {
        if tensors.len() != self.vars.len() {
            bail!("{what} holds {} tensors, the model has {}: another model shape", tensors.len(), self.vars.len());
        }
        self.load_subset(tensors, what)
    }

    /// Overwrites every parameter from `tensors`, which may hold more (e.g. a
    /// jointly trained teacher saved beside the student).
    pub fn load_subset(&self, tensors: &std::collections::HashMap<String, Tensor>, what: &str) -> Result<()> {
        for (name, var) in &self.vars {
            let t = tensors.get(name).with_context(|| format!("{what} lacks {name}: another model shape"))?;
            if t.dims() != var.dims() {
                bail!("{what}: {name} has shape {:?}, the model {:?}: another model shape", t.dims(), var.dims());
            }
            var.set(&t.to_device(var.device())?)?;
        }
        Ok(())
    }

    /// The parameters whose names start with `prefix` (shared variables), e.g.
    /// to train one head with the encoder frozen.
    pub fn subset(&self, prefix: &str) -> Params {
        Params {
            vars: self
                .vars
                .iter()
                .filter(|(n, _)| n.starts_with(prefix))
                .map(|(n, v)| (n.clone(), v.clone()))
                .collect(),
        }
    }

    /// Both sets in one (the variables are shared, not copied), for training
    /// two models with one optimizer.
    pub fn union(&self, other: &Params) -> Result<Params> {
        let mut vars = self.vars.clone();
        for (n, v) in &other.vars {
            if vars.insert(n.clone(), v.clone()).is_some() {
                bail!("parameter {n} is in both sets");
            }
        }
        Ok(Params { vars })
    }

    /// Parameters whose names start with `prefix`, prefix removed.
    pub fn with_prefix(&self, prefix: &str) -> Result<Vec<(String, Tensor)>> {
        self.vars
            .iter()
            .filter_map(|(n, v)| n.strip_prefix(prefix).map(|s| (s.to_string(), v)))
            .map(|(n, v)| Ok((n, v.as_tensor().copy()?)))
            .collect()
    }
}
