//! Embeds the browser package the site owner's `index-site` copies beside
//! its index (pkg/: the widget, the worker, both wasm engines), when it has
//! been built (scripts/build-wasm.sh, then --light): `index-site` then needs
//! no --assets folder. Without them the binary embeds what exists and
//! `index-site` says what to build.

use std::path::Path;

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
    // on every build (cargo scans a folder's files for newer ones).
    println!("cargo:rerun-if-changed={}", pkg.display());
    let mut src = String::from(
        "/// The browser package's files, as built when this binary was.\npub const EMBEDDED: &[(&str, &[u8])] = &[\n",
    );
    for f in FILES {
        if let Ok(abs) = pkg.join(f).canonicalize() {
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
