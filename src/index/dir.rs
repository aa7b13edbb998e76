//! An index directory on disk:
//!
//! ```text
//! manifest.json                 what is where (the one name without a hash)
//! model.<hash>.gguf             the model, when bundled (for the browser)
//! index.<hash>.bin              vectors (format::index)
//! lexical/meta.<hash>.bin       BM25 passage lengths (format::lexical)
//! lexical/terms.<hash>.bin      BM25 term blocks, loaded per query term
//! passages/shard.<hash>.json    passage texts, loaded per shown result
//! table/head.<hash>.bin         the token table's head (format::table), when carried
//! table/rows.<hash>.<n>.bin     its row chunks (named after the head), loaded per query token
//! vectors/head.<hash>.bin       the vectors by cluster (format::clusters): ids, centroids
//! vectors/list.<hash>.bin       one cluster's rows, loaded when a query probes it
//! ```
//! Written into a temporary sibling and renamed into place, so a failed build
//! never destroys the previous index; an existing folder is replaced only when
//! it is ours ([`format::files`]). Reading, every name comes from a checked
//! manifest and every read is capped at the size the manifest records.

use std::cell::RefCell;
use std::collections::HashMap;
use std::path::{Path, PathBuf};

use crate::format::shard::{
    self, ClusterFiles, FileSet, FusionSetting, LexicalFiles, Manifest, Part, Passage, TableFiles, WindowSpec,
    MANIFEST_FILE, MANIFEST_VERSION, MAX_MANIFEST_BYTES,
};
use crate::format::table::TableFile;
use crate::index::clusters::{Clustering, ValueBits};
use crate::lexical::{LexicalIndex, TermBlock};
use crate::table::TableEncoder;
use crate::{format, Error, FlatIndex, Result};

/// Everything an index directory holds, in memory.
pub struct IndexParts<'a> {
    pub index: &'a FlatIndex,
    /// Same order as the index's passages.
    pub passages: &'a [Passage],
    pub lexical: Option<&'a LexicalIndex>,
    pub windows: Option<WindowSpec>,
    pub fusion: Option<FusionSetting>,
    pub shard_size: usize,
    pub model_name: &'a str,
    pub model_path: Option<&'a Path>,
    /// The model file's bytes, to bundle into the folder.
    pub model_bytes: Option<&'a [u8]>,
    /// The token-table query encoder.
    pub table: Option<TablePart<'a>>,
    /// The vectors split by cluster as well, for readers that fetch by need.
    pub clusters: Option<ClusterPart<'a>>,
}

/// The index's rows partitioned for fetching by need.
#[derive(Clone, Copy)]
pub struct ClusterPart<'a> {
    pub clustering: &'a Clustering,
    pub nprobe: usize,
    /// How many bits the cluster files give each value.
    pub bits: ValueBits,
    /// How well the probe does (recorded in the manifest).
    pub measured: Option<&'a str>,
}

/// The token table as an index folder carries it.
#[derive(Clone, Copy)]
pub struct TablePart<'a> {
    pub file: &'a TableFile,
    /// How it was taught (recorded in the manifest).
    pub taught: &'a str,
    /// How hybrid fuses the table's queries, when tuned for it.
    pub fusion: Option<&'a FusionSetting>,
    /// Chunks most queries need: a reader loads them with the head.
    pub hot: &'a [usize],
}

/// Writes `parts` as a directory at `dir`, replacing what was there only
/// once everything is written.
pub fn write_dir(dir: &Path, parts: &IndexParts) -> Result<Manifest> {
    let index = parts.index;
    if parts.passages.len() != index.len() {
        return Err(Error::Invalid(format!("{} passages for {} indexed passages", parts.passages.len(), index.len())));
    }
    if parts.shard_size == 0 {
        return Err(Error::Invalid("shard size must be positive".into()));
    }
    if let Some(l) = parts.lexical {
        if l.len() != index.len() || l.meta().corpus != crate::lexical::corpus_digest(index.ids()) {
            return Err(Error::Invalid("the lexical index was built over other passages".into()));
        }
    }
    let staging = format::Staging::new(dir)?;
    let tmp = staging.path();
    std::fs::create_dir_all(tmp.join("passages"))?;
    let bytes = format::index::to_bytes(index)?;
    let index_file = write_named(tmp, "", "index", "bin", &bytes)?;
    let texts = parts.passages.chunks(parts.shard_size).map(shard::shard_to_bytes).collect::<Result<Vec<_>>>()?;
    let max_shard_bytes = texts.iter().map(|b| b.len() as u64).max().unwrap_or(0);
    let shards = write_set(tmp, Part::Shard, &texts)?;
    let lexical = parts.lexical.map(|l| write_lexical(tmp, l)).transpose()?;
    let table = parts.table.map(|t| write_table(tmp, index, t)).transpose()?;
    let clusters = parts.clusters.map(|c| write_clusters(tmp, index, c)).transpose()?;
    let model_file = match parts.model_bytes {
        Some(b) => Some(write_named(tmp, "", "model", "gguf", b)?),
        None => None,
    };
    let manifest = Manifest {
        format_version: MANIFEST_VERSION,
        model_name: parts.model_name.to_string(),
        model_fingerprint: index.fingerprint().to_string(),
        model_path: parts.model_path.map(|p| p.display().to_string()),
        model_file,
        model_bytes: parts.model_bytes.map(|b| b.len() as u64),
        dim: index.dim(),
        count: index.len(),
        dtype: index.dtype(),
        index_file,
        index_bytes: bytes.len() as u64,
        shard_size: parts.shard_size,
        shards,
        max_shard_bytes: Some(max_shard_bytes),
        windows: parts.windows,
        lexical,
        fusion: parts.fusion.clone(),
        table,
        clusters,
    };
    std::fs::write(tmp.join(MANIFEST_FILE), manifest_json(&manifest)?)?;
    staging.commit()?;
    Ok(manifest)
}

/// Writes `files` under `root` as one set named after all their bytes (`FileSet::write`).
fn write_set(root: &Path, part: Part, files: &[Vec<u8>]) -> Result<FileSet> {
    let (set, names) = FileSet::write(part, files);
    for (name, bytes) in names.iter().zip(files) {
        std::fs::write(root.join(name), bytes)?;
    }
    Ok(set)
}

/// Writes `bytes` as `folder/stem.<content hash>.ext` under `root`; returns that name.
fn write_named(root: &Path, folder: &str, stem: &str, ext: &str, bytes: &[u8]) -> Result<String> {
    let name = format!("{folder}{}", shard::content_name(stem, bytes, ext));
    std::fs::write(root.join(&name), bytes)?;
    Ok(name)
}

fn write_lexical(root: &Path, l: &LexicalIndex) -> Result<LexicalFiles> {
    if l.has_additions() {
        return Err(Error::Invalid("passages added after the build are not written; rebuild the lexical index".into()));
    }
    std::fs::create_dir_all(root.join("lexical"))?;
    let meta = format::lexical::meta_to_bytes(l.meta());
    let meta_name = write_named(root, "lexical/", "meta", "bin", &meta)?;
    let files = (0..l.n_blocks())
        .map(|b| {
            let block = l.block(b).ok_or_else(|| Error::Invalid(format!("lexical block {b} is not loaded")))?;
            Ok(format::lexical::block_to_bytes(l.meta(), b, block))
        })
        .collect::<Result<Vec<_>>>()?;
    let total = meta.len() as u64 + files.iter().map(|b| b.len() as u64).sum::<u64>();
    let max_block_bytes = files.iter().map(|b| b.len() as u64).max().unwrap_or(0);
    let blocks = write_set(root, Part::LexicalBlock, &files)?;
    let p = l.meta().params;
    Ok(LexicalFiles {
        meta_bytes: Some(meta.len() as u64),
        max_block_bytes: Some(max_block_bytes),
        meta: meta_name,
        blocks,
        bytes: total,
        terms: l.term_count(),
        k1: p.k1,
        b: p.b,
    })
}

fn write_table(root: &Path, index: &FlatIndex, part: TablePart) -> Result<TableFiles> {
    let t = part.file;
    if t.table.fingerprint != index.fingerprint() || t.table.dim != index.dim() {
        return Err(Error::Invalid("the token table was distilled against another encoder than the index's".into()));
    }
    std::fs::create_dir_all(root.join("table"))?;
    let (head, chunks) = format::table::to_parts(t)?;
    let head_name = write_named(root, "table/", "head", "bin", &head)?;
    let files = TableFiles {
        head: head_name,
        chunks: Vec::new(),
        chunk_count: chunks.len(),
        chunk_rows: t.table.chunk_rows(),
        head_bytes: head.len() as u64,
        max_chunk_bytes: chunks.iter().map(|c| c.len() as u64).max().unwrap_or(0),
        bytes: (head.len() + chunks.iter().map(Vec::len).sum::<usize>()) as u64,
        taught: Some(part.taught.to_string()).filter(|s| !s.is_empty()),
        fusion: part.fusion.cloned(),
        hot: part.hot.iter().copied().filter(|&c| c < chunks.len()).collect(),
    };
    for (c, bytes) in chunks.iter().enumerate() {
        let name = files.chunk_name(c).ok_or_else(|| Error::Invalid(format!("table chunk {c}")))?;
        std::fs::write(root.join(name), bytes)?;
    }
    Ok(files)
}

fn write_clusters(root: &Path, index: &FlatIndex, part: ClusterPart) -> Result<ClusterFiles> {
    let (head, lists) = format::clusters::to_parts(index, part.clustering, part.nprobe, part.bits)?;
    std::fs::create_dir_all(root.join("vectors"))?;
    let head_name = write_named(root, "vectors/", "head", "bin", &head)?;
    Ok(ClusterFiles {
        head: head_name,
        lists: write_set(root, Part::ClusterList, &lists)?,
        head_bytes: head.len() as u64,
        max_list_bytes: lists.iter().map(|l| l.len() as u64).max().unwrap_or(0),
        bytes: (head.len() + lists.iter().map(Vec::len).sum::<usize>()) as u64,
        nprobe: part.nprobe,
        measured: part.measured.map(str::to_string),
    })
}

/// Rewrites only the manifest's fusion setting (after tuning), atomically.
pub fn set_fusion(root: &Path, fusion: FusionSetting) -> Result<Manifest> {
    let mut manifest = read_manifest(root)?;
    manifest.fusion = Some(fusion);
    manifest.format_version = MANIFEST_VERSION;
    format::write_atomic(&root.join(MANIFEST_FILE), &manifest_json(&manifest)?)?;
    Ok(manifest)
}

fn manifest_json(manifest: &Manifest) -> Result<Vec<u8>> {
    serde_json::to_vec_pretty(manifest).map_err(|e| Error::format("manifest", e.to_string()))
}

fn read_manifest(root: &Path) -> Result<Manifest> {
    let mpath = root.join(MANIFEST_FILE);
    let bytes = format::read_capped(&mpath, MAX_MANIFEST_BYTES, "manifest").map_err(|e| match e {
        Error::Io(e) => Error::Io(std::io::Error::new(e.kind(), format!("{e} (is this an index directory?)"))),
        e => e,
    })?;
    Manifest::from_bytes(&bytes)
}

/// An opened index directory: the vectors and the BM25 meta in memory; term
/// blocks and texts read on demand.
pub struct IndexDir {
    pub index: FlatIndex,
    /// Meta only: add the blocks a query needs with [`IndexDir::read_block`].
    pub lexical: Option<LexicalIndex>,
    pub shards: Shards,
}

/// Passage texts of an index directory; each shard is read on first use.
pub struct Shards {
    pub root: PathBuf,
    pub manifest: Manifest,
    cache: RefCell<HashMap<usize, Vec<Passage>>>,
}

impl IndexDir {
    pub fn open(root: &Path) -> Result<Self> {
        let manifest = read_manifest(root)?;
        let index_bytes = read_part(root, &manifest, Part::Index, &manifest.index_file)?;
        if index_bytes.len() as u64 != manifest.index_bytes {
            return Err(Error::format(
                "index directory",
                format!(
                    "{} holds {} bytes, the manifest says {}",
                    manifest.index_file,
                    index_bytes.len(),
                    manifest.index_bytes
                ),
            ));
        }
        let index = format::index::from_bytes(&index_bytes)?;
        if index.len() != manifest.count || index.fingerprint() != manifest.model_fingerprint {
            return Err(Error::format("index directory", "the manifest and the index file disagree (count or model)"));
        }
        let lexical = match &manifest.lexical {
            None => None,
            Some(files) => {
                let meta =
                    format::lexical::meta_from_bytes(&read_part(root, &manifest, Part::LexicalMeta, &files.meta)?)?;
                if meta.n_blocks as usize != files.blocks.len() {
                    return Err(Error::format(
                        "index directory",
                        "the manifest and the lexical meta disagree on blocks",
                    ));
                }
                Some(LexicalIndex::from_meta(meta)?)
            }
        };
        let shards = Shards { root: root.to_path_buf(), manifest, cache: RefCell::new(HashMap::new()) };
        Ok(Self { index, lexical, shards })
    }

    /// Reads lexical block `number` from disk.
    pub fn read_block(shards: &Shards, number: u32) -> Result<(u32, [u8; 32], TermBlock)> {
        let files =
            shards.manifest.lexical.as_ref().ok_or_else(|| Error::Invalid("the index has no lexical part".into()))?;
        let name = files
            .block_name(number as usize)
            .ok_or_else(|| Error::Invalid(format!("lexical block {number} of {}", files.blocks.len())))?;
        let got =
            format::lexical::block_from_bytes(&read_part(&shards.root, &shards.manifest, Part::LexicalBlock, &name)?)?;
        if got.0 != number {
            return Err(Error::format(
                "lexical block file",
                format!("{name} holds block {} instead of {number}", got.0),
            ));
        }
        Ok(got)
    }

    /// Loads every block (evaluation, re-indexing).
    pub fn load_all_blocks(&mut self) -> Result<()> {
        match self.lexical.as_mut() {
            Some(l) => Self::load_blocks(&self.shards, l),
            None => Ok(()),
        }
    }

    /// Reads every term block of `shards` into `lexical` (the folder's own BM25 part).
    pub fn load_blocks(shards: &Shards, lexical: &mut LexicalIndex) -> Result<()> {
        for b in 0..lexical.n_blocks() {
            let (n, corpus, block) = Self::read_block(shards, b)?;
            lexical.add_block(n, &corpus, block)?;
        }
        Ok(())
    }

    /// The folder's token-table query encoder with no chunk loaded yet
    /// (see [`IndexDir::load_table_chunks`]); `None` when it carries none.
    pub fn read_table(shards: &Shards) -> Result<Option<TableEncoder>> {
        let Some(files) = &shards.manifest.table else { return Ok(None) };
        let bytes = read_part(&shards.root, &shards.manifest, Part::TableHead, &files.head)?;
        let head = format::table::head_from_bytes(&bytes, None)?;
        if head.len() != bytes.len() || head.n_chunks() != files.n_chunks() || head.chunk_rows != files.chunk_rows {
            return Err(Error::format("index directory", "the manifest and the token table's head disagree"));
        }
        if head.fingerprint != shards.manifest.model_fingerprint {
            return Err(Error::format("index directory", "the token table was distilled against another encoder"));
        }
        let mut encoder = TableEncoder::from_head(head)?;
        encoder.fusion = files.fusion.as_ref().map(|f| f.fusion);
        Ok(Some(encoder))
    }

    /// Reads the chunks `ids` need that `encoder` has not loaded; returns how many.
    pub fn load_table_chunks(shards: &Shards, encoder: &mut TableEncoder, ids: &[u32]) -> Result<usize> {
        let files =
            shards.manifest.table.as_ref().ok_or_else(|| Error::Invalid("the index has no token table".into()))?;
        let missing = encoder.table.missing_chunks(ids);
        for &c in &missing {
            let name = files.chunk_name(c).ok_or_else(|| Error::Invalid(format!("table chunk {c}")))?;
            let bytes = read_part(&shards.root, &shards.manifest, Part::TableChunk, &name)?;
            encoder.add_chunk(c, &bytes)?;
        }
        Ok(missing.len())
    }

    /// Reads every chunk of the folder's table (evaluation).
    pub fn load_whole_table(shards: &Shards, encoder: &mut TableEncoder) -> Result<()> {
        let all: Vec<u32> = (0..encoder.table.vocab() as u32).step_by(encoder.table.chunk_rows()).collect();
        Self::load_table_chunks(shards, encoder, &all).map(|_| ())
    }
}

/// One file of the folder, by a name `Manifest::from_bytes` accepted, capped
/// at the size the manifest records for its part.
fn read_part(root: &Path, manifest: &Manifest, part: Part, name: &str) -> Result<Vec<u8>> {
    format::read_capped(&root.join(name), manifest.cap(part), "index directory")
}

impl Shards {
    /// The passage at `ordinal`, loading its shard if needed.
    pub fn passage(&self, ordinal: usize) -> Result<Passage> {
        let (shard, pos) = self
            .manifest
            .locate(ordinal)
            .ok_or_else(|| Error::Invalid(format!("passage {ordinal} is out of range")))?;
        let mut cache = self.cache.borrow_mut();
        if let std::collections::hash_map::Entry::Vacant(e) = cache.entry(shard) {
            let name = self.manifest.shard_name(shard).ok_or_else(|| Error::Invalid(format!("text shard {shard}")))?;
            e.insert(shard::shard_from_bytes(&read_part(&self.root, &self.manifest, Part::Shard, &name)?)?);
        }
        cache[&shard]
            .get(pos)
            .cloned()
            .ok_or_else(|| Error::format("passage shard", format!("shard {shard} lacks passage {pos}")))
    }

    /// How many shards have been read so far (lazy loading is observable).
    pub fn loaded_shards(&self) -> usize {
        self.cache.borrow().len()
    }
}
