//! The training loop every stage shares: micro-batches accumulated into
//! AdamW steps, non-finite losses skipped (and said), checkpoints every N
//! steps, `--resume` from the last one, a progress bar, metrics as JSONL.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{bail, Context, Result};
use candle_core::{Device, Tensor};
use indicatif::{ProgressBar, ProgressStyle};

use super::checkpoint::{self, State};
use super::optim::{AdamW, AdamWConfig};
use super::params::Params;

/// How many non-finite steps in a row end the run.
const MAX_NONFINITE_IN_A_ROW: u64 = 5;

/// What one micro-batch gives the loop: the loss to minimise, its terms for
/// the log, and how many queries it held.
pub struct MicroStep {
    pub loss: Tensor,
    pub terms: Vec<(&'static str, f32)>,
    pub samples: usize,
}

pub struct FitOptions<'a> {
    pub stage: &'a str,
    /// Where checkpoints, metrics.jsonl and model.safetensors go.
    pub dir: PathBuf,
    pub steps: u64,
    pub accumulate: usize,
    pub adamw: AdamWConfig,
    pub seed: u64,
    pub recipe_digest: String,
    pub checkpoint_every: u64,
    pub log_every: u64,
    pub resume: bool,
    pub device: &'a Device,
    /// Stop after this many steps of this invocation (tests: a run "killed" at a known point).
    pub stop_after: Option<u64>,
}

/// The finished stage's weights file.
pub fn model_path(dir: &Path) -> PathBuf {
    dir.join("model.safetensors")
}

/// Trains `params` with `micro(batch_index)`; returns the steps done.
pub fn fit(params: &Params, opts: &FitOptions, mut micro: impl FnMut(u64) -> Result<MicroStep>) -> Result<u64> {
    std::fs::create_dir_all(&opts.dir).with_context(|| format!("cannot create {}", opts.dir.display()))?;
    let ckpt_dir = opts.dir.join("checkpoints");
    let mut optim = AdamW::new(opts.adamw, opts.steps);
    let mut state = State {
        step: 0,
        batches: 0,
        seed: opts.seed,
        rng: "derived from (seed, purpose, batch index); no stored state needed".into(),
        stage: opts.stage.into(),
        recipe_digest: opts.recipe_digest.clone(),
        skipped_steps: 0,
        optim_updates: 0,
    };
    match (checkpoint::latest(&ckpt_dir)?, opts.resume) {
        (Some(path), true) => {
            let loaded = checkpoint::load(&path, opts.device)?;
            if loaded.state.stage != opts.stage || loaded.state.recipe_digest != opts.recipe_digest {
                bail!(
                    "{} was written by stage {:?} with another recipe (digest {} vs {}): resume with the recipe that started it",
                    path.display(), loaded.state.stage, loaded.state.recipe_digest, opts.recipe_digest
                );
            }
            params.load(&loaded.params, &format!("checkpoint {}", path.display()))?;
            optim.restore(loaded.state.optim_updates, loaded.optim, params)?;
            state = loaded.state;
            truncate_metrics(&opts.dir.join("metrics.jsonl"), state.step)?;
            eprintln!("{}: resumed from {} at step {}", opts.stage, path.display(), state.step);
        }
        (Some(path), false) => bail!(
            "{} holds a checkpoint ({}): pass --resume to continue it, or choose another run folder",
            opts.dir.display(),
            path.display()
        ),
        (None, _) => {
            let _ = std::fs::remove_file(opts.dir.join("metrics.jsonl"));
        }
    }
    let bar = ProgressBar::new(opts.steps).with_style(
        ProgressStyle::with_template("{prefix} [{bar:30}] {pos}/{len} {msg} ({elapsed} < {eta})")
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> "),
    );
    bar.set_prefix(opts.stage.to_string());
    bar.set_position(state.step);
    let mut metrics = std::fs::OpenOptions::new().create(true).append(true).open(opts.dir.join("metrics.jsonl"))?;
    let start = Instant::now();
    let (mut samples, mut nonfinite_run, mut done_here) = (0usize, 0u64, 0u64);
    while state.step < opts.steps {
        if opts.stop_after.is_some_and(|n| done_here >= n) {
            bar.abandon_with_message("stopped");
            return Ok(state.step);
        }
        let mut terms: Vec<(&'static str, f32)> = Vec::new();
        let mut loss_sum = 0f32;
        let mut finite = true;
        for _ in 0..opts.accumulate {
            let m = micro(state.batches)?;
            state.batches += 1;
            let v = m.loss.to_scalar::<f32>()?;
            if !v.is_finite() {
                finite = false;
                break;
            }
            loss_sum += v / opts.accumulate as f32;
            for (k, t) in m.terms {
                match terms.iter_mut().find(|(n, _)| *n == k) {
                    Some(e) => e.1 += t / opts.accumulate as f32,
                    None => terms.push((k, t / opts.accumulate as f32)),
                }
            }
            samples += m.samples;
            optim.accumulate(params, &m.loss.backward()?)?;
        }
        let (norm, lr) = if finite { optim.step(params, state.step)? } else { (f64::NAN, 0.0) };
        if !finite || !norm.is_finite() {
            optim.discard();
            state.skipped_steps += 1;
            nonfinite_run += 1;
            bar.println(format!(
                "{}: step {} skipped: the loss or its gradient is not finite (NaN/inf)",
                opts.stage,
                state.step + 1
            ));
            if nonfinite_run >= MAX_NONFINITE_IN_A_ROW {
                bail!("{}: {nonfinite_run} non-finite steps in a row; lower the learning rate", opts.stage);
            }
        } else {
            nonfinite_run = 0;
        }
        state.step += 1;
        done_here += 1;
        state.optim_updates = optim.step;
        let rate = samples as f64 / start.elapsed().as_secs_f64().max(1e-9);
        bar.set_message(format!("loss {loss_sum:.4} {rate:.1} samples/s"));
        bar.inc(1);
        if state.step.is_multiple_of(opts.log_every) || state.step == opts.steps {
            let mut line = serde_json::json!({
                "stage": opts.stage, "step": state.step, "loss": loss_sum, "lr": lr,
                "grad_norm": norm, "samples_per_s": rate, "seconds": start.elapsed().as_secs_f64(),
            });
            for (k, v) in &terms {
                line[*k] = serde_json::json!(v);
            }
            writeln!(metrics, "{line}")?;
        }
        if state.step.is_multiple_of(opts.checkpoint_every) || state.step == opts.steps {
            metrics.flush()?;
            checkpoint::save(&ckpt_dir, &state, &params.snapshot()?, &optim.state())?;
        }
    }
    bar.finish();
    let weights: std::collections::HashMap<String, Tensor> = params.snapshot()?.into_iter().collect();
    let tmp = opts.dir.join(".model.safetensors.tmp");
    candle_core::safetensors::save(&weights, &tmp)?;
    std::fs::File::open(&tmp)?.sync_all()?;
    std::fs::rename(&tmp, model_path(&opts.dir))?;
    // The finished weights replace the checkpoints (each holds three model-sized tensors sets).
    let _ = std::fs::remove_dir_all(&ckpt_dir);
    Ok(state.step)
}

/// Drops metric lines past `step` (written by a run killed after its last checkpoint).
fn truncate_metrics(path: &Path, step: u64) -> Result<()> {
    let Ok(text) = std::fs::read_to_string(path) else { return Ok(()) };
    let kept: String = text
        .lines()
        .filter(|l| {
            serde_json::from_str::<serde_json::Value>(l)
                .ok()
                .and_then(|v| v["step"].as_u64())
                .is_some_and(|s| s <= step)
        })
        .map(|l| format!("{l}\n"))
        .collect();
    ernie_search::format::write_atomic(path, kept.as_bytes())?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn options(dir: &Path, steps: u64) -> FitOptions<'static> {
        FitOptions {
            stage: "t",
            dir: dir.to_path_buf(),
            steps,
            accumulate: 1,
            adamw: AdamWConfig {
                lr: 0.1,
                beta1: 0.9,
                beta2: 0.999,
                eps: 1e-8,
                weight_decay: 0.0,
                warmup: 0.0,
                clip: 0.0,
            },
            seed: 1,
            recipe_digest: "d".into(),
            checkpoint_every: 100,
            log_every: 1,
            resume: false,
            device: &Device::Cpu,
            stop_after: None,
        }
    }

    fn quadratic<'a>(p: &'a Params, nan_at: impl Fn(u64) -> bool + 'a) -> impl FnMut(u64) -> Result<MicroStep> + 'a {
        move |i| {
            let x = p.get("x", &[1])?;
            let loss = x.sqr()?.sum_all()?;
            let loss = if nan_at(i) { (loss * f64::NAN)? } else { loss };
            Ok(MicroStep { loss, terms: vec![], samples: 1 })
        }
    }

    #[test]
    fn a_nan_step_is_skipped_and_training_goes_on() -> Result<()> {
        let tmp = tempfile::tempdir()?;
        let mut p = Params::default();
        p.insert("x".into(), Tensor::new(&[2.0f32], &Device::Cpu)?)?;
        // Stopped at step 20 of 25, so the step-20 checkpoint is still there to read.
        let opts = FitOptions { checkpoint_every: 10, stop_after: Some(20), ..options(tmp.path(), 25) };
        let steps = fit(&p, &opts, quadratic(&p, |i| i == 3))?;
        assert_eq!(steps, 20);
        let x = p.get("x", &[1])?.to_vec1::<f32>()?[0];
        assert!(x.is_finite() && x.abs() < 2.0, "{x}");
        let state =
            checkpoint::load(&checkpoint::latest(&tmp.path().join("checkpoints"))?.expect("ckpt"), &Device::Cpu)?.state;
        assert_eq!(state.skipped_steps, 1);
        assert_eq!(state.optim_updates, 19);
        Ok(())
    }

    #[test]
    fn nan_steps_in_a_row_stop_the_run() -> Result<()> {
        let tmp = tempfile::tempdir()?;
        let mut p = Params::default();
        p.insert("x".into(), Tensor::new(&[2.0f32], &Device::Cpu)?)?;
        let err = fit(&p, &options(tmp.path(), 20), quadratic(&p, |i| i >= 2)).unwrap_err();
        assert!(format!("{err:#}").contains("non-finite steps in a row"), "{err:#}");
        Ok(())
    }
}
