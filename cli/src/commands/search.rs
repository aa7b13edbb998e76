//! `ernie-search search`: one question against an index folder, reading only
//! the term blocks and text shards it needs, as a browser would fetch them.

use std::path::PathBuf;
use std::time::Instant;

use anyhow::{Context, Result};
use ernie_search::index::dir::IndexDir;
use ernie_search::{Mode, QueryEncoder};

#[derive(clap::Args)]
pub struct Args {
    index: PathBuf,
    query: String,
    #[arg(short, long, default_value_t = 10)]
    k: usize,
    /// dense, lexical or hybrid
    #[arg(long, default_value = "hybrid")]
    mode: String,
    /// What encodes the query: transformer, table (the index's token table,
    /// no transformer) or both (the two rankings side by side)
    #[arg(long, default_value = "transformer")]
    encoder: String,
    /// Model file [default: the one the index was built with]
    #[arg(long)]
    model: Option<PathBuf>,
    #[arg(long)]
    json: bool,
}

pub fn run(a: Args) -> Result<()> {
    let mode = Mode::parse(&a.mode)?;
    let encoders = match a.encoder.as_str() {
        "both" => vec![QueryEncoder::Transformer, QueryEncoder::Table],
        e => vec![QueryEncoder::parse(e)?],
    };
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
    let mut chunks = 0;
    if encoders.contains(&QueryEncoder::Table) && mode != Mode::Lexical {
        let table = retriever.table_mut().context("this index carries no token table (built with --no-table?)")?;
        let ids = table.token_ids(query)?;
        chunks = IndexDir::load_table_chunks(&shards, table, &ids)?;
    }
    let read_ms = t.elapsed().as_secs_f64() * 1e3;
    let mut answers = Vec::new();
    for &e in &encoders {
        let t = Instant::now();
        let answer = retriever.search_with(query, a.k, mode, e)?;
        answers.push((answer, t.elapsed().as_secs_f64() * 1e3));
    }
    let mut rows: Vec<Vec<serde_json::Value>> = Vec::new();
    for (answer, _) in &answers {
        let mut r = Vec::new();
        for h in &answer.hits {
            let p = shards.passage(h.ordinal)?;
            r.push(serde_json::json!({"id": h.id, "score": h.score, "dense": h.dense, "lexical": h.lexical,
                "title": p.title, "text": p.text, "url": p.url}));
        }
        rows.push(r);
    }
    if a.json {
        let out: Vec<serde_json::Value> = answers
            .iter()
            .zip(&rows)
            .map(|((ans, _), hits)| {
                serde_json::json!({"mode": ans.mode, "encoder": ans.encoder, "note": ans.note, "hits": hits})
            })
            .collect();
        println!("{}", if out.len() == 1 { out[0].clone() } else { serde_json::Value::Array(out) });
        return Ok(());
    }
    for (answer, ms) in &answers {
        let by = answer.encoder.map_or("keywords", |e| e.as_str());
        let note = answer.note.as_deref().map_or(String::new(), |n| format!(" (note: {n})"));
        println!("{} {} results by the {by} in {ms:.1} ms{note}", answer.hits.len(), answer.mode.as_str());
    }
    println!(
        "read {blocks} term block(s), {chunks} table chunk(s) in {read_ms:.0} ms; {} text shard(s)",
        shards.loaded_shards()
    );
    let width = if rows.len() > 1 { 56 } else { 160 };
    let cell = |r: Option<&serde_json::Value>| -> String {
        let Some(r) = r else { return String::new() };
        let text = format!("{}: {}", r["title"].as_str().unwrap_or_default(), r["text"].as_str().unwrap_or_default());
        let excerpt: String = text.chars().take(width).collect();
        let more = if text.chars().count() > width { "..." } else { "" };
        format!("{:.3} {excerpt}{more}", r["score"].as_f64().unwrap_or(0.0))
    };
    if rows.len() > 1 {
        println!("    {:<w$}  | table", "transformer", w = width + 9);
    }
    for i in 0..rows.iter().map(Vec::len).max().unwrap_or(0) {
        let cells: Vec<String> = rows.iter().map(|r| cell(r.get(i))).collect();
        println!(
            "{:>2}. {}",
            i + 1,
            cells.iter().map(|c| format!("{c:<w$}", w = width + 9)).collect::<Vec<_>>().join("  | ").trim_end()
        );
    }
    Ok(())
}
