//! One function per subcommand: resolve flags into objects, call the libraries,
//! print results.

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{bail, Context, Result};
use ernie_search::format;
use ernie_search::format::shard::{FusionSetting, Manifest, Part, Passage, WindowSpec};
use ernie_search::index::dir::{set_fusion, write_dir, IndexDir, IndexParts, Shards};
use ernie_search::{Bm25Params, Embedder, FlatIndex, Fusion, LexicalIndex, Mode, Retriever, VectorDType};

use crate::cli::{BenchWhat, Cli, Command, FetchWhat, StageFlags};
use crate::convert::{convert, ConvertOptions};
use crate::data::beir;
use crate::data::bigbench::Source;
use crate::data::corpus::{passage_input, read_corpus};
use crate::embed::Windows;
use crate::train::{ablate, commands, probe};
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
        Command::Convert {
            checkpoint,
            out,
            dtype,
            pooling,
            no_normalize,
            max_query_len,
            max_passage_len,
            layers,
            pick,
            name,
            cache,
        } => {
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
                pick,
                name,
            };
            convert(&opts)?;
            print_card(&out, false)
        }
        Command::Info { model, json } => print_card(&model, json),
        Command::Index {
            corpus,
            model,
            out,
            dtype,
            batch,
            shard_size,
            windows,
            bm25,
            block_kib,
            alpha,
            bundle_model,
        } => {
            let opts = IndexOptions::new(&dtype, batch, shard_size, windows, bm25, block_kib, alpha, bundle_model)?;
            index_corpus(&corpus, &model, &out, &opts)
        }
        Command::IndexSite {
            public_dir,
            model,
            out_name,
            assets,
            dtype,
            batch,
            shard_size,
            windows,
            bm25,
            block_kib,
            alpha,
        } => {
            // A site's folder is published: the model always travels with it.
            let opts = IndexOptions::new(&dtype, batch, shard_size, windows, bm25, block_kib, alpha, true)?;
            index_site(&public_dir, &model, &out_name, &assets, &opts)
        }
        Command::TuneFusion { index, data, split, model, cache } => {
            tune_fusion(&index, &beir_dir(&data, cache.cache_dir.as_deref())?, &split, model.as_deref())
        }
        Command::Search { index, query, k, mode, model, json } => {
            search(&index, &query, k, Mode::parse(&mode)?, model.as_deref(), json)
        }
        Command::Eval {
            model,
            data,
            split,
            dtype,
            batch,
            windows,
            bm25,
            alpha,
            tune_split,
            run_prefix,
            json,
            cache,
        } => {
            let data_dir = beir_dir(&data, cache.cache_dir.as_deref())?;
            let embedder = load_model(&model)?;
            let set = data_dir.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
            let stem = model.file_stem().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
            let run_prefix = run_prefix.unwrap_or_else(|| PathBuf::from(format!("runs/{stem}.{set}")));
            let opts = eval::EvalOptions {
                dtype: dtype.parse()?,
                batch,
                windows: Windows { overlap: windows.overlap, max: windows.max_windows },
                bm25: Bm25Params { k1: bm25.k1, b: bm25.b },
                alpha: alpha.map(check_alpha).transpose()?,
                tune_split,
                run_prefix: Some(run_prefix.clone()),
            };
            let r = eval::evaluate(&embedder, &data_dir, &split, &opts)?;
            if json {
                let splits: serde_json::Map<String, serde_json::Value> = r
                    .splits
                    .iter()
                    .map(|s| {
                        let modes: serde_json::Map<String, serde_json::Value> =
                            s.rows.iter().map(|(m, x)| (m.clone(), serde_json::json!(x))).collect();
                        (s.split.clone(), serde_json::json!({"queries": s.queries, "modes": modes}))
                    })
                    .collect();
                println!(
                    "{}",
                    serde_json::json!({"model": embedder.card().name, "data": data_dir,
                    "passages": r.passages, "vectors": r.vectors, "windowed": r.windowed,
                    "overlap": r.overlap, "max_windows": windows.max_windows, "k1": bm25.k1, "b": bm25.b,
                    "alpha": r.alpha, "alpha_source": r.alpha_source, "splits": splits,
                    "encode_seconds": r.encode_seconds, "total_seconds": r.total_seconds})
                );
            } else {
                println!(
                    "{} on {set}: {} passages as {} {} vectors ({} in windows, overlap {}); BM25 k1 {} b {}; hybrid alpha {:.2} {}",
                    embedder.card().name, r.passages, r.vectors, dtype, r.windowed, r.overlap, bm25.k1, bm25.b, r.alpha, r.alpha_source
                );
                for s in &r.splits {
                    println!("\n{set} {} ({} queries)\n{}", s.split, s.queries, eval::table(&s.rows));
                }
                println!(
                    "\ncorpus encoded in {:.0}s, total {:.0}s; runs {}.<split>.<mode>.trec",
                    r.encode_seconds,
                    r.total_seconds,
                    run_prefix.display()
                );
            }
            Ok(())
        }
        Command::Warmup(f) => commands::warmup(&mut commands::open(&stage_args(&f))?, &stage_args(&f)),
        Command::Mine { flags, from_init } => {
            commands::mine(&mut commands::open(&stage_args(&flags))?, from_init).map(|_| ())
        }
        Command::Compare { qrels, baseline, runs, seed } => {
            let text =
                std::fs::read_to_string(&qrels).with_context(|| format!("cannot read qrels {}", qrels.display()))?;
            let qrels = ernie_search::metrics::parse_qrels_tsv(&text)
                .map_err(|e| anyhow::anyhow!("{}: {e}", qrels.display()))?;
            print!("{}", eval::compare(&qrels, &baseline, &runs, seed)?);
            Ok(())
        }
        Command::TrainCe { flags: f, from } => {
            let args = stage_args(&f);
            let mut ctx = commands::open(&args)?;
            let neg = commands::mined_negatives(&ctx);
            if !neg.exists() {
                bail!("{} is missing: run `ernie-search mine` first", neg.display());
            }
            commands::train_ce(&mut ctx, &args, &neg, from.as_deref())
        }
        Command::Cascade(f) => commands::cascade(&mut commands::open(&stage_args(&f))?, &stage_args(&f)),
        Command::Export { flags, out } => commands::export(&commands::open(&stage_args(&flags))?, out).map(|_| ()),
        Command::Distill(f) => commands::distill(&stage_args(&f)).map(|p| println!("{}", p.display())),
        Command::Ablate { flags, rows, small_layers, benchmarks } => {
            let opts = ablate::AblateOptions { stage: stage_args(&flags), only: rows, small_layers, benchmarks };
            ablate::ablate(&opts).map(|_| ())
        }
        Command::Probe { flags, students, init_li, ce, queries, depth } => {
            let ctx = commands::open(&stage_args(&flags))?;
            let rows = probe::probe(&ctx, &probe::ProbeOptions { queries, depth, students, init_li, ce })?;
            let t = probe::table(&rows, queries, depth, &ctx.recipe.eval.split);
            std::fs::write(ctx.run.join("probe.md"), &t)?;
            println!("{t}");
            Ok(())
        }
        Command::Calibrate { flags, student, init_li, tau_li, batches, negatives } => {
            if let Some(bad) = tau_li.iter().find(|t| !(**t > 0.0 && t.is_finite())) {
                bail!("--tau-li {bad}: temperatures must be positive");
            }
            let mut ctx = commands::open(&stage_args(&flags))?;
            // The batches the stages see: with their hard negatives.
            let found = ["negatives.jsonl", "negatives-init.jsonl", "negatives-bm25.jsonl"]
                .map(|f| ctx.run.join(f))
                .into_iter()
                .find(|p| p.exists());
            let neg = negatives.or(found).with_context(|| {
                format!("no negatives in {}: run `ernie-search mine` first or pass --negatives", ctx.run.display())
            })?;
            ctx.data.load_negatives(&neg)?;
            let rows = probe::calibrate_tau_li(&ctx, student.as_deref(), init_li.as_deref(), &tau_li, batches as u64)?;
            println!("{}", probe::calibration_table(&rows, ctx.recipe.loss.tau_de, batches as u64));
            Ok(())
        }
        Command::Bench { what } => {
            let v = match what {
                BenchWhat::Train { checkpoint, batch, query_len, passage_len, steps, device, cache } => {
                    let dir = match checkpoint {
                        Some(d) => d,
                        None => fetch::fetch_model(&fetch::cache_dir(cache.cache_dir.as_deref()))?,
                    };
                    bench::train(&dir, batch, query_len, passage_len, steps, &device)?
                }
                BenchWhat::Load { model, runs } => bench::load(&read_model_file(&model)?, runs)?,
                BenchWhat::Encode { model, passages, batch, queries } => {
                    bench::encode(&load_model(&model)?, &passages, batch, queries)?
                }
                BenchWhat::Scan { n, dim, dtype, queries, k } => bench::scan(n, dim, dtype.parse()?, queries, k)?,
            };
            println!("{v}");
            Ok(())
        }
    }
}

fn stage_args(f: &StageFlags) -> commands::StageArgs {
    commands::StageArgs {
        recipe: f.recipe.clone(),
        run: f.run.clone(),
        resume: f.resume,
        cache: fetch::cache_dir(f.cache.cache_dir.as_deref()),
        stop_after: f.stop_after,
    }
}

/// A model file, capped at the largest model an index may bundle.
fn read_model_file(path: &Path) -> Result<Vec<u8>> {
    let cap = Part::Model.default_cap();
    format::read_capped(path, cap, "model file").with_context(|| format!("cannot read model {}", path.display()))
}

fn load_model(path: &Path) -> Result<Embedder> {
    let bytes = read_model_file(path)?;
    Embedder::from_bytes(&bytes).with_context(|| format!("{}", path.display()))
}

fn print_card(path: &Path, json: bool) -> Result<()> {
    let bytes = read_model_file(path)?;
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

struct IndexOptions {
    dtype: VectorDType,
    batch: usize,
    shard_size: usize,
    windows: Windows,
    bm25: Bm25Params,
    block_bytes: usize,
    alpha: Option<f32>,
    bundle_model: bool,
}

impl IndexOptions {
    /// The flags `index` and `index-site` share, checked.
    #[allow(clippy::too_many_arguments)]
    fn new(
        dtype: &str,
        batch: usize,
        shard_size: usize,
        windows: crate::cli::WindowArgs,
        bm25: crate::cli::Bm25Args,
        block_kib: usize,
        alpha: Option<f32>,
        bundle_model: bool,
    ) -> Result<Self> {
        Ok(Self {
            dtype: dtype.parse()?,
            batch,
            shard_size,
            windows: Windows { overlap: windows.overlap, max: windows.max_windows },
            bm25: Bm25Params { k1: bm25.k1, b: bm25.b },
            block_bytes: block_kib * 1024,
            alpha: alpha.map(check_alpha).transpose()?,
            bundle_model,
        })
    }
}

fn index_corpus(corpus: &Path, model: &Path, out: &Path, o: &IndexOptions) -> Result<()> {
    index_passages(&read_corpus(corpus)?, model, out, o).map(|_| ())
}

/// The files of the built npm package a site serves beside its index.
const WIDGET_FILES: &[&str] = &["ernie_search.js", "ernie_search_bg.wasm"];

fn index_site(public: &Path, model: &Path, out_name: &str, assets: &Path, o: &IndexOptions) -> Result<()> {
    for f in WIDGET_FILES {
        if !assets.join(f).is_file() {
            bail!(
                "{} lacks {f}: build the wasm package first (bash scripts/build-wasm.sh) or pass --assets DIR",
                assets.display()
            );
        }
    }
    check_out_name(out_name)?;
    let out = public.join(out_name);
    let (passages, stats) = crate::site::read_site(public, &out)?;
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
        public.display(),
        stats.pages,
        stats.empty_pages,
        if stats.lossy_pages > 0 { format!(", {} not valid UTF-8", stats.lossy_pages) } else { String::new() },
        passages.len()
    );
    let m = index_passages(&passages, model, &out, o)?;
    let mut widget = 0u64;
    for entry in std::fs::read_dir(assets).with_context(|| format!("cannot list {}", assets.display()))? {
        let path = entry?.path();
        if path.extension().is_some_and(|e| e == "js" || e == "wasm" || e == "css") {
            let to = out.join(path.file_name().context("asset name")?);
            widget += std::fs::copy(&path, &to)
                .with_context(|| format!("cannot copy {} to {}", path.display(), to.display()))?;
        }
    }
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

/// `--out-name` is one plain folder name inside the site: never empty, `.`,
/// `..`, absolute or nested, so the index cannot replace the site or escape it.
fn check_out_name(name: &str) -> Result<()> {
    let mut parts = Path::new(name).components();
    match (parts.next(), parts.next()) {
        (Some(std::path::Component::Normal(_)), None) if !name.contains(['/', '\\']) => Ok(()),
        _ => bail!("--out-name {name:?} must be one plain folder name inside the site (such as _ernie), not empty, `.`, `..` or a path"),
    }
}

fn index_passages(passages: &[Passage], model: &Path, out: &Path, o: &IndexOptions) -> Result<Manifest> {
    let model_bytes = read_model_file(model)?;
    let embedder = Embedder::from_bytes(&model_bytes).with_context(|| format!("{}", model.display()))?;
    let ids: Vec<&str> = passages.iter().map(|p| p.id.as_str()).collect();
    let texts: Vec<String> = passages.iter().map(passage_input).collect();
    let refs: Vec<&str> = texts.iter().map(String::as_str).collect();
    let lexical = LexicalIndex::build(&ids, &refs, o.bm25, 1)?;
    let size = format::lexical::block_to_bytes(lexical.meta(), 0, lexical.block(0).context("BM25 block 0")?).len();
    let lexical = lexical.split(size.div_ceil(o.block_bytes) as u32)?;
    let emb = embed::embed_passages(&embedder, &texts, o.batch, o.windows, "passages")?;
    let mut index = FlatIndex::new(embedder.dim(), o.dtype, &embedder.card().fingerprint)?;
    for (p, v) in passages.iter().zip(&emb.vectors) {
        index.push_windows(&p.id, v)?;
    }
    let model_abs = std::fs::canonicalize(model).unwrap_or_else(|_| model.to_path_buf());
    let window = embedder.card().spec.max_passage_len;
    let parts = IndexParts {
        index: &index,
        passages,
        lexical: Some(&lexical),
        windows: Some(WindowSpec { window, overlap: emb.overlap, max_windows: o.windows.max, rows: emb.rows }),
        fusion: o.alpha.map(|alpha| FusionSetting {
            fusion: Fusion::Convex { alpha },
            tuned_on: Some("given at indexing".into()),
        }),
        shard_size: o.shard_size,
        model_name: &embedder.card().name,
        // A bundled folder is published: it must not carry a path of this machine.
        model_path: (!o.bundle_model).then_some(model_abs.as_path()),
        model_bytes: o.bundle_model.then_some(model_bytes.as_slice()),
    };
    let m = write_dir(out, &parts).with_context(|| format!("cannot write index {}", out.display()))?;
    report_index(out, &m, &emb, o, window, model_bytes.len())?;
    Ok(m)
}

fn report_index(
    out: &Path,
    m: &Manifest,
    emb: &embed::Embedded,
    o: &IndexOptions,
    window: usize,
    model_len: usize,
) -> Result<()> {
    let lex = m.lexical.as_ref().context("the manifest lost its lexical part")?;
    let texts_bytes: u64 = m.shards.iter().map(|s| std::fs::metadata(out.join(s)).map_or(0, |f| f.len())).sum();
    if let Some(f) = &m.model_file {
        println!("bundled the model as {f} ({:.1} MB)", model_len as f64 / 1e6);
    }
    println!(
        "indexed {} passages in {:.1}s ({:.1} passages/s) -> {}\n  vectors  {} {} x {} ({} passages in windows of {window} tokens, {} cut after {} windows): {:.1} MB\n  BM25     {} terms in {} blocks (k1 {} b {}): {:.1} MB\n  texts    {} shards: {:.1} MB",
        m.count, emb.seconds, emb.per_second(), out.display(),
        emb.rows, m.dtype.as_str(), m.dim, emb.windowed, emb.truncated, o.windows.max, m.index_bytes as f64 / 1e6,
        lex.terms, lex.blocks.len(), lex.k1, lex.b, lex.bytes as f64 / 1e6,
        m.shards.len(), texts_bytes as f64 / 1e6
    );
    Ok(())
}

fn check_alpha(a: f32) -> Result<f32> {
    if !(0.0..=1.0).contains(&a) {
        bail!("--alpha must be between 0 (BM25 only) and 1 (dense only), got {a}");
    }
    Ok(a)
}

/// `nq` / `drop` (the fetched sets) or a BEIR folder.
fn beir_dir(data: &str, cache: Option<&Path>) -> Result<PathBuf> {
    let dir = match data {
        "nq" => fetch::data_dir(&fetch::cache_dir(cache), Source::Nq),
        "drop" => fetch::data_dir(&fetch::cache_dir(cache), Source::Drop),
        p => PathBuf::from(p),
    };
    if !dir.join("corpus.jsonl").is_file() {
        bail!("{} is not a BEIR folder (no corpus.jsonl); run `ernie-search fetch {data}` first", dir.display());
    }
    Ok(dir)
}

/// Opens an index directory with its model (the manifest's, unless given).
fn open_index(dir: &Path, model: Option<&Path>) -> Result<(Retriever, Shards, PathBuf)> {
    let opened = IndexDir::open(dir).with_context(|| format!("cannot open index {}", dir.display()))?;
    let model_path = match model {
        Some(m) => m.to_path_buf(),
        None => match (&opened.shards.manifest.model_file, &opened.shards.manifest.model_path) {
            (Some(f), _) => dir.join(f),
            (None, Some(p)) => PathBuf::from(p),
            (None, None) => bail!("the index does not record its model; pass --model"),
        },
    };
    let embedder = load_model(&model_path)?;
    let IndexDir { index, lexical, shards } = opened;
    let ctx = || format!("{} with {}", dir.display(), model_path.display());
    let mut r = Retriever::new(embedder, index).with_context(ctx)?;
    if let Some(l) = lexical {
        r = r.with_lexical(l).with_context(ctx)?;
    }
    if let Some(f) = &shards.manifest.fusion {
        r = r.with_fusion(f.fusion);
    }
    Ok((r, shards, model_path))
}

fn tune_fusion(dir: &Path, data: &Path, split: &str, model: Option<&Path>) -> Result<()> {
    let (mut r, shards, _) = open_index(dir, model)?;
    let Some(lexical) = r.lexical_mut() else {
        bail!("{} has no BM25 part (built by an older version): rebuild it with `ernie-search index`", dir.display());
    };
    for b in 0..lexical.n_blocks() {
        let (n, corpus, block) = IndexDir::read_block(&shards, b)?;
        lexical.add_block(n, &corpus, block)?;
    }
    let queries = beir::load_queries(&data.join("queries.jsonl"))?;
    let qrels = beir::load_qrels(data, split)?;
    let lexical = r.lexical().context("lexical part")?;
    let cands = eval::candidates(r.embedder(), r.index(), lexical, &queries, &qrels, split)?;
    let (alpha, curve) = eval::tune(&cands, &qrels, r.index().ids());
    println!("| alpha | MRR@10 | R@20 |\n|---|---|---|");
    for (a, s) in &curve {
        println!("| {a:.2}{} | {:.3} | {:.3} |", if *a == alpha { " (best)" } else { "" }, s.mrr_10, s.recall_20);
    }
    let best = curve.iter().find(|(a, _)| *a == alpha).map(|(_, s)| s.mrr_10).unwrap_or(0.0);
    let set = data.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let setting = FusionSetting {
        fusion: Fusion::Convex { alpha },
        tuned_on: Some(format!("{set} {split}, {} queries (MRR@10 {best:.3})", cands.len())),
    };
    set_fusion(dir, setting)?;
    println!("stored alpha {alpha:.2} in {}", dir.join("manifest.json").display());
    Ok(())
}

fn search(dir: &Path, query: &str, k: usize, mode: Mode, model: Option<&Path>, json: bool) -> Result<()> {
    let (mut retriever, shards, _) = open_index(dir, model)?;
    let t = Instant::now();
    // Read only the term blocks this query needs, as a browser would fetch them.
    let mut blocks = 0;
    if let Some(l) = retriever.lexical_mut().filter(|_| mode != Mode::Dense) {
        for b in l.missing_blocks(query) {
            let (n, corpus, block) = IndexDir::read_block(&shards, b)?;
            l.add_block(n, &corpus, block)?;
            blocks += 1;
        }
    }
    let answer = retriever.search(query, k, mode)?;
    let hits = &answer.hits;
    let ms = t.elapsed().as_secs_f64() * 1e3;
    let mut rows = Vec::new();
    for h in hits {
        let p = shards.passage(h.ordinal)?;
        rows.push(serde_json::json!({"id": h.id, "score": h.score, "dense": h.dense, "lexical": h.lexical,
            "title": p.title, "text": p.text, "url": p.url}));
    }
    if json {
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
