//! `ernie-search convert`: a Hugging Face BERT checkpoint into one model file.

use std::path::PathBuf;

use anyhow::Result;
use ernie_search_data::convert::{convert, ConvertOptions, LayerPick};
use ernie_search_data::fetch;

use crate::flags::{token_window, CacheArg};

#[derive(clap::Args)]
pub struct Args {
    /// Checkpoint folder (model.safetensors, config.json, tokenizer.json)
    /// [default: the fetched all-MiniLM-L6-v2]
    #[arg(long)]
    checkpoint: Option<PathBuf>,
    #[arg(long, short)]
    out: PathBuf,
    /// Weight storage: q8_0, q4_0, f16 or f32
    #[arg(long, default_value = "q8_0")]
    dtype: String,
    #[arg(long, default_value = "mean")]
    pooling: String,
    /// Do not L2-normalise embeddings
    #[arg(long)]
    no_normalize: bool,
    #[arg(long, default_value_t = 64, value_parser = token_window)]
    max_query_len: usize,
    #[arg(long, default_value_t = 256, value_parser = token_window)]
    max_passage_len: usize,
    /// Keep only N encoder layers (see --pick)
    #[arg(long)]
    layers: Option<usize>,
    /// Which layers --layers keeps: first (the first N) or spread (the first, the last and evenly between)
    #[arg(long, default_value = "first")]
    pick: LayerPick,
    /// Model name shown on its card
    #[arg(long)]
    name: Option<String>,
    #[command(flatten)]
    cache: CacheArg,
}

pub fn run(a: Args) -> Result<()> {
    let checkpoint = match a.checkpoint {
        Some(c) => c,
        None => fetch::fetch_model(&a.cache.dir())?,
    };
    let opts = ConvertOptions {
        checkpoint,
        out: a.out.clone(),
        weights: a.dtype.parse()?,
        pooling: a.pooling.parse()?,
        normalize: !a.no_normalize,
        max_query_len: a.max_query_len,
        max_passage_len: a.max_passage_len,
        layers: a.layers,
        pick: a.pick,
        name: a.name,
    };
    convert(&opts)?;
    super::info::print_card(&a.out, false)
}
