//! The clustered vector files (`index::clusters`): a head every query needs
//! and one list file per cluster, fetched when a query probes it.
//!
//! ```text
//! head                                    list (one per cluster)
//! offset size  field                      offset size  field
//!      0    8  magic "ERNIECLH"                0    8  magic "ERNIECLL"
//!      8    4  format version = 3              8    4  format version = 3
//!     12    4  dimension                      12    4  dimension
//!     16    4  clusters (k)                   16    4  cluster number
//!     20    4  clusters a query probes        20    4  rows it holds
//!     24    8  passages (u64)                 24    4  its head's CRC-32 (which build)
//!     32   32  model fingerprint              28    4  bits per value: 2, 4 or 8
//!     64    8  rows (u64)                                (v1, v2: 0, meaning 8)
//!     72    8  body length (u64)              32    8  body length (u64)
//!     80    4  CRC-32 of bytes 0..80, body    40    4  CRC-32 of bytes 0..40 and the body
//!     84    4  reserved (0)                   44    4  reserved (0)
//!     88       body: bits per value (one      48       body: row numbers (LEB128, the
//!              byte, 2, 4 or 8; v3 only: v1            first, then the gaps), rows
//!              and v2 hold int8), windows              (quantized values), scales
//!              per passage (LEB128), passage           (f32 each)
//!              ids (bytes shared with the
//!              previous id, LEB128; own length,
//!              LEB128; UTF-8; v1: length + UTF-8),
//!              each row's cluster (LEB128),
//!              centroids (quantized values),
//!              their scales (f32)
//! ```
//! A row of int8 values takes `dim` bytes; of int4 values (-8..=7, two's
//! complement; the writer uses -7..=7), `ceil(dim / 2)` bytes, value `2j` in
//! the low nibble of byte `j` and value `2j + 1` in its high nibble; of
//! int2 values (the levels -3, -1, 1, 3), `ceil(dim / 4)` bytes, value
//! `4j + i` in bits `2i..2i + 2` of byte `j` as `(v + 3) / 2`
//! (`ValueBits::pack`).
//!
//! Every count is checked against the bytes that hold it before anything is
//! allocated; a list must hold exactly the rows its head assigns to its
//! cluster, from the same build.

use super::index::parse_fingerprint;
use super::varint;
use crate::index::clusters::{quantize_centroids, ClusterMap, Clustering, ValueBits, MAX_CLUSTERS};
use crate::index::quant::Store;
use crate::{Error, FlatIndex, Result};

pub const HEAD_MAGIC: &[u8; 8] = b"ERNIECLH";
pub const LIST_MAGIC: &[u8; 8] = b"ERNIECLL";
/// 2: passage ids front-coded in the head; 3: values of 2, 4 or 8 bits (2
/// since 2026-12-08: an older reader names the width it does not know), said in
/// the head's first body byte and at offset 28 of a list. Versions 1 and 2
/// (int8) are still read.
pub const CLUSTERS_FORMAT_VERSION: u32 = 3;
const HEAD_HEADER: usize = 88;
const LIST_HEADER: usize = 48;
const MAX_DIM: usize = 8192;
/// The most int8 values (rows x dimension) a head may describe: its rows are
/// held in memory as they arrive, and a head is far smaller than its rows,
/// so a crafted one must not make a reader allocate gigabytes (1 GiB: 2.7
/// million rows of 384).
const MAX_VALUES: u64 = 1 << 30;

/// Writes `index` (every row present) partitioned by `clustering`: the
/// head, then one list per cluster, values of `bits` bits.
pub fn to_parts(
    index: &FlatIndex,
    clustering: &Clustering,
    nprobe: usize,
    bits: ValueBits,
) -> Result<(Vec<u8>, Vec<Vec<u8>>)> {
    let dim = index.dim();
    let k = clustering.k(dim);
    if clustering.assign.len() != index.rows() || k == 0 || k > MAX_CLUSTERS || !(1..=k).contains(&nprobe) {
        return Err(Error::Invalid(format!(
            "a clustering of {} rows into {k} clusters (probing {nprobe}) does not fit an index of {} rows",
            clustering.assign.len(),
            index.rows()
        )));
    }
    let mut body = vec![bits.bits() as u8];
    index.windows.iter().for_each(|&w| varint::put(&mut body, w));
    let mut prev: &[u8] = &[];
    for id in index.ids() {
        // Front-coded: a site's ids share long prefixes (/p/page-01234.html#section-1),
        // 1 KB gzipped for 10,033 of them where whole they take 26 KB.
        let id = id.as_bytes();
        let shared = prev.iter().zip(id).take_while(|(a, b)| a == b).count();
        varint::put(&mut body, shared as u32);
        varint::put(&mut body, (id.len() - shared) as u32);
        body.extend_from_slice(&id[shared..]);
        prev = id;
    }
    clustering.assign.iter().for_each(|&c| varint::put(&mut body, c));
    let (q, scales) = quantize_centroids(&clustering.centroids, dim, bits);
    q.chunks_exact(dim).for_each(|row| bits.pack(row, &mut body));
    scales.iter().for_each(|s| body.extend_from_slice(&s.to_le_bytes()));
    let mut head = Vec::with_capacity(HEAD_HEADER + body.len());
    head.extend_from_slice(HEAD_MAGIC);
    for v in [CLUSTERS_FORMAT_VERSION, dim as u32, k as u32, nprobe as u32] {
        head.extend_from_slice(&v.to_le_bytes());
    }
    head.extend_from_slice(&(index.len() as u64).to_le_bytes());
    head.extend_from_slice(&parse_fingerprint(index.fingerprint())?);
    head.extend_from_slice(&(index.rows() as u64).to_le_bytes());
    head.extend_from_slice(&(body.len() as u64).to_le_bytes());
    let tag = crc(&head, &body);
    head.extend_from_slice(&tag.to_le_bytes());
    head.extend_from_slice(&0u32.to_le_bytes());
    head.extend_from_slice(&body);
    let lists = clustering
        .members(k)
        .iter()
        .enumerate()
        .map(|(c, rows)| list_to_bytes(&index.store, dim, c as u32, rows, tag, bits))
        .collect::<Result<_>>()?;
    Ok((head, lists))
}

fn list_to_bytes(store: &Store, dim: usize, cluster: u32, rows: &[u32], tag: u32, bits: ValueBits) -> Result<Vec<u8>> {
    let mut body = Vec::with_capacity(rows.len() * (bits.row_bytes(dim) + 6));
    let mut last = None;
    for &r in rows {
        varint::put(&mut body, last.map_or(r, |l| r - l));
        last = Some(r);
    }
    let mut scales = Vec::with_capacity(rows.len());
    for &r in rows {
        let v = store.row(dim, r as usize).ok_or_else(|| Error::Invalid(format!("row {r} is out of range")))?;
        let (q, s) = bits.quantize(&v);
        bits.pack(&q, &mut body);
        scales.push(s);
    }
    scales.iter().for_each(|s| body.extend_from_slice(&s.to_le_bytes()));
    let mut out = Vec::with_capacity(LIST_HEADER + body.len());
    out.extend_from_slice(LIST_MAGIC);
    for v in [CLUSTERS_FORMAT_VERSION, dim as u32, cluster, rows.len() as u32, tag, bits.bits()] {
        out.extend_from_slice(&v.to_le_bytes());
    }
    out.extend_from_slice(&(body.len() as u64).to_le_bytes());
    out.extend_from_slice(&crc(&out, &body).to_le_bytes());
    out.extend_from_slice(&0u32.to_le_bytes());
    out.extend_from_slice(&body);
    Ok(out)
}

/// The value width a version 3 file states.
fn width(b: u32, what: &'static str) -> Result<ValueBits> {
    ValueBits::from_bits(b)
        .ok_or_else(|| Error::format(what, format!("values of {b} bits (this reader knows 2, 4 and 8)")))
}

fn crc(header: &[u8], body: &[u8]) -> u32 {
    let mut h = crate::format::crc32::Hasher::new();
    h.update(header);
    h.update(body);
    h.finalize()
}

fn u32_at(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}
fn u64_at(b: &[u8], at: usize) -> u64 {
    u64::from_le_bytes([b[at], b[at + 1], b[at + 2], b[at + 3], b[at + 4], b[at + 5], b[at + 6], b[at + 7]])
}

/// Checks magic, version, length and checksum; returns the body.
fn framed<'a>(bytes: &'a [u8], magic: &[u8; 8], header: usize, what: &'static str) -> Result<&'a [u8]> {
    if bytes.len() < 8 || &bytes[..8] != magic {
        return Err(Error::format(what, "not an ernie-search cluster file (bad magic)"));
    }
    if bytes.len() < header {
        return Err(Error::format(what, format!("truncated: {} bytes, the header alone is {header}", bytes.len())));
    }
    let version = u32_at(bytes, 8);
    if !(1..=CLUSTERS_FORMAT_VERSION).contains(&version) {
        return Err(Error::Version { what, found: version, supported: CLUSTERS_FORMAT_VERSION });
    }
    let body = &bytes[header..];
    let announced = u64_at(bytes, header - 16);
    if body.len() as u64 != announced {
        return Err(Error::format(
            what,
            format!("truncated or padded: the header announces {announced} body bytes, the file holds {}", body.len()),
        ));
    }
    let (stored, computed) = (u32_at(bytes, header - 8), crc(&bytes[..header - 8], body));
    if stored != computed {
        return Err(Error::Checksum { what, stored, computed });
    }
    Ok(body)
}

/// `n` LEB128 numbers from the front of `body`; `n` is first checked
/// against the bytes left (each takes at least one).
fn varints(body: &mut &[u8], n: u64, what: &'static str, of: &str) -> Result<Vec<u32>> {
    if n > body.len() as u64 {
        return Err(Error::format(what, format!("{n} {of} cannot fit in the {} bytes left", body.len())));
    }
    (0..n).map(|_| varint::get(body, what)).collect()
}

fn take<'a>(body: &mut &'a [u8], n: u64, what: &'static str, of: &str) -> Result<&'a [u8]> {
    let n = usize::try_from(n)
        .ok()
        .filter(|&n| n <= body.len())
        .ok_or_else(|| Error::format(what, format!("{of} ({n} bytes) cut short: {} bytes left", body.len())))?;
    let (head, rest) = body.split_at(n);
    *body = rest;
    Ok(head)
}

fn floats(b: &[u8], what: &'static str) -> Result<Vec<f32>> {
    let v: Vec<f32> = b.chunks_exact(4).map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect();
    match v.iter().all(|x| x.is_finite()) {
        true => Ok(v),
        false => Err(Error::format(what, "a scale is not a finite number (NaN or infinity)")),
    }
}

/// Reads a head as an index whose rows are all missing (zeros that score
/// as their centroid) until [`add_list`] brings each cluster's rows.
pub fn head_from_bytes(bytes: &[u8]) -> Result<FlatIndex> {
    const WHAT: &str = "cluster head";
    let mut body = framed(bytes, HEAD_MAGIC, HEAD_HEADER, WHAT)?;
    let (dim, k, nprobe) = (u32_at(bytes, 12) as usize, u32_at(bytes, 16) as usize, u32_at(bytes, 20) as usize);
    let (passages, rows) = (u64_at(bytes, 24), u64_at(bytes, 64));
    let fingerprint = super::hex(&bytes[32..64]);
    if !(1..=MAX_DIM).contains(&dim) || !(1..=MAX_CLUSTERS).contains(&k) {
        return Err(Error::format(WHAT, format!("dimension {dim} or {k} clusters out of range")));
    }
    let bits = match u32_at(bytes, 8) {
        1 | 2 => ValueBits::Int8,
        _ => width(u32::from(take(&mut body, 1, WHAT, "the value width")?[0]), WHAT)?,
    };
    let windows = varints(&mut body, passages, WHAT, "passage window counts")?;
    if windows.contains(&0) || windows.iter().map(|&w| w as u64).sum::<u64>() != rows {
        return Err(Error::format(WHAT, format!("the window counts do not add up to {rows} rows")));
    }
    let ids = read_ids(&mut body, windows.len(), u32_at(bytes, 8))?;
    if rows.saturating_mul(dim as u64) > MAX_VALUES {
        return Err(Error::format(
            WHAT,
            format!("{rows} rows of {dim} values are more than a reader holds ({MAX_VALUES})"),
        ));
    }
    let row_cluster = varints(&mut body, rows, WHAT, "row clusters")?;
    let row_bytes = bits.row_bytes(dim);
    let q = take(&mut body, (k * row_bytes) as u64, WHAT, "the centroids")?;
    let scales = floats(take(&mut body, 4 * k as u64, WHAT, "the centroid scales")?, WHAT)?;
    if !body.is_empty() {
        return Err(Error::format(WHAT, format!("{} unexpected bytes after the centroids", body.len())));
    }
    let mut centroids = vec![0i8; k * dim];
    for (out, packed) in centroids.chunks_exact_mut(dim).zip(q.chunks_exact(row_bytes)) {
        bits.unpack(packed, out);
    }
    let centroids = centroids.chunks_exact(dim).zip(&scales).flat_map(|(r, &s)| r.iter().map(move |&x| x as f32 * s));
    let mut map = ClusterMap::new(dim, centroids.collect(), row_cluster, nprobe)?;
    map.tag = u32_at(bytes, 80);
    // Rows are zeros until their cluster arrives (a few MB at most: the
    // rows were counted against the file above).
    let n = row_count(rows)?;
    let store = Store::Int8 { q: vec![0; n * dim], scales: vec![0.0; n] };
    Ok(FlatIndex { dim, ids, windows, store, fingerprint, clusters: Some(map) })
}

/// `n` passage ids: whole (version 1), or each as the bytes it shares with
/// the one before, then its own (version 2).
fn read_ids(body: &mut &[u8], n: usize, version: u32) -> Result<Vec<String>> {
    const WHAT: &str = "cluster head";
    let mut ids: Vec<String> = Vec::with_capacity(n.min(body.len()));
    for i in 0..n {
        let prev = ids.last().map_or(&[][..], |p| p.as_bytes());
        let shared = match version {
            1 => 0,
            _ => varint::get(body, WHAT)? as usize,
        };
        if shared > prev.len() {
            return Err(Error::format(WHAT, format!("passage id {i} shares more bytes than the id before it has")));
        }
        let len = varint::get(body, WHAT)?;
        let own = take(body, len as u64, WHAT, "a passage id")?;
        let id = [&prev[..shared], own].concat();
        ids.push(String::from_utf8(id).map_err(|_| Error::format(WHAT, format!("passage id {i} is not UTF-8")))?);
    }
    Ok(ids)
}

fn row_count(rows: u64) -> Result<usize> {
    usize::try_from(rows).map_err(|_| Error::format("cluster head", format!("{rows} rows")))
}

/// A list file's cluster number, without checking the rest (to name it in errors).
pub fn list_cluster(bytes: &[u8]) -> Option<u32> {
    (bytes.len() >= LIST_HEADER && &bytes[..8] == LIST_MAGIC).then(|| u32_at(bytes, 16))
}

/// Puts a list file's rows into `index` (read from its head); returns the
/// cluster. Refuses a list of another build, dimension or cluster size.
pub fn add_list(index: &mut FlatIndex, bytes: &[u8]) -> Result<u32> {
    const WHAT: &str = "cluster list";
    let mut body = framed(bytes, LIST_MAGIC, LIST_HEADER, WHAT)?;
    let dim = index.dim;
    let map = index.clusters.as_ref().ok_or_else(|| Error::Invalid("this index is not read by cluster".into()))?;
    let (list_dim, cluster, count, tag) =
        (u32_at(bytes, 12) as usize, u32_at(bytes, 16), u32_at(bytes, 20) as u64, u32_at(bytes, 24));
    if tag != map.tag || list_dim != dim {
        return Err(Error::format(WHAT, format!("cluster {cluster} belongs to another build of the index")));
    }
    match map.size(cluster as usize) {
        Some(n) if n as u64 == count => {}
        Some(n) => return Err(Error::format(WHAT, format!("cluster {cluster} holds {count} rows, its head says {n}"))),
        None => return Err(Error::format(WHAT, format!("cluster {cluster} of {}", map.k()))),
    }
    let gaps = varints(&mut body, count, WHAT, "row numbers")?;
    let mut rows = Vec::with_capacity(gaps.len());
    for (i, g) in gaps.into_iter().enumerate() {
        let r = match rows.last() {
            None => Some(g as usize),
            Some(&l) if g > 0 => (l as usize).checked_add(g as usize),
            Some(_) => None,
        };
        match r.filter(|&r| map.cluster_of(r) == Some(cluster)) {
            Some(r) => rows.push(r as u32),
            None => {
                return Err(Error::format(WHAT, format!("row {i} of cluster {cluster} is not one its head assigns")))
            }
        }
    }
    let bits = match u32_at(bytes, 8) {
        1 | 2 => ValueBits::Int8,
        _ => width(u32_at(bytes, 28), WHAT)?,
    };
    let row_bytes = bits.row_bytes(dim);
    let q = take(&mut body, count * row_bytes as u64, WHAT, "the rows")?;
    let scales = floats(take(&mut body, 4 * count, WHAT, "the row scales")?, WHAT)?;
    if !body.is_empty() {
        return Err(Error::format(WHAT, format!("{} unexpected bytes after the scales", body.len())));
    }
    let Store::Int8 { q: sq, scales: ss } = &mut index.store else {
        return Err(Error::Invalid("an index read by cluster stores int8 rows".into()));
    };
    for ((&r, row), &s) in rows.iter().zip(q.chunks_exact(row_bytes)).zip(&scales) {
        let r = r as usize;
        bits.unpack(row, &mut sq[r * dim..(r + 1) * dim]);
        ss[r] = s;
    }
    if let Some(m) = index.clusters.as_mut() {
        m.mark_loaded(cluster as usize);
    }
    Ok(cluster)
}

/// `index` as a browser sees it once every cluster has arrived (rows of
/// `bits` bits, the probe deciding which score exactly): for measuring what
/// clustering costs against the flat scan. Goes through the files' own bytes.
pub fn loaded(index: &FlatIndex, clustering: &Clustering, nprobe: usize, bits: ValueBits) -> Result<FlatIndex> {
    let (head, lists) = to_parts(index, clustering, nprobe, bits)?;
    let mut ix = head_from_bytes(&head)?;
    for l in &lists {
        add_list(&mut ix, l)?;
    }
    Ok(ix)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::index::clusters::kmeans;
    use crate::VectorDType;

    fn index(n: usize) -> FlatIndex {
        let fp = "ab".repeat(32);
        let mut ix = FlatIndex::new(4, VectorDType::F32, &fp).unwrap();
        for i in 0..n {
            let a = i as f32 * 0.7;
            let v = [a.cos(), a.sin(), 0.3, (i % 3) as f32 * 0.2];
            if i % 4 == 0 {
                ix.push_windows(&format!("p{i}"), &[v, [v[1], v[0], 0.1, 0.0]]).unwrap();
            } else {
                ix.push(&format!("p{i}"), &v).unwrap();
            }
        }
        ix
    }

    #[test]
    fn all_lists_loaded_score_as_the_flat_index() {
        let flat = index(40);
        let c = kmeans(&flat.store, 4, flat.rows(), 5, 3).unwrap();
        let (head, lists) = to_parts(&flat, &c, 5, ValueBits::Int8).unwrap();
        let mut ix = head_from_bytes(&head).unwrap();
        assert_eq!(ix.ids(), flat.ids());
        for l in &lists {
            add_list(&mut ix, l).unwrap();
        }
        let int8 = {
            let mut i = FlatIndex::new(4, VectorDType::Int8, flat.fingerprint()).unwrap();
            for o in 0..flat.len() {
                i.push_windows(flat.id(o).unwrap(), &flat.passage_vectors(o).unwrap()).unwrap();
            }
            i
        };
        let q = [0.6, 0.8, 0.1, 0.0];
        let (mut a, mut b) = (Vec::new(), Vec::new());
        ix.passage_scores(&q, &mut a).unwrap();
        int8.passage_scores(&q, &mut b).unwrap();
        for (x, y) in a.iter().zip(&b) {
            assert!((x - y).abs() < 1e-5, "{x} vs {y}");
        }
    }

    #[test]
    fn a_probe_fetches_few_lists_and_estimates_the_rest() {
        let flat = index(40);
        let c = kmeans(&flat.store, 4, flat.rows(), 5, 3).unwrap();
        let (head, lists) = to_parts(&flat, &c, 1, ValueBits::Int8).unwrap();
        let mut ix = head_from_bytes(&head).unwrap();
        let q = [0.6, 0.8, 0.1, 0.0];
        let missing = ix.clusters().unwrap().missing(&q);
        assert_eq!(missing.len(), 1);
        let got = add_list(&mut ix, &lists[missing[0] as usize]).unwrap();
        assert_eq!(got, missing[0]);
        assert!(ix.clusters().unwrap().missing(&q).is_empty());
        let hits = ix.search(&q, 3).unwrap();
        assert!(hits.iter().all(|h| flat.passage_vectors(h.ordinal).is_some()));
        // The best hit comes from the probed cluster and matches the exact scan's.
        assert_eq!(hits[0].ordinal, flat.search(&q, 1).unwrap()[0].ordinal);
    }

    #[test]
    fn int4_values_pack_two_a_byte_and_come_back() {
        for row in [vec![-7i8, 7, 0, -1, 3], vec![-8, 7, 1, -2], vec![5]] {
            let mut packed = Vec::new();
            ValueBits::Int4.pack(&row, &mut packed);
            assert_eq!(packed.len(), ValueBits::Int4.row_bytes(row.len()));
            let mut back = vec![0i8; row.len()];
            ValueBits::Int4.unpack(&packed, &mut back);
            assert_eq!(back, row);
        }
    }

    /// Int4 lists are half the bytes of int8 ones and score within int4's
    /// step of them, int2 lists a quarter; a head says its width and each
    /// list says its own.
    #[test]
    fn narrower_lists_take_fewer_bytes_and_keep_the_scores_close() {
        let flat = index(40);
        let c = kmeans(&flat.store, 4, flat.rows(), 5, 3).unwrap();
        let q = [0.6, 0.8, 0.1, 0.0];
        let mut by_bits = Vec::new();
        for bits in [ValueBits::Int8, ValueBits::Int4, ValueBits::Int2] {
            let (head, lists) = to_parts(&flat, &c, 5, bits).unwrap();
            let mut ix = head_from_bytes(&head).unwrap();
            for l in &lists {
                add_list(&mut ix, l).unwrap();
            }
            let mut scores = Vec::new();
            ix.passage_scores(&q, &mut scores).unwrap();
            let values: usize = lists.iter().map(|l| l.len() - LIST_HEADER).sum();
            by_bits.push((scores, values));
        }
        let ((s8, b8), (s4, b4), (s2, b2)) = (&by_bits[0], &by_bits[1], &by_bits[2]);
        // 50 rows (10 passages have two windows) of 4 values: 200 bytes of
        // int8 values, 100 of int4, 50 of int2.
        assert_eq!((b8 - b4, b4 - b2), (100, 50), "{b8} vs {b4} vs {b2}");
        for ((a, b), c) in s8.iter().zip(s4).zip(s2) {
            // |q| ~ 1 and each value within half a step (max / 7 / 2) of int8's.
            assert!((a - b).abs() < 0.25, "{a} vs {b}");
            // Two bits: within half a cell (about a standard deviation of the row).
            assert!((a - c).abs() < 0.6, "{a} vs {c}");
        }
        assert_ne!(s8, s4, "int4 rows are not the int8 ones");
        assert_ne!(s4, s2, "int2 rows are not the int4 ones");
    }

    /// A version 2 file (int8, no width byte) still reads.
    #[test]
    fn version_2_files_are_read_as_int8() {
        let flat = index(12);
        let c = kmeans(&flat.store, 4, flat.rows(), 2, 1).unwrap();
        let (head, lists) = to_parts(&flat, &c, 2, ValueBits::Int8).unwrap();
        let v2_head = as_version_2(&head, HEAD_HEADER, None);
        let v2_list = as_version_2(&lists[0], LIST_HEADER, Some(u32_at(&v2_head, 80)));
        let mut a = head_from_bytes(&head).unwrap();
        let mut b = head_from_bytes(&v2_head).unwrap();
        assert_eq!(add_list(&mut a, &lists[0]).unwrap(), add_list(&mut b, &v2_list).unwrap());
        assert_eq!(a.store, b.store);
        // A version 3 file of another width is refused with its width named.
        let mut odd = head.clone();
        odd[HEAD_HEADER] = 5;
        reseal(&mut odd, HEAD_HEADER);
        let err = head_from_bytes(&odd).expect_err("5 bits");
        assert!(err.to_string().contains("values of 5 bits"), "{err}");
    }

    /// `file` rewritten as version 2 wrote it: no width byte in a head's
    /// body; a list (given its v2 head's tag) with 0 at offset 28.
    fn as_version_2(file: &[u8], header: usize, list_tag: Option<u32>) -> Vec<u8> {
        let mut h = file[..header].to_vec();
        let body = match list_tag {
            None => &file[header + 1..],
            Some(tag) => {
                h[24..28].copy_from_slice(&tag.to_le_bytes());
                h[28..32].copy_from_slice(&0u32.to_le_bytes());
                &file[header..]
            }
        };
        h[8..12].copy_from_slice(&2u32.to_le_bytes());
        h[header - 16..header - 8].copy_from_slice(&(body.len() as u64).to_le_bytes());
        let mut out = [h, body.to_vec()].concat();
        reseal(&mut out, header);
        out
    }

    /// Recomputes a file's checksum after an edit.
    fn reseal(file: &mut [u8], header: usize) {
        let tag = crc(&file[..header - 8], &file[header..]);
        file[header - 8..header - 4].copy_from_slice(&tag.to_le_bytes());
    }

    /// A small head that claims more rows than a reader may hold is refused
    /// before anything is allocated for them.
    #[test]
    fn a_head_claiming_a_huge_index_is_refused() {
        let (dim, rows) = (384u32, 3_000_000u64);
        let mut body = vec![8u8]; // int8 values
        varint::put(&mut body, rows as u32); // one passage of 3 million windows
        varint::put(&mut body, 0); // its id "a": no byte shared, one of its own
        varint::put(&mut body, 1);
        body.push(b'a');
        let mut head = HEAD_MAGIC.to_vec();
        for v in [CLUSTERS_FORMAT_VERSION, dim, 1, 1] {
            head.extend_from_slice(&v.to_le_bytes());
        }
        head.extend_from_slice(&1u64.to_le_bytes());
        head.extend_from_slice(&[0xab; 32]);
        head.extend_from_slice(&rows.to_le_bytes());
        head.extend_from_slice(&(body.len() as u64).to_le_bytes());
        head.extend_from_slice(&crc(&head, &body).to_le_bytes());
        head.extend_from_slice(&0u32.to_le_bytes());
        head.extend_from_slice(&body);
        let err = head_from_bytes(&head).expect_err("refused");
        assert!(err.to_string().contains("more than a reader holds"), "{err}");
    }

    #[test]
    fn damaged_or_foreign_files_are_refused() {
        let flat = index(20);
        let c = kmeans(&flat.store, 4, flat.rows(), 3, 1).unwrap();
        let (head, lists) = to_parts(&flat, &c, 2, ValueBits::Int4).unwrap();
        for cut in [0, 7, 40, HEAD_HEADER, head.len() - 1] {
            assert!(head_from_bytes(&head[..cut]).is_err(), "head cut at {cut}");
        }
        let mut bad = head.clone();
        bad[HEAD_HEADER + 2] ^= 1;
        assert!(matches!(head_from_bytes(&bad), Err(Error::Checksum { .. })));
        let mut ix = head_from_bytes(&head).unwrap();
        for cut in [0, 10, LIST_HEADER, lists[0].len() - 1] {
            assert!(add_list(&mut ix, &lists[0][..cut]).is_err(), "list cut at {cut}");
        }
        // A list of another build (another seed, so another head) is refused.
        let other = index(21);
        let oc = kmeans(&other.store, 4, other.rows(), 3, 1).unwrap();
        let (_, foreign) = to_parts(&other, &oc, 2, ValueBits::Int4).unwrap();
        assert!(add_list(&mut ix, &foreign[0]).is_err());
        assert!(ix.clusters().unwrap().loaded_count() == 0, "nothing half-loaded");
        assert!(add_list(&mut ix, &head).is_err(), "a head is not a list");
    }
}
