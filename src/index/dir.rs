//! An index directory on disk: `manifest.json`, the index file and passage
//! shards. Written into a temporary sibling and renamed into place, so a
//! failed build never destroys the previous index.

use std::cell::RefCell;
use std::collections::HashMap;
use std::path::{Path, PathBuf};

use crate::format::shard::{self, Manifest, Passage, MANIFEST_FILE, MANIFEST_VERSION};
use crate::{format, Error, FlatIndex, Result};

/// Writes `index` and `passages` (same order) as a directory at `dir`.
pub fn write_dir(
    dir: &Path,
    index: &FlatIndex,
    passages: &[Passage],
    shard_size: usize,
    model_name: &str,
    model_path: Option<&Path>,
) -> Result<Manifest> {
    if passages.len() != index.len() {
        return Err(Error::Invalid(format!("{} passages for {} vectors", passages.len(), index.len())));
    }
    if shard_size == 0 {
        return Err(Error::Invalid("shard size must be positive".into()));
    }
    let tmp = format::sibling(dir, "tmp");
    let _ = std::fs::remove_dir_all(&tmp);
    std::fs::create_dir_all(tmp.join("passages"))?;
    let result = (|| {
        let bytes = format::index::to_bytes(index)?;
        let index_file = shard::content_name("index", &bytes, "bin");
        std::fs::write(tmp.join(&index_file), &bytes)?;
        let mut shards = Vec::new();
        for chunk in passages.chunks(shard_size) {
            let b = shard::shard_to_bytes(chunk)?;
            let name = format!("passages/{}", shard::content_name("shard", &b, "json"));
            std::fs::write(tmp.join(&name), &b)?;
            shards.push(name);
        }
        let manifest = Manifest {
            format_version: MANIFEST_VERSION,
            model_name: model_name.to_string(),
            model_fingerprint: index.fingerprint().to_string(),
            model_path: model_path.map(|p| p.display().to_string()),
            dim: index.dim(),
            count: index.len(),
            dtype: index.dtype(),
            index_file,
            index_bytes: bytes.len() as u64,
            shard_size,
            shards,
        };
        std::fs::write(tmp.join(MANIFEST_FILE), serde_json::to_vec_pretty(&manifest)?)?;
        format::replace_dir(&tmp, dir)?;
        Ok(manifest)
    })();
    if result.is_err() {
        let _ = std::fs::remove_dir_all(&tmp);
    }
    result
}

/// An opened index directory: the index in memory, the texts on demand.
pub struct IndexDir {
    pub index: FlatIndex,
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
        let mpath = root.join(MANIFEST_FILE);
        let bytes = std::fs::read(&mpath).map_err(|e| {
            Error::Io(std::io::Error::new(e.kind(), format!("{}: {e} (is this an index directory?)", mpath.display())))
        })?;
        let manifest = Manifest::from_bytes(&bytes)?;
        let index = format::index::from_bytes(&std::fs::read(root.join(&manifest.index_file))?)?;
        if index.len() != manifest.count || index.fingerprint() != manifest.model_fingerprint {
            return Err(Error::format("index directory", "the manifest and the index file disagree (count or model)"));
        }
        let shards = Shards { root: root.to_path_buf(), manifest, cache: RefCell::new(HashMap::new()) };
        Ok(Self { index, shards })
    }
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
            let path = self.root.join(&self.manifest.shards[shard]);
            e.insert(shard::shard_from_bytes(&std::fs::read(&path)?)?);
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
