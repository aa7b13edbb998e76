//! Passage texts and the manifest that ties an index directory together.
//!
//! Texts live in JSON shards of `shard_size` passages, in index order, named
//! after the hash of their contents (cache forever); a client fetches only the
//! shards of the hits it shows. `manifest.json` is the one file without a hash
//! in its name.

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::{Error, Result};

/// Version 2 added windows, the lexical index and the fusion setting;
/// version 3 counts the token table's chunks (`table.chunk_count`, files
/// named after the head) instead of listing them. Versions 1 (dense only)
/// and 2 are still read; version 4 names the text shards, term blocks and
/// cluster lists after one hash per set ([`FileSet::Named`]) instead of
/// listing them.
pub const MANIFEST_VERSION: u32 = 4;
pub const MANIFEST_FILE: &str = "manifest.json";
/// The largest manifest read: a few KB in practice.
pub const MAX_MANIFEST_BYTES: u64 = 16 << 20;
/// The most BM25 term blocks an index may have (each is one file).
pub const MAX_LEXICAL_BLOCKS: usize = 1 << 16;
/// The most token-table chunks an index may have (each is one file).
pub const MAX_TABLE_CHUNKS: usize = 1 << 16;
/// The most text shards an index may have (a million: 8 million passages
/// at 8 per shard); a reader may expand their names.
pub const MAX_SHARDS: usize = 1 << 20;

/// A numbered set of files of one [`Part`]. A build names them after one
/// hash of all their bytes, `dir/stem.<16 hex>.<n>.ext` ([`FileSet::write`]):
/// a change to any file renames the whole set, so a browser may cache each
/// file forever, and the manifest spells the hash once instead of once per
/// file (the 1,255 text shards of a 10,000-page site were 10 KB gzip of a
/// visitor's first download). Folders of manifest version 3 and older list
/// every name, each named after its own contents.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum FileSet {
    Named { hash: String, count: usize },
    Listed(Vec<String>),
}

impl FileSet {
    /// Names `files` after one hash of them all: the set and each file's name.
    pub fn write(part: Part, files: &[Vec<u8>]) -> (FileSet, Vec<String>) {
        let mut h = Sha256::new();
        for f in files {
            h.update((f.len() as u64).to_le_bytes());
            h.update(f);
        }
        let set = FileSet::Named { hash: super::hex(&h.finalize()[..8]), count: files.len() };
        let names = (0..files.len()).filter_map(|n| set.name(part, n)).collect();
        (set, names)
    }

    pub fn len(&self) -> usize {
        match self {
            FileSet::Named { count, .. } => *count,
            FileSet::Listed(names) => names.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// File `n`'s name inside the folder, if the set has one.
    pub fn name(&self, part: Part, n: usize) -> Option<String> {
        match self {
            FileSet::Named { hash, count } => {
                let (dir, stem, ext, _, _) = part.layout();
                (n < *count).then(|| format!("{dir}{stem}.{hash}.{n}.{ext}"))
            }
            FileSet::Listed(names) => names.get(n).cloned(),
        }
    }

    /// Every name, in order.
    pub fn names(&self, part: Part) -> impl Iterator<Item = String> + '_ {
        (0..self.len()).filter_map(move |n| self.name(part, n))
    }

    /// 1 to `max` files, each name one of `part`'s own.
    fn check(&self, part: Part, field: &str, max: usize) -> Result<()> {
        if self.is_empty() || self.len() > max {
            return Err(Error::format("manifest", format!("{field} must hold 1 to {max} files, not {}", self.len())));
        }
        match self {
            FileSet::Named { hash, .. } if !is_hash(hash) => {
                let shown: String = hash.chars().take(40).collect();
                Err(Error::format("manifest", format!("{field}.hash {shown:?} is not 16 lowercase hex digits")))
            }
            FileSet::Named { .. } => Ok(()),
            FileSet::Listed(names) => {
                names.iter().enumerate().try_for_each(|(i, n)| part.check_name(&format!("{field}[{i}]"), n))
            }
        }
    }
}

/// A file's number in its set: 1 to 7 decimal digits.
fn is_number(s: &str) -> bool {
    (1..=7).contains(&s.len()) && s.bytes().all(|b| b.is_ascii_digit())
}

fn is_hash(s: &str) -> bool {
    s.len() == 16 && s.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

/// One passage as the user sees it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Passage {
    pub id: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub title: String,
    pub text: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Manifest {
    pub format_version: u32,
    pub model_name: String,
    pub model_fingerprint: String,
    /// Where the model file was when the index was built (a hint for the CLI).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model_path: Option<String>,
    /// The model file inside the folder (`model.<hash>.gguf`), when bundled:
    /// what a browser loads, so the folder deploys as it is.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model_file: Option<String>,
    /// The bundled model's size: a reader reads no more.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model_bytes: Option<u64>,
    pub dim: usize,
    /// Passages (results are passages, whatever the windows).
    pub count: usize,
    pub dtype: crate::VectorDType,
    pub index_file: String,
    pub index_bytes: u64,
    pub shard_size: usize,
    pub shards: FileSet,
    /// The largest shard's size: a reader reads no more of any shard.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_shard_bytes: Option<u64>,
    /// How long passages were cut into windows; absent: one vector per passage.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub windows: Option<WindowSpec>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lexical: Option<LexicalFiles>,
    /// How `hybrid` fuses; absent: reciprocal rank fusion.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fusion: Option<FusionSetting>,
    /// The token-table query encoder (`crate::table`), when the folder carries one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub table: Option<TableFiles>,
    /// The vectors again, split by cluster (`format::clusters`), for readers
    /// that fetch only what a query probes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub clusters: Option<ClusterFiles>,
}

#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct WindowSpec {
    /// Tokens per window, `[CLS]` and `[SEP]` included (the model's passage length).
    pub window: usize,
    /// Tokens shared by consecutive windows.
    pub overlap: usize,
    pub max_windows: usize,
    /// Vectors in the index (at least `count`).
    pub rows: usize,
}

/// The BM25 part: a meta file every query needs, and term blocks loaded on demand.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LexicalFiles {
    pub meta: String,
    /// Block `i` holds the terms with `lexical::block_of(term, blocks.len()) == i`.
    pub blocks: FileSet,
    /// Meta and blocks together.
    pub bytes: u64,
    /// The meta file's size, and the largest block's: a reader reads no more.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub meta_bytes: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_block_bytes: Option<u64>,
    pub terms: usize,
    pub k1: f32,
    pub b: f32,
}

impl LexicalFiles {
    /// Term block `n`'s file.
    pub fn block_name(&self, n: usize) -> Option<String> {
        self.blocks.name(Part::LexicalBlock, n)
    }
}

/// The token table (`format::table`) cut at its chunk boundaries: a head
/// every table query needs, and row chunks loaded by the query's token ids.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TableFiles {
    pub head: String,
    /// Chunk `c` holds the rows of token ids `c * chunk_rows ..`. Written
    /// folders leave this empty and give `chunk_count`: chunk `c` is then
    /// `table/rows.<the head's hash>.<c>.bin` ([`chunk_name`](Self::chunk_name)),
    /// 3,816 names a manifest need not spell out (the head's hash covers
    /// every chunk's checksum, so the names change whenever a chunk does).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub chunks: Vec<String>,
    #[serde(default, skip_serializing_if = "is_zero")]
    pub chunk_count: usize,
    pub chunk_rows: usize,
    pub head_bytes: u64,
    pub max_chunk_bytes: u64,
    /// Head and chunks together.
    pub bytes: u64,
    /// How the table was taught, e.g. "adapted to this corpus: 20,000 pseudo-queries".
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub taught: Option<String>,
    /// How `hybrid` fuses the table's queries (tuned at index time without
    /// labels); absent: the index's own fusion.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fusion: Option<FusionSetting>,
    /// The chunks most of the corpus's pseudo-queries need (the commonest
    /// words'): a browser fetches them with the head.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub hot: Vec<usize>,
}

fn is_zero(n: &usize) -> bool {
    *n == 0
}

impl TableFiles {
    /// How many chunks the table has.
    pub fn n_chunks(&self) -> usize {
        match self.chunks.is_empty() {
            true => self.chunk_count,
            false => self.chunks.len(),
        }
    }

    /// Chunk `c`'s file: listed, or named after the head.
    pub fn chunk_name(&self, c: usize) -> Option<String> {
        if !self.chunks.is_empty() {
            return self.chunks.get(c).cloned();
        }
        let hash = self.head.strip_prefix("table/head.")?.strip_suffix(".bin")?;
        (c < self.chunk_count).then(|| format!("table/rows.{hash}.{c}.bin"))
    }
}

/// The vectors split by cluster: a head every dense query needs (ids,
/// centroids, each row's cluster), and the lists a query probes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ClusterFiles {
    pub head: String,
    /// List `c` holds the rows of cluster `c`.
    pub lists: FileSet,
    pub head_bytes: u64,
    pub max_list_bytes: u64,
    /// Head and lists together.
    pub bytes: u64,
    /// Clusters a query probes.
    pub nprobe: usize,
    /// How it was measured, e.g. "R@10 0.912 of the exact scan on 1,000 pseudo-queries".
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub measured: Option<String>,
}

impl ClusterFiles {
    /// Cluster `c`'s list file.
    pub fn list_name(&self, c: usize) -> Option<String> {
        self.lists.name(Part::ClusterList, c)
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FusionSetting {
    #[serde(flatten)]
    pub fusion: crate::Fusion,
    /// Where a convex weight was tuned, e.g. "nq dev (MRR@10 0.612)".
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tuned_on: Option<String>,
}

/// The files of an index folder, each with the one name pattern it may have
/// (`[dir/]stem.<16 hex>.ext`, see [`content_name`], or `stem.<16 hex>.<n>.ext`
/// in a numbered set) and the most bytes a
/// reader takes when the manifest records no size.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Part {
    Index,
    Model,
    LexicalMeta,
    LexicalBlock,
    Shard,
    TableHead,
    TableChunk,
    ClusterHead,
    ClusterList,
}

impl Part {
    /// (folder, stem, extension, cap when unrecorded, hard ceiling).
    pub const fn layout(self) -> (&'static str, &'static str, &'static str, u64, u64) {
        const MIB: u64 = 1 << 20;
        match self {
            Part::Index => ("", "index", "bin", 0, 4096 * MIB),
            Part::Model => ("", "model", "gguf", 512 * MIB, 1024 * MIB),
            Part::LexicalMeta => ("lexical/", "meta", "bin", 256 * MIB, 1024 * MIB),
            Part::LexicalBlock => ("lexical/", "terms", "bin", 64 * MIB, 256 * MIB),
            Part::Shard => ("passages/", "shard", "json", 64 * MIB, 256 * MIB),
            Part::TableHead => ("table/", "head", "bin", 64 * MIB, 128 * MIB),
            Part::TableChunk => ("table/", "rows", "bin", 16 * MIB, 256 * MIB),
            Part::ClusterHead => ("vectors/", "head", "bin", 256 * MIB, 1024 * MIB),
            Part::ClusterList => ("vectors/", "list", "bin", 64 * MIB, 256 * MIB),
        }
    }

    /// Parts a build writes as numbered sets (`FileSet`).
    const fn in_sets(self) -> bool {
        matches!(self, Part::Shard | Part::LexicalBlock | Part::ClusterList)
    }

    /// Accepts only this part's own name pattern: relative, inside the
    /// folder, no `..`, no other folders, no URL.
    pub fn check_name(self, field: &str, name: &str) -> Result<()> {
        let (dir, stem, ext, _, _) = self.layout();
        let hash = name
            .strip_prefix(dir)
            .and_then(|n| n.strip_prefix(stem))
            .and_then(|n| n.strip_prefix('.'))
            .and_then(|n| n.strip_suffix(ext))
            .and_then(|n| n.strip_suffix('.'));
        match hash {
            // Named alone, or as file n of a numbered set (`FileSet`).
            Some(h) if is_hash(h) => Ok(()),
            Some(h) if self.in_sets() && h.split_once('.').is_some_and(|(h, n)| is_hash(h) && is_number(n)) => Ok(()),
            _ => {
                let shown: String = name.chars().take(80).collect();
                Err(Error::format(
                    "manifest",
                    format!(
                        "{field} {shown:?} is not a name inside the index folder (expected {dir}{stem}.<16 hex>.{ext})"
                    ),
                ))
            }
        }
    }

    /// The most bytes read of this part when a manifest records no size.
    pub fn default_cap(self) -> u64 {
        self.layout().3
    }

    fn check_size(self, field: &str, bytes: u64) -> Result<()> {
        let ceiling = self.layout().4;
        if bytes > ceiling {
            return Err(Error::format("manifest", format!("{field} = {bytes} is over the {ceiling}-byte limit")));
        }
        Ok(())
    }
}

impl Manifest {
    pub fn from_bytes(bytes: &[u8]) -> Result<Self> {
        let v: serde_json::Value =
            serde_json::from_slice(bytes).map_err(|e| Error::format("manifest", format!("not JSON: {e}")))?;
        match v.get("format_version").and_then(|x| x.as_u64()) {
            Some(x) if (1..=MANIFEST_VERSION as u64).contains(&x) => {}
            Some(x) => {
                let found = u32::try_from(x).unwrap_or(u32::MAX);
                return Err(Error::Version { what: "manifest", found, supported: MANIFEST_VERSION });
            }
            None => return Err(Error::format("manifest", "no format_version: not an ernie-search manifest")),
        }
        let m: Manifest = serde_json::from_value(v).map_err(|e| Error::format("manifest", e.to_string()))?;
        m.check()?;
        Ok(m)
    }

    /// Every name is one of the folder's own, every size within its limit,
    /// the counts consistent: what a reader then opens stays inside the folder.
    fn check(&self) -> Result<()> {
        if self.shard_size == 0 || self.shards.len() != self.count.div_ceil(self.shard_size) {
            return Err(Error::format(
                "manifest",
                format!(
                    "{} shards cannot hold {} passages of {} per shard",
                    self.shards.len(),
                    self.count,
                    self.shard_size
                ),
            ));
        }
        if self.dim == 0 || self.count == 0 {
            return Err(Error::format(
                "manifest",
                format!("dim {} and count {} must be positive", self.dim, self.count),
            ));
        }
        Part::Index.check_name("index_file", &self.index_file)?;
        Part::Index.check_size("index_bytes", self.index_bytes)?;
        if let Some(f) = &self.model_file {
            Part::Model.check_name("model_file", f)?;
        }
        if let Some(b) = self.model_bytes {
            Part::Model.check_size("model_bytes", b)?;
        }
        self.shards.check(Part::Shard, "shards", MAX_SHARDS)?;
        if let Some(b) = self.max_shard_bytes {
            Part::Shard.check_size("max_shard_bytes", b)?;
        }
        if let Some(l) = &self.lexical {
            Part::LexicalMeta.check_name("lexical.meta", &l.meta)?;
            l.blocks.check(Part::LexicalBlock, "lexical.blocks", MAX_LEXICAL_BLOCKS)?;
            crate::Bm25Params { k1: l.k1, b: l.b }.check().map_err(|e| Error::format("manifest", e.to_string()))?;
            if let Some(b) = l.meta_bytes {
                Part::LexicalMeta.check_size("lexical.meta_bytes", b)?;
            }
            if let Some(b) = l.max_block_bytes {
                Part::LexicalBlock.check_size("lexical.max_block_bytes", b)?;
            }
        }
        if let Some(t) = &self.table {
            Part::TableHead.check_name("table.head", &t.head)?;
            Part::TableHead.check_size("table.head_bytes", t.head_bytes)?;
            Part::TableChunk.check_size("table.max_chunk_bytes", t.max_chunk_bytes)?;
            let n = t.n_chunks();
            if n == 0 || n > MAX_TABLE_CHUNKS || t.chunk_rows == 0 || (!t.chunks.is_empty() && t.chunk_count != 0) {
                return Err(Error::format(
                    "manifest",
                    format!(
                        "{n} table chunks of {} rows (1 to {MAX_TABLE_CHUNKS} allowed, listed or counted, not both)",
                        t.chunk_rows
                    ),
                ));
            }
            for (i, c) in t.chunks.iter().enumerate() {
                Part::TableChunk.check_name(&format!("table.chunks[{i}]"), c)?;
            }
            if let Some(c) = t.hot.iter().find(|&&c| c >= n) {
                return Err(Error::format("manifest", format!("table.hot names chunk {c} of {n}")));
            }
        }
        if let Some(c) = &self.clusters {
            Part::ClusterHead.check_name("clusters.head", &c.head)?;
            Part::ClusterHead.check_size("clusters.head_bytes", c.head_bytes)?;
            Part::ClusterList.check_size("clusters.max_list_bytes", c.max_list_bytes)?;
            c.lists.check(Part::ClusterList, "clusters.lists", crate::index::clusters::MAX_CLUSTERS)?;
            if !(1..=c.lists.len()).contains(&c.nprobe) {
                return Err(Error::format(
                    "manifest",
                    format!("{} cluster lists probed {} at a time", c.lists.len(), c.nprobe),
                ));
            }
        }
        if let Some(f) = self.table.as_ref().and_then(|t| t.fusion.as_ref()) {
            check_fusion(f.fusion)?;
        }
        self.fusion.as_ref().map_or(Ok(()), |f| check_fusion(f.fusion))
    }
    /// The most bytes a reader takes of `part`: the size this manifest
    /// records, else the part's default.
    pub fn cap(&self, part: Part) -> u64 {
        let recorded = match part {
            Part::Index => Some(self.index_bytes),
            Part::Model => self.model_bytes,
            Part::LexicalMeta => self.lexical.as_ref().and_then(|l| l.meta_bytes),
            Part::LexicalBlock => self.lexical.as_ref().and_then(|l| l.max_block_bytes),
            Part::Shard => self.max_shard_bytes,
            Part::TableHead => self.table.as_ref().map(|t| t.head_bytes),
            Part::TableChunk => self.table.as_ref().map(|t| t.max_chunk_bytes),
            Part::ClusterHead => self.clusters.as_ref().map(|c| c.head_bytes),
            Part::ClusterList => self.clusters.as_ref().map(|c| c.max_list_bytes),
        };
        recorded.unwrap_or(part.layout().3)
    }

    /// Text shard `n`'s file.
    pub fn shard_name(&self, n: usize) -> Option<String> {
        self.shards.name(Part::Shard, n)
    }

    /// Which shard holds the passage at `ordinal`, and its position inside it.
    pub fn locate(&self, ordinal: usize) -> Option<(usize, usize)> {
        (ordinal < self.count).then(|| (ordinal / self.shard_size, ordinal % self.shard_size))
    }
}

pub fn shard_to_bytes(passages: &[Passage]) -> Result<Vec<u8>> {
    serde_json::to_vec(passages).map_err(|e| Error::format("passage shard", e.to_string()))
}

pub fn shard_from_bytes(bytes: &[u8]) -> Result<Vec<Passage>> {
    serde_json::from_slice(bytes).map_err(|e| Error::format("passage shard", e.to_string()))
}

/// Numbers JSON cannot write back (an f32 overflowing to infinity) are refused.
fn check_fusion(fusion: crate::Fusion) -> Result<()> {
    match fusion {
        crate::Fusion::Convex { alpha } if !(0.0..=1.0).contains(&alpha) => {
            Err(Error::format("manifest", format!("fusion alpha {alpha} is outside 0..=1")))
        }
        crate::Fusion::Rrf { k } if !(k.is_finite() && k > 0.0) => {
            Err(Error::format("manifest", format!("fusion k {k} is not a positive number")))
        }
        _ => Ok(()),
    }
}

/// `stem.<first 16 hex of sha256>.ext`: a new content gets a new name.
pub fn content_name(stem: &str, bytes: &[u8], ext: &str) -> String {
    let h = Sha256::digest(bytes);
    format!("{stem}.{}.{ext}", &crate::format::hex(&h)[..16])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_set_is_named_after_all_its_bytes() {
        let files = vec![b"one".to_vec(), b"two".to_vec()];
        let (set, names) = FileSet::write(Part::Shard, &files);
        let FileSet::Named { hash, count } = &set else { panic!("a written set is named: {set:?}") };
        assert_eq!(count, &2);
        assert_eq!(names, [format!("passages/shard.{hash}.0.json"), format!("passages/shard.{hash}.1.json")]);
        assert_eq!(set.name(Part::Shard, 2), None);
        // Any change to any file, or to where one file ends, renames them all.
        for other in [vec![b"one".to_vec(), b"twO".to_vec()], vec![b"onet".to_vec(), b"wo".to_vec()]] {
            assert_ne!(FileSet::write(Part::Shard, &other).0, set);
        }
        assert_eq!(FileSet::write(Part::Shard, &files).0, set, "deterministic");
    }

    #[test]
    fn sets_read_named_or_listed() {
        let named: FileSet = serde_json::from_str(r#"{"hash":"0123456789abcdef","count":3}"#).unwrap();
        assert_eq!(named.name(Part::LexicalBlock, 2).as_deref(), Some("lexical/terms.0123456789abcdef.2.bin"));
        assert_eq!(serde_json::to_string(&named).unwrap(), r#"{"hash":"0123456789abcdef","count":3}"#);
        let listed: FileSet = serde_json::from_str(r#"["vectors/list.0123456789abcdef.bin"]"#).unwrap();
        assert_eq!(listed.name(Part::ClusterList, 0).as_deref(), Some("vectors/list.0123456789abcdef.bin"));
        assert!(listed.check(Part::ClusterList, "lists", 4).is_ok());
        assert!(named.check(Part::LexicalBlock, "blocks", 2).is_err(), "more files than allowed");
        let bad: FileSet = serde_json::from_str(r#"{"hash":"../../etc/passwd0","count":1}"#).unwrap();
        assert!(bad.check(Part::Shard, "shards", 8).is_err());
        assert!(serde_json::from_str::<FileSet>(r#"{"count":1}"#).is_err(), "no hash");
        // A listed name may be a set's numbered one; other parts have no numbers.
        let h = "0123456789abcdef";
        assert!(Part::Shard.check_name("s", &format!("passages/shard.{h}.3.json")).is_ok());
        for (part, name) in [
            (Part::Index, format!("index.{h}.3.bin")),
            (Part::Shard, format!("passages/shard.{h}.12345678.json")),
            (Part::Shard, format!("passages/shard.{h}.-1.json")),
            (Part::Shard, format!("passages/shard.{h}..json")),
        ] {
            assert!(part.check_name("f", &name).is_err(), "{name}");
        }
    }
}
