//! The file system, carefully (native only): every write goes through a
//! temporary sibling and a rename, every read is capped, and a folder is
//! replaced only when it is ours.
//!
//! A folder "is ours" when it holds [`OWNER_MARK`], a file every folder this
//! project writes carries (index folders written before the mark existed are
//! recognised by their `manifest.json`). A folder swap runs
//!
//! ```text
//! 1. .NAME.tmp-PID   staged, with the mark, filled by the caller
//! 2. NAME         -> .NAME.old-PID   (the old copy set aside)
//! 3. .NAME.tmp-PID -> NAME           (the new copy in place)
//! 4. .NAME.old-PID   removed
//! ```
//!
//! A kill between 2 and 3 leaves no `NAME`; the next [`Staging::new`] puts the
//! old copy back first. Stale `.NAME.tmp-*` and `.NAME.old-*` folders are
//! removed only when they carry the mark.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use crate::{Error, Result};

/// The file that marks a folder as written by ernie-search (and so safe to replace).
pub const OWNER_MARK: &str = ".ernie-search";
const MARK_TEXT: &[u8] = b"written by ernie-search: this folder is replaced whole on the next build\n";

/// Writes `bytes` to `path` through a temporary sibling and a rename, so a
/// crash never leaves a half-written file where a good one was.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let dir = path.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir)?;
    let tmp = sibling(path, "tmp");
    let result = (|| {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        std::fs::rename(&tmp, path)
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

/// `.name.<tag>-<pid>` beside `path`: where a replacement is staged.
pub fn sibling(path: &Path, tag: &str) -> PathBuf {
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_else(|| "out".into());
    path.with_file_name(format!(".{name}.{tag}-{}", std::process::id()))
}

/// Reads a regular file of at most `cap` bytes. Links, devices and folders
/// are refused (a `/dev/zero` never ends), and so is a file that grows past
/// `cap` while it is read.
pub fn read_capped(path: &Path, cap: u64, what: &'static str) -> Result<Vec<u8>> {
    let io = |e: std::io::Error| Error::Io(std::io::Error::new(e.kind(), format!("{}: {e}", path.display())));
    let meta = std::fs::symlink_metadata(path).map_err(io)?;
    if !meta.file_type().is_file() {
        return Err(Error::format(
            what,
            format!("{} is not a regular file (links and devices are refused)", path.display()),
        ));
    }
    if meta.len() > cap {
        return Err(too_big(what, path, meta.len(), cap));
    }
    let mut bytes = Vec::with_capacity(meta.len() as usize);
    std::fs::File::open(path).map_err(io)?.take(cap + 1).read_to_end(&mut bytes).map_err(io)?;
    if bytes.len() as u64 > cap {
        return Err(too_big(what, path, bytes.len() as u64, cap));
    }
    Ok(bytes)
}

fn too_big(what: &'static str, path: &Path, len: u64, cap: u64) -> Error {
    Error::format(what, format!("{} holds {len} bytes, more than the {cap} allowed", path.display()))
}

/// True when `dir` was written by this project: it carries [`OWNER_MARK`],
/// or (for index folders from before the mark) a manifest we can read.
pub fn is_ours(dir: &Path) -> bool {
    if std::fs::symlink_metadata(dir.join(OWNER_MARK)).is_ok_and(|m| m.file_type().is_file()) {
        return true;
    }
    // read_capped refuses anything but a regular file.
    read_capped(&dir.join(super::shard::MANIFEST_FILE), super::shard::MAX_MANIFEST_BYTES, "manifest")
        .and_then(|b| super::shard::Manifest::from_bytes(&b))
        .is_ok()
}

fn is_empty_dir(dir: &Path) -> bool {
    std::fs::read_dir(dir).is_ok_and(|mut d| d.next().is_none())
}

/// A folder being built beside its destination, swapped in by
/// [`Staging::commit`]. Dropped uncommitted (an error, a panic), it is removed.
#[derive(Debug)]
pub struct Staging {
    tmp: PathBuf,
    dest: PathBuf,
    committed: bool,
}

impl Staging {
    /// Prepares `.NAME.tmp-PID` beside `dest`. Refuses a `dest` that is a
    /// file, a link, or a folder holding anything but our own output; first
    /// restores a copy an interrupted swap left aside, and clears stale
    /// staging folders of ours.
    pub fn new(dest: &Path) -> Result<Self> {
        let name = dest
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .filter(|n| n != "." && n != "..")
            .ok_or_else(|| Error::Invalid(format!("{} does not name a folder to write", dest.display())))?;
        let parent = dest.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
        std::fs::create_dir_all(parent)?;
        recover(parent, &name, dest)?;
        check_replaceable(dest)?;
        let tmp = sibling(dest, "tmp");
        if tmp.exists() && is_ours(&tmp) {
            std::fs::remove_dir_all(&tmp)?;
        }
        std::fs::create_dir(&tmp)?;
        std::fs::write(tmp.join(OWNER_MARK), MARK_TEXT)?;
        Ok(Self { tmp, dest: dest.to_path_buf(), committed: false })
    }

    /// The folder to fill.
    pub fn path(&self) -> &Path {
        &self.tmp
    }

    /// Swaps the filled folder into place. The old copy is removed only
    /// once the new one is there, and put back if the swap fails.
    pub fn commit(mut self) -> Result<()> {
        check_replaceable(&self.dest)?;
        if !self.dest.exists() || is_empty_dir(&self.dest) {
            if self.dest.exists() {
                std::fs::remove_dir(&self.dest)?;
            }
            std::fs::rename(&self.tmp, &self.dest)?;
        } else {
            let old = sibling(&self.dest, "old");
            std::fs::rename(&self.dest, &old)?;
            if let Err(e) = std::fs::rename(&self.tmp, &self.dest) {
                let _ = std::fs::rename(&old, &self.dest);
                return Err(e.into());
            }
            let _ = std::fs::remove_dir_all(&old);
        }
        self.committed = true;
        Ok(())
    }
}

impl std::ops::Deref for Staging {
    type Target = Path;
    fn deref(&self) -> &Path {
        &self.tmp
    }
}

impl Drop for Staging {
    fn drop(&mut self) {
        if !self.committed {
            let _ = std::fs::remove_dir_all(&self.tmp);
        }
    }
}

/// `dest` may be replaced: missing, an empty folder, or a folder of ours.
fn check_replaceable(dest: &Path) -> Result<()> {
    let Ok(meta) = std::fs::symlink_metadata(dest) else { return Ok(()) };
    if !meta.file_type().is_dir() {
        return Err(Error::Invalid(format!(
            "{} exists and is not a folder (a file or a link): refusing to replace it",
            dest.display()
        )));
    }
    if is_empty_dir(dest) || is_ours(dest) {
        return Ok(());
    }
    Err(Error::Invalid(format!(
        "{} exists and was not written by ernie-search (no {OWNER_MARK} or manifest.json in it): refusing to replace \
         it; choose another output folder, or empty it yourself",
        dest.display()
    )))
}

/// Undoes what a killed swap left: with `dest` missing, the newest marked
/// `.NAME.old-*` is put back; marked `.NAME.tmp-*` and leftover `.NAME.old-*`
/// folders of other processes are removed.
fn recover(parent: &Path, name: &str, dest: &Path) -> Result<()> {
    let Ok(entries) = std::fs::read_dir(parent) else { return Ok(()) };
    let (old_prefix, tmp_prefix) = (format!(".{name}.old-"), format!(".{name}.tmp-"));
    let mut olds = Vec::new();
    let mut tmps = Vec::new();
    for entry in entries.flatten() {
        let file = entry.file_name().to_string_lossy().into_owned();
        let path = entry.path();
        let is_dir = entry.file_type().is_ok_and(|t| t.is_dir());
        if !is_dir || !is_ours(&path) || held_by_live_process(&file) {
            continue;
        }
        if file.starts_with(&old_prefix) {
            let modified = entry.metadata().and_then(|m| m.modified()).ok();
            olds.push((modified, path));
        } else if file.starts_with(&tmp_prefix) {
            tmps.push(path);
        }
    }
    olds.sort();
    if std::fs::symlink_metadata(dest).is_err() {
        if let Some((_, newest)) = olds.pop() {
            std::fs::rename(&newest, dest)?;
            eprintln!("ernie-search: restored {} from an interrupted rebuild", dest.display());
        }
    }
    for path in olds.into_iter().map(|(_, p)| p).chain(tmps) {
        std::fs::remove_dir_all(&path)?;
    }
    Ok(())
}

/// True when the `-PID` suffix names another process that is still running
/// (a concurrent build's staging folder is left alone). Without `/proc`,
/// every other process counts as gone.
fn held_by_live_process(name: &str) -> bool {
    let Some(pid) = name.rsplit('-').next().and_then(|p| p.parse::<u32>().ok()) else { return false };
    pid != std::process::id() && Path::new("/proc").join(pid.to_string()).exists()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn staged(dest: &Path, file: &str) -> Result<()> {
        let s = Staging::new(dest)?;
        std::fs::write(s.path().join(file), b"x")?;
        s.commit()
    }

    #[test]
    fn replaces_only_our_folders() {
        let root = tempfile::tempdir().unwrap();
        let dest = root.path().join("out");
        staged(&dest, "a").unwrap();
        staged(&dest, "b").unwrap();
        assert!(dest.join("b").exists() && !dest.join("a").exists());
        let theirs = root.path().join("theirs");
        std::fs::create_dir(&theirs).unwrap();
        std::fs::write(theirs.join("keep.txt"), b"precious").unwrap();
        let err = staged(&theirs, "a").unwrap_err().to_string();
        assert!(err.contains("not written by ernie-search"), "{err}");
        assert_eq!(std::fs::read(theirs.join("keep.txt")).unwrap(), b"precious");
        let names: Vec<_> = std::fs::read_dir(root.path()).unwrap().map(|e| e.unwrap().file_name()).collect();
        assert_eq!(names.len(), 2, "no staging folder left behind: {names:?}");
        let file = root.path().join("file");
        std::fs::write(&file, b"f").unwrap();
        assert!(staged(&file, "a").is_err());
        assert_eq!(std::fs::read(&file).unwrap(), b"f");
    }

    #[test]
    fn an_interrupted_swap_is_recovered() {
        let root = tempfile::tempdir().unwrap();
        let dest = root.path().join("idx");
        staged(&dest, "v1").unwrap();
        // Killed between the two renames: the old copy aside, no `idx`,
        // a staging folder of another process left behind.
        std::fs::rename(&dest, root.path().join(".idx.old-999999999")).unwrap();
        let stale = root.path().join(".idx.tmp-999999998");
        std::fs::create_dir(&stale).unwrap();
        std::fs::write(stale.join(OWNER_MARK), b"").unwrap();
        let foreign = root.path().join(".idx.tmp-999999997");
        std::fs::create_dir(&foreign).unwrap();
        let s = Staging::new(&dest).unwrap();
        assert!(dest.join("v1").exists(), "the old copy is back before the new build");
        assert!(!stale.exists(), "our stale staging folder is removed");
        assert!(foreign.exists(), "a folder without our mark is never removed");

        drop(s);
        assert!(dest.join("v1").exists());
        // A staging folder of a process still running (pid 1) is left alone.
        let live = root.path().join(".idx.tmp-1");
        std::fs::create_dir(&live).unwrap();
        std::fs::write(live.join(OWNER_MARK), b"").unwrap();
        staged(&dest, "v2").unwrap();
        assert!(live.exists() && dest.join("v2").exists());
    }
}
