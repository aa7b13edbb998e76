//! `ernie-search index`: a corpus file into an index folder, through the
//! library's builder (`ernie_search::index::builder`), as `index-site` does.

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Context, Result};
use ernie_search::format::shard::{FusionSetting, Manifest, Part, Passage};
use ernie_search::index::builder::embed_queries;
use ernie_search::index::builder::{self, BuildOptions, Built, WriteOptions, DEFAULT_BATCH, DEFAULT_SHARD_SIZE};
use ernie_search::index::dir::{ClusterPart, TablePart};
use ernie_search::index::embed_cache::EmbedCache;
use ernie_search::{Embedder, Fusion, VectorDType};
use ernie_search_data::corpus::read_corpus;
use ernie_search_data::progress::Bar;
use ernie_search_train::table::pseudo_queries;

use super::table::IndexTable;
use super::vectors::{Chosen, Served};
use crate::flags::{alpha, positive, Bm25Args, TableArgs, VectorArgs, VectorLayout, WindowArgs};

#[derive(clap::Args)]
pub struct Args {
    corpus: PathBuf,
    #[arg(long)]
    model: PathBuf,
    #[arg(long, short)]
    out: PathBuf,
    /// Vector storage: f32, f16 or int8
    #[arg(long, default_value_t = BuildOptions::default().dtype.as_str().into())]
    dtype: String,
    #[arg(long, default_value_t = DEFAULT_BATCH, value_parser = positive)]
    batch: usize,
    /// Passages per text shard (a browser fetches a shard per shown result)
    #[arg(long, default_value_t = DEFAULT_SHARD_SIZE, value_parser = positive)]
    shard_size: usize,
    #[command(flatten)]
    windows: WindowArgs,
    #[command(flatten)]
    bm25: Bm25Args,
    /// Target size of a BM25 term block in KiB (a browser fetches one per query term)
    #[arg(long, default_value_t = BuildOptions::default().block_bytes / 1024, value_parser = positive)]
    block_kib: usize,
    /// Hybrid weight of the dense side (0..1) [default: reciprocal rank
    /// fusion until `tune-fusion` stores a tuned weight]
    #[arg(long, value_parser = alpha)]
    alpha: Option<f32>,
    /// Copy the model into the folder, so it deploys to a web server as it is
    #[arg(long)]
    bundle_model: bool,
    #[command(flatten)]
    table: TableArgs,
    #[command(flatten)]
    vectors: VectorArgs,
    /// Encode every passage and pseudo-query again, ignoring (and not
    /// updating) the embedding cache of rebuilds
    #[arg(long)]
    no_embed_cache: bool,
    /// The CPU encoder: fused (ours), or candle's quantized or dense kernel
    #[arg(long, default_value = "fused")]
    kernel: ernie_search::Kernel,
}

pub fn run(a: Args) -> Result<()> {
    let build = build_options(&a.dtype, a.batch, a.windows, a.bm25, a.block_kib)?;
    let embed_cache = (!a.no_embed_cache).then(|| a.table.cache.dir());
    let table = (!a.table.no_table).then_some(a.table);
    let clusters = a.vectors.vectors == Some(VectorLayout::Clusters);
    let write = Layout {
        shard_size: a.shard_size,
        alpha: a.alpha,
        bundle_model: a.bundle_model,
        table,
        vectors: a.vectors,
        clusters,
        embed_cache,
        kernel: a.kernel,
    };
    index_passages(&read_corpus(&a.corpus)?, &a.model, &a.out, &build, &write).map(|_| ())
}

/// The flags `index` and `index-site` share, as the builder's options.
pub fn build_options(
    dtype: &str,
    batch: usize,
    windows: WindowArgs,
    bm25: Bm25Args,
    block_kib: usize,
) -> Result<BuildOptions> {
    let dtype: VectorDType = dtype.parse()?;
    Ok(BuildOptions { dtype, batch, windows: windows.into(), bm25: bm25.into(), block_bytes: block_kib * 1024 })
}

/// How the folder is laid out beside what the builder makes.
pub struct Layout {
    pub shard_size: usize,
    pub alpha: Option<f32>,
    /// A published folder carries its model (and never a path of this machine).
    pub bundle_model: bool,
    /// The token table to build beside the vectors (`None`: `--no-table`).
    pub table: Option<TableArgs>,
    pub vectors: VectorArgs,
    /// Write the vectors by cluster as well.
    pub clusters: bool,
    /// The cache folder whose embedding cache the build reads and updates
    /// (`None`: `--no-embed-cache`, every vector encoded).
    pub embed_cache: Option<PathBuf>,
    /// The CPU encoder the passages go through (`--kernel`).
    pub kernel: ernie_search::Kernel,
}

/// Builds and writes the index folder, then reports its parts.
pub fn index_passages(
    passages: &[Passage],
    model: &Path,
    out: &Path,
    build: &BuildOptions,
    layout: &Layout,
) -> Result<Manifest> {
    let model_bytes = crate::load::model_file(model)?;
    let embedder =
        Embedder::from_bytes_with(&model_bytes, layout.kernel).with_context(|| format!("{}", model.display()))?;
    let mut cache = layout.embed_cache.as_deref().map(|dir| CacheAt::open(dir, &embedder));
    eprintln!("encoder: {}", embedder.cpu_kernel());
    let start = Instant::now();
    let built = builder::build_cached(
        &embedder,
        passages,
        build,
        cache.as_mut().map(|c| &mut c.cache),
        &mut Bar::new(0, "passages"),
    )?;
    let seconds = start.elapsed().as_secs_f64();
    let table = match &layout.table {
        Some(args) => {
            let cache = cache.as_mut().map(|c| &mut c.cache);
            Some(super::table::for_index(&embedder, passages, &built.index, Some(&built.lexical), args, cache)?)
        }
        None => None,
    };
    let table_seconds = start.elapsed().as_secs_f64() - seconds;
    if let Some(c) = &cache {
        c.save();
    }
    let hot = match &table {
        Some(t) => hot_chunks(passages, t)?,
        None => Vec::new(),
    };
    let chosen = match layout.clusters {
        true => Some(cluster(&embedder, passages, &built, table.as_ref(), layout)?),
        false => None,
    };
    let model_abs = std::fs::canonicalize(model).unwrap_or_else(|_| model.to_path_buf());
    let write = WriteOptions {
        shard_size: layout.shard_size,
        fusion: layout.alpha.map(|alpha| FusionSetting {
            fusion: Fusion::Convex { alpha },
            tuned_on: Some("given at indexing".into()),
        }),
        model_path: (!layout.bundle_model).then_some(model_abs.as_path()),
        model_bytes: layout.bundle_model.then_some(model_bytes.as_slice()),
        table: table.as_ref().map(|t| TablePart {
            file: &t.file,
            taught: &t.taught,
            fusion: t.fusion.as_ref(),
            hot: &hot,
        }),
        clusters: chosen.as_ref().map(|c| ClusterPart {
            clustering: &c.clustering,
            nprobe: c.nprobe,
            bits: c.bits,
            measured: Some(c.measured.as_str()),
        }),
    };
    let written = Instant::now();
    let m = builder::write(out, &embedder, passages, &built, &write)
        .with_context(|| format!("cannot write index {}", out.display()))?;
    report(out, &m, &built, seconds, model_bytes.len())?;
    println!(
        "  time     vectors and BM25 {seconds:.1}s, token table {table_seconds:.1}s, writing {:.1}s",
        written.elapsed().as_secs_f64()
    );
    Ok(m)
}

/// The vectors' clusters, the probe measured with the queries a visitor's
/// page makes (the table's when the folder carries one, else the
/// transformer's), ranked as the folder serves them.
fn cluster(
    embedder: &Embedder,
    passages: &[Passage],
    built: &Built,
    table: Option<&IndexTable>,
    layout: &Layout,
) -> Result<Chosen> {
    let encode = |texts: &[String]| -> Result<Vec<Option<Vec<f32>>>> {
        match table {
            Some(t) => t.query_ids(texts)?.iter().map(|ids| Ok(t.file.table.encode_ids(ids)?)).collect(),
            None => Ok(embed_queries(embedder, texts, 64, &mut ())?.into_iter().map(Some).collect()),
        }
    };
    let given = layout.alpha.map(|alpha| Fusion::Convex { alpha });
    let fusion = match table {
        Some(t) => t.fusion.as_ref().map(|f| f.fusion).or(given),
        None => given,
    };
    let served = Served {
        encoder: if table.is_some() { "token table" } else { "transformer" },
        encode: &encode,
        lexical: Some((&built.lexical, fusion.unwrap_or_default())),
    };
    super::vectors::choose(&built.index, passages, &served, &layout.vectors)
}

/// Table chunks at least a tenth of the corpus's pseudo-queries need (the
/// commonest words'), the most needed first, at most eight: loaded with the
/// head, they save most queries a request.
fn hot_chunks(passages: &[Passage], table: &IndexTable) -> Result<Vec<usize>> {
    let texts: Vec<String> = pseudo_queries(passages, 1000, 0x5EED_0407).into_iter().map(|q| q.text).collect();
    let rows = table.file.table.chunk_rows().max(1);
    let mut counts = std::collections::HashMap::<usize, usize>::new();
    for ids in table.query_ids(&texts)? {
        let mut chunks: Vec<usize> = ids.iter().map(|&t| t as usize / rows).collect();
        chunks.sort_unstable();
        chunks.dedup();
        chunks.into_iter().for_each(|c| *counts.entry(c).or_default() += 1);
    }
    let mut hot: Vec<(usize, usize)> = counts.into_iter().filter(|&(_, n)| n * 10 >= texts.len().max(1)).collect();
    hot.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
    Ok(hot.into_iter().take(8).map(|(c, _)| c).collect())
}

/// The embedding cache of one model in a cache folder, and where it lives.
struct CacheAt {
    cache: EmbedCache,
    path: PathBuf,
}

impl CacheAt {
    /// The cache file of `embedder`'s model; one that cannot be used is
    /// reported and the build goes on without it.
    fn open(dir: &Path, embedder: &Embedder) -> Self {
        let fingerprint = &embedder.card().fingerprint;
        let path = EmbedCache::path(dir, fingerprint);
        let (cache, error) = EmbedCache::open(&path, fingerprint, embedder.dim());
        if let Some(e) = error {
            eprintln!("warning: embedding cache {} not used, every vector is encoded: {e}", path.display());
        }
        Self { cache, path }
    }

    /// Writes the cache (a failure is a warning: the index does not need it) and reports its use.
    fn save(&self) {
        if let Err(e) = self.cache.save(&self.path) {
            eprintln!("warning: cannot write the embedding cache {}: {e}", self.path.display());
        }
        println!(
            "embeddings: {} reused from the cache, {} encoded (cache {})",
            thousands(self.cache.reused()),
            thousands(self.cache.encoded()),
            self.path.display()
        );
    }
}

/// 12345 as "12,345".
fn thousands(n: usize) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

fn report(out: &Path, m: &Manifest, built: &Built, seconds: f64, model_len: usize) -> Result<()> {
    let lex = m.lexical.as_ref().context("the manifest lost its lexical part")?;
    let texts_bytes: u64 =
        m.shards.names(Part::Shard).map(|s| std::fs::metadata(out.join(s)).map_or(0, |f| f.len())).sum();
    if let Some(f) = &m.model_file {
        println!("bundled the model as {f} ({:.1} MB)", model_len as f64 / 1e6);
    }
    let w = &built.windows;
    println!(
        "indexed {} passages in {seconds:.1}s ({:.1} passages/s) -> {}\n  vectors  {} {} x {} ({} passages in windows of {} tokens, {} cut after {} windows): {:.1} MB\n  BM25     {} terms in {} blocks (k1 {} b {}): {:.1} MB\n  texts    {} shards: {:.1} MB",
        m.count, m.count as f64 / seconds.max(1e-9), out.display(),
        w.rows, m.dtype.as_str(), m.dim, built.windowed, w.window, built.truncated, w.max_windows, m.index_bytes as f64 / 1e6,
        lex.terms, lex.blocks.len(), lex.k1, lex.b, lex.bytes as f64 / 1e6,
        m.shards.len(), texts_bytes as f64 / 1e6
    );
    if let Some(t) = &m.table {
        println!(
            "  table    {} chunks of {} token rows + a {:.1} MB head (tokenizer): {:.1} MB",
            t.n_chunks(),
            t.chunk_rows,
            t.head_bytes as f64 / 1e6,
            t.bytes as f64 / 1e6
        );
    }
    if let Some(c) = &m.clusters {
        println!(
            "  clusters {} lists (largest {:.0} KB), a query probes {} + a {:.0} KB head: {:.1} MB",
            c.lists.len(),
            c.max_list_bytes as f64 / 1e3,
            c.nprobe,
            c.head_bytes as f64 / 1e3,
            c.bytes as f64 / 1e6
        );
    }
    Ok(())
}
