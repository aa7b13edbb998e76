//! The model file: one GGUF holding the quantized weights, the architecture,
//! retrieval settings (pooling, normalisation, max lengths), the tokenizer
//! JSON and provenance. Keys under `bert.*` mirror `config.json`; keys under
//! `ernie.*` are ours.

use std::collections::HashMap;
use std::io::Cursor;

use candle_core::quantized::{gguf_file, GgmlDType, QTensor};
use candle_core::{Device, Tensor};
use gguf_file::Value;
use sha2::{Digest, Sha256};

use super::hex;
use crate::model::config::{BertConfig, ModelSpec, Pooling};
use crate::{Error, Result};

/// Bumped whenever the meaning of the keys or tensors changes.
pub const MODEL_FORMAT_VERSION: u32 = 1;
const WHAT: &str = "model file";

/// Storage type of the weight matrices.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WeightDType {
    Q8_0,
    Q4_0,
    F16,
    F32,
}

impl WeightDType {
    pub fn as_str(self) -> &'static str {
        match self {
            WeightDType::Q8_0 => "q8_0",
            WeightDType::Q4_0 => "q4_0",
            WeightDType::F16 => "f16",
            WeightDType::F32 => "f32",
        }
    }
    fn ggml(self) -> GgmlDType {
        match self {
            WeightDType::Q8_0 => GgmlDType::Q8_0,
            WeightDType::Q4_0 => GgmlDType::Q4_0,
            WeightDType::F16 => GgmlDType::F16,
            WeightDType::F32 => GgmlDType::F32,
        }
    }
}

impl std::str::FromStr for WeightDType {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        match s.to_ascii_lowercase().as_str() {
            "q8_0" | "q8" => Ok(Self::Q8_0),
            "q4_0" | "q4" => Ok(Self::Q4_0),
            "f16" => Ok(Self::F16),
            "f32" => Ok(Self::F32),
            other => Err(Error::Invalid(format!("weight dtype must be q8_0, q4_0, f16 or f32, got {other:?}"))),
        }
    }
}

/// What a model file says about itself: printed by `ernie-search info`,
/// shown by the browser as a model card.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct ModelCard {
    pub name: String,
    pub spec: ModelSpec,
    pub weights: String,
    /// sha256 over the spec and every tensor; indexes record it.
    pub fingerprint: String,
    pub provenance: serde_json::Value,
    pub tensor_count: usize,
    #[serde(skip)]
    pub tokenizer_json: String,
}

/// A parsed model file: its card and its tensors on the CPU.
pub struct ModelFile {
    pub card: ModelCard,
    pub tensors: HashMap<String, QTensor>,
}

/// Quantizes f32 tensors for storage: weight matrices whose rows split into
/// whole blocks take `dtype`; vectors (biases, layer norms) stay f32, since
/// they are tiny and precision-sensitive. The embedding tables never go below
/// Q8_0: at 4 bits every token starts from a visibly wrong vector.
pub fn quantize_tensors(tensors: Vec<(String, Tensor)>, dtype: WeightDType) -> Result<Vec<(String, QTensor)>> {
    tensors
        .into_iter()
        .map(|(name, t)| {
            let target = match dtype {
                WeightDType::Q4_0 if name.starts_with("embeddings.") => GgmlDType::Q8_0,
                _ => dtype.ggml(),
            };
            let quantizable = t.rank() == 2 && t.dims()[1] % target.block_size() == 0;
            let ggml = if quantizable { target } else { GgmlDType::F32 };
            let q = QTensor::quantize(&t.to_dtype(candle_core::DType::F32)?, ggml)?;
            Ok((name, q))
        })
        .collect()
}

/// Serialises a model into GGUF bytes. The fingerprint is computed here.
pub fn write_model(
    name: &str,
    spec: &ModelSpec,
    weights: WeightDType,
    tokenizer_json: &str,
    provenance: &serde_json::Value,
    tensors: &[(String, QTensor)],
) -> Result<Vec<u8>> {
    let fingerprint = fingerprint(spec, tensors)?;
    let b = &spec.bert;
    let u = |v: usize| Value::U32(v as u32);
    let s = |v: &str| Value::String(v.to_string());
    let meta: Vec<(&str, Value)> = vec![
        ("general.architecture", s("bert")),
        ("general.name", s(name)),
        ("ernie.format_version", Value::U32(MODEL_FORMAT_VERSION)),
        ("ernie.weights", s(weights.as_str())),
        ("ernie.fingerprint", s(&fingerprint)),
        ("ernie.pooling", s(spec.pooling.as_str())),
        ("ernie.normalize", Value::Bool(spec.normalize)),
        ("ernie.max_query_len", u(spec.max_query_len)),
        ("ernie.max_passage_len", u(spec.max_passage_len)),
        ("ernie.tokenizer_json", s(tokenizer_json)),
        ("ernie.provenance", s(&provenance.to_string())),
        ("bert.vocab_size", u(b.vocab_size)),
        ("bert.hidden_size", u(b.hidden_size)),
        ("bert.num_hidden_layers", u(b.num_hidden_layers)),
        ("bert.num_attention_heads", u(b.num_attention_heads)),
        ("bert.intermediate_size", u(b.intermediate_size)),
        ("bert.max_position_embeddings", u(b.max_position_embeddings)),
        ("bert.type_vocab_size", u(b.type_vocab_size)),
        ("bert.layer_norm_eps", Value::F64(b.layer_norm_eps)),
        ("bert.hidden_act", s(&b.hidden_act)),
    ];
    let meta_refs: Vec<(&str, &Value)> = meta.iter().map(|(k, v)| (*k, v)).collect();
    let tensor_refs: Vec<(&str, &QTensor)> = tensors.iter().map(|(k, v)| (k.as_str(), v)).collect();
    let mut out = Cursor::new(Vec::new());
    gguf_file::write(&mut out, &meta_refs, &tensor_refs)?;
    Ok(out.into_inner())
}

/// sha256 over the spec and the tensors (sorted by name): two files with the
/// same weights and settings share a fingerprint, whatever their provenance.
fn fingerprint(spec: &ModelSpec, tensors: &[(String, QTensor)]) -> Result<String> {
    let mut sorted: Vec<&(String, QTensor)> = tensors.iter().collect();
    sorted.sort_by(|a, b| a.0.cmp(&b.0));
    let data = sorted.iter().map(|(_, t)| t.data()).collect::<candle_core::Result<Vec<_>>>()?;
    let parts = sorted.iter().zip(&data).map(|((name, t), d)| (name.as_str(), t.dtype(), t.shape().dims(), d.as_ref()));
    fingerprint_of(spec, parts)
}

/// The one hash the writer records and the reader recomputes.
fn fingerprint_of<'a>(
    spec: &ModelSpec,
    sorted: impl Iterator<Item = (&'a str, GgmlDType, &'a [usize], &'a [u8])>,
) -> Result<String> {
    let mut h = Sha256::new();
    h.update(serde_json::to_vec(spec).map_err(|e| Error::format("model spec", e.to_string()))?);
    for (name, dtype, dims, data) in sorted {
        h.update(name.as_bytes());
        h.update(format!("{dtype:?}{dims:?}").as_bytes());
        h.update(data);
    }
    Ok(hex(&h.finalize()))
}

/// Reads the card only: the layout of the tensors is checked, their bytes
/// are not hashed.
pub fn read_card(bytes: &[u8]) -> Result<ModelCard> {
    let content = parse(bytes)?;
    let card = card_from(&content)?;
    tensor_spans(&content, &card.spec, bytes.len())?;
    Ok(card)
}

/// The blocks of a Q8_0 tensor (34 bytes each: an f16 scale, 32 i8) or a
/// Q4_0 one (18 bytes: an f16 scale, 16 bytes of nibbles), as (scale,
/// payload). The CPU and GPU encoders both repack from these.
pub fn ggml_blocks(raw: &[u8], block_bytes: usize) -> impl Iterator<Item = (f32, &[u8])> {
    raw.chunks_exact(block_bytes).map(|b| (half::f16::from_le_bytes([b[0], b[1]]).to_f32(), &b[2..]))
}

/// Reads a whole model file from memory. Nothing is allocated before the
/// tensors are known to be the config's own, to fit the file without
/// overlapping, and to hash to the recorded fingerprint (so a flipped byte
/// or an edited setting is refused, not run).
pub fn read_model(bytes: &[u8]) -> Result<ModelFile> {
    let content = parse(bytes)?;
    let card = card_from(&content)?;
    let spans = verified_spans(&content, &card, bytes)?;
    let mut tensors = HashMap::with_capacity(spans.len());
    for s in spans {
        let t = gguf_file::TensorInfo { ggml_dtype: s.dtype, shape: s.dims.clone().into(), offset: 0 };
        let t = t
            .read(&mut Cursor::new(&bytes[s.start..s.end]), 0, &Device::Cpu)
            .map_err(|e| Error::format(WHAT, format!("tensor {}: {e}", s.name)))?;
        tensors.insert(s.name.to_string(), t);
    }
    Ok(ModelFile { card, tensors })
}

/// Checks a whole model file (layout and fingerprint) without loading its
/// tensors; returns its card. What [`read_model`] checks, minus the copies.
pub fn verify_model(bytes: &[u8]) -> Result<ModelCard> {
    let content = parse(bytes)?;
    let card = card_from(&content)?;
    verified_spans(&content, &card, bytes)?;
    Ok(card)
}

/// The tensor spans, once their bytes and the settings hash to the card's fingerprint.
fn verified_spans<'a>(content: &'a gguf_file::Content, card: &ModelCard, bytes: &[u8]) -> Result<Vec<Span<'a>>> {
    let mut spans = tensor_spans(content, &card.spec, bytes.len())?;
    spans.sort_by(|a, b| a.name.cmp(b.name));
    let parts = spans.iter().map(|s| (s.name, s.dtype, s.dims.as_slice(), &bytes[s.start..s.end]));
    let computed = fingerprint_of(&card.spec, parts)?;
    if computed != card.fingerprint {
        return Err(Error::format(
            WHAT,
            format!(
                "fingerprint mismatch: the file records {} but its weights and settings hash to {computed}; the file is damaged or was edited",
                card.fingerprint
            ),
        ));
    }
    Ok(spans)
}

fn parse(bytes: &[u8]) -> Result<gguf_file::Content> {
    if bytes.len() < 4 || &bytes[..4] != b"GGUF" {
        let head: Vec<u8> = bytes.iter().take(8).copied().collect();
        return Err(Error::format(WHAT, format!("not a GGUF file (it starts with {head:02x?}); expected an ernie-search model written by `ernie-search convert`")));
    }
    check_alignment(bytes)?;
    let content = gguf_file::Content::read(&mut Cursor::new(bytes))
        .map_err(|e| Error::format(WHAT, format!("unreadable GGUF header: {e}")))?;
    match content.metadata.get("ernie.format_version") {
        Some(Value::U32(MODEL_FORMAT_VERSION)) => Ok(content),
        Some(Value::U32(v)) => Err(Error::Version { what: WHAT, found: *v, supported: MODEL_FORMAT_VERSION }),
        _ => Err(Error::format(
            WHAT,
            "a GGUF file, but not an ernie-search model (no ernie.format_version key); convert the checkpoint with `ernie-search convert`",
        )),
    }
}

/// candle divides by `general.alignment` unchecked (0 panics). Walks the
/// metadata, every length checked against the file, and refuses an
/// alignment that is not a power of two up to 64 KiB. Versions 2 and 3 only
/// (what candle writes); v1's 32-bit lengths are refused.
fn check_alignment(bytes: &[u8]) -> Result<()> {
    let bad = |why: String| Error::format(WHAT, format!("unreadable GGUF header: {why}"));
    let mut at = 4usize;
    let mut take = |n: u64| -> Result<&[u8]> {
        let n = usize::try_from(n).ok().filter(|n| bytes.len() - at >= *n).ok_or_else(|| bad("cut short".into()))?;
        at += n;
        Ok(&bytes[at - n..at])
    };
    let u32_of = |b: &[u8]| u32::from_le_bytes([b[0], b[1], b[2], b[3]]);
    let u64_of = |b: &[u8]| u64::from_le_bytes(b.try_into().unwrap_or([0; 8]));
    let version = u32_of(take(4)?);
    if !(2..=3).contains(&version) {
        return Err(bad(format!("GGUF version {version} (2 or 3 expected)")));
    }
    let _tensors = take(8)?;
    let kvs = u64_of(take(8)?);
    for _ in 0..kvs {
        let len = u64_of(take(8)?);
        let key = take(len)?.to_vec();
        let ty = u32_of(take(4)?);
        if key == b"general.alignment" {
            let value = match ty {
                4 => u32_of(take(4)?) as u64,
                _ => return Err(bad(format!("general.alignment of type {ty} (u32 expected)"))),
            };
            if value == 0 || !value.is_power_of_two() || value > 65536 {
                return Err(bad(format!("general.alignment {value} is not a power of two up to 65536")));
            }
            continue;
        }
        skip_value(&mut take, ty, 0)?;
    }
    Ok(())
}

/// Skips one GGUF value of type `ty` (arrays nest at most 4 deep).
fn skip_value<'b>(take: &mut impl FnMut(u64) -> Result<&'b [u8]>, ty: u32, depth: usize) -> Result<()> {
    let bad = |why: &str| Error::format(WHAT, format!("unreadable GGUF header: {why}"));
    let fixed = |ty: u32| match ty {
        0 | 1 | 7 => Some(1),
        2 | 3 => Some(2),
        4..=6 => Some(4),
        10..=12 => Some(8),
        _ => None,
    };
    match ty {
        8 => {
            let len = u64::from_le_bytes(take(8)?.try_into().unwrap_or([0; 8]));
            take(len).map(drop)
        }
        9 if depth < 4 => {
            let elem = u32::from_le_bytes(take(4)?.try_into().unwrap_or([0; 4]));
            let n = u64::from_le_bytes(take(8)?.try_into().unwrap_or([0; 8]));
            match fixed(elem) {
                Some(size) => take(n.checked_mul(size).ok_or_else(|| bad("array too long"))?).map(drop),
                None => (0..n).try_for_each(|_| skip_value(take, elem, depth + 1)),
            }
        }
        9 => Err(bad("arrays nested too deep")),
        t => fixed(t).ok_or_else(|| bad(&format!("unknown value type {t}"))).and_then(|n| take(n).map(drop)),
    }
}

/// Where one tensor's bytes are in the file.
struct Span<'a> {
    name: &'a str,
    dtype: GgmlDType,
    dims: Vec<usize>,
    start: usize,
    end: usize,
}

/// Checks the tensor table against the config before anything is read:
/// exactly the tensors the encoder needs, each of its shape and of a dtype
/// we write, each inside the file, none overlapping another. All arithmetic
/// on the file's numbers is checked, so a crafted size cannot wrap.
fn tensor_spans<'a>(content: &'a gguf_file::Content, spec: &ModelSpec, len: usize) -> Result<Vec<Span<'a>>> {
    let expected: HashMap<String, Vec<usize>> = spec.bert.tensor_shapes().into_iter().collect();
    let mut spans = Vec::with_capacity(content.tensor_infos.len());
    for (name, info) in &content.tensor_infos {
        let want = expected
            .get(name)
            .ok_or_else(|| Error::format(WHAT, format!("unexpected tensor {name:?} (not part of a BERT encoder)")))?;
        let dims = info.shape.dims();
        if dims != want.as_slice() {
            return Err(Error::format(WHAT, format!("tensor {name} has shape {dims:?}, the config says {want:?}")));
        }
        if !matches!(info.ggml_dtype, GgmlDType::F32 | GgmlDType::F16 | GgmlDType::Q8_0 | GgmlDType::Q4_0) {
            return Err(Error::format(
                WHAT,
                format!("tensor {name} has dtype {:?} (f32, f16, q8_0 or q4_0 expected)", info.ggml_dtype),
            ));
        }
        let block = info.ggml_dtype.block_size();
        let elems = dims.iter().try_fold(1usize, |a, &d| a.checked_mul(d)).filter(|e| e % block == 0);
        let size = elems.and_then(|e| (e / block).checked_mul(info.ggml_dtype.type_size()));
        let start = content.tensor_data_offset.checked_add(info.offset);
        let end = start.zip(size).and_then(|(s, n)| s.checked_add(n as u64));
        match (start, end) {
            (Some(start), Some(end)) if end <= len as u64 => spans.push(Span {
                name,
                dtype: info.ggml_dtype,
                dims: dims.to_vec(),
                start: start as usize,
                end: end as usize,
            }),
            _ => {
                let end = end.map_or("past 2^64".to_string(), |e| e.to_string());
                return Err(Error::format(
                    WHAT,
                    format!("truncated: tensor {name} ends at byte {end} but the file has {len} bytes"),
                ));
            }
        }
    }
    if let Some(missing) = expected.keys().find(|n| !content.tensor_infos.contains_key(*n)) {
        return Err(Error::format(WHAT, format!("missing tensor {missing}")));
    }
    spans.sort_by_key(|s| s.start);
    if let Some(w) = spans.windows(2).find(|w| w[1].start < w[0].end) {
        return Err(Error::format(WHAT, format!("tensors {} and {} share bytes", w[0].name, w[1].name)));
    }
    Ok(spans)
}

fn card_from(content: &gguf_file::Content) -> Result<ModelCard> {
    let m = &content.metadata;
    let get = |k: &str| m.get(k).ok_or_else(|| Error::format(WHAT, format!("missing metadata key {k}")));
    let string = |k: &str| -> Result<String> {
        match get(k)? {
            Value::String(s) => Ok(s.clone()),
            v => Err(Error::format(WHAT, format!("{k} should be a string, found {v:?}"))),
        }
    };
    let usize_ = |k: &str| -> Result<usize> {
        get(k)?.to_u32().map(|v| v as usize).map_err(|e| Error::format(WHAT, format!("{k}: {e}")))
    };
    let bert = BertConfig {
        vocab_size: usize_("bert.vocab_size")?,
        hidden_size: usize_("bert.hidden_size")?,
        num_hidden_layers: usize_("bert.num_hidden_layers")?,
        num_attention_heads: usize_("bert.num_attention_heads")?,
        intermediate_size: usize_("bert.intermediate_size")?,
        max_position_embeddings: usize_("bert.max_position_embeddings")?,
        type_vocab_size: usize_("bert.type_vocab_size")?,
        layer_norm_eps: get("bert.layer_norm_eps")?
            .to_f64()
            .map_err(|e| Error::format(WHAT, format!("bert.layer_norm_eps: {e}")))?,
        hidden_act: string("bert.hidden_act")?,
    };
    bert.validate()?;
    let pooling: Pooling = string("ernie.pooling")?.parse()?;
    let normalize =
        get("ernie.normalize")?.to_bool().map_err(|e| Error::format(WHAT, format!("ernie.normalize: {e}")))?;
    let provenance = serde_json::from_str(&string("ernie.provenance")?)
        .map_err(|e| Error::format(WHAT, format!("ernie.provenance is not JSON: {e}")))?;
    Ok(ModelCard {
        name: string("general.name")?,
        spec: ModelSpec {
            bert,
            pooling,
            normalize,
            max_query_len: usize_("ernie.max_query_len")?,
            max_passage_len: usize_("ernie.max_passage_len")?,
        },
        weights: string("ernie.weights")?,
        fingerprint: string("ernie.fingerprint")?,
        provenance,
        tensor_count: content.tensor_infos.len(),
        tokenizer_json: string("ernie.tokenizer_json")?,
    })
}
