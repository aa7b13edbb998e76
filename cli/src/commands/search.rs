//! `ernie-search search`: one question against an index folder, reading only
//! the term blocks and text shards it needs, as a browser would fetch them.

use std::path::PathBuf;
use std::time::Instant;

use anyhow::Result;
use ernie_search::index::dir::IndexDir;
use ernie_search::Mode;

#[derive(clap::Args)]
pub struct Args {
    index: PathBuf,
    query: String,
    #[arg(short, long, default_value_t = 10)]
    k: usize,
    /// dense, lexical or hybrid
    #[arg(long, default_value = "hybrid")]
    mode: String,
    /// Model file [default: the one the index was built with]
    #[arg(long)]
    model: Option<PathBuf>,
    #[arg(long)]
    json: bool,
}

pub fn run(a: Args) -> Result<()> {
    let mode = Mode::parse(&a.mode)?;
    let query = a.query.as_str();
    let (mut retriever, shards, _) = crate::load::index(&a.index, a.model.as_deref())?;
    let t = Instant::now();
    let mut blocks = 0;
    if let Some(l) = retriever.lexical_mut().filter(|_| mode != Mode::Dense) {
        for b in l.missing_blocks(query) {
            let (n, corpus, block) = IndexDir::read_block(&shards, b)?;
            l.add_block(n, &corpus, block)?;
            blocks += 1;
        }
    }
    let answer = retriever.search(query, a.k, mode)?;
    let hits = &answer.hits;
    let ms = t.elapsed().as_secs_f64() * 1e3;
    let mut rows = Vec::new();
    for h in hits {
        let p = shards.passage(h.ordinal)?;
        rows.push(serde_json::json!({"id": h.id, "score": h.score, "dense": h.dense, "lexical": h.lexical,
            "title": p.title, "text": p.text, "url": p.url}));
    }
    if a.json {
        println!("{}", serde_json::json!({"mode": answer.mode, "note": answer.note, "hits": rows}));
        return Ok(());
    }
    if let Some(note) = &answer.note {
        println!("note: {note}");
    }
    println!(
        "{} {} results for {query:?} in {ms:.0} ms ({blocks} term block(s), {} text shard(s) read)",
        hits.len(),
        answer.mode.as_str(),
        shards.loaded_shards()
    );
    for (i, r) in rows.iter().enumerate() {
        let text = r["text"].as_str().unwrap_or_default();
        let excerpt: String = text.chars().take(160).collect();
        let more = if text.chars().count() > 160 { "..." } else { "" };
        println!(
            "{:>2}. {:.4}  {}  {excerpt}{more}",
            i + 1,
            r["score"].as_f64().unwrap_or(0.0),
            r["id"].as_str().unwrap_or_default()
        );
    }
    Ok(())
}
