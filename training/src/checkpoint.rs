//! Checkpoints written so that a kill at any instant leaves either the old
//! checkpoint or the new one, never half of one: the files go into a fresh
//! `ckpt-<step>` folder, are synced, and only then does `LATEST` (replaced by
//! rename) point at it. Older folders are removed afterwards.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use candle_core::{Device, Tensor};

/// What a checkpoint records beside the tensors.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct State {
    /// Optimizer steps done.
    pub step: u64,
    /// Batches consumed (steps x accumulation); the data position.
    pub batches: u64,
    pub seed: u64,
    /// Every random draw is derived from (seed, purpose, position): this
    /// records that nothing else is needed to continue the stream.
    pub rng: String,
    /// The stage and a digest of the recipe section that shaped the run;
    /// resuming with another recipe is refused.
    pub stage: String,
    pub recipe_digest: String,
    pub skipped_steps: u64,
    /// Updates the optimizer applied (its bias correction counts these).
    pub optim_updates: u64,
}

pub fn latest(dir: &Path) -> Result<Option<PathBuf>> {
    let pointer = dir.join("LATEST");
    if !pointer.exists() {
        return Ok(None);
    }
    let name = std::fs::read_to_string(&pointer).with_context(|| format!("cannot read {}", pointer.display()))?;
    let path = dir.join(name.trim());
    if !path.join("state.json").exists() {
        bail!("{} points at {}, which is not a complete checkpoint", pointer.display(), path.display());
    }
    Ok(Some(path))
}

/// Writes a checkpoint of `params` and `optim` at `state.step` under `dir`.
pub fn save(
    dir: &Path,
    state: &State,
    params: &[(String, Tensor)],
    optim: &HashMap<String, Tensor>,
) -> Result<PathBuf> {
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let name = format!("ckpt-{:08}", state.step);
    let target = dir.join(&name);
    if target.exists() {
        std::fs::remove_dir_all(&target)?; // a folder a killed run never pointed at
    }
    std::fs::create_dir_all(&target)?;
    let weights: HashMap<String, Tensor> = params.iter().cloned().collect();
    candle_core::safetensors::save(&weights, target.join("model.safetensors"))?;
    candle_core::safetensors::save(optim, target.join("optim.safetensors"))?;
    std::fs::write(target.join("state.json"), serde_json::to_vec_pretty(state)?)?;
    for f in ["model.safetensors", "optim.safetensors", "state.json"] {
        std::fs::File::open(target.join(f))?.sync_all()?;
    }
    ernie_search::format::write_atomic(&dir.join("LATEST"), name.as_bytes())?;
    for entry in std::fs::read_dir(dir)?.flatten() {
        let n = entry.file_name().to_string_lossy().into_owned();
        if n.starts_with("ckpt-") && n != name {
            let _ = std::fs::remove_dir_all(entry.path());
        }
    }
    Ok(target)
}

pub struct Loaded {
    pub state: State,
    pub params: HashMap<String, Tensor>,
    pub optim: HashMap<String, Tensor>,
}

pub fn load(path: &Path, device: &Device) -> Result<Loaded> {
    let state: State = serde_json::from_slice(&std::fs::read(path.join("state.json"))?)
        .with_context(|| format!("{} is not a checkpoint state", path.join("state.json").display()))?;
    let read = |f: &str| {
        candle_core::safetensors::load(path.join(f), device)
            .with_context(|| format!("cannot read {}", path.join(f).display()))
    };
    Ok(Loaded { state, params: read("model.safetensors")?, optim: read("optim.safetensors")? })
}
