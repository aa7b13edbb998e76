//! `ernie-search table`: the token-table query encoder (no transformer at
//! query time): `distil` teaches it from a model and its index, `eval` sets it
//! beside the transformer on a labelled split of the same index.

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{bail, Context, Result};
use ernie_search::format::shard::{FusionSetting, Passage};
use ernie_search::format::table::TableFile;
use ernie_search::format::{self, table as table_file};
use ernie_search::index::builder::{embed_queries, passage_input, Progress};
use ernie_search::index::clusters::ValueBits;
use ernie_search::index::dir::IndexDir;
use ernie_search::index::embed_cache::EmbedCache;
use ernie_search::table::TableEncoder;
use ernie_search::{Embedder, FlatIndex, Fusion, LexicalIndex, WordPiece};
use ernie_search_data::progress::Bar;
use ernie_search_data::{beir, eval};
use ernie_search_train::commands::StageArgs;
use ernie_search_train::table::{self, distil, Rows, TableJob, TrainOptions};
use ernie_search_train::table_ablate::{ablate, TableAblateOptions};

use crate::flags::{alpha, positive, CacheArg, StageFlags, TableArgs};

#[derive(clap::Subcommand)]
pub enum What {
    /// Distil a token table from a model and the index it built (rows from the
    /// encoder, IDF weights, then MSE + contrastive on the set's training queries)
    Distil {
        #[arg(long)]
        model: PathBuf,
        /// An index folder built by that model (its vectors are the frozen passages)
        #[arg(long)]
        index: PathBuf,
        /// BEIR folder, or `nq` / `drop`
        #[arg(long)]
        data: String,
        #[arg(long, default_value = "train")]
        split: String,
        #[arg(long, short)]
        out: PathBuf,
        /// Keep the initial table (no training)
        #[arg(long)]
        init_only: bool,
        #[arg(long, default_value_t = TrainOptions::default().steps, value_parser = positive)]
        steps: usize,
        #[arg(long, default_value_t = TrainOptions::default().batch, value_parser = positive)]
        batch: usize,
        #[arg(long, default_value_t = TrainOptions::default().lr)]
        lr: f64,
        #[command(flatten)]
        cache: CacheArg,
    },
    /// Adapt a table to an index's own passages (pseudo-queries, no labels),
    /// as `index` does, and write it as a file (for `table eval`)
    Adapt {
        #[arg(long)]
        index: PathBuf,
        #[arg(long, short)]
        out: PathBuf,
        #[command(flatten)]
        table: TableArgs,
    },
    /// The table against the transformer on a labelled split of an index
    /// (dense, RRF and convex hybrid, BM25), without encoding the corpus again
    Eval {
        #[arg(long)]
        index: PathBuf,
        /// A table file [default: the index's own table]
        #[arg(long)]
        table: Option<PathBuf>,
        /// BEIR folder, or `nq` / `drop`
        #[arg(long)]
        data: String,
        #[arg(long, default_value = "dev")]
        split: String,
        /// Hybrid weight of the dense side [default: tuned on this split, an upper bound]
        #[arg(long, value_parser = alpha)]
        alpha: Option<f32>,
        /// The table's unlabelled default weight, to report as its own row
        /// [default: the one the index stores for its table]
        #[arg(long, value_parser = alpha)]
        table_alpha: Option<f32>,
        /// Also as a browser reads clustered vectors: k-means into this many
        /// clusters, then each --nprobe (rows from the probed clusters only)
        #[arg(long)]
        clusters: Option<usize>,
        #[arg(long, value_delimiter = ',', default_value = "1,2,4,8")]
        nprobe: Vec<usize>,
        /// Bits per value in the cluster files, as `index --cluster-bits`
        #[arg(long, default_value = "2")]
        cluster_bits: ValueBits,
        #[command(flatten)]
        cache: CacheArg,
    },
    /// The method's own test on the table: the table taught by the DE alone
    /// against the table also taught by the LI's and the CE's distributions
    /// over each query's candidates (KL); trains the run's LI head and CE first
    /// when the run folder has none
    Ablate {
        #[command(flatten)]
        flags: StageFlags,
        /// The DE: the model that built --index
        #[arg(long)]
        model: PathBuf,
        /// An index of the recipe's data set built by --model
        #[arg(long)]
        index: PathBuf,
        /// Candidates per training query (the DE's top, the positive put in)
        #[arg(long, default_value_t = 8)]
        depth: usize,
        #[arg(long, default_value_t = TrainOptions::default().steps, value_parser = positive)]
        steps: usize,
        /// Each teacher's KL weight (the contrastive term weighs 1)
        #[arg(long, default_value_t = 1.0)]
        kl: f64,
        /// Dev queries whose DE candidates every teacher reranks, to show what each knows (0: none)
        #[arg(long, default_value_t = 300)]
        probe_queries: usize,
        /// Also train the table in these reduced dimensions (a projection fitted on the passage vectors)
        #[arg(long, value_delimiter = ',', default_value = "256,128")]
        dims: Vec<usize>,
        /// Markdown file to write the report to (as well as standard output)
        #[arg(long)]
        out: Option<PathBuf>,
        /// The split to score every row on [default: the recipe's [eval] split]
        #[arg(long)]
        split: Option<String>,
        /// Folder to write each full-dimension row's table to (init, de, de-kl, li, ce, cascade .tbl)
        #[arg(long)]
        tables: Option<PathBuf>,
    },
}

pub fn run(what: What) -> Result<()> {
    match what {
        What::Distil { model, index, data, split, out, init_only, steps, batch, lr, cache } => {
            let embedder = crate::load::model(&model)?;
            let data_dir = crate::load::beir_dir(&data, &cache.dir())?;
            let train = (!init_only).then(|| TrainOptions { steps, batch, lr, ..TrainOptions::default() });
            let job = TableJob { embedder: &embedder, index_dir: &index, data_dir: &data_dir, split: &split, train };
            let r = distil(&job, &mut Bar::new(0, "table"))?;
            let bytes = table_file::to_bytes(&r.file)?;
            format::write_atomic(&out, &bytes).with_context(|| format!("cannot write {}", out.display()))?;
            println!(
                "table {} x {} ({:.1} MB, {} chunks of {} rows) -> {}\n  init {:.0}s; trained on {} queries in {:.0}s{}",
                r.file.table.vocab(),
                r.file.table.dim,
                bytes.len() as f64 / 1e6,
                r.file.table.n_chunks(),
                r.file.table.chunk_rows(),
                out.display(),
                r.init_seconds,
                r.queries,
                r.train_seconds,
                r.loss.map_or(String::new(), |(a, b)| format!(", loss {a:.3} -> {b:.3}"))
            );
            Ok(())
        }
        What::Ablate { flags, model, index, depth, steps, kl, probe_queries, dims, split, out, tables } => {
            let embedder = crate::load::model(&model)?;
            let opts = TableAblateOptions {
                stage: StageArgs::from(&flags),
                embedder: &embedder,
                index,
                depth,
                train: TrainOptions { steps, ..TrainOptions::default() },
                weight: kl,
                probe_queries,
                dims,
                split,
                tables,
            };
            let report = ablate(&opts, &mut Bar::new(0, "table ablate"))?;
            if let Some(out) = &out {
                format::write_atomic(out, report.as_bytes())
                    .with_context(|| format!("cannot write {}", out.display()))?;
            }
            println!("{report}");
            Ok(())
        }
        What::Adapt { index, out, table } => {
            let (mut r, shards, _) = crate::load::index(&index, None)?;
            let passages: Vec<Passage> = (0..r.index().len()).map(|o| shards.passage(o)).collect::<Result<_, _>>()?;
            if let Some(lexical) = r.lexical_mut() {
                IndexDir::load_blocks(&shards, lexical)?;
            }
            // No embedding cache: it keeps only what one build used, and this is no build.
            let t = for_index(r.embedder()?, &passages, r.index(), r.lexical(), &table, None)?;
            format::write_atomic(&out, &table_file::to_bytes(&t.file)?)
                .with_context(|| format!("cannot write {}", out.display()))?;
            println!("-> {}", out.display());
            Ok(())
        }
        What::Eval { index, table, data, split, alpha, table_alpha, clusters, nprobe, cluster_bits, cache } => {
            let data_dir = crate::load::beir_dir(&data, &cache.dir())?;
            let (mut r, shards, _) = crate::load::index(&index, None)?;
            let encoder = match &table {
                Some(path) => {
                    let file = crate::load::table_file(path)?;
                    if file.table.fingerprint != r.embedder()?.card().fingerprint {
                        bail!("{} was distilled against another encoder than the index's", path.display());
                    }
                    TableEncoder::from_file(file)?
                }
                None => {
                    let mut e =
                        IndexDir::read_table(&shards)?.context("the index carries no token table; pass --table")?;
                    IndexDir::load_whole_table(&shards, &mut e)?;
                    e
                }
            };
            IndexDir::load_blocks(&shards, r.lexical_mut().context("the index has no BM25 part")?)?;
            let queries = beir::load_queries(&data_dir.join("queries.jsonl"))?;
            let qrels = beir::load_qrels(&data_dir, &split)?;
            let qids: Vec<String> = qrels.keys().cloned().collect();
            let texts: Vec<String> = qids
                .iter()
                .map(|q| queries.get(q).cloned().with_context(|| format!("query {q} has no text")))
                .collect::<Result<_>>()?;
            let dense = embed_queries(r.embedder()?, &texts, 64, &mut Bar::new(0, "queries"))?;
            let dense: Vec<Option<Vec<f32>>> = dense.into_iter().map(Some).collect();
            let table: Vec<Option<Vec<f32>>> = texts.iter().map(|t| encoder.encode(t)).collect::<Result<_, _>>()?;
            let fallbacks = table.iter().filter(|v| v.is_none()).count();
            let (lex, ids) = (r.lexical().context("lexical")?, r.index().ids());
            let a = eval::candidates_from(r.index(), lex, &qids, &texts, &dense)?;
            let b = eval::candidates_from(r.index(), lex, &qids, &texts, &table)?;
            let mut rows = vec![eval::lexical_row(&a, &qrels, ids)];
            rows.extend(eval::encoder_rows("transformer", &a, &qrels, ids, alpha));
            rows.extend(eval::encoder_rows("table", &b, &qrels, ids, alpha));
            let stored = match encoder.fusion {
                Some(Fusion::Convex { alpha }) => Some(alpha),
                _ => None,
            };
            let default_alpha = table_alpha.or(stored);
            if let Some(a) = default_alpha {
                let (_, scores) = eval::encoder_rows("table", &b, &qrels, ids, Some(a)).swap_remove(2);
                rows.push((format!("table hybrid alpha {a:.2} (unlabelled default)"), scores));
            }
            if let Some(k) = clusters {
                let probes = ClusterEval { k, nprobe: &nprobe, bits: cluster_bits, alpha: default_alpha, exact: &b };
                rows.extend(probes.rows(r.index(), lex, &qrels, &qids, &texts, &table)?);
            }
            println!(
                "{} {split}: {} queries ({fallbacks} with no table token: BM25 only)",
                data_dir.display(),
                qids.len()
            );
            println!("{}", eval::table(&rows));
            Ok(())
        }
    }
}

/// The table's rows with clustered vectors, one set per `nprobe`: dense,
/// hybrid at the unlabelled default, and how much of the exact dense
/// top-10 the probe keeps.
struct ClusterEval<'a> {
    k: usize,
    nprobe: &'a [usize],
    bits: ValueBits,
    alpha: Option<f32>,
    exact: &'a [eval::QueryCandidates],
}

impl ClusterEval<'_> {
    fn rows(
        &self,
        index: &FlatIndex,
        lex: &LexicalIndex,
        qrels: &ernie_search::metrics::Qrels,
        qids: &[String],
        texts: &[String],
        vectors: &[Option<Vec<f32>>],
    ) -> Result<Vec<(String, ernie_search::metrics::Scores)>> {
        let t = Instant::now();
        let clustering = ernie_search::index::clusters::kmeans(index.store(), index.dim(), index.rows(), self.k, 1)?;
        let (_, lists) = ernie_search::format::clusters::to_parts(index, &clustering, 1, self.bits)?;
        let list_bytes = lists.iter().map(Vec::len).sum::<usize>() as f64 / lists.len() as f64;
        println!(
            "k-means: {} clusters of {} rows in {:.1}s, {:.1} KB per list",
            lists.len(),
            index.rows(),
            t.elapsed().as_secs_f64(),
            list_bytes / 1e3
        );
        let mut rows = Vec::new();
        for &n in self.nprobe {
            let ix = ernie_search::format::clusters::loaded(index, &clustering, n.clamp(1, lists.len()), self.bits)?;
            let c = eval::candidates_from(&ix, lex, qids, texts, vectors)?;
            let kept = top10_overlap(self.exact, &c);
            let name = format!(
                "table, {n} of {} int{} clusters ({:.0} KB/query, R@10 vs exact {kept:.3})",
                lists.len(),
                self.bits.bits(),
                n as f64 * list_bytes / 1e3
            );
            let mut r = eval::encoder_rows(&name, &c, qrels, index.ids(), self.alpha);
            rows.push(r.remove(0));
            if self.alpha.is_some() {
                rows.push(r.swap_remove(1));
            }
        }
        Ok(rows)
    }
}

/// The mean share of each query's exact dense top-10 that `approx` finds in its top-10.
fn top10_overlap(exact: &[eval::QueryCandidates], approx: &[eval::QueryCandidates]) -> f64 {
    let share = |a: &eval::QueryCandidates, b: &eval::QueryCandidates| {
        let want: Vec<usize> = a.cands.dense_top().iter().take(10).map(|h| h.ordinal).collect();
        let got: Vec<usize> = b.cands.dense_top().iter().take(10).map(|h| h.ordinal).collect();
        want.iter().filter(|o| got.contains(o)).count() as f64 / want.len().max(1) as f64
    };
    exact.iter().zip(approx).map(|(a, b)| share(a, b)).sum::<f64>() / exact.len().max(1) as f64
}

/// The table an index folder carries, with what its manifest records.
pub struct IndexTable {
    pub file: TableFile,
    pub taught: String,
    pub fusion: Option<FusionSetting>,
}

/// The table `index` and `index-site` write beside the vectors: the start
/// (a distilled table, or the encoder's rows with the corpus's IDF), adapted
/// to the corpus's pseudo-queries, and its hybrid weight tuned on held-out
/// ones (when the index has BM25). The pseudo-queries' vectors come from
/// `cache` where it holds them.
pub fn for_index(
    embedder: &Embedder,
    passages: &[Passage],
    index: &FlatIndex,
    lexical: Option<&LexicalIndex>,
    args: &TableArgs,
    cache: Option<&mut EmbedCache>,
) -> Result<IndexTable> {
    let t = Instant::now();
    let (rows, start) = match &args.table_base {
        Some(path) => {
            let file = crate::load::table_file(path)?;
            if file.table.fingerprint != embedder.card().fingerprint {
                bail!("{} was distilled against another model than {}", path.display(), embedder.card().name);
            }
            // A table from an index folder is in its sorted vocabulary's order.
            let file = file.in_model_order(&embedder.card().tokenizer_json)?;
            (table::rows_of(&file.table)?, format!("from {}", path.display()))
        }
        None => {
            let texts: Vec<String> = passages.iter().map(|p| passage_input(&p.title, &p.text)).collect();
            let rows = Rows {
                dim: embedder.dim(),
                rows: cached_encoder_rows(embedder, &args.cache.dir())?,
                weights: table::idf_weights(embedder, &texts)?,
            };
            (rows, "from the encoder's rows and the corpus's IDF".to_string())
        }
    };
    let start_seconds = t.elapsed().as_secs_f64();
    let (file, r) = table::adapt(embedder, passages, index, rows, &args.options(), cache, &mut Bar::new(0, "table"))?;
    let taught = if r.queries == 0 {
        format!("{start}, not adapted")
    } else {
        format!(
            "{start}, adapted to {} pseudo-queries of this corpus ({} steps, seed {})",
            r.queries, args.table_steps, args.table_seed
        )
    };
    println!(
        "token table {} x {} {taught}: start {start_seconds:.0}s, teacher vectors {:.0}s, training {:.0}s{}",
        file.table.vocab(),
        file.table.dim,
        r.teacher_seconds,
        r.train_seconds,
        if r.queries > 0 { format!(" (loss {:.3} -> {:.3})", r.loss.0, r.loss.1) } else { String::new() }
    );
    let fusion = match lexical {
        Some(lexical) => tuned_fusion(&file, passages, index, lexical, args)?,
        None => None,
    };
    // The hybrid weight is tuned on the int8 rows: at the same weight the
    // int4 rows rank the wiki set's dev questions as the int8 ones do, but
    // their weaker dense side on pseudo-queries tips the label-free choice
    // a step towards BM25 (0.15 against 0.20: MRR@10 0.662 against 0.666).
    let file = file.sorted(table_file::DEFAULT_CHUNK_ROWS)?.with_bits(args.table_bits)?;
    Ok(IndexTable { file, taught, fusion })
}

impl IndexTable {
    /// The token ids of `texts` as a visitor's page gives them: by the
    /// table's own tokenizer (its ids are the sorted vocabulary's).
    pub fn query_ids(&self, texts: &[String]) -> Result<Vec<Vec<u32>>> {
        let tok = WordPiece::from_json(self.file.tokenizer_json.as_bytes(), self.file.max_query_len)
            .context("the token table's tokenizer")?;
        Ok(texts.iter().map(|t| tok.encode(t)).collect())
    }
}

fn tuned_fusion(
    file: &TableFile,
    passages: &[Passage],
    index: &FlatIndex,
    lexical: &LexicalIndex,
    args: &TableArgs,
) -> Result<Option<FusionSetting>> {
    let Some(t) = table::tune_fusion(file, passages, index, lexical, &args.options())? else {
        println!("  too few held-out pseudo-queries to tune the table's hybrid weight: RRF");
        return Ok(None);
    };
    let how = format!(
        "{} held-out pseudo-queries of this corpus (MRR@10 {:.3}, RRF {:.3}, BM25 {:.3}; the largest weight \
         not worse than their best, {:.2}, at 95 %)",
        t.queries, t.mrr, t.rrf_mrr, t.lexical_mrr, t.best_alpha
    );
    println!("  table hybrid weight alpha {:.2}, tuned on {how}", t.alpha);
    Ok(Some(FusionSetting { fusion: Fusion::convex(t.alpha)?, tuned_on: Some(how) }))
}

/// The encoder's own rows, computed once per model (a pass over every token
/// of the vocabulary) and kept in the cache as a table file.
fn cached_encoder_rows(embedder: &Embedder, cache: &Path) -> Result<Vec<f32>> {
    let fp = &embedder.card().fingerprint;
    let path = cache.join("tables").join(format!("encoder-rows.{}.tbl", &fp[..16.min(fp.len())]));
    if path.is_file() {
        match crate::load::table_file(&path) {
            Ok(f) if &f.table.fingerprint == fp && f.table.dim == embedder.dim() => {
                return Ok(table::rows_of(&f.table)?.rows);
            }
            _ => eprintln!("warning: {} is damaged or another model's; computing the rows again", path.display()),
        }
    }
    let mut bar = Bar::new(0, "token rows");
    let rows = table::encoder_rows(embedder, 256, &mut |d, n| bar.advance(d, n))?;
    let weights = vec![1.0; embedder.card().spec.bert.vocab_size];
    let file = TableFile {
        table: Rows { dim: embedder.dim(), rows, weights }.into_table(fp)?,
        tokenizer_json: embedder.card().tokenizer_json.clone(),
        max_query_len: embedder.card().spec.max_query_len,
    };
    std::fs::create_dir_all(path.parent().unwrap_or(cache))?;
    format::write_atomic(&path, &table_file::to_bytes(&file)?)
        .with_context(|| format!("cannot cache the token rows in {}", path.display()))?;
    // The rows as the cache gives them back (int8): the same table whether cached or not.
    Ok(table::rows_of(&file.table)?.rows)
}
