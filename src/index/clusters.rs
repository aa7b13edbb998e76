//! Vectors loaded by need: the index's rows partitioned by k-means, so a
//! browser fetches a small head (centroids, which cluster holds each row)
//! and then only the clusters a query probes.
//!
//! A query probes the `nprobe` clusters whose centroids score highest.
//! Rows of probed clusters score exactly; every other row scores as its
//! centroid does, an estimate that keeps BM25's candidates from other
//! clusters in the fused ranking. The answer is a function of the query
//! alone: clusters loaded by earlier queries change nothing.

pub use super::quant::ValueBits;
use super::quant::{dot_f32, Store};
use crate::{Error, Result};

/// Iterations of Lloyd's algorithm at index time: the assignment barely
/// moves after ten on sentence vectors.
pub const KMEANS_ITERS: usize = 12;
/// Rows per cluster aimed at by default: about 20 KB of int4 vectors per
/// cluster file at 384 dimensions.
pub const DEFAULT_CLUSTER_ROWS: usize = 100;
/// The most clusters a head may describe (each is one file).
pub const MAX_CLUSTERS: usize = 1 << 16;

/// A partition of an index's rows.
#[derive(Debug, Clone, PartialEq)]
pub struct Clustering {
    /// `k * dim`, each centroid of unit length.
    pub centroids: Vec<f32>,
    /// The cluster of each row.
    pub assign: Vec<u32>,
}

impl Clustering {
    pub fn k(&self, dim: usize) -> usize {
        self.centroids.len() / dim.max(1)
    }

    /// The rows of each cluster, ascending.
    pub fn members(&self, k: usize) -> Vec<Vec<u32>> {
        let mut m = vec![Vec::new(); k];
        for (row, &c) in self.assign.iter().enumerate() {
            m[c as usize].push(row as u32);
        }
        m
    }
}

/// How many clusters for `rows` rows: about [`DEFAULT_CLUSTER_ROWS`] each.
pub fn default_k(rows: usize) -> usize {
    rows.div_ceil(DEFAULT_CLUSTER_ROWS).clamp(1, MAX_CLUSTERS)
}

/// Spherical k-means (inner product, unit centroids) over `store`'s rows,
/// seeded by `seed`: the same rows and seed give the same clusters. A
/// cluster left empty takes the row its centroid explains worst.
pub fn kmeans(store: &Store, dim: usize, rows: usize, k: usize, seed: u64) -> Result<Clustering> {
    if rows == 0 || k == 0 {
        return Err(Error::Invalid("k-means needs rows and at least one cluster".into()));
    }
    let k = k.min(rows);
    let row = |r: usize| store.row(dim, r).ok_or_else(|| Error::Invalid(format!("row {r} is out of range")));
    // Distinct random rows as the first centroids.
    let mut state = seed;
    let mut order: Vec<usize> = (0..rows).collect();
    for i in 0..k {
        let j = i + (crate::rng::splitmix64(&mut state) % (rows - i) as u64) as usize;
        order.swap(i, j);
    }
    let mut centroids = Vec::with_capacity(k * dim);
    for &r in &order[..k] {
        centroids.extend(unit(row(r)?));
    }
    let mut assign = vec![0u32; rows];
    let mut best = vec![0f32; rows];
    for _ in 0..KMEANS_ITERS {
        for (r, (a, b)) in assign.iter_mut().zip(best.iter_mut()).enumerate() {
            let (c, s) = nearest(&centroids, dim, &row(r)?);
            (*a, *b) = (c as u32, s);
        }
        let mut sums = vec![0f32; k * dim];
        let mut counts = vec![0usize; k];
        for (r, &c) in assign.iter().enumerate() {
            let c = c as usize;
            counts[c] += 1;
            for (s, x) in sums[c * dim..(c + 1) * dim].iter_mut().zip(row(r)?) {
                *s += x;
            }
        }
        for c in 0..k {
            if counts[c] == 0 {
                // The worst-explained row starts the empty cluster over.
                let worst = (0..rows).min_by(|&a, &b| best[a].total_cmp(&best[b])).unwrap_or(0);
                best[worst] = f32::INFINITY;
                sums[c * dim..(c + 1) * dim].copy_from_slice(&row(worst)?);
            }
            let u = unit(sums[c * dim..(c + 1) * dim].to_vec());
            centroids[c * dim..(c + 1) * dim].copy_from_slice(&u);
        }
    }
    for (r, a) in assign.iter_mut().enumerate() {
        *a = nearest(&centroids, dim, &row(r)?).0 as u32;
    }
    Ok(Clustering { centroids, assign })
}

fn unit(mut v: Vec<f32>) -> Vec<f32> {
    let n = v.iter().map(|x| x * x).sum::<f32>().sqrt();
    if n > 0.0 {
        v.iter_mut().for_each(|x| *x /= n);
    }
    v
}

/// The best-scoring centroid (lowest number on ties) and its score.
fn nearest(centroids: &[f32], dim: usize, v: &[f32]) -> (usize, f32) {
    centroids.chunks_exact(dim).map(|c| dot_f32(c, v)).enumerate().fold((0, f32::NEG_INFINITY), |b, (i, s)| {
        if s > b.1 {
            (i, s)
        } else {
            b
        }
    })
}

/// What a reader knows of a clustered index before any cluster arrives:
/// the centroids, each row's cluster, and which clusters are loaded.
#[derive(Debug, Clone, PartialEq)]
pub struct ClusterMap {
    dim: usize,
    /// `k * dim`, dequantized.
    centroids: Vec<f32>,
    row_cluster: Vec<u32>,
    /// Rows per cluster (what each cluster file must hold).
    sizes: Vec<u32>,
    loaded: Vec<bool>,
    nprobe: usize,
    /// The head file's CRC-32: list files carry it, so lists of another build are refused.
    pub(crate) tag: u32,
}

impl ClusterMap {
    pub fn new(dim: usize, centroids: Vec<f32>, row_cluster: Vec<u32>, nprobe: usize) -> Result<Self> {
        let k = centroids.len() / dim.max(1);
        if dim == 0 || k == 0 || centroids.len() != k * dim || k > MAX_CLUSTERS {
            return Err(Error::format(
                "cluster head",
                format!("{} centroid values for dimension {dim}", centroids.len()),
            ));
        }
        let mut sizes = vec![0u32; k];
        for &c in &row_cluster {
            *sizes
                .get_mut(c as usize)
                .ok_or_else(|| Error::format("cluster head", format!("a row is in cluster {c} of {k}")))? += 1;
        }
        if !(1..=k).contains(&nprobe) {
            return Err(Error::format("cluster head", format!("probes {nprobe} of {k} clusters")));
        }
        Ok(Self { dim, centroids, row_cluster, sizes, loaded: vec![false; k], nprobe, tag: 0 })
    }

    pub fn k(&self) -> usize {
        self.sizes.len()
    }
    pub fn nprobe(&self) -> usize {
        self.nprobe
    }
    pub fn set_nprobe(&mut self, nprobe: usize) {
        self.nprobe = nprobe.clamp(1, self.k());
    }
    pub fn rows(&self) -> usize {
        self.row_cluster.len()
    }
    pub fn size(&self, cluster: usize) -> Option<usize> {
        self.sizes.get(cluster).map(|&s| s as usize)
    }
    pub fn cluster_of(&self, row: usize) -> Option<u32> {
        self.row_cluster.get(row).copied()
    }
    pub fn is_loaded(&self, cluster: usize) -> bool {
        self.loaded.get(cluster).copied().unwrap_or(false)
    }
    pub fn loaded_count(&self) -> usize {
        self.loaded.iter().filter(|&&l| l).count()
    }
    pub(crate) fn mark_loaded(&mut self, cluster: usize) {
        if let Some(l) = self.loaded.get_mut(cluster) {
            *l = true;
        }
    }

    /// Every centroid's score for `query`.
    pub fn centroid_scores(&self, query: &[f32]) -> Vec<f32> {
        self.centroids.chunks_exact(self.dim).map(|c| dot_f32(c, query)).collect()
    }

    /// The clusters `query` probes, best first (lowest number on ties).
    pub fn probe(&self, query: &[f32]) -> Vec<u32> {
        self.probe_by(&self.centroid_scores(query))
    }

    /// The clusters probed given every centroid's score.
    fn probe_by(&self, scores: &[f32]) -> Vec<u32> {
        let mut order: Vec<u32> = (0..self.k() as u32).collect();
        order.sort_by(|&a, &b| scores[b as usize].total_cmp(&scores[a as usize]).then(a.cmp(&b)));
        order.truncate(self.nprobe);
        order
    }

    /// The probed clusters not loaded yet: what to fetch before searching.
    pub fn missing(&self, query: &[f32]) -> Vec<u32> {
        self.probe(query).into_iter().filter(|&c| !self.is_loaded(c as usize)).collect()
    }

    /// Every row's score for `query` into `out`: exact (from `store`) for the
    /// rows of the probed clusters that are loaded, its centroid's for every
    /// other row. Only those rows are scanned: the rest of `store` holds the
    /// zeros of clusters never fetched, or rows this query does not probe.
    /// Returns how many probed clusters were missing (their rows estimated).
    pub fn scores(&self, store: &Store, query: &[f32], out: &mut Vec<f32>) -> usize {
        let centroid = self.centroid_scores(query);
        let mut exact = vec![false; self.k()];
        let mut missing = 0;
        for c in self.probe_by(&centroid) {
            match self.is_loaded(c as usize) {
                true => exact[c as usize] = true,
                false => missing += 1,
            }
        }
        out.clear();
        out.extend(self.row_cluster.iter().map(|&c| centroid[c as usize]));
        let rows = self.row_cluster.iter().enumerate().filter(|(_, &c)| exact[c as usize]).map(|(r, _)| r);
        store.scan_rows(self.dim, query, rows, out);
        missing
    }
}

/// Centroids as quantized rows with a scale each (how a head stores them).
pub fn quantize_centroids(centroids: &[f32], dim: usize, bits: ValueBits) -> (Vec<i8>, Vec<f32>) {
    let mut q = Vec::with_capacity(centroids.len());
    let mut scales = Vec::with_capacity(centroids.len() / dim.max(1));
    for c in centroids.chunks_exact(dim) {
        let (row, s) = bits.quantize(c);
        q.extend(row);
        scales.push(s);
    }
    (q, scales)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::VectorDType;

    fn store(rows: &[[f32; 3]]) -> Store {
        let mut s = Store::empty(VectorDType::F32);
        rows.iter().for_each(|r| s.push(r));
        s
    }

    #[test]
    fn kmeans_separates_two_directions_and_is_seeded() {
        let rows = [[1.0, 0.1, 0.0], [0.9, 0.0, 0.1], [1.0, 0.0, 0.0], [0.0, 1.0, 0.1], [0.1, 0.9, 0.0]];
        let s = store(&rows);
        let c = kmeans(&s, 3, rows.len(), 2, 7).unwrap();
        assert_eq!(c.assign[0], c.assign[1]);
        assert_eq!(c.assign[0], c.assign[2]);
        assert_eq!(c.assign[3], c.assign[4]);
        assert_ne!(c.assign[0], c.assign[3]);
        assert_eq!(c, kmeans(&s, 3, rows.len(), 2, 7).unwrap());
        // More clusters than rows: one per row at most, none empty.
        let c = kmeans(&s, 3, rows.len(), 9, 1).unwrap();
        assert_eq!(c.k(3), 5);
        assert!(c.members(5).iter().all(|m| !m.is_empty()));
    }

    #[test]
    fn unprobed_rows_score_as_their_centroid() {
        let map = ClusterMap::new(2, vec![1.0, 0.0, 0.0, 1.0], vec![0, 1, 0], 1).unwrap();
        let mut m = map.clone();
        let q = [0.75, 0.25];
        assert_eq!(m.probe(&q), [0]);
        assert_eq!(m.missing(&q), [0]);
        // Rows scoring 0.875, 0.5 and 0.375 (exact in binary).
        let mut rows = Store::empty(VectorDType::F32);
        [[1.0, 0.5], [0.0, 2.0], [0.5, 0.0]].iter().for_each(|r| rows.push(r));
        let mut s = Vec::new();
        // Nothing loaded: every row is estimated, one probed cluster missing.
        assert_eq!(m.scores(&rows, &q, &mut s), 1);
        assert_eq!(s, [0.75, 0.25, 0.75]);
        m.mark_loaded(0);
        assert_eq!(m.scores(&rows, &q, &mut s), 0);
        assert_eq!(s, [0.875, 0.25, 0.375]);
        // A loaded but unprobed cluster is still estimated: history changes nothing.
        m.mark_loaded(1);
        m.scores(&rows, &q, &mut s);
        assert_eq!(s, [0.875, 0.25, 0.375]);
    }

    #[test]
    fn probed_rows_score_as_the_full_scan_does() {
        // int8 rows in 4 clusters; the probed ones must score bit for bit as
        // a scan of every row, the others as their centroid.
        let dim = 16;
        let mut state = 3;
        let mut rng = || (crate::rng::splitmix64(&mut state) % 2001) as f32 / 1000.0 - 1.0;
        let mut rows = Store::empty(VectorDType::Int8);
        let row_cluster: Vec<u32> = (0..40).map(|r| r % 4).collect();
        for _ in 0..40 {
            rows.push(&(0..dim).map(|_| rng()).collect::<Vec<_>>());
        }
        let centroids: Vec<f32> = (0..4 * dim).map(|_| rng()).collect();
        let mut m = ClusterMap::new(dim, centroids, row_cluster.clone(), 2).unwrap();
        (0..4).for_each(|c| m.mark_loaded(c));
        let q: Vec<f32> = (0..dim).map(|_| rng()).collect();
        let (mut full, mut got) = (Vec::new(), Vec::new());
        rows.scan(dim, &q, &mut full);
        assert_eq!(m.scores(&rows, &q, &mut got), 0);
        let probed = m.probe(&q);
        let centroid = m.centroid_scores(&q);
        for (r, &c) in row_cluster.iter().enumerate() {
            let want = if probed.contains(&c) { full[r] } else { centroid[c as usize] };
            assert_eq!(got[r].to_bits(), want.to_bits(), "row {r} of cluster {c}");
        }
    }

    #[test]
    fn bad_maps_are_refused() {
        assert!(ClusterMap::new(2, vec![1.0, 0.0], vec![0, 1], 1).is_err(), "row in a cluster that does not exist");
        assert!(ClusterMap::new(2, vec![1.0, 0.0], vec![0], 2).is_err(), "probes more than exist");
        assert!(ClusterMap::new(2, vec![1.0], vec![], 1).is_err(), "centroid cut short");
    }
}
