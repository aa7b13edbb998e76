//! `ernie-search index-site`: a built static site's pages into an index
//! folder inside it, with the model and the search widget beside it.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use ernie_search::format::shard::Manifest;
use ernie_search::index::builder::{BuildOptions, DEFAULT_BATCH, SITE_SHARD_SIZE};

use super::index::{build_options, index_passages, Layout};
use crate::flags::{alpha, positive, Bm25Args, TableArgs, WindowArgs};

#[derive(clap::Args)]
pub struct Args {
    public_dir: PathBuf,
    #[arg(long)]
    model: PathBuf,
    /// Folder inside PUBLIC_DIR to write
    #[arg(long, default_value = "_ernie")]
    out_name: String,
    /// The built npm package (scripts/build-wasm.sh): widget and wasm files to copy
    #[arg(long, default_value = "pkg")]
    assets: PathBuf,
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
    /// Encode every passage and pseudo-query again, ignoring (and not
    /// updating) the embedding cache of rebuilds
    #[arg(long)]
    no_embed_cache: bool,
}

/// The files of the built npm package a site serves beside its index.
const WIDGET_FILES: &[&str] = &["ernie_search.js", "ernie_search_bg.wasm"];

pub fn run(a: Args) -> Result<()> {
    for f in WIDGET_FILES {
        if !a.assets.join(f).is_file() {
            bail!(
                "{} lacks {f}: build the wasm package first (bash scripts/build-wasm.sh) or pass --assets DIR",
                a.assets.display()
            );
        }
    }
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
    let layout = Layout { shard_size: a.shard_size, alpha: a.alpha, bundle_model: true, table, embed_cache };
    let m = index_passages(&passages, &a.model, &out, &build, &layout)?;
    let widget = copy_widget(&a.assets, &out)?;
    report_download(&out, &m, widget)
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
fn copy_widget(assets: &Path, out: &Path) -> Result<u64> {
    let mut widget = 0u64;
    for entry in std::fs::read_dir(assets).with_context(|| format!("cannot list {}", assets.display()))? {
        let path = entry?.path();
        if path.extension().is_some_and(|e| e == "js" || e == "wasm" || e == "css") {
            let to = out.join(path.file_name().context("asset name")?);
            widget += std::fs::copy(&path, &to)
                .with_context(|| format!("cannot copy {} to {}", path.display(), to.display()))?;
        }
    }
    Ok(widget)
}

/// What a visitor downloads before the first search and per query.
fn report_download(out: &Path, m: &Manifest, widget: u64) -> Result<()> {
    let size = |name: &str| std::fs::metadata(out.join(name)).map_or(0, |f| f.len());
    let lex = m.lexical.as_ref().context("lexical part")?;
    let model_bytes = m.model_file.as_deref().map_or(0, size);
    let first = model_bytes + m.index_bytes + size(&lex.meta) + widget;
    let block = (lex.bytes - size(&lex.meta)) / lex.blocks.len().max(1) as u64;
    let shard = m.shards.iter().map(|s| size(s)).sum::<u64>() / m.shards.len().max(1) as u64;
    println!(
        "a visitor downloads, uncompressed: {:.1} MB before the first search (model {:.1} MB, vectors {:.1} MB, BM25 meta {:.0} KB, widget + wasm {:.1} MB, all cached after), then per query about one {:.0} KB term block per new word and one {:.0} KB text shard per page of results",
        first as f64 / 1e6, model_bytes as f64 / 1e6, m.index_bytes as f64 / 1e6, size(&lex.meta) as f64 / 1e3,
        widget as f64 / 1e6, block as f64 / 1e3, shard as f64 / 1e3
    );
    Ok(())
}
