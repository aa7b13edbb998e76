//! Hugging Face BERT checkpoint (safetensors + config.json + tokenizer.json)
//! -> one ernie-search model file (GGUF).

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use candle_core::{Device, Tensor};
use ernie_search::format::model::{quantize_tensors, write_model, WeightDType};
use ernie_search::model::{BertConfig, ModelSpec, Pooling};

pub struct ConvertOptions {
    pub checkpoint: PathBuf,
    pub out: PathBuf,
    pub weights: WeightDType,
    pub pooling: Pooling,
    pub normalize: bool,
    pub max_query_len: usize,
    pub max_passage_len: usize,
    /// Keep only the first N encoder layers (a smaller student from a bigger model).
    pub layers: Option<usize>,
    pub name: Option<String>,
}

/// Reads a checkpoint directory into the model config and its f32 tensors,
/// named as the library expects (no `bert.` prefix, `weight`/`bias` norms).
pub fn read_checkpoint(dir: &Path) -> Result<(BertConfig, Vec<(String, Tensor)>, String)> {
    let config_path = dir.join("config.json");
    let cfg: BertConfig = serde_json::from_slice(
        &std::fs::read(&config_path).with_context(|| format!("cannot read {}", config_path.display()))?,
    )
    .with_context(|| format!("{} is not a BERT config", config_path.display()))?;
    let tok_path = dir.join("tokenizer.json");
    let tokenizer = std::fs::read_to_string(&tok_path).with_context(|| format!("cannot read {}", tok_path.display()))?;
    let st_path = dir.join("model.safetensors");
    let raw = candle_core::safetensors::load(&st_path, &Device::Cpu)
        .with_context(|| format!("{} is not a readable safetensors file", st_path.display()))?;
    let mut tensors: Vec<(String, Tensor)> = raw
        .into_iter()
        .filter_map(|(name, t)| canonical_name(&name).map(|n| (n, t)))
        .collect();
    tensors.sort_by(|a, b| a.0.cmp(&b.0));
    Ok((cfg, tensors, tokenizer))
}

/// Maps checkpoint names onto ours; `None` for tensors retrieval never uses.
fn canonical_name(name: &str) -> Option<String> {
    let n = name.strip_prefix("bert.").unwrap_or(name);
    if !(n.starts_with("embeddings.") || n.starts_with("encoder.")) || n.ends_with("position_ids") {
        return None; // pooler, MLM heads, buffers
    }
    Some(n.replace("LayerNorm.gamma", "LayerNorm.weight").replace("LayerNorm.beta", "LayerNorm.bias"))
}

/// Drops the encoder layers at and above `keep`.
pub fn truncate_layers(cfg: &mut BertConfig, tensors: &mut Vec<(String, Tensor)>, keep: usize) -> Result<()> {
    if keep == 0 || keep > cfg.num_hidden_layers {
        bail!("--layers {keep}: the checkpoint has {} layers", cfg.num_hidden_layers);
    }
    tensors.retain(|(name, _)| match name.strip_prefix("encoder.layer.") {
        Some(rest) => rest.split('.').next().and_then(|l| l.parse::<usize>().ok()).is_some_and(|l| l < keep),
        None => true,
    });
    cfg.num_hidden_layers = keep;
    Ok(())
}

pub fn convert(opts: &ConvertOptions) -> Result<ModelSpec> {
    let (mut cfg, mut tensors, tokenizer) = read_checkpoint(&opts.checkpoint)?;
    if let Some(n) = opts.layers {
        truncate_layers(&mut cfg, &mut tensors, n)?;
    }
    cfg.validate()?;
    if opts.max_query_len > cfg.max_position_embeddings || opts.max_passage_len > cfg.max_position_embeddings {
        bail!("max lengths must not exceed the model's {} positions", cfg.max_position_embeddings);
    }
    let spec = ModelSpec {
        bert: cfg,
        pooling: opts.pooling,
        normalize: opts.normalize,
        max_query_len: opts.max_query_len,
        max_passage_len: opts.max_passage_len,
    };
    let name = opts.name.clone().unwrap_or_else(|| {
        let base = opts.checkpoint.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        format!("{base}-{}", opts.weights.as_str())
    });
    let provenance = serde_json::json!({
        "method": "converted checkpoint (no distillation)",
        "source": opts.checkpoint.display().to_string(),
        "layers": spec.bert.num_hidden_layers,
        "weights": opts.weights.as_str(),
        "tool": concat!("ernie-search ", env!("CARGO_PKG_VERSION")),
    });
    let q = quantize_tensors(tensors, opts.weights)?;
    let bytes = write_model(&name, &spec, opts.weights, &tokenizer, &provenance, &q)?;
    ernie_search::format::write_atomic(&opts.out, &bytes)
        .with_context(|| format!("cannot write {}", opts.out.display()))?;
    Ok(spec)
}
