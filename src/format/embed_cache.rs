//! The embedding cache file (native only): vectors a model already computed
//! for passage windows and queries, kept in the user's cache between builds
//! (`crate::index::embed_cache`), never in a published folder.
//!
//! ```text
//! offset size  field
//!      0    8  magic "ERNIEEMB"
//!      8    4  format version (u32 LE) = 1
//!     12    4  dimension
//!     16    8  entries (u64)
//!     24   32  fingerprint of the model that computed the vectors
//!     56       entries, in ascending key order, each key once: a 32-byte
//!              key (sha256 of the model's input), then dimension f32
//!              (little-endian)
//!  end-4    4  CRC-32 of every byte before it
//! ```
//! The file's length must be exactly what the header announces, checked
//! before anything is allocated; every value must be finite.

use super::index::parse_fingerprint;
use crate::{Error, Result};

pub const MAGIC: &[u8; 8] = b"ERNIEEMB";
pub const EMBED_CACHE_FORMAT_VERSION: u32 = 1;
const HEADER: usize = 56;
const WHAT: &str = "embedding cache";
/// The widest vector read back (BERT-large is 1024 wide).
const MAX_DIM: usize = 8192;

/// A key: the sha256 of what the model read (see `crate::index::embed_cache::key`).
pub type Key = [u8; 32];

/// A cache file's contents, entries in ascending key order.
#[derive(Debug, Clone, PartialEq)]
pub struct CacheFile {
    pub fingerprint: String,
    pub dim: usize,
    pub entries: Vec<(Key, Vec<f32>)>,
}

/// Bytes one entry takes, `None` when the dimension is out of range.
fn entry_len(dim: usize) -> Option<usize> {
    (1..=MAX_DIM).contains(&dim).then(|| 32 + 4 * dim)
}

pub fn to_bytes(file: &CacheFile) -> Result<Vec<u8>> {
    let fp = parse_fingerprint(&file.fingerprint)?;
    let entry = entry_len(file.dim).ok_or_else(|| Error::Invalid(format!("vector dimension {}", file.dim)))?;
    if !ascending(&file.entries) {
        return Err(Error::Invalid("cache entries must be in ascending key order, each key once".into()));
    }
    let mut out = Vec::with_capacity(HEADER + entry * file.entries.len() + 4);
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&EMBED_CACHE_FORMAT_VERSION.to_le_bytes());
    out.extend_from_slice(&(file.dim as u32).to_le_bytes());
    out.extend_from_slice(&(file.entries.len() as u64).to_le_bytes());
    out.extend_from_slice(&fp);
    for (key, v) in &file.entries {
        if v.len() != file.dim {
            return Err(Error::Invalid(format!("a cached vector of {} values, not {}", v.len(), file.dim)));
        }
        out.extend_from_slice(key);
        v.iter().for_each(|x| out.extend_from_slice(&x.to_le_bytes()));
    }
    out.extend_from_slice(&crate::format::crc32::hash(&out).to_le_bytes());
    Ok(out)
}

pub fn from_bytes(bytes: &[u8]) -> Result<CacheFile> {
    if bytes.len() < HEADER + 4 || &bytes[..8] != MAGIC {
        return Err(Error::format(WHAT, "not an ernie-search embedding cache (bad magic or shorter than its header)"));
    }
    let u32_at = |at: usize| u32::from_le_bytes([bytes[at], bytes[at + 1], bytes[at + 2], bytes[at + 3]]);
    let version = u32_at(8);
    if version != EMBED_CACHE_FORMAT_VERSION {
        return Err(Error::Version { what: WHAT, found: version, supported: EMBED_CACHE_FORMAT_VERSION });
    }
    let dim = u32_at(12) as usize;
    let entry = entry_len(dim).ok_or_else(|| Error::format(WHAT, format!("vector dimension {dim}")))?;
    let count = u64::from_le_bytes(bytes[16..24].try_into().unwrap_or_default());
    let body = bytes.len() - HEADER - 4;
    // Checked in u64 before anything is allocated: the count may be anything.
    if count.checked_mul(entry as u64) != Some(body as u64) {
        return Err(Error::format(
            WHAT,
            format!("{count} entries of {entry} bytes announced, {body} bytes held (truncated or padded)"),
        ));
    }
    let (stored, computed) = (u32_at(bytes.len() - 4), crate::format::crc32::hash(&bytes[..bytes.len() - 4]));
    if stored != computed {
        return Err(Error::Checksum { what: WHAT, stored, computed });
    }
    let entries: Vec<(Key, Vec<f32>)> =
        bytes[HEADER..HEADER + body].chunks_exact(entry).map(|e| read_entry(e, dim)).collect::<Result<_>>()?;
    // One order for one content: a key read twice would be two answers.
    if !ascending(&entries) {
        return Err(Error::format(WHAT, "entries out of key order or a key twice"));
    }
    Ok(CacheFile { fingerprint: super::hex(&bytes[24..56]), dim, entries })
}

fn ascending(entries: &[(Key, Vec<f32>)]) -> bool {
    entries.windows(2).all(|w| w[0].0 < w[1].0)
}

fn read_entry(e: &[u8], dim: usize) -> Result<(Key, Vec<f32>)> {
    let mut key = [0u8; 32];
    key.copy_from_slice(&e[..32]);
    let v: Vec<f32> = e[32..].chunks_exact(4).map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])).collect();
    if v.len() != dim || !v.iter().all(|x| x.is_finite()) {
        return Err(Error::format(WHAT, "a cached vector holds a value that is not finite"));
    }
    Ok((key, v))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> CacheFile {
        let entries = (0..3u8).map(|i| ([i; 32], (0..4).map(|j| (i * 4 + j) as f32 * 0.25 - 1.0).collect())).collect();
        CacheFile { fingerprint: "ab".repeat(32), dim: 4, entries }
    }

    #[test]
    fn round_trip() {
        let bytes = to_bytes(&sample()).unwrap();
        assert_eq!(bytes.len(), HEADER + 3 * (32 + 16) + 4);
        assert_eq!(from_bytes(&bytes).unwrap(), sample());
        let empty = CacheFile { entries: Vec::new(), ..sample() };
        assert_eq!(from_bytes(&to_bytes(&empty).unwrap()).unwrap(), empty);
    }

    #[test]
    fn damage_is_an_error_never_a_panic() {
        let bytes = to_bytes(&sample()).unwrap();
        for n in 0..bytes.len() {
            assert!(from_bytes(&bytes[..n]).is_err(), "truncated to {n}");
        }
        assert!(from_bytes(&[&bytes[..], &[0]].concat()).is_err(), "padded");
        for at in 0..bytes.len() {
            let mut b = bytes.clone();
            b[at] ^= 0x04;
            assert!(from_bytes(&b).is_err(), "byte {at} flipped");
        }
        let mut huge = bytes.clone();
        huge[16..24].copy_from_slice(&u64::MAX.to_le_bytes());
        assert!(matches!(from_bytes(&huge), Err(Error::Format { .. })));
        let mut wide = bytes.clone();
        wide[12..16].copy_from_slice(&u32::MAX.to_le_bytes());
        assert!(from_bytes(&wide).is_err());
    }

    #[test]
    fn a_foreign_file_or_a_newer_version_is_refused() {
        let table = crate::format::table::MAGIC;
        assert!(matches!(from_bytes(&[&table[..], &[0; 100]].concat()), Err(Error::Format { .. })));
        let mut v2 = to_bytes(&sample()).unwrap();
        v2[8] = 2;
        assert!(matches!(from_bytes(&v2), Err(Error::Version { found: 2, .. })));
    }

    #[test]
    fn non_finite_values_and_wrong_lengths_are_refused() {
        let mut nan = sample();
        nan.entries[1].1[2] = f32::NAN;
        assert!(from_bytes(&to_bytes(&nan).unwrap()).is_err(), "a NaN under a valid checksum");
        let short = CacheFile { entries: vec![([0; 32], vec![1.0])], ..sample() };
        assert!(to_bytes(&short).is_err(), "a vector of the wrong length");
    }

    #[test]
    fn keys_are_written_and_read_in_ascending_order_once() {
        let mut swapped = sample();
        swapped.entries.swap(0, 2);
        assert!(to_bytes(&swapped).is_err());
        let mut twice = sample();
        twice.entries[1].0 = twice.entries[0].0;
        assert!(to_bytes(&twice).is_err());
        // Two entries swapped under a valid checksum.
        let mut bytes = to_bytes(&sample()).unwrap();
        let entry = 32 + 4 * 4;
        let first: Vec<u8> = bytes[HEADER..HEADER + entry].to_vec();
        bytes.copy_within(HEADER + entry..HEADER + 2 * entry, HEADER);
        bytes[HEADER + entry..HEADER + 2 * entry].copy_from_slice(&first);
        let n = bytes.len() - 4;
        let crc = crate::format::crc32::hash(&bytes[..n]);
        bytes[n..].copy_from_slice(&crc.to_le_bytes());
        assert!(matches!(from_bytes(&bytes), Err(Error::Format { .. })));
    }
}
