//! One function per subcommand: resolve flags into objects, call the libraries,
//! print results.

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{bail, Context, Result};
use ernie_search::format;
use ernie_search::index::dir::{write_dir, IndexDir};
use ernie_search::{Embedder, FlatIndex, Retriever, VectorDType};

use crate::cli::{BenchWhat, Cli, Command, FetchWhat};
use crate::convert::{convert, ConvertOptions};
use crate::data::bigbench::Source;
use crate::data::corpus::{passage_input, read_corpus};
use crate::{bench, embed, eval, fetch};

pub fn run(cli: Cli) -> Result<()> {
    match cli.command {
        Command::Fetch { what, cache } => {
            let cache = fetch::cache_dir(cache.cache_dir.as_deref());
            let model = matches!(what, FetchWhat::Model | FetchWhat::All);
            let sets: &[Source] = match what {
                FetchWhat::Nq => &[Source::Nq],
                FetchWhat::Drop => &[Source::Drop],
                FetchWhat::All => &[Source::Nq, Source::Drop],
                FetchWhat::Model => &[],
            };
            if model {
                println!("model: {}", fetch::fetch_model(&cache)?.display());
            }
            for s in sets {
                println!("{}: {}", s.as_str(), fetch::fetch_data(&cache, *s)?.display());
            }
            Ok(())
        }
        Command::Convert { checkpoint, out, dtype, pooling, no_normalize, max_query_len, max_passage_len, layers, name, cache } => {
            let checkpoint = match checkpoint {
                Some(c) => c,
                None => fetch::fetch_model(&fetch::cache_dir(cache.cache_dir.as_deref()))?,
            };
            let opts = ConvertOptions {
                checkpoint,
                out: out.clone(),
                weights: dtype.parse()?,
                pooling: pooling.parse()?,
                normalize: !no_normalize,
                max_query_len,
                max_passage_len,
                layers,
                name,
            };
            convert(&opts)?;
            print_card(&out, false)
        }
        Command::Info { model, json } => print_card(&model, json),
        Command::Index { corpus, model, out, dtype, batch, shard_size } => {
            index_corpus(&corpus, &model, &out, dtype.parse()?, batch, shard_size)
        }
        Command::Search { index, query, k, model, json } => search(&index, &query, k, model.as_deref(), json),
        Command::Eval { model, data, split, dtype, batch, run, json, cache } => {
            let data_dir = match data.as_str() {
                "nq" => fetch::data_dir(&fetch::cache_dir(cache.cache_dir.as_deref()), Source::Nq),
                "drop" => fetch::data_dir(&fetch::cache_dir(cache.cache_dir.as_deref()), Source::Drop),
                p => PathBuf::from(p),
            };
            if !data_dir.join("corpus.jsonl").is_file() {
                bail!("{} is not a BEIR folder (no corpus.jsonl); run `ernie-search fetch {data}` first", data_dir.display());
            }
            let embedder = load_model(&model)?;
            let set = data_dir.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
            let stem = model.file_stem().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
            let run = run.unwrap_or_else(|| PathBuf::from(format!("runs/{stem}.{set}.{split}.trec")));
            let r = eval::evaluate(&embedder, &data_dir, &split, dtype.parse()?, batch, Some(&run))?;
            if json {
                println!("{}", serde_json::json!({"model": embedder.card().name, "data": data_dir, "split": split,
                    "queries": r.queries, "passages": r.passages, "scores": r.scores,
                    "encode_seconds": r.encode_seconds, "total_seconds": r.total_seconds}));
            } else {
                println!("{} on {set} {split} ({} queries, {} passages, {} vectors)", embedder.card().name, r.queries, r.passages, dtype);
                println!("{}", eval::table(&r.scores));
                println!("corpus encoded in {:.0}s, total {:.0}s; run file {}", r.encode_seconds, r.total_seconds, run.display());
            }
            Ok(())
        }
        Command::Bench { what } => {
            let v = match what {
                BenchWhat::Encode { model, passages, batch, queries } => bench::encode(&load_model(&model)?, &passages, batch, queries)?,
                BenchWhat::Scan { n, dim, dtype, queries, k } => bench::scan(n, dim, dtype.parse()?, queries, k)?,
            };
            println!("{v}");
            Ok(())
        }
    }
}

fn load_model(path: &Path) -> Result<Embedder> {
    let bytes = std::fs::read(path).with_context(|| format!("cannot read model {}", path.display()))?;
    Embedder::from_bytes(&bytes).with_context(|| format!("{}", path.display()))
}

fn print_card(path: &Path, json: bool) -> Result<()> {
    let bytes = std::fs::read(path).with_context(|| format!("cannot read model {}", path.display()))?;
    let card = format::model::read_card(&bytes).with_context(|| format!("{}", path.display()))?;
    if json {
        println!("{}", serde_json::to_string_pretty(&card)?);
        return Ok(());
    }
    let b = &card.spec.bert;
    println!("# {}", card.name);
    println!("file         {} ({:.1} MB)", path.display(), bytes.len() as f64 / 1e6);
    println!("weights      {} ({} tensors)", card.weights, card.tensor_count);
    println!("architecture BERT, {} layers, hidden {}, {} heads, FFN {}, vocab {}", b.num_hidden_layers, b.hidden_size, b.num_attention_heads, b.intermediate_size, b.vocab_size);
    println!("embedding    {} dims, {} pooling, {}", b.hidden_size, card.spec.pooling.as_str(), if card.spec.normalize { "L2-normalised" } else { "not normalised" });
    println!("max lengths  query {} tokens, passage {} tokens", card.spec.max_query_len, card.spec.max_passage_len);
    println!("fingerprint  {}", card.fingerprint);
    println!("provenance   {}", card.provenance);
    Ok(())
}

fn index_corpus(corpus: &Path, model: &Path, out: &Path, dtype: VectorDType, batch: usize, shard_size: usize) -> Result<()> {
    let passages = read_corpus(corpus)?;
    let embedder = load_model(model)?;
    let texts: Vec<String> = passages.iter().map(passage_input).collect();
    let emb = embed::embed_passages(&embedder, &texts, batch, "passages")?;
    let mut index = FlatIndex::new(embedder.dim(), dtype, &embedder.card().fingerprint)?;
    for (p, v) in passages.iter().zip(&emb.vectors) {
        index.push(&p.id, v)?;
    }
    let model_abs = std::fs::canonicalize(model).unwrap_or_else(|_| model.to_path_buf());
    let m = write_dir(out, &index, &passages, shard_size, &embedder.card().name, Some(&model_abs))
        .with_context(|| format!("cannot write index {}", out.display()))?;
    println!(
        "indexed {} passages in {:.1}s ({:.1} passages/s; {} cut at {} tokens) -> {} ({} vectors, {:.1} MB index, {} shards)",
        m.count, emb.seconds, emb.per_second(), emb.truncated, embedder.card().spec.max_passage_len, out.display(),
        m.dtype.as_str(), m.index_bytes as f64 / 1e6, m.shards.len()
    );
    Ok(())
}

fn search(dir: &Path, query: &str, k: usize, model: Option<&Path>, json: bool) -> Result<()> {
    let opened = IndexDir::open(dir).with_context(|| format!("cannot open index {}", dir.display()))?;
    let model_path = match model {
        Some(m) => m.to_path_buf(),
        None => match &opened.shards.manifest.model_path {
            Some(p) => PathBuf::from(p),
            None => bail!("the index does not record its model; pass --model"),
        },
    };
    let embedder = load_model(&model_path)?;
    let t = Instant::now();
    let IndexDir { index, shards } = opened;
    let retriever = Retriever::new(embedder, index).with_context(|| format!("{} with {}", dir.display(), model_path.display()))?;
    let hits = retriever.search(query, k)?;
    let ms = t.elapsed().as_secs_f64() * 1e3;
    let mut rows = Vec::new();
    for h in &hits {
        let p = shards.passage(h.ordinal)?;
        rows.push(serde_json::json!({"id": h.id, "score": h.score, "title": p.title, "text": p.text, "url": p.url}));
    }
    if json {
        println!("{}", serde_json::Value::Array(rows));
        return Ok(());
    }
    println!("{} results for {query:?} in {ms:.0} ms ({} shard(s) read)", hits.len(), shards.loaded_shards());
    for (i, r) in rows.iter().enumerate() {
        let text = r["text"].as_str().unwrap_or_default();
        let excerpt: String = text.chars().take(160).collect();
        let more = if text.chars().count() > 160 { "..." } else { "" };
        println!("{:>2}. {:.4}  {}  {excerpt}{more}", i + 1, r["score"].as_f64().unwrap_or(0.0), r["id"].as_str().unwrap_or_default());
    }
    Ok(())
}
