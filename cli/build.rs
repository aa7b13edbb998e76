//! Embeds the browser package the site owner's `index-site` copies beside
//! its index (pkg/: the widget, the worker, both wasm engines), when it has
//! been built (scripts/build-wasm.sh, then --light): `index-site` then needs
//! no --assets folder. Without them the binary embeds what exists and
//! `index-site` says what to build. A script is embedded minified
//! (pkg/min/, written by build-wasm.sh) unless that copy is missing or older
//! than the script, which is then embedded as it is, with a warning.

use std::path::{Path, PathBuf};

/// What a site serves from `_ernie/` (besides the index).
const FILES: &[&str] = &[
    "index.js",
    "widget.js",
    "worker.js",
    "text.js",
    "ernie_search.js",
    "ernie_search_bg.wasm",
    // The relaxed-SIMD twin: loaded instead where the browser has relaxed
    // SIMD; the worker falls back to the simd128 build without it.
    "ernie_search_relaxed.js",
    "ernie_search_relaxed_bg.wasm",
    "ernie_search_light.js",
    "ernie_search_light_bg.wasm",
];

fn main() {
    let pkg = Path::new(env!("CARGO_MANIFEST_DIR")).join("../pkg");
    // The folder, not each file: a file not built yet would count as changed
    // on every build (cargo scans a folder's files for newer ones, pkg/min/'s too).
    println!("cargo:rerun-if-changed={}", pkg.display());
    let mut src = String::from(
        "/// The browser package's files, as built when this binary was.\npub const EMBEDDED: &[(&str, &[u8])] = &[\n",
    );
    for f in FILES {
        if let Ok(abs) = source(&pkg, f).canonicalize() {
            src += &format!("    ({f:?}, include_bytes!({:?})),\n", abs.display().to_string());
        }
    }
    src += "];\n";
    let out = Path::new(&std::env::var("OUT_DIR").expect("cargo sets OUT_DIR")).join("assets.rs");
    // Rewritten only when it changes, so the CLI is not recompiled for nothing.
    if std::fs::read_to_string(&out).ok().as_deref() != Some(src.as_str()) {
        std::fs::write(out, src).expect("OUT_DIR is writable");
    }
}

/// Where `file` is embedded from: its minified copy when that is current.
fn source(pkg: &Path, file: &str) -> PathBuf {
    let plain = pkg.join(file);
    if !file.ends_with(".js") {
        return plain;
    }
    let min = pkg.join("min").join(file);
    let modified = |p: &Path| std::fs::metadata(p).and_then(|m| m.modified()).ok();
    match (modified(&plain), modified(&min)) {
        (Some(p), Some(m)) if m >= p => min,
        (Some(_), _) if pkg.join("min").is_dir() => {
            println!("cargo:warning=pkg/min/{file} is missing or older than pkg/{file}: index-site will copy the readable script (run scripts/build-wasm.sh to minify it)");
            plain
        }
        _ => plain,
    }
}
