//! The one place passages become an index: what the model reads of a passage,
//! windows over long passages, vectors, BM25 blocks sized for the network, and
//! (natively) the index folder. The CLI's `index`, its `index-site` and the
//! browser's `addPassages` all build through here, with the defaults below, so
//! the same passages give the same bytes whichever way they came in.

#[cfg(all(feature = "encoder", not(target_arch = "wasm32")))]
use super::embed_cache::{self, EmbedCache, InputKind, Key};
#[cfg(feature = "encoder")]
use crate::format::shard::Passage;
use crate::format::shard::WindowSpec;
use crate::lexical::{Bm25Params, LexicalIndex};
#[cfg(feature = "encoder")]
use crate::model::Embedder;
#[cfg(feature = "encoder")]
use crate::tokenize::Tokens;
use crate::{Error, FlatIndex, Result, VectorDType};

/// Passages per encoder batch. The batch changes padding, so vectors are only
/// bit-identical between builds that batch alike: everyone uses this.
pub const DEFAULT_BATCH: usize = 32;
/// Windows kept per long passage (1: cut passages at the model's window).
pub const DEFAULT_MAX_WINDOWS: usize = 16;
/// Target size of one BM25 term block (a browser fetches one per query term).
pub const DEFAULT_BLOCK_BYTES: usize = 64 * 1024;
/// Passages per text shard (a browser fetches one per shown result).
pub const DEFAULT_SHARD_SIZE: usize = 256;
/// A static site's folder goes over the network: int8 vectors, smaller blocks
/// and shards than a folder read from disk. 1 KB term blocks: a question of
/// the wiki set fetches 5.6 KB gzip of BM25 in 4.7 blocks, against 15.3 KB
/// with 4 KB blocks and 8.8 with 2 KB, in as many requests (BENCHMARKS.md);
/// the manifest names a set of any size in a few bytes (`FileSet`), so
/// smaller files cost only files in the folder (1,219 for 10,033 pages).
pub const SITE_BLOCK_BYTES: usize = 1024;
/// Two passages (about a KB) per shard: a result fetches little more than its
/// own text (with 8, the first answer's texts on the wiki site were 18 KB gzip, 7 with 2).
pub const SITE_SHARD_SIZE: usize = 2;

/// How passages longer than the model's window are covered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Windows {
    /// Tokens shared by consecutive windows; `None`: a quarter of the window.
    pub overlap: Option<usize>,
    /// Windows kept per passage; 1 means "cut at the window" (no windows).
    pub max: usize,
}

impl Default for Windows {
    fn default() -> Self {
        Self { overlap: None, max: DEFAULT_MAX_WINDOWS }
    }
}

/// Everything that decides an index's bytes, apart from the passages and the model.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BuildOptions {
    pub dtype: VectorDType,
    pub batch: usize,
    pub windows: Windows,
    pub bm25: Bm25Params,
    /// BM25 terms are spread over as many blocks as this size asks for.
    pub block_bytes: usize,
}

impl Default for BuildOptions {
    /// A corpus indexed on disk (`ernie-search index`) or in the browser.
    fn default() -> Self {
        Self {
            dtype: VectorDType::F32,
            batch: DEFAULT_BATCH,
            windows: Windows::default(),
            bm25: Bm25Params::default(),
            block_bytes: DEFAULT_BLOCK_BYTES,
        }
    }
}

impl BuildOptions {
    /// A static site (`ernie-search index-site`).
    pub fn site() -> Self {
        Self { dtype: VectorDType::Int8, block_bytes: SITE_BLOCK_BYTES, ..Self::default() }
    }

    pub fn check(&self) -> Result<()> {
        if self.batch == 0 || self.windows.max == 0 || self.block_bytes == 0 {
            return Err(Error::Invalid("batch, windows and block size must be at least 1".into()));
        }
        self.bm25.check()
    }
}

/// What the model reads of a passage: its title, then its text (BEIR's convention).
pub fn passage_input(title: &str, text: &str) -> String {
    if title.is_empty() {
        text.to_string()
    } else {
        format!("{title} {text}")
    }
}

/// Told how many of `total` windows are encoded, after every batch.
pub trait Progress {
    fn advance(&mut self, done: usize, total: usize);
}

/// No progress to show.
impl Progress for () {
    fn advance(&mut self, _: usize, _: usize) {}
}

/// Passages' vectors, one per window.
pub struct Embedded {
    /// Per input, in input order: one vector per window.
    pub vectors: Vec<Vec<Vec<f32>>>,
    /// Inputs longer than one window.
    pub windowed: usize,
    /// Inputs with text left after the last window kept.
    pub truncated: usize,
    /// Vectors in all.
    pub rows: usize,
    /// The overlap used.
    pub overlap: usize,
}

#[cfg(feature = "encoder")]
/// Passages cut into the windows the model reads.
struct PassageWindows {
    tokens: Vec<Vec<Tokens>>,
    truncated: usize,
    overlap: usize,
}

#[cfg(feature = "encoder")]
impl PassageWindows {
    fn new<S: AsRef<str>>(embedder: &Embedder, texts: &[S], windows: Windows) -> Result<Self> {
        let refs: Vec<&str> = texts.iter().map(AsRef::as_ref).collect();
        let overlap = windows.overlap.unwrap_or(embedder.card().spec.max_passage_len / 4);
        let (tokens, truncated) = embedder.tokenize_passage_windows(&refs, overlap, windows.max)?;
        Ok(Self { tokens, truncated, overlap })
    }

    /// Every window as (passage, window), longest first so each batch pads little.
    fn longest_first(&self) -> Vec<(usize, usize)> {
        let mut order: Vec<(usize, usize)> =
            self.tokens.iter().enumerate().flat_map(|(p, w)| (0..w.len()).map(move |i| (p, i))).collect();
        order.sort_by_key(|&(p, i)| std::cmp::Reverse(self.tokens[p][i].ids.len()));
        order
    }

    fn inputs(&self, order: &[(usize, usize)]) -> Vec<&Tokens> {
        order.iter().map(|&(p, i)| &self.tokens[p][i]).collect()
    }

    /// The vectors of the windows in `order` back in passage order.
    fn into_embedded(self, order: &[(usize, usize)], vectors: Vec<Vec<f32>>) -> Result<Embedded> {
        if vectors.len() != order.len() {
            return Err(Error::Invalid(format!("{} vectors for {} windows", vectors.len(), order.len())));
        }
        let mut out: Vec<Vec<Vec<f32>>> = self.tokens.iter().map(|w| vec![Vec::new(); w.len()]).collect();
        for (&(p, i), v) in order.iter().zip(vectors) {
            out[p][i] = v;
        }
        let windowed = self.tokens.iter().filter(|w| w.len() > 1).count();
        Ok(Embedded { vectors: out, windowed, truncated: self.truncated, rows: order.len(), overlap: self.overlap })
    }
}

#[cfg(feature = "encoder")]
/// Encodes `inputs` in batches of `batch`, in the order given; `done` of the
/// `total` the caller reports were there before.
fn encode_batches(
    embedder: &Embedder,
    inputs: &[&Tokens],
    batch: usize,
    (done, total): (usize, usize),
    progress: &mut dyn Progress,
) -> Result<Vec<Vec<f32>>> {
    let mut out = Vec::with_capacity(inputs.len());
    for chunk in inputs.chunks(batch.max(1)) {
        let tokens: Vec<Tokens> = chunk.iter().map(|&t| t.clone()).collect();
        out.extend(embedder.embed_tokens(&tokens)?);
        progress.advance(done + out.len(), total);
    }
    Ok(out)
}

#[cfg(feature = "encoder")]
/// Encodes passages: long ones cut into overlapping windows, all windows
/// sorted longest first so each batch pads little.
pub fn embed_passages<S: AsRef<str>>(
    embedder: &Embedder,
    texts: &[S],
    batch: usize,
    windows: Windows,
    progress: &mut dyn Progress,
) -> Result<Embedded> {
    let w = PassageWindows::new(embedder, texts, windows)?;
    let order = w.longest_first();
    let vectors = encode_batches(embedder, &w.inputs(&order), batch, (0, order.len()), progress)?;
    w.into_embedded(&order, vectors)
}

#[cfg(all(feature = "encoder", not(target_arch = "wasm32")))]
/// As [`embed_passages`], with the windows `cache` holds taken from it and
/// only the others encoded (in the same longest-first order) and added to it.
/// Equal to a fresh build within float noise (see [`super::embed_cache`]);
/// `None`: [`embed_passages`].
pub fn embed_passages_cached<S: AsRef<str>>(
    embedder: &Embedder,
    texts: &[S],
    batch: usize,
    windows: Windows,
    cache: Option<&mut EmbedCache>,
    progress: &mut dyn Progress,
) -> Result<Embedded> {
    let Some(cache) = cache else { return embed_passages(embedder, texts, batch, windows, progress) };
    let w = PassageWindows::new(embedder, texts, windows)?;
    let order = w.longest_first();
    let vectors = encode_cached(embedder, &w.inputs(&order), InputKind::PassageWindow, batch, cache, progress)?;
    w.into_embedded(&order, vectors)
}

#[cfg(feature = "encoder")]
/// Encodes queries in batches.
pub fn embed_queries<S: AsRef<str>>(
    embedder: &Embedder,
    texts: &[S],
    batch: usize,
    progress: &mut dyn Progress,
) -> Result<Vec<Vec<f32>>> {
    let mut out = Vec::with_capacity(texts.len());
    for chunk in texts.chunks(batch.max(1)) {
        let refs: Vec<&str> = chunk.iter().map(AsRef::as_ref).collect();
        out.extend(embedder.embed_queries(&refs)?);
        progress.advance(out.len(), texts.len());
    }
    Ok(out)
}

#[cfg(all(feature = "encoder", not(target_arch = "wasm32")))]
/// As [`embed_queries`], with the queries `cache` holds taken from it and
/// only the others encoded (in input order) and added to it. `None`:
/// [`embed_queries`].
pub fn embed_queries_cached<S: AsRef<str>>(
    embedder: &Embedder,
    texts: &[S],
    batch: usize,
    cache: Option<&mut EmbedCache>,
    progress: &mut dyn Progress,
) -> Result<Vec<Vec<f32>>> {
    let Some(cache) = cache else { return embed_queries(embedder, texts, batch, progress) };
    let refs: Vec<&str> = texts.iter().map(AsRef::as_ref).collect();
    refs.iter().try_for_each(|t| crate::model::check_query(t))?;
    let tokens = embedder.query_tokenizer().encode_batch(&refs)?;
    let inputs: Vec<&Tokens> = tokens.iter().collect();
    encode_cached(embedder, &inputs, InputKind::Query, batch, cache, progress)
}

#[cfg(all(feature = "encoder", not(target_arch = "wasm32")))]
/// The vectors of `inputs`, in order: those `cache` holds, the others
/// encoded (in the order given) and added to it.
fn encode_cached(
    embedder: &Embedder,
    inputs: &[&Tokens],
    kind: InputKind,
    batch: usize,
    cache: &mut EmbedCache,
    progress: &mut dyn Progress,
) -> Result<Vec<Vec<f32>>> {
    let card = embedder.card();
    let max_len = match kind {
        InputKind::PassageWindow => card.spec.max_passage_len,
        InputKind::Query => card.spec.max_query_len,
    };
    let keys: Vec<Key> = inputs.iter().map(|t| embed_cache::key(&card.fingerprint, kind, max_len, &t.ids)).collect();
    let mut out: Vec<Option<Vec<f32>>> = keys.iter().map(|k| cache.get(k)).collect();
    let todo: Vec<usize> = (0..inputs.len()).filter(|&i| out[i].is_none()).collect();
    let missing: Vec<&Tokens> = todo.iter().map(|&i| inputs[i]).collect();
    let fresh = encode_batches(embedder, &missing, batch, (inputs.len() - todo.len(), inputs.len()), progress)?;
    if fresh.len() != todo.len() {
        return Err(Error::Invalid(format!("{} vectors for {} inputs", fresh.len(), todo.len())));
    }
    for (&i, v) in todo.iter().zip(fresh) {
        cache.insert(keys[i], &v)?;
        out[i] = Some(v);
    }
    Ok(out.into_iter().map(Option::unwrap_or_default).collect())
}

/// An index built in memory, ready to search or to write.
pub struct Built {
    pub index: FlatIndex,
    pub lexical: LexicalIndex,
    pub windows: WindowSpec,
    /// Passages longer than one window.
    pub windowed: usize,
    /// Passages with text left after the last window kept.
    pub truncated: usize,
}

#[cfg(feature = "encoder")]
/// Builds the vectors and the BM25 index of `passages` (ids unique).
pub fn build(
    embedder: &Embedder,
    passages: &[Passage],
    opts: &BuildOptions,
    progress: &mut dyn Progress,
) -> Result<Built> {
    build_with(embedder, passages, opts, |texts| embed_passages(embedder, texts, opts.batch, opts.windows, progress))
}

#[cfg(all(feature = "encoder", not(target_arch = "wasm32")))]
/// As [`build`], the windows `cache` holds taken from it
/// ([`embed_passages_cached`]); `None`: [`build`].
pub fn build_cached(
    embedder: &Embedder,
    passages: &[Passage],
    opts: &BuildOptions,
    cache: Option<&mut EmbedCache>,
    progress: &mut dyn Progress,
) -> Result<Built> {
    build_with(embedder, passages, opts, |texts| {
        embed_passages_cached(embedder, texts, opts.batch, opts.windows, cache, progress)
    })
}

#[cfg(feature = "encoder")]
fn build_with(
    embedder: &Embedder,
    passages: &[Passage],
    opts: &BuildOptions,
    embed: impl FnOnce(&[String]) -> Result<Embedded>,
) -> Result<Built> {
    opts.check()?;
    check_ids(passages.iter().map(|p| p.id.as_str()))?;
    let ids: Vec<&str> = passages.iter().map(|p| p.id.as_str()).collect();
    let texts: Vec<String> = passages.iter().map(|p| passage_input(&p.title, &p.text)).collect();
    let text_refs: Vec<&str> = texts.iter().map(String::as_str).collect();
    let lexical = build_lexical(&ids, &text_refs, opts.bm25, opts.block_bytes)?;
    let emb = embed(&texts)?;
    let mut index = FlatIndex::new(embedder.dim(), opts.dtype, &embedder.card().fingerprint)?;
    for (id, v) in ids.iter().zip(&emb.vectors) {
        index.push_windows(id, v)?;
    }
    let windows = WindowSpec {
        window: embedder.card().spec.max_passage_len,
        overlap: emb.overlap,
        max_windows: opts.windows.max,
        rows: emb.rows,
    };
    Ok(Built { index, lexical, windows, windowed: emb.windowed, truncated: emb.truncated })
}

/// BM25 over `texts`, its terms spread over as many blocks as `block_bytes` asks for
/// (measured on the serialised single block, so the split matches the files).
pub fn build_lexical<S: AsRef<str>>(
    ids: &[S],
    texts: &[S],
    bm25: Bm25Params,
    block_bytes: usize,
) -> Result<LexicalIndex> {
    let one = LexicalIndex::build(ids, texts, bm25, 1)?;
    let block = one.block(0).ok_or_else(|| Error::Invalid("BM25 block 0 was not built".into()))?;
    let size = crate::format::lexical::block_to_bytes(one.meta(), 0, block).len();
    one.split(size.div_ceil(block_bytes.max(1)) as u32)
}

/// Ids unique: an id names one passage.
pub fn check_ids<'a>(ids: impl Iterator<Item = &'a str>) -> Result<()> {
    let mut seen = std::collections::HashSet::new();
    for id in ids {
        if !seen.insert(id) {
            return Err(Error::Invalid(format!("passage id {id:?} appears twice")));
        }
    }
    if seen.is_empty() {
        return Err(Error::Invalid("the corpus holds no passages: nothing to index".into()));
    }
    Ok(())
}

/// How an index folder is written, beside what [`build`] made.
#[cfg(not(target_arch = "wasm32"))]
pub struct WriteOptions<'a> {
    pub shard_size: usize,
    pub fusion: Option<crate::format::shard::FusionSetting>,
    /// Recorded for native readers (`search`, `tune-fusion`); never for a published folder.
    pub model_path: Option<&'a std::path::Path>,
    /// The model file's bytes, to bundle into a folder that is published.
    pub model_bytes: Option<&'a [u8]>,
    /// The token-table query encoder.
    pub table: Option<super::dir::TablePart<'a>>,
    /// The vectors split by cluster as well.
    pub clusters: Option<super::dir::ClusterPart<'a>>,
}

/// Writes `built` and its passages as an index folder at `out` (replacing
/// what was there only once everything is written, and only if it is ours).
#[cfg(all(feature = "encoder", not(target_arch = "wasm32")))]
pub fn write(
    out: &std::path::Path,
    embedder: &Embedder,
    passages: &[Passage],
    built: &Built,
    opts: &WriteOptions,
) -> Result<crate::format::shard::Manifest> {
    let parts = super::dir::IndexParts {
        index: &built.index,
        passages,
        lexical: Some(&built.lexical),
        windows: Some(built.windows),
        fusion: opts.fusion.clone(),
        shard_size: opts.shard_size,
        model_name: &embedder.card().name,
        model_path: opts.model_path,
        model_bytes: opts.model_bytes,
        table: opts.table,
        clusters: opts.clusters,
    };
    super::dir::write_dir(out, &parts)
}
