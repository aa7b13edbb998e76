//! The training recipe: one TOML file for every stage. Unknown keys and
//! impossible values are refused up front, before any work starts.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use serde::{Deserialize, Serialize};

use super::optim::AdamWConfig;

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Recipe {
    #[serde(default = "d_seed")]
    pub seed: u64,
    /// "cpu" or "cuda" (needs the `cuda` cargo feature).
    #[serde(default = "d_device")]
    pub device: String,
    pub data: DataConfig,
    #[serde(default)]
    pub model: ModelConfig,
    #[serde(default)]
    pub loss: LossConfig,
    #[serde(default)]
    pub optim: OptimConfig,
    pub warmup: StageConfig,
    #[serde(default)]
    pub mine: MineConfig,
    pub ce: StageConfig,
    pub cascade: StageConfig,
    #[serde(default)]
    pub export: ExportConfig,
    #[serde(default)]
    pub eval: EvalConfig,
    #[serde(default)]
    pub ablate: AblateConfig,
}

/// What `ablate` shares across rows beyond the recipe's stages.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AblateConfig {
    /// Steps that train the LI projection alone (encoder frozen) as part of the
    /// common init, so LI-based rows start from a working LI head; 0: random head.
    pub li_head_steps: u64,
    pub li_head_lr: f64,
    /// The step budget of the smaller student's rows (all of them alike);
    /// absent: the `[cascade]` stage's, as for the full-depth rows.
    pub small: Option<StageConfig>,
    /// The full-depth row whose trained student (its LI) teaches the smaller
    /// student's `l3-deep` row.
    pub small_teacher: String,
    /// Weight of that teacher's term in the `l3-deep` (KL) and `l3-deep-mse`
    /// (MSE) rows. The DE contrastive term's gradient is scaled by 1/tau_de
    /// (20 at 0.05), so at 1.0 the labels set the direction and the teacher
    /// barely moves the student; about 1/tau_de puts them on a par.
    pub small_teacher_weight: f64,
}

impl Default for AblateConfig {
    fn default() -> Self {
        Self {
            li_head_steps: 0,
            li_head_lr: 1e-3,
            small: None,
            small_teacher: "cascade".into(),
            small_teacher_weight: 1.0,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DataConfig {
    /// A fetched set ("nq", "drop", "wiki") or a folder in the BEIR layout.
    pub set: String,
    #[serde(default = "d_train_split")]
    pub train_split: String,
    #[serde(default = "d_qlen")]
    pub query_max_len: usize,
    #[serde(default = "d_plen")]
    pub passage_max_len: usize,
    /// Hard negatives per query in a batch.
    #[serde(default = "d_one")]
    pub negatives: usize,
    /// Keep only this many training queries (0: all).
    #[serde(default)]
    pub max_train_queries: usize,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ModelConfig {
    /// "minilm" (the fetched all-MiniLM-L6-v2) or a checkpoint folder.
    pub init: String,
    /// Layers the student keeps; 0: all.
    pub student_layers: usize,
    /// Which of the initial model's layers a cut keeps (the student's and
    /// ablate's smaller rows): "first" (the first N) or "spread".
    pub layer_pick: ernie_search_data::convert::LayerPick,
    pub pooling: String,
    pub normalize: bool,
    pub colbert_dim: usize,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LossConfig {
    pub tau_de: f64,
    pub tau_li: f64,
    pub tau_ce: f64,
    /// Temperature of the LI token distribution in interaction distillation.
    pub tau_id: f64,
    /// Contrastive loss on the DE.
    pub de: bool,
    /// Contrastive loss on the LI.
    pub li: bool,
    /// Weight of SOFD, KL(P_li || P_de); 0 turns it off.
    pub sofd: f64,
    /// Weight of the cascade term KL(P_ce || P_li); 0 turns it off.
    pub cascade: f64,
    /// Weight of direct CE -> DE distillation KL(P_ce || P_de); 0 turns it off.
    pub direct: f64,
    /// Weight of interaction distillation from the CE's attention; 0 turns it off.
    pub id: f64,
    /// Weight of KL(P_deep || P_li): a frozen deeper student's LI scores over
    /// every candidate of the batch teach this student's LI (the smaller
    /// student's cascade). Set by `ablate` for its `l3-deep` row only, so it
    /// is not a recipe key.
    #[serde(skip)]
    pub deep: f64,
    /// Weight of embedding distillation from the same deeper student: the
    /// squared distance of this DE's vectors to its DE's, for the batch's
    /// queries and candidates (same hidden size). Set by `ablate` only.
    #[serde(skip)]
    pub deep_mse: f64,
    /// Train the CE with the student (its contrastive loss joins the total)
    /// instead of using cached scores of the frozen CE.
    pub joint_ce: bool,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct OptimConfig {
    pub lr: f64,
    pub weight_decay: f64,
    pub warmup: f64,
    pub clip: f64,
    pub beta1: f64,
    pub beta2: f64,
    pub eps: f64,
    /// Checkpoint every N optimizer steps.
    pub checkpoint_every: u64,
    /// Log a metrics line every N steps.
    pub log_every: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StageConfig {
    pub steps: u64,
    /// Queries per micro-batch (in-batch negatives come from these).
    pub batch: usize,
    /// Micro-batches per optimizer step.
    #[serde(default = "d_one")]
    pub accumulate: usize,
    /// Overrides `[optim].lr` for this stage.
    pub lr: Option<f64>,
    /// Hard negatives per query in this stage; overrides `[data].negatives`
    /// (a listwise CE wants more than the students can afford).
    pub negatives: Option<usize>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MineConfig {
    /// Ranks skipped at the top (likely unlabelled positives).
    pub skip: usize,
    /// Negatives kept per query after the skipped ranks.
    pub depth: usize,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ExportConfig {
    /// q8_0, q4_0, f16 or f32.
    pub weights: String,
    pub max_query_len: usize,
    pub max_passage_len: usize,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct EvalConfig {
    /// Split evaluated at the end of each stage and by `ablate` ("" : none).
    pub split: String,
    pub batch: usize,
}

fn d_seed() -> u64 {
    42
}
fn d_device() -> String {
    "cpu".into()
}
fn d_train_split() -> String {
    "train".into()
}
fn d_qlen() -> usize {
    32
}
fn d_plen() -> usize {
    192
}
fn d_one() -> usize {
    1
}

impl Default for ModelConfig {
    fn default() -> Self {
        Self {
            init: "minilm".into(),
            student_layers: 0,
            layer_pick: ernie_search_data::convert::LayerPick::First,
            pooling: "mean".into(),
            normalize: true,
            colbert_dim: 128,
        }
    }
}
impl LossConfig {
    /// Whether a term needs the LI scores (its own loss, or a KL from or to it).
    pub fn uses_li(&self) -> bool {
        self.li || self.sofd > 0.0 || self.cascade > 0.0 || self.id > 0.0 || self.deep > 0.0
    }

    /// Whether a term needs the cross-encoder.
    pub fn uses_ce(&self) -> bool {
        self.cascade > 0.0 || self.direct > 0.0 || self.id > 0.0
    }
}

impl Default for LossConfig {
    fn default() -> Self {
        Self {
            tau_de: 0.05,
            tau_li: 1.0,
            tau_ce: 1.0,
            tau_id: 0.1,
            de: true,
            li: true,
            sofd: 1.0,
            cascade: 1.0,
            direct: 0.0,
            id: 0.0,
            deep: 0.0,
            deep_mse: 0.0,
            joint_ce: false,
        }
    }
}
impl Default for OptimConfig {
    fn default() -> Self {
        Self {
            lr: 5e-5,
            weight_decay: 0.01,
            warmup: 0.1,
            clip: 1.0,
            beta1: 0.9,
            beta2: 0.999,
            eps: 1e-6,
            checkpoint_every: 50,
            log_every: 1,
        }
    }
}
impl Default for MineConfig {
    fn default() -> Self {
        Self { skip: 3, depth: 30 }
    }
}
impl Default for ExportConfig {
    fn default() -> Self {
        Self { weights: "q8_0".into(), max_query_len: 32, max_passage_len: 256 }
    }
}
impl Default for EvalConfig {
    fn default() -> Self {
        Self { split: "dev".into(), batch: 64 }
    }
}

impl Recipe {
    pub fn load(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path).with_context(|| format!("cannot read recipe {}", path.display()))?;
        Self::parse(&text).with_context(|| format!("recipe {}", path.display()))
    }

    pub fn parse(text: &str) -> Result<Self> {
        let r: Recipe = toml::from_str(text)?;
        r.validate()?;
        Ok(r)
    }

    pub fn validate(&self) -> Result<()> {
        let d = &self.data;
        if d.query_max_len < 4 || d.passage_max_len < 4 || d.query_max_len > 512 || d.passage_max_len > 512 {
            bail!("data: query_max_len and passage_max_len must be within 4..=512");
        }
        if !matches!(self.device.as_str(), "cpu" | "cuda") {
            bail!("device must be \"cpu\" or \"cuda\", got {:?}", self.device);
        }
        self.model.pooling.parse::<ernie_search::model::Pooling>()?;
        if self.model.colbert_dim == 0 {
            bail!("model.colbert_dim must be positive");
        }
        let l = &self.loss;
        for (name, t) in [("tau_de", l.tau_de), ("tau_li", l.tau_li), ("tau_ce", l.tau_ce), ("tau_id", l.tau_id)] {
            if !(t.is_finite() && t > 0.0) {
                bail!("loss.{name} must be a positive number, got {t}");
            }
        }
        for (name, w) in [
            ("sofd", l.sofd),
            ("cascade", l.cascade),
            ("direct", l.direct),
            ("id", l.id),
            ("deep", l.deep),
            ("deep_mse", l.deep_mse),
        ] {
            if !(w.is_finite() && w >= 0.0) {
                bail!("loss.{name} is a weight and must be >= 0, got {w}");
            }
        }
        let w = self.ablate.small_teacher_weight;
        if !(w.is_finite() && w > 0.0) {
            bail!("ablate.small_teacher_weight must be a positive number, got {w}");
        }
        if self.negatives(&self.ce) == 0 {
            bail!("[ce]: the cross-encoder needs at least one hard negative per query ([ce].negatives or [data].negatives)");
        }
        let o = &self.optim;
        if !o.lr.is_finite()
            || o.lr <= 0.0
            || !(0.0..1.0).contains(&o.warmup)
            || o.clip < 0.0
            || o.checkpoint_every == 0
            || o.log_every == 0
        {
            bail!("optim: lr > 0, 0 <= warmup < 1, clip >= 0, checkpoint_every > 0 and log_every > 0 are required");
        }
        for (name, s) in self.stages() {
            if s.batch == 0 || s.accumulate == 0 {
                bail!("[{name}]: batch and accumulate must be positive");
            }
            if s.lr.is_some_and(|lr| !(lr.is_finite() && lr > 0.0)) {
                bail!("[{name}].lr must be positive");
            }
        }
        if self.mine.depth == 0 {
            bail!("mine.depth must be positive");
        }
        self.export.weights.parse::<ernie_search::format::model::WeightDType>()?;
        Ok(())
    }

    /// The data folder: a fetched set by name, or a path.
    pub fn data_dir(&self, cache: &Path) -> PathBuf {
        ernie_search_data::fetch::set_dir(cache, &self.data.set)
    }

    /// Every stage table with its name: warm-up, CE, cascade and, when given, [ablate.small].
    pub fn stages(&self) -> impl Iterator<Item = (&'static str, &StageConfig)> {
        let small = self.ablate.small.iter().map(|s| ("ablate.small", s));
        [("warmup", &self.warmup), ("ce", &self.ce), ("cascade", &self.cascade)].into_iter().chain(small)
    }

    /// Hard negatives per query in `stage`: its own count, else `[data].negatives`.
    pub fn negatives(&self, stage: &StageConfig) -> usize {
        stage.negatives.unwrap_or(self.data.negatives)
    }

    pub fn adamw(&self, stage: &StageConfig) -> AdamWConfig {
        let o = &self.optim;
        AdamWConfig {
            lr: stage.lr.unwrap_or(o.lr),
            beta1: o.beta1,
            beta2: o.beta2,
            eps: o.eps,
            weight_decay: o.weight_decay,
            warmup: o.warmup,
            clip: o.clip,
        }
    }

    /// A digest of what shapes a stage's run, so a resume with another recipe is refused.
    pub fn digest(&self, stage: &str) -> String {
        use sha2::Digest;
        let mut h = sha2::Sha256::new();
        h.update(stage.as_bytes());
        h.update(serde_json::to_vec(self).unwrap_or_default());
        let d = h.finalize();
        d.iter().take(8).map(|b| format!("{b:02x}")).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIN: &str = "[data]\nset = \"nq\"\n[warmup]\nsteps = 10\nbatch = 4\n[ce]\nsteps = 10\nbatch = 4\n[cascade]\nsteps = 10\nbatch = 4\n";

    #[test]
    fn a_minimal_recipe_takes_defaults() {
        let r = Recipe::parse(MIN).unwrap();
        assert_eq!(r.data.passage_max_len, 192);
        assert_eq!(r.model.colbert_dim, 128);
        assert_eq!(r.loss.sofd, 1.0);
        assert_eq!(r.model.layer_pick, ernie_search_data::convert::LayerPick::First);
        let r = Recipe::parse(&format!("{MIN}[model]\nlayer_pick = \"spread\"\n")).unwrap();
        assert_eq!(r.model.layer_pick, ernie_search_data::convert::LayerPick::Spread);
    }

    #[test]
    fn the_shipped_recipes_parse() {
        for (name, text) in [
            ("quick", include_str!("../recipes/quick.toml")),
            ("full", include_str!("../recipes/full.toml")),
            ("gpu", include_str!("../recipes/gpu.toml")),
        ] {
            let r = Recipe::parse(text).unwrap_or_else(|e| panic!("recipes/{name}.toml: {e:#}"));
            assert_eq!(r.model.layer_pick, ernie_search_data::convert::LayerPick::Spread, "{name}");
        }
    }

    #[test]
    fn unknown_keys_and_impossible_values_are_refused() {
        let e = Recipe::parse(&format!("{MIN}[model]\nlayer_pick = \"middle\"\n")).unwrap_err();
        assert!(format!("{e:#}").contains("middle"), "{e:#}");
        let e = Recipe::parse(&format!("{MIN}[loss]\nsofdd = 1.0\n")).unwrap_err();
        assert!(format!("{e:#}").contains("sofdd"), "{e:#}");
        let e = Recipe::parse(&MIN.replace("batch = 4\n[ce]", "batch = 0\n[ce]")).unwrap_err();
        assert!(format!("{e:#}").contains("batch"), "{e:#}");
        let e = Recipe::parse(&format!("{MIN}[loss]\ntau_de = -1.0\n")).unwrap_err();
        assert!(format!("{e:#}").contains("tau_de"), "{e:#}");
        let e = Recipe::parse(&format!("{MIN}[ce]\nsteps = 1\nbatch = 2\nnegatives = 0\n")).unwrap_err();
        assert!(format!("{e:#}").contains("[ce]"), "{e:#}");
        let e = Recipe::parse(&format!("{MIN}[ablate]\nsmall_teacher_weight = 0.0\n")).unwrap_err();
        assert!(format!("{e:#}").contains("small_teacher_weight"), "{e:#}");
    }
}
