//! `ernie-search index-site`: a built static site's pages into an index
//! folder inside it, with the model and the search widget beside it.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use ernie_search::format::shard::{Manifest, Part, MANIFEST_FILE as MANIFEST};
use ernie_search::index::builder::{BuildOptions, DEFAULT_BATCH, SITE_SHARD_SIZE};

use super::index::{build_options, index_passages, Layout};
use crate::flags::{alpha, positive, Bm25Args, TableArgs, VectorArgs, VectorLayout, WindowArgs};

#[derive(clap::Args)]
pub struct Args {
    public_dir: PathBuf,
    /// The model file [default: all-MiniLM-L6-v2 in Q8_0, fetched and
    /// converted into the cache on first use]
    #[arg(long)]
    model: Option<PathBuf>,
    /// Folder inside PUBLIC_DIR to write
    #[arg(long, default_value = "_ernie")]
    out_name: String,
    /// The built npm package (scripts/build-wasm.sh): widget and wasm files to
    /// copy [default: the ones built into this binary]
    #[arg(long)]
    assets: Option<PathBuf>,
    /// Vector storage: f32, f16 or int8
    #[arg(long, default_value_t = BuildOptions::site().dtype.as_str().into())]
    dtype: String,
    #[arg(long, default_value_t = DEFAULT_BATCH, value_parser = positive)]
    batch: usize,
    #[arg(long, default_value_t = SITE_SHARD_SIZE, value_parser = positive)]
    shard_size: usize,
    #[command(flatten)]
    windows: WindowArgs,
    #[command(flatten)]
    bm25: Bm25Args,
    #[arg(long, default_value_t = BuildOptions::site().block_bytes / 1024, value_parser = positive)]
    block_kib: usize,
    /// Hybrid weight of the dense side [default: reciprocal rank fusion]
    #[arg(long, value_parser = alpha)]
    alpha: Option<f32>,
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

/// The files of the built npm package a site serves beside its index.
const WIDGET_FILES: &[&str] = &["ernie_search.js", "ernie_search_bg.wasm"];
/// The light engine's (no model): what a visitor loads when the folder
/// carries a token table and clusters.
const LIGHT_FILES: &[&str] = &["ernie_search_light.js", "ernie_search_light_bg.wasm"];

mod embedded {
    include!(concat!(env!("OUT_DIR"), "/assets.rs"));
}

/// Where the widget's files come from.
enum Assets {
    Folder(PathBuf),
    Embedded,
}

impl Assets {
    /// `--assets DIR`, else the files built into the binary, if it has them all.
    fn choose(dir: Option<PathBuf>, light: bool) -> Result<Self> {
        let needed: Vec<&str> = WIDGET_FILES.iter().chain(if light { LIGHT_FILES } else { &[] }).copied().collect();
        let Some(dir) = dir else {
            let has = |f: &&str| embedded::EMBEDDED.iter().any(|(n, _)| n == f);
            if let Some(f) = needed.iter().find(|f| !has(f)) {
                bail!(
                    "this binary was built without the browser package ({f} is missing): build it (bash scripts/build-wasm.sh{}), then this binary again (cargo build --release -p ernie-search-cli), or pass --assets DIR",
                    if light { " && bash scripts/build-wasm.sh --light" } else { "" }
                );
            }
            return Ok(Assets::Embedded);
        };
        for f in &needed {
            if !dir.join(f).is_file() {
                let build = if LIGHT_FILES.contains(f) {
                    "the light engine a visitor runs with the token table: build it (bash scripts/build-wasm.sh --light), or pass --no-table"
                } else {
                    "build the wasm package first (bash scripts/build-wasm.sh) or pass --assets DIR"
                };
                bail!("{} lacks {f}, {build}", dir.display());
            }
        }
        Ok(Assets::Folder(dir))
    }

    /// Copies the widget's JS, wasm and CSS beside the index; returns their bytes.
    fn copy_to(&self, out: &Path) -> Result<u64> {
        match self {
            Assets::Folder(dir) => copy_widget(dir, out),
            Assets::Embedded => {
                let mut total = 0;
                for (name, bytes) in embedded::EMBEDDED {
                    let to = out.join(name);
                    std::fs::write(&to, bytes).with_context(|| format!("cannot write {}", to.display()))?;
                    total += bytes.len() as u64;
                }
                Ok(total)
            }
        }
    }
}

pub fn run(a: Args) -> Result<()> {
    let assets = Assets::choose(a.assets.clone(), !a.table.no_table)?;
    let model = match &a.model {
        Some(m) => m.clone(),
        None => crate::load::default_model(&a.table.cache.dir())?,
    };
    check_out_name(&a.out_name)?;
    let out = a.public_dir.join(&a.out_name);
    let (passages, stats) = ernie_search_data::site::read_site(&a.public_dir, &out)?;
    if !stats.links_skipped.is_empty() {
        let shown: Vec<String> = stats.links_skipped.iter().take(5).map(|p| p.display().to_string()).collect();
        eprintln!(
            "warning: {} symbolic link(s) not followed (a link could publish a folder outside the site, or loop): {}{}",
            stats.links_skipped.len(),
            shown.join(", "),
            if stats.links_skipped.len() > 5 { ", ..." } else { "" }
        );
    }
    println!(
        "{}: {} pages ({} without content{}), {} passages",
        a.public_dir.display(),
        stats.pages,
        stats.empty_pages,
        if stats.lossy_pages > 0 { format!(", {} not valid UTF-8", stats.lossy_pages) } else { String::new() },
        passages.len()
    );
    let build = build_options(&a.dtype, a.batch, a.windows, a.bm25, a.block_kib)?;
    // A site's folder is published: the model always travels with it (the
    // embedding cache never does: it lives in the user's cache folder).
    let embed_cache = (!a.no_embed_cache).then(|| a.table.cache.dir());
    let table = (!a.table.no_table).then_some(a.table);
    // A site's visitors fetch vectors by cluster unless told `--vectors flat`.
    let clusters = a.vectors.vectors != Some(VectorLayout::Flat);
    let layout = Layout {
        shard_size: a.shard_size,
        alpha: a.alpha,
        bundle_model: true,
        table,
        vectors: a.vectors,
        clusters,
        embed_cache,
        kernel: a.kernel,
    };
    let m = index_passages(&passages, &model, &out, &build, &layout)?;
    assets.copy_to(&out)?;
    report_download(&out, &m)
}

/// `--out-name` is one plain folder name inside the site: never empty, `.`,
/// `..`, absolute or nested, so the index cannot replace the site or escape it.
fn check_out_name(name: &str) -> Result<()> {
    let mut parts = Path::new(name).components();
    match (parts.next(), parts.next()) {
        (Some(std::path::Component::Normal(_)), None) if !name.contains(['/', '\\']) => Ok(()),
        _ => bail!("--out-name {name:?} must be one plain folder name inside the site (such as _ernie), not empty, `.`, `..` or a path"),
    }
}

/// Copies the widget's JS, wasm and CSS beside the index; returns their bytes.
/// A script comes from `min/` (the minified copies scripts/build-wasm.sh
/// writes into pkg/min/) when that copy is as new as the script, as in the
/// binary's embedded files (cli/build.rs).
fn copy_widget(assets: &Path, out: &Path) -> Result<u64> {
    let mut widget = 0u64;
    for entry in std::fs::read_dir(assets).with_context(|| format!("cannot list {}", assets.display()))? {
        let path = entry?.path();
        if path.extension().is_some_and(|e| e == "js" || e == "wasm" || e == "css") {
            let name = path.file_name().context("asset name")?;
            let from = minified(&path).unwrap_or_else(|| path.clone());
            let to = out.join(name);
            widget += std::fs::copy(&from, &to)
                .with_context(|| format!("cannot copy {} to {}", from.display(), to.display()))?;
        }
    }
    Ok(widget)
}

/// `DIR/min/NAME` for the script `DIR/NAME`, when it exists and is not older.
fn minified(script: &Path) -> Option<PathBuf> {
    if script.extension()? != "js" {
        return None;
    }
    let min = script.parent()?.join("min").join(script.file_name()?);
    let modified = |p: &Path| std::fs::metadata(p).and_then(|m| m.modified()).ok();
    (modified(&min)? >= modified(script)?).then_some(min)
}

/// What a visitor downloads before the first search and per query: with
/// the light engine (the default when the folder carries a table and
/// clusters), and with the transformer.
fn report_download(out: &Path, m: &Manifest) -> Result<()> {
    let size = |name: &str| std::fs::metadata(out.join(name)).map_or(0, |f| f.len());
    let kb = |b: u64| b as f64 / 1e3;
    let lex = m.lexical.as_ref().context("lexical part")?;
    let block = (lex.bytes - size(&lex.meta)) / lex.blocks.len().max(1) as u64;
    let shard = m.shards.names(Part::Shard).map(|s| size(&s)).sum::<u64>() / m.shards.len().max(1) as u64;
    let js = ["index.js", "worker.js", "widget.js", "text.js"].iter().map(|f| size(f)).sum::<u64>();
    let common = js + size(MANIFEST) + size(&lex.meta);
    if let (Some(t), Some(c)) = (&m.table, &m.clusters) {
        let engine = size("ernie_search_light.js") + size("ernie_search_light_bg.wasm");
        let first = common + engine + t.head_bytes + c.head_bytes;
        let chunk = (t.bytes - t.head_bytes) / t.n_chunks().max(1) as u64;
        let list = (c.bytes - c.head_bytes) / c.lists.len().max(1) as u64;
        println!(
            "a visitor downloads, uncompressed (about a third gzipped): {:.0} KB before the first search (light engine {:.0} KB, token table head {:.0} KB, vector head {:.0} KB, BM25 meta {:.0} KB, scripts and manifest {:.0} KB; no model), then per query about one {:.1} KB table chunk per new token, {} vector cluster(s) of {:.0} KB, one {:.1} KB term block per new word and one {:.0} KB text shard per result, all cached after",
            kb(first), kb(engine), kb(t.head_bytes), kb(c.head_bytes), kb(size(&lex.meta)), kb(js + size(MANIFEST)),
            kb(chunk), c.nprobe, kb(list), kb(block), kb(shard)
        );
    }
    let model = m.model_file.as_deref().map_or(0, size);
    let engine = size("ernie_search.js") + size("ernie_search_bg.wasm");
    println!(
        "  with the transformer (encoder=\"transformer\", or `progressive` after the first search): {:.1} MB (model {:.1} MB, vectors {:.1} MB, full engine {:.1} MB)",
        (common + engine + model + m.index_bytes) as f64 / 1e6, model as f64 / 1e6, m.index_bytes as f64 / 1e6, engine as f64 / 1e6
    );
    Ok(())
}
