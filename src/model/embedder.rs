//! The transformer student as an embedder: a model file's tokenizers and
//! encoder (candle on the CPU, WGSL on the GPU), texts in, vectors out.

use candle_core::{Device, Tensor};

use super::encoder::{Encoder, Kernel, Weights};
use super::fused::FusedEncoder;
use super::{check_query, pool};
use crate::backend::{warn, Backend, BackendInfo, GpuOptions};
use crate::format::model::{read_model, ModelCard, ModelFile};
use crate::tokenize::{TextTokenizer, Tokens};
use crate::{Error, Result};

/// Turns texts into vectors with one model file.
pub struct Embedder {
    card: ModelCard,
    encoder: CpuEncoder,
    query_tok: TextTokenizer,
    passage_tok: TextTokenizer,
    gpu: GpuSlot,
}

/// The CPU encoder: ours ([`Kernel::Fused`]) or candle's.
enum CpuEncoder {
    Fused(Box<FusedEncoder>),
    Candle(Encoder),
}

/// The GPU side of an [`Embedder`]: what was asked, the resident encoder
/// while it works, and why it is off when it is.
#[derive(Default)]
struct GpuSlot {
    requested: Backend,
    #[cfg(feature = "gpu")]
    encoder: Option<crate::gpu::GpuEncoder>,
    fallback: std::sync::Mutex<Option<String>>,
    /// `auto` without a usable GPU: why (not a fallback, the expected choice).
    note: Option<String>,
}

impl Embedder {
    /// Loads a model file (GGUF bytes, see [`crate::format::model`]).
    /// With the platform's default [`Kernel`].
    pub fn from_bytes(bytes: &[u8]) -> Result<Self> {
        Self::from_model_file(read_model(bytes)?, Kernel::default())
    }

    pub fn from_bytes_with(bytes: &[u8], kernel: Kernel) -> Result<Self> {
        Self::from_model_file(read_model(bytes)?, kernel)
    }

    pub fn from_model_file(file: ModelFile, kernel: Kernel) -> Result<Self> {
        let ModelFile { card, mut tensors } = file;
        let spec = &card.spec;
        // Ours multiplies int8 blocks: an f32 or f16 file stays exact on candle.
        let blocks = matches!(card.weights.as_str(), "q8_0" | "q4_0");
        let encoder = if kernel == Kernel::Fused && blocks && FusedEncoder::supports(&spec.bert) {
            CpuEncoder::Fused(Box::new(FusedEncoder::load(&mut tensors, &spec.bert)?))
        } else {
            CpuEncoder::Candle(Encoder::load(&mut Weights::new(&mut tensors, kernel), &spec.bert)?)
        };
        let json = card.tokenizer_json.as_bytes();
        let max_pos = spec.bert.max_position_embeddings;
        let query_tok = TextTokenizer::from_bytes(json, spec.max_query_len.min(max_pos))?;
        let passage_tok = TextTokenizer::from_bytes(json, spec.max_passage_len.min(max_pos))?;
        if query_tok.vocab_size() > spec.bert.vocab_size {
            return Err(Error::format(
                "model file",
                format!("tokenizer has {} tokens but the model only {}", query_tok.vocab_size(), spec.bert.vocab_size),
            ));
        }
        Ok(Self {
            card,
            encoder,
            query_tok,
            passage_tok,
            gpu: GpuSlot { requested: Backend::Cpu, ..Default::default() },
        })
    }

    /// Loads a model file and, unless `backend` is [`Backend::Cpu`], starts
    /// the GPU encoder with it. The CPU encoder is always loaded too: when
    /// the GPU cannot start or fails later, embedding goes on there, and
    /// [`backend`](Self::backend) says why.
    pub async fn load(bytes: &[u8], kernel: Kernel, backend: Backend, opts: &GpuOptions) -> Result<Self> {
        let file = read_model(bytes)?;
        let mut fallback = None;
        #[cfg(feature = "gpu")]
        let mut gpu = None;
        if backend != Backend::Cpu {
            #[cfg(feature = "gpu")]
            match start_gpu(&file, opts).await {
                Ok(e) => gpu = Some(e),
                Err(e) => fallback = Some(format!("{e}; using the CPU")),
            }
            #[cfg(not(feature = "gpu"))]
            {
                let _ = opts;
                fallback =
                    Some("this build has no GPU backend (cargo feature `gpu` is off); using the CPU".to_string());
            }
        }
        if let (Backend::Gpu, Some(why)) = (backend, &fallback) {
            warn(why);
        }
        // `auto` on a machine without a usable GPU is the CPU by choice.
        let note = if backend == Backend::Auto { fallback.take() } else { None };
        let mut e = Self::from_model_file(file, kernel)?;
        e.gpu = GpuSlot {
            requested: backend,
            #[cfg(feature = "gpu")]
            encoder: gpu,
            fallback: std::sync::Mutex::new(fallback),
            note,
        };
        Ok(e)
    }

    /// [`load`](Self::load), blocking, with the platform's default kernel
    /// and GPU options (natively only: the browser's GPU is async).
    #[cfg(not(target_arch = "wasm32"))]
    pub fn from_bytes_on(bytes: &[u8], backend: Backend) -> Result<Self> {
        crate::backend::block_on(Self::load(bytes, Kernel::default(), backend, &GpuOptions::default()))
            .unwrap_or_else(|| Err(Error::Gpu("starting the GPU timed out".into())))
    }

    /// Where embedding runs now, on which adapter, and why not on the GPU.
    pub fn backend(&self) -> BackendInfo {
        let fallback = self.gpu.fallback.lock().ok().and_then(|f| f.clone());
        #[cfg(feature = "gpu")]
        if let Some(enc) = &self.gpu.encoder {
            let on = self.gpu_encoder().is_some();
            let fallback = fallback.or_else(|| enc.context().poisoned());
            return BackendInfo {
                requested: self.gpu.requested,
                backend: if on { "gpu" } else { "cpu" },
                scan: if on { "gpu" } else { "cpu" },
                adapter: Some(enc.context().report().clone()),
                fallback,
                note: None,
                cpu_kernel: Some(self.cpu_kernel()),
                kernel_choice: self.kernel_choice(),
            };
        }
        BackendInfo {
            note: self.gpu.note.clone(),
            cpu_kernel: Some(self.cpu_kernel()),
            kernel_choice: self.kernel_choice(),
            ..BackendInfo::cpu(self.gpu.requested, fallback)
        }
    }

    /// The GPU encoder while it is usable.
    #[cfg(feature = "gpu")]
    pub fn gpu_encoder(&self) -> Option<&crate::gpu::GpuEncoder> {
        let enc = self.gpu.encoder.as_ref()?;
        let off = self.gpu.fallback.lock().map(|f| f.is_some()).unwrap_or(true);
        (!off && enc.context().healthy()).then_some(enc)
    }

    /// Whether embedding runs on the GPU now.
    pub fn on_gpu(&self) -> bool {
        #[cfg(feature = "gpu")]
        return self.gpu_encoder().is_some();
        #[cfg(not(feature = "gpu"))]
        false
    }

    /// Turns the GPU off for good (the first reason is kept) and says so once.
    #[cfg_attr(not(feature = "gpu"), allow(dead_code))]
    pub(crate) fn disable_gpu(&self, why: String) {
        if let Ok(mut f) = self.gpu.fallback.lock() {
            if f.is_none() {
                warn(&why);
                *f = Some(why);
            }
        }
    }

    pub fn card(&self) -> &ModelCard {
        &self.card
    }

    /// The tokenizer queries go through (cut at the model's query length).
    pub fn query_tokenizer(&self) -> &TextTokenizer {
        &self.query_tok
    }

    /// Length of the vectors this model produces.
    pub fn dim(&self) -> usize {
        self.card.spec.bert.hidden_size
    }

    /// Embeds questions. Empty and absurdly long queries are refused.
    pub fn embed_queries(&self, texts: &[&str]) -> Result<Vec<Vec<f32>>> {
        for t in texts {
            check_query(t)?;
        }
        let tokens = self.query_tok.encode_batch(texts)?;
        self.embed_tokens(&tokens)
    }

    /// Embeds passages as one batch; each is cut to the passage window.
    pub fn embed_passages(&self, texts: &[&str]) -> Result<Vec<Vec<f32>>> {
        let tokens = self.passage_tok.encode_batch(texts)?;
        self.embed_tokens(&tokens)
    }

    /// Tokenizes passages (the indexer sorts them by length before batching).
    pub fn tokenize_passages(&self, texts: &[&str]) -> Result<Vec<Tokens>> {
        self.passage_tok.encode_batch(texts)
    }

    /// Tokenizes passages into windows of the passage length (see
    /// [`TextTokenizer::encode_windows`]); a passage that fits is one window.
    /// Also returns how many passages had text past the last window kept.
    pub fn tokenize_passage_windows(
        &self,
        texts: &[&str],
        overlap: usize,
        max_windows: usize,
    ) -> Result<(Vec<Vec<Tokens>>, usize)> {
        let mut cut = 0;
        let mut out = Vec::with_capacity(texts.len());
        for t in texts {
            let (w, more) = self.passage_tok.encode_windows(t, overlap, max_windows)?;
            cut += more as usize;
            out.push(w);
        }
        Ok((out, cut))
    }

    /// As [`embed_queries`](Self::embed_queries), on the GPU when it is on.
    pub async fn embed_queries_async(&self, texts: &[&str]) -> Result<Vec<Vec<f32>>> {
        for t in texts {
            check_query(t)?;
        }
        let tokens = self.query_tok.encode_batch(texts)?;
        self.embed_tokens_async(&tokens).await
    }

    /// As [`embed_passages`](Self::embed_passages), on the GPU when it is on.
    pub async fn embed_passages_async(&self, texts: &[&str]) -> Result<Vec<Vec<f32>>> {
        let tokens = self.passage_tok.encode_batch(texts)?;
        self.embed_tokens_async(&tokens).await
    }

    /// One forward pass over a batch on the GPU when it is on (one
    /// submission), else on the CPU. A GPU failure turns the GPU off, with a
    /// warning, and the batch is embedded on the CPU.
    pub async fn embed_tokens_async(&self, batch: &[Tokens]) -> Result<Vec<Vec<f32>>> {
        #[cfg(feature = "gpu")]
        if let (Some(enc), false) = (self.gpu_encoder(), batch.is_empty()) {
            let (ids, mask, len) = pad(batch);
            match enc.embed(&ids, &mask, batch.len(), len).await {
                Ok(v) => return Ok(v.chunks(self.dim()).map(<[f32]>::to_vec).collect()),
                Err(Error::Gpu(e)) => self.disable_gpu(format!("the GPU encoder failed ({e}); using the CPU")),
                Err(e) => return Err(e),
            }
        }
        self.embed_tokens_cpu(batch)
    }

    /// One forward pass over a batch, padded to its longest member: on the
    /// GPU when it is on (natively; in the browser use the async methods),
    /// else on the CPU.
    pub fn embed_tokens(&self, batch: &[Tokens]) -> Result<Vec<Vec<f32>>> {
        #[cfg(all(feature = "gpu", not(target_arch = "wasm32")))]
        if self.on_gpu() {
            return crate::backend::block_on(self.embed_tokens_async(batch)).unwrap_or_else(|| {
                self.disable_gpu("the GPU encoder did not finish in time; using the CPU".into());
                self.embed_tokens_cpu(batch)
            });
        }
        self.embed_tokens_cpu(batch)
    }

    /// The kernel and threads the CPU encoder runs, e.g. "fused avx-vnni, 2
    /// threads", or "candle".
    pub fn cpu_kernel(&self) -> String {
        match &self.encoder {
            CpuEncoder::Fused(f) => {
                let n = f.threads();
                format!("fused {}, {n} thread{}", f.isa().as_str(), if n == 1 { "" } else { "s" })
            }
            CpuEncoder::Candle(_) => "candle".to_string(),
        }
    }

    /// How the fused encoder chose how it runs, where its build times that
    /// at load (the relaxed-SIMD build's kernel, the threaded build's split
    /// of a query).
    pub fn kernel_choice(&self) -> Option<String> {
        match &self.encoder {
            CpuEncoder::Fused(f) => f.choices(),
            CpuEncoder::Candle(_) => None,
        }
    }

    /// The fused encoder, when this embedder runs it (benchmarks pick its
    /// kernel and threads).
    pub fn fused_mut(&mut self) -> Option<&mut FusedEncoder> {
        match &mut self.encoder {
            CpuEncoder::Fused(f) => Some(f),
            CpuEncoder::Candle(_) => None,
        }
    }

    /// The CPU encoder, whatever the backend.
    pub fn embed_tokens_cpu(&self, batch: &[Tokens]) -> Result<Vec<Vec<f32>>> {
        if batch.is_empty() {
            return Ok(Vec::new());
        }
        let encoder = match &self.encoder {
            CpuEncoder::Fused(f) => {
                let seqs: Vec<&[u32]> = batch.iter().map(|t| t.ids.as_slice()).collect();
                return f.embed(&seqs, self.card.spec.pooling, self.card.spec.normalize);
            }
            CpuEncoder::Candle(e) => e,
        };
        let (ids, mask, len) = pad(batch);
        let ids = Tensor::from_vec(ids, (batch.len(), len), &Device::Cpu)?;
        let mask = Tensor::from_vec(mask, (batch.len(), len), &Device::Cpu)?;
        let hidden = encoder.forward(&ids, &mask)?;
        let mut pooled = pool::pool(&hidden, &mask, self.card.spec.pooling)?;
        if self.card.spec.normalize {
            pooled = pool::l2_normalize(&pooled)?;
        }
        Ok(pooled.to_vec2::<f32>()?)
    }
}

#[cfg(feature = "gpu")]
async fn start_gpu(file: &ModelFile, opts: &GpuOptions) -> Result<crate::gpu::GpuEncoder> {
    let ctx = crate::gpu::GpuContext::new(opts).await?;
    let spec = &file.card.spec;
    let enc =
        crate::gpu::GpuEncoder::upload(ctx.clone(), &file.tensors, &spec.bert, spec.pooling, spec.normalize).await?;
    #[cfg(feature = "testing")]
    if opts.fault == Some(crate::backend::Fault::LoseDevice) {
        ctx.lose_device();
    }
    Ok(enc)
}

/// A batch padded to its longest member: ids, mask (1 real, 0 padding), length.
fn pad(batch: &[Tokens]) -> (Vec<u32>, Vec<f32>, usize) {
    let len = batch.iter().map(|t| t.ids.len()).max().unwrap_or(0).max(1);
    let mut ids = vec![0u32; batch.len() * len];
    let mut mask = vec![0f32; batch.len() * len];
    for (row, t) in batch.iter().enumerate() {
        ids[row * len..row * len + t.ids.len()].copy_from_slice(&t.ids);
        mask[row * len..row * len + t.ids.len()].fill(1.0);
    }
    (ids, mask, len)
}
