//! `ernie-search info`: a model file's card.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use ernie_search::format;

#[derive(clap::Args)]
pub struct Args {
    model: PathBuf,
    #[arg(long)]
    json: bool,
}

pub fn run(a: Args) -> Result<()> {
    print_card(&a.model, a.json)
}

pub fn print_card(path: &Path, json: bool) -> Result<()> {
    let bytes = crate::load::model_file(path)?;
    let card = format::model::read_card(&bytes).with_context(|| format!("{}", path.display()))?;
    if json {
        println!("{}", serde_json::to_string_pretty(&card)?);
        return Ok(());
    }
    let b = &card.spec.bert;
    println!("# {}", card.name);
    println!("file         {} ({:.1} MB)", path.display(), bytes.len() as f64 / 1e6);
    println!("weights      {} ({} tensors)", card.weights, card.tensor_count);
    println!(
        "architecture BERT, {} layers, hidden {}, {} heads, FFN {}, vocab {}",
        b.num_hidden_layers, b.hidden_size, b.num_attention_heads, b.intermediate_size, b.vocab_size
    );
    println!(
        "embedding    {} dims, {} pooling, {}",
        b.hidden_size,
        card.spec.pooling.as_str(),
        if card.spec.normalize { "L2-normalised" } else { "not normalised" }
    );
    println!("max lengths  query {} tokens, passage {} tokens", card.spec.max_query_len, card.spec.max_passage_len);
    println!("fingerprint  {}", card.fingerprint);
    println!("provenance   {}", card.provenance);
    Ok(())
}
