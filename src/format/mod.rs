//! Byte layouts. Only this module knows how files look on disk.

pub mod index;
pub mod lexical;
pub mod model;
pub mod shard;
pub(crate) mod varint;

/// Writes `bytes` to `path` through a temporary sibling and a rename, so a
/// crash never leaves a half-written file where a good one was.
#[cfg(not(target_arch = "wasm32"))]
pub fn write_atomic(path: &std::path::Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    let dir = path.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(std::path::Path::new("."));
    std::fs::create_dir_all(dir)?;
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let tmp = dir.join(format!(".{name}.tmp-{}", std::process::id()));
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
#[cfg(not(target_arch = "wasm32"))]
pub fn sibling(path: &std::path::Path, tag: &str) -> std::path::PathBuf {
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_else(|| "out".into());
    path.with_file_name(format!(".{name}.{tag}-{}", std::process::id()))
}

/// Swaps the finished folder `new` into `dir`. The old `dir` is removed only
/// once the new one is in place, and put back if the swap fails.
#[cfg(not(target_arch = "wasm32"))]
pub fn replace_dir(new: &std::path::Path, dir: &std::path::Path) -> std::io::Result<()> {
    if !dir.exists() {
        return std::fs::rename(new, dir);
    }
    let old = sibling(dir, "old");
    let _ = std::fs::remove_dir_all(&old);
    std::fs::rename(dir, &old)?;
    if let Err(e) = std::fs::rename(new, dir) {
        let _ = std::fs::rename(&old, dir);
        return Err(e);
    }
    let _ = std::fs::remove_dir_all(&old);
    Ok(())
}
