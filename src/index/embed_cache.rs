//! The embedding cache (native only): a rebuild encodes only the passage
//! windows and queries its model has not encoded before.
//!
//! An entry is keyed by the sha256 of the model's fingerprint, the kind of
//! input, the window length and the exact token ids the model reads (see
//! [`key`]): a passage edited elsewhere, or cut into windows another way,
//! still finds the windows whose tokens did not change. The cache is one file
//! per model in the user's cache folder ([`EmbedCache::path`]), never in an
//! index folder, in the layout of [`crate::format::embed_cache`].
//!
//! It does not grow forever: [`EmbedCache::to_bytes`] keeps only the entries
//! the latest build looked up or added, so after a build the file holds that
//! build's vectors and nothing older.
//!
//! A vector from the cache was computed in another batch than a fresh build
//! would put it in, and padding moves the last bits of a float: a cached
//! rebuild equals a fresh build within float noise (about 1e-6), not bit for
//! bit. Builds that must match byte for byte run without the cache.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

pub use crate::format::embed_cache::Key;
use crate::format::embed_cache::{self as layout, CacheFile};
use crate::{Error, Result};

const WHAT: &str = "embedding cache";
/// The largest cache file read back (a million 384-wide vectors are 1.6 GB).
const MAX_FILE_BYTES: u64 = 4 << 30;

/// What the model read; the kinds never share a key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InputKind {
    /// One window of a passage (the whole passage when it fits one).
    PassageWindow,
    Query,
}

impl InputKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::PassageWindow => "passage-window",
            Self::Query => "query",
        }
    }
}

/// The key of one model input: its token ids (`[CLS] ... [SEP]`, as the
/// model reads them) under a model, a kind and a window length.
pub fn key(fingerprint: &str, kind: InputKind, max_len: usize, ids: &[u32]) -> Key {
    let mut h = Sha256::new();
    h.update(b"ernie-search embedding\0");
    h.update(fingerprint.as_bytes());
    h.update([0]);
    h.update(kind.as_str().as_bytes());
    h.update([0]);
    h.update((max_len as u64).to_le_bytes());
    ids.iter().for_each(|id| h.update(id.to_le_bytes()));
    h.finalize().into()
}

/// Vectors of one model, and what the current build did with them.
#[derive(Debug)]
pub struct EmbedCache {
    fingerprint: String,
    dim: usize,
    /// Each vector, and whether this build used it (only those are saved).
    entries: HashMap<Key, (Vec<f32>, bool)>,
    reused: usize,
    encoded: usize,
}

impl EmbedCache {
    /// An empty cache for the model with this fingerprint and vector length.
    pub fn new(fingerprint: &str, dim: usize) -> Self {
        Self { fingerprint: fingerprint.to_string(), dim, entries: HashMap::new(), reused: 0, encoded: 0 }
    }

    /// `<cache>/embeddings/<first 16 hex digits of the fingerprint>.bin`.
    pub fn path(cache_dir: &Path, fingerprint: &str) -> PathBuf {
        let short: String = fingerprint.chars().take(16).collect();
        cache_dir.join("embeddings").join(format!("{short}.bin"))
    }

    /// A cache file's vectors, refused when another model (or another
    /// vector length) wrote them.
    pub fn from_bytes(bytes: &[u8], fingerprint: &str, dim: usize) -> Result<Self> {
        let CacheFile { fingerprint: theirs, dim: their_dim, entries } = layout::from_bytes(bytes)?;
        if theirs != fingerprint || their_dim != dim {
            return Err(Error::format(
                WHAT,
                format!("written for model {theirs} ({their_dim} wide), not {fingerprint} ({dim} wide)"),
            ));
        }
        let mut cache = Self::new(fingerprint, dim);
        cache.entries = entries.into_iter().map(|(k, v)| (k, (v, false))).collect();
        Ok(cache)
    }

    /// The file at `path`, or an empty cache and why the file was not used
    /// (damaged, foreign, unreadable): a cache never fails a build. A missing
    /// file is no error.
    pub fn open(path: &Path, fingerprint: &str, dim: usize) -> (Self, Option<Error>) {
        if !path.exists() {
            return (Self::new(fingerprint, dim), None);
        }
        match crate::format::read_capped(path, MAX_FILE_BYTES, WHAT)
            .and_then(|b| Self::from_bytes(&b, fingerprint, dim))
        {
            Ok(cache) => (cache, None),
            Err(e) => (Self::new(fingerprint, dim), Some(e)),
        }
    }

    /// The entries this build used, in key order (the same cache, the same bytes).
    pub fn to_bytes(&self) -> Result<Vec<u8>> {
        let mut used: Vec<(Key, Vec<f32>)> =
            self.entries.iter().filter(|(_, (_, used))| *used).map(|(k, (v, _))| (*k, v.clone())).collect();
        used.sort_unstable_by_key(|e| e.0);
        layout::to_bytes(&CacheFile { fingerprint: self.fingerprint.clone(), dim: self.dim, entries: used })
    }

    /// Writes [`to_bytes`](Self::to_bytes) to `path` (through a temporary file and a rename).
    pub fn save(&self, path: &Path) -> Result<()> {
        Ok(crate::format::write_atomic(path, &self.to_bytes()?)?)
    }

    /// The vector of `key`, if cached; it is kept by the next save.
    pub fn get(&mut self, key: &Key) -> Option<Vec<f32>> {
        let (v, used) = self.entries.get_mut(key)?;
        *used = true;
        self.reused += 1;
        Some(v.clone())
    }

    /// Adds a vector the model just computed. One that is not finite is not
    /// kept (it would make the whole file unreadable).
    pub fn insert(&mut self, key: Key, v: &[f32]) -> Result<()> {
        if v.len() != self.dim {
            return Err(Error::Invalid(format!("a vector of {} values for a cache of {}", v.len(), self.dim)));
        }
        self.encoded += 1;
        if v.iter().all(|x| x.is_finite()) {
            self.entries.insert(key, (v.to_vec(), true));
        }
        Ok(())
    }

    pub fn fingerprint(&self) -> &str {
        &self.fingerprint
    }

    /// Vectors found in the cache so far.
    pub fn reused(&self) -> usize {
        self.reused
    }

    /// Vectors computed and added so far.
    pub fn encoded(&self) -> usize {
        self.encoded
    }

    /// Entries the next save writes.
    pub fn kept(&self) -> usize {
        self.entries.values().filter(|(_, used)| *used).count()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const FP: &str = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

    fn filled() -> EmbedCache {
        let mut c = EmbedCache::new(FP, 3);
        for i in 0..4u32 {
            c.insert(key(FP, InputKind::PassageWindow, 48, &[101, i, 102]), &[i as f32, 0.5, -1.0]).unwrap();
        }
        c
    }

    #[test]
    fn keys_differ_by_kind_model_length_and_tokens() {
        let base = key(FP, InputKind::PassageWindow, 48, &[101, 7, 102]);
        assert_eq!(base, key(FP, InputKind::PassageWindow, 48, &[101, 7, 102]));
        assert_ne!(base, key(FP, InputKind::Query, 48, &[101, 7, 102]));
        assert_ne!(base, key(&FP.replace('0', "f"), InputKind::PassageWindow, 48, &[101, 7, 102]));
        assert_ne!(base, key(FP, InputKind::PassageWindow, 32, &[101, 7, 102]));
        assert_ne!(base, key(FP, InputKind::PassageWindow, 48, &[101, 7, 7, 102]));
        // Ids are hashed as fixed-width numbers: [1, 2] is not [258].
        assert_ne!(key(FP, InputKind::Query, 8, &[1, 2]), key(FP, InputKind::Query, 8, &[258]));
    }

    #[test]
    fn round_trip_through_a_file_and_hits_count() {
        let dir = tempfile::tempdir().unwrap();
        let path = EmbedCache::path(dir.path(), FP);
        assert!(path.ends_with("embeddings/0123456789abcdef.bin"), "{}", path.display());
        let (empty, err) = EmbedCache::open(&path, FP, 3);
        assert!(err.is_none() && empty.kept() == 0, "a missing file is an empty cache");
        filled().save(&path).unwrap();
        let (mut c, err) = EmbedCache::open(&path, FP, 3);
        assert!(err.is_none(), "{err:?}");
        assert_eq!(c.get(&key(FP, InputKind::PassageWindow, 48, &[101, 2, 102])), Some(vec![2.0, 0.5, -1.0]));
        assert_eq!(c.get(&key(FP, InputKind::Query, 48, &[101, 2, 102])), None);
        assert_eq!((c.reused(), c.encoded()), (1, 0));
    }

    #[test]
    fn only_the_entries_this_build_used_are_kept() {
        let bytes = filled().to_bytes().unwrap();
        let mut c = EmbedCache::from_bytes(&bytes, FP, 3).unwrap();
        assert_eq!(c.kept(), 0, "nothing used yet");
        c.get(&key(FP, InputKind::PassageWindow, 48, &[101, 1, 102])).unwrap();
        c.insert(key(FP, InputKind::Query, 16, &[101, 9, 102]), &[0.0, 1.0, 0.0]).unwrap();
        c.insert(key(FP, InputKind::Query, 16, &[101, 8, 102]), &[f32::NAN, 1.0, 0.0]).unwrap();
        assert_eq!((c.kept(), c.encoded()), (2, 2), "the NaN vector is counted, not kept");
        let again = EmbedCache::from_bytes(&c.to_bytes().unwrap(), FP, 3).unwrap();
        assert_eq!(again.entries.len(), 2);
        assert!(c.insert([0; 32], &[1.0]).is_err(), "a vector of the wrong length");
    }

    #[test]
    fn damaged_foreign_or_another_models_files_are_errors_and_an_empty_cache() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.bin");
        let bytes = filled().to_bytes().unwrap();
        let other = FP.replace('0', "f");
        let mut flipped = bytes.clone();
        flipped[70] ^= 1;
        let cases: [(&str, Vec<u8>, &str, usize); 5] = [
            ("truncated", bytes[..bytes.len() - 5].to_vec(), FP, 3),
            ("flipped", flipped, FP, 3),
            ("foreign", b"<html>not a cache</html>".repeat(10), FP, 3),
            ("another model", bytes.clone(), &other, 3),
            ("another width", bytes.clone(), FP, 4),
        ];
        for (what, b, fp, dim) in cases {
            assert!(EmbedCache::from_bytes(&b, fp, dim).is_err(), "{what}");
            std::fs::write(&path, &b).unwrap();
            let (c, err) = EmbedCache::open(&path, fp, dim);
            assert!(err.is_some() && c.kept() == 0 && c.entries.is_empty(), "{what}");
        }
        std::fs::create_dir_all(dir.path().join("dir.bin")).unwrap();
        assert!(EmbedCache::open(&dir.path().join("dir.bin"), FP, 3).1.is_some(), "a folder is no cache");
    }
}
