//! The clustered vector layout of `index` and `index-site`: k-means over the
//! passage vectors, and the number of clusters a query probes chosen on the
//! corpus's own pseudo-queries, encoded as the site's visitors encode them
//! and ranked as the folder serves them.

use std::time::Instant;

use anyhow::Result;
use ernie_search::format::clusters;
use ernie_search::format::shard::Passage;
use ernie_search::fusion::{Candidates, FUSION_DEPTH};
use ernie_search::index::clusters::{default_k, kmeans, ValueBits};
use ernie_search::index::Clustering;
use ernie_search::{FlatIndex, Fusion, LexicalIndex};
use ernie_search_train::table::pseudo_queries;

use crate::flags::VectorArgs;

/// Pseudo-queries the probe is measured on, and the seed that draws them
/// (another stream than the table's training queries).
const PROBE_QUERIES: usize = 1000;
const PROBE_SEED: u64 = 0x5EED_C1A5;
const KMEANS_SEED: u64 = 1;

/// A clustering with its probe and what it keeps of the exact scan.
pub struct Chosen {
    pub clustering: Clustering,
    pub nprobe: usize,
    pub bits: ValueBits,
    pub measured: String,
}

/// Query texts to vectors (`None`: the encoder has nothing for that query).
pub type Encode<'a> = &'a dyn Fn(&[String]) -> Result<Vec<Option<Vec<f32>>>>;

/// How the folder answers: the query encoder's name, and the hybrid
/// fusion it serves when it has BM25.
pub struct Served<'a> {
    pub encoder: &'a str,
    pub encode: Encode<'a>,
    pub lexical: Option<(&'a LexicalIndex, Fusion)>,
}

/// One pseudo-query: its vector and its BM25 scores (when it has a keyword).
struct Probe {
    vector: Vec<f32>,
    lexical: Option<Vec<f32>>,
}

/// Clusters `index` and picks how many clusters a query probes: the fewest
/// whose top-10, in the mode the folder serves (hybrid when it has BM25),
/// keeps `args.probe_recall` of the exact scan's on pseudo-queries.
pub fn choose(index: &FlatIndex, passages: &[Passage], served: &Served, args: &VectorArgs) -> Result<Chosen> {
    let t = Instant::now();
    let k = args.clusters.unwrap_or_else(|| default_k(index.rows())).min(index.rows());
    let clustering = kmeans(index.store(), index.dim(), index.rows(), k, KMEANS_SEED)?;
    let seconds = t.elapsed().as_secs_f64();
    let probes = probes(passages, served)?;
    let exact: Vec<Top10> = probes.iter().map(|p| top10(index, p, served)).collect::<Result<_>>()?;
    let recall_of = |n: usize| -> Result<(f64, f64)> {
        let ix = clusters::loaded(index, &clustering, n, args.cluster_bits)?;
        let (mut dense, mut served_kept) = (0.0, 0.0);
        for (p, want) in probes.iter().zip(&exact) {
            let got = top10(&ix, p, served)?;
            dense += overlap(&want.dense, &got.dense);
            served_kept += overlap(&want.served, &got.served);
        }
        let n = probes.len().max(1) as f64;
        Ok((dense / n, served_kept / n))
    };
    let (nprobe, (dense, kept)) = match args.nprobe {
        Some(n) => (n.min(k), recall_of(n.min(k))?),
        None => {
            let mut n = 1;
            loop {
                let r = recall_of(n)?;
                if r.1 >= args.probe_recall || n >= k {
                    break (n, r);
                }
                n = (n * 2).min(k);
            }
        }
    };
    let mode = if served.lexical.is_some() { "hybrid" } else { "dense" };
    let bits = args.cluster_bits;
    let measured = format!(
        "{mode} R@10 {kept:.3} of the exact scan's (dense alone {dense:.3}) on {} pseudo-queries ({}, int{} lists)",
        probes.len(),
        served.encoder,
        bits.bits()
    );
    println!("  clusters {k} (k-means in {seconds:.1}s); a query probes {nprobe}: {measured}");
    Ok(Chosen { clustering, nprobe, bits, measured })
}

fn probes(passages: &[Passage], served: &Served) -> Result<Vec<Probe>> {
    let texts: Vec<String> = pseudo_queries(passages, PROBE_QUERIES, PROBE_SEED).into_iter().map(|q| q.text).collect();
    let vectors = (served.encode)(&texts)?;
    let mut out = Vec::with_capacity(texts.len());
    for (text, v) in texts.iter().zip(vectors) {
        let Some(vector) = v else { continue };
        let lexical = match served.lexical {
            Some((l, _)) => l.scores(text)?,
            None => None,
        };
        out.push(Probe { vector, lexical });
    }
    Ok(out)
}

/// A query's dense top-10 and the top-10 the folder serves.
struct Top10 {
    dense: Vec<usize>,
    served: Vec<usize>,
}

fn top10(index: &FlatIndex, p: &Probe, served: &Served) -> Result<Top10> {
    let mut scores = Vec::new();
    index.passage_scores(&p.vector, &mut scores)?;
    let ids = index.ids();
    let dense: Vec<usize> =
        ernie_search::index::top_k(scores.iter().copied().enumerate(), ids, 10).iter().map(|h| h.ordinal).collect();
    let served = match (served.lexical, &p.lexical) {
        (Some((_, fusion)), Some(lex)) => {
            let c = Candidates::gather(&scores, Some(lex), ids, FUSION_DEPTH);
            c.fuse(fusion, ids, 10).iter().map(|h| h.ordinal).collect()
        }
        _ => dense.clone(),
    };
    Ok(Top10 { dense, served })
}

fn overlap(want: &[usize], got: &[usize]) -> f64 {
    want.iter().filter(|o| got.contains(o)).count() as f64 / want.len().max(1) as f64
}
