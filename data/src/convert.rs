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
    /// Keep only N encoder layers (a smaller student from a bigger model), chosen by `pick`.
    pub layers: Option<usize>,
    pub pick: LayerPick,
    pub name: Option<String>,
}

/// A checkpoint as read: its config, its f32 tensors (our names), its tokenizer JSON.
pub type Checkpoint = (BertConfig, Vec<(String, Tensor)>, String);

/// Reads a checkpoint directory into the model config and its f32 tensors,
/// named as the library expects (no `bert.` prefix, `weight`/`bias` norms).
pub fn read_checkpoint(dir: &Path) -> Result<Checkpoint> {
    let config_path = dir.join("config.json");
    let cfg: BertConfig = serde_json::from_slice(
        &std::fs::read(&config_path).with_context(|| format!("cannot read {}", config_path.display()))?,
    )
    .with_context(|| format!("{} is not a BERT config", config_path.display()))?;
    let tok_path = dir.join("tokenizer.json");
    let tokenizer =
        std::fs::read_to_string(&tok_path).with_context(|| format!("cannot read {}", tok_path.display()))?;
    let st_path = dir.join("model.safetensors");
    let raw = candle_core::safetensors::load(&st_path, &Device::Cpu)
        .with_context(|| format!("{} is not a readable safetensors file", st_path.display()))?;
    let mut tensors: Vec<(String, Tensor)> =
        raw.into_iter().filter_map(|(name, t)| canonical_name(&name).map(|n| (n, t))).collect();
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

/// Which encoder layers a cut to fewer layers keeps.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LayerPick {
    /// The first N: the cut ends on an intermediate layer, whose output the
    /// pooling was never trained on (all-MiniLM-L6-v2 cut to 3: MRR@10 0.026 on NQ dev).
    #[default]
    First,
    /// The first and the last layer and the rest evenly between (layer
    /// i*(L-1)/(N-1), rounded down; one layer: the last), so the cut still
    /// ends on the layer the pooling was trained on (cut to 3, layers 0, 2, 5: 0.285).
    Spread,
}

impl std::str::FromStr for LayerPick {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "first" => Ok(LayerPick::First),
            "spread" => Ok(LayerPick::Spread),
            _ => Err(format!("{s:?} is not a layer pick: first or spread")),
        }
    }
}

impl LayerPick {
    /// The source layers kept, in order, when `total` are cut to `keep`.
    pub fn layers(self, keep: usize, total: usize) -> Vec<usize> {
        match self {
            _ if keep >= total => (0..total).collect(),
            LayerPick::First => (0..keep).collect(),
            LayerPick::Spread if keep == 1 => vec![total - 1],
            LayerPick::Spread => (0..keep).map(|i| i * (total - 1) / (keep - 1)).collect(),
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            LayerPick::First => "first",
            LayerPick::Spread => "spread",
        }
    }
}

/// Keeps `keep` encoder layers chosen by `pick`, renumbered 0..keep.
pub fn cut_layers(
    cfg: &mut BertConfig,
    tensors: &mut Vec<(String, Tensor)>,
    keep: usize,
    pick: LayerPick,
) -> Result<()> {
    if keep == 0 || keep > cfg.num_hidden_layers {
        bail!("--layers {keep}: the checkpoint has {} layers", cfg.num_hidden_layers);
    }
    let kept = pick.layers(keep, cfg.num_hidden_layers);
    let old = std::mem::take(tensors);
    for (name, t) in old {
        let Some(rest) = name.strip_prefix("encoder.layer.") else {
            tensors.push((name, t));
            continue;
        };
        let (layer, tail) = rest.split_once('.').with_context(|| format!("tensor {name}: no layer number"))?;
        let layer: usize = layer.parse().with_context(|| format!("tensor {name}: no layer number"))?;
        if let Some(new) = kept.iter().position(|&l| l == layer) {
            tensors.push((format!("encoder.layer.{new}.{tail}"), t));
        }
    }
    tensors.sort_by(|a, b| a.0.cmp(&b.0));
    cfg.num_hidden_layers = keep;
    Ok(())
}

pub fn convert(opts: &ConvertOptions) -> Result<ModelSpec> {
    let (mut cfg, mut tensors, tokenizer) = read_checkpoint(&opts.checkpoint)?;
    if let Some(n) = opts.layers {
        cut_layers(&mut cfg, &mut tensors, n, opts.pick)?;
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
    let mut provenance = serde_json::json!({
        "method": "converted checkpoint (no distillation)",
        // The checkpoint's folder name only: the file is published to every
        // visitor of a site, and the full path would carry the builder's home.
        "source": opts.checkpoint.file_name().map(|n| n.to_string_lossy().into_owned()),
        "layers": spec.bert.num_hidden_layers,
        "weights": opts.weights.as_str(),
        "tool": concat!("ernie-search ", env!("CARGO_PKG_VERSION")),
    });
    if opts.layers.is_some() {
        provenance["layer_pick"] = opts.pick.as_str().into();
    }
    let q = quantize_tensors(tensors, opts.weights)?;
    let bytes = write_model(&name, &spec, opts.weights, &tokenizer, &provenance, &q)?;
    ernie_search::format::write_atomic(&opts.out, &bytes)
        .with_context(|| format!("cannot write {}", opts.out.display()))?;
    Ok(spec)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_spread_cut_keeps_the_first_and_the_last_layer() {
        assert_eq!(LayerPick::First.layers(3, 6), [0, 1, 2]);
        assert_eq!(LayerPick::Spread.layers(3, 6), [0, 2, 5]);
        assert_eq!(LayerPick::Spread.layers(4, 12), [0, 3, 7, 11]);
        assert_eq!(LayerPick::Spread.layers(2, 6), [0, 5]);
        assert_eq!(LayerPick::Spread.layers(1, 6), [5]);
        assert_eq!(LayerPick::Spread.layers(6, 6), [0, 1, 2, 3, 4, 5]);
    }

    #[test]
    fn cut_layers_renumbers_the_kept_layers_and_keeps_the_rest() {
        let mut cfg = ernie_search::synthetic::tiny_config();
        cfg.num_hidden_layers = 6;
        let mut tensors: Vec<(String, Tensor)> = (0..6)
            .map(|l| {
                (format!("encoder.layer.{l}.output.dense.weight"), Tensor::new(&[l as f32], &Device::Cpu).unwrap())
            })
            .chain(std::iter::once((
                "embeddings.word_embeddings.weight".to_string(),
                Tensor::new(&[-1f32], &Device::Cpu).unwrap(),
            )))
            .collect();
        cut_layers(&mut cfg, &mut tensors, 3, LayerPick::Spread).unwrap();
        assert_eq!(cfg.num_hidden_layers, 3);
        let got: Vec<(String, f32)> =
            tensors.iter().map(|(n, t)| (n.clone(), t.to_vec1::<f32>().unwrap()[0])).collect();
        let want = [
            ("embeddings.word_embeddings.weight", -1.0),
            ("encoder.layer.0.output.dense.weight", 0.0),
            ("encoder.layer.1.output.dense.weight", 2.0),
            ("encoder.layer.2.output.dense.weight", 5.0),
        ];
        assert_eq!(got, want.map(|(n, v)| (n.to_string(), v)));
        assert!(
            cut_layers(&mut cfg, &mut tensors, 4, LayerPick::First).is_err(),
            "more layers than the checkpoint has"
        );
    }
}
