#!/usr/bin/env bash
# Builds the browser package into pkg/: the wasm core plus wasm-bindgen's JS glue.
#
#   scripts/build-wasm.sh           the full build (transformer, WebGPU, table)
#                                   -> pkg/ernie_search{.js,_bg.wasm}, and its
#                                   relaxed-SIMD twin -> pkg/ernie_search_relaxed{.js,_bg.wasm}
#                                   (the int8 kernel on i32x4.relaxed_dot_i8x16_i7x16_add_s;
#                                   the worker loads it where the browser validates
#                                   relaxed SIMD, the simd128 build elsewhere),
#                                   and the threaded build -> pkg/ernie_search_threads{.js,_bg.wasm}
#                                   + pkg/snippets/ (rayon on Web Workers, for
#                                   cross-origin isolated pages; needs Debian's
#                                   rustc-web toolchain, skipped without it)
#   scripts/build-wasm.sh --light   the light build for static sites (no candle,
#                                   no wgpu: BM25, the token table, the scan,
#                                   fusion) -> pkg/ernie_search_light{.js,_bg.wasm},
#                                   beside the full build (the worker picks one);
#                                   with Debian's rustc-web toolchain, std is
#                                   rebuilt with it and panics abort at once
#                                   (13 KiB gzip less; the rustup build without it)
#
# Needs: the wasm32-unknown-unknown target, wasm-bindgen-cli at the version in
# Cargo.lock, and wasm-opt (binaryen). See /work/shared/TOOLCHAIN.md.
set -euo pipefail

root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
target_dir="${CARGO_TARGET_DIR:-$root/target}"
out="$root/pkg"
name=ernie_search
# Cargo.toml: wasm-full builds our crate at opt-level 3 (the kernels), wasm
# everything at "s" (the light build, where every byte is a visitor's).

fail() { echo "build-wasm: $*" >&2; exit 1; }

# wasm-bindgen's CLI must match the wasm-bindgen crate exactly, or the glue and
# the wasm disagree ("it looks like the Rust project used to create this wasm
# file was linked against version X").
want="$(awk '/^name = "wasm-bindgen"$/ { getline; gsub(/"/, "", $3); print $3; exit }' Cargo.lock)"
[ -n "$want" ] || fail "no wasm-bindgen in Cargo.lock (run cargo generate-lockfile?)"
if ! command -v wasm-bindgen >/dev/null; then
    fail "wasm-bindgen not found; install it with: cargo install wasm-bindgen-cli --version $want   (without --locked)"
fi
have="$(wasm-bindgen --version | awk '{ print $2 }')"
[ "$have" = "$want" ] || fail "wasm-bindgen $have is installed but Cargo.lock has $want; run: cargo install wasm-bindgen-cli --version $want --force   (without --locked)"
command -v wasm-opt >/dev/null || fail "wasm-opt not found; install binaryen (apt-get install binaryen)"
rustup target list --installed 2>/dev/null | grep -qx wasm32-unknown-unknown \
    || fail "the wasm32-unknown-unknown target is missing; run: rustup target add wasm32-unknown-unknown"

# `cargo rustc --crate-type cdylib` rather than crate-type = ["cdylib", "rlib"]
# in Cargo.toml: with both, cargo silently drops LTO. RUSTFLAGS for wasm32
# (+simd128, getrandom's wasm_js backend) come from .cargo/config.toml.
#
# wasm-opt runs on cargo's output, *before* wasm-bindgen. wasm-bindgen adds a
# second table (externref, exported as __wbindgen_externrefs), and binaryen
# <= 108 (Debian 12's) rewrites that export onto the funcref table, after which
# init fails with "WebAssembly.Table.set(): ... function-typed object must be
# null" (binaryen#4711, fixed in 110). Before wasm-bindgen there is one table.
#
# The features rustc uses: bulk memory and non-trapping float-to-int (default
# since Rust 1.87), reference types and multivalue (since 1.82), sign-ext,
# mutable globals, simd128 from .cargo/config.toml, and relaxed SIMD in the
# relaxed twin. binaryen 108 reads them from the module's target_features
# section too; naming them keeps the build independent of that section
# (without them it rejects the module).
features=(--enable-simd --enable-bulk-memory --enable-nontrapping-float-to-int --enable-sign-ext
    --enable-mutable-globals --enable-reference-types --enable-multivalue)

# Guard against the table mix-up above, whatever produced it: the export must
# name an externref table ("anyref" in binaryen 108's text).
check_externref_export() {
    local dis export_line table
    dis="$(mktemp)"
    wasm-dis "$1" -o "$dis" 2>/dev/null || { rm -f "$dis"; return 0; }
    export_line="$(grep -m1 '(export "__wbindgen_externrefs"' "$dis" || true)"
    if [ -n "$export_line" ]; then
        table="$(sed -n 's/.*(table \(\$[^)]*\)).*/\1/p' <<<"$export_line")"
        if ! grep -Fq "(table $table " "$dis" || grep -F "(table $table " "$dis" | grep -q funcref; then
            rm -f "$dis"
            fail "$1 exports __wbindgen_externrefs as a funcref table ($export_line): see binaryen#4711"
        fi
    fi
    rm -f "$dis"
}

# The toolchain that rebuilds std (the threaded build, the smaller light
# build; scripts/setup.sh --browser installs it): rustup cannot fetch the std
# sources here, Debian ships them for its rustc-web.
std_linker=/usr/lib/llvm-19/bin/wasm-ld
std_toolchain() {
    [ -x /usr/bin/rustc ] && [ -x /usr/bin/cargo ] && [ -d /usr/lib/rustlib/src/rust/library ] && [ -x "$std_linker" ] \
        && /usr/bin/rustc --print target-list | grep -qx wasm32-unknown-unknown
}

kb() { awk -v b="$1" 'BEGIN { printf "%.1f KiB", b / 1024 }'; }

# build OUT_NAME PROFILE WASM_OPT_LEVEL TARGET_DIR [CARGO_ARG...]
build() {
    local out_name=$1 profile=$2 wasm_opt_level=$3 dir=$4
    shift 4
    local extra=()
    [[ " $* " == *" relaxed-simd "* ]] && extra=(--enable-relaxed-simd)
    local t0=$SECONDS
    if [ "${std_abort:-0}" = 1 ]; then
        # The light build with std compiled with it (-Z build-std, Debian's
        # sources, as the threaded build below) and panics that abort at once
        # (-C panic=immediate-abort): no panic messages, locations or their
        # formatting, and std at opt-level "s" with LTO across it (about 13 KiB
        # gzip less, BENCHMARKS.md's light wasm table). A panic is a bug
        # either way: it traps as "unreachable", only without a console line.
        RUSTC=/usr/bin/rustc RUSTC_BOOTSTRAP=1 RUSTFLAGS="-C target-feature=+simd128 --cfg getrandom_backend=\"wasm_js\" -Z unstable-options -C panic=immediate-abort -C linker=$std_linker" \
            /usr/bin/cargo rustc --lib --crate-type cdylib --profile "$profile" --target wasm32-unknown-unknown --target-dir "$dir" -Z build-std=panic_abort,std "$@"
    elif [[ " $* " == *" threads "* ]]; then
        extra=(--enable-threads)
        # std itself must be compiled with atomics: Debian's rustc-web and its
        # sources (-Z build-std; RUSTC_BOOTSTRAP allows the flag on a release
        # compiler), linked by lld-19's wasm-ld into a shared, imported memory
        # that wasm-bindgen hands to every worker. RUSTFLAGS replaces
        # .cargo/config.toml's, so +simd128 and getrandom's backend come again.
        RUSTC=/usr/bin/rustc RUSTC_BOOTSTRAP=1 RUSTFLAGS="-C target-feature=+atomics,+bulk-memory,+mutable-globals,+simd128 --cfg getrandom_backend=\"wasm_js\" -C linker=$std_linker $(printf -- '-C link-arg=%s ' --shared-memory --max-memory=2147483648 --import-memory --export=__wasm_init_tls --export=__tls_size --export=__tls_align --export=__tls_base)" \
            /usr/bin/cargo rustc --lib --crate-type cdylib --profile "$profile" --target wasm32-unknown-unknown --target-dir "$dir" -Z build-std=panic_abort,std "$@"
    else
        cargo rustc --lib --crate-type cdylib --profile "$profile" --target wasm32-unknown-unknown --target-dir "$dir" "$@"
    fi
    local t_cargo=$((SECONDS - t0))
    local built="$dir/wasm32-unknown-unknown/$profile/$name.wasm"
    [ -f "$built" ] || fail "cargo did not produce $built"
    # The full build and its twin share cargo's output path: keep each
    # variant's copy (touched only when it changed, so wasm-opt's result
    # below stays current).
    local wasm="$dir/wasm32-unknown-unknown/$profile/$out_name.cargo.wasm"
    cmp -s "$built" "$wasm" || cp "$built" "$wasm"

    t0=$SECONDS
    local opt="$dir/wasm32-unknown-unknown/$profile/$out_name.opt.wasm"
    if [ "$opt" -nt "$wasm" ] && [ "$opt" -nt "$0" ]; then
        echo "build-wasm: $opt is up to date"
    elif wasm-opt "$wasm_opt_level" "${features[@]}" "${extra[@]}" "$wasm" -o "$opt.tmp" 2>"$opt.log"; then
        mv "$opt.tmp" "$opt"
    elif [ ${#extra[@]} -gt 0 ]; then
        # binaryen < 111 (Debian 12 has 108) predates relaxed SIMD's final
        # opcodes and cannot read the module ("invalid code after SIMD
        # prefix"): ship cargo's output, without its name section. It is
        # about 20 KiB larger gzipped and no slower (V8 optimises it anyway).
        echo "build-wasm: wasm-opt cannot read $out_name ($(tail -n1 "$opt.log")); using cargo's output unoptimised"
        cp "$wasm" "$opt"
    else
        cat "$opt.log" >&2
        fail "wasm-opt failed on $wasm"
    fi
    local t_opt=$((SECONDS - t0))

    t0=$SECONDS
    mkdir -p "$out"
    # No name section (wasm-opt drops it; the unoptimised twin must too).
    wasm-bindgen --target web --remove-name-section --remove-producers-section --out-dir "$out" --out-name "$out_name" "$opt"
    local t_bindgen=$((SECONDS - t0))
    local bg="$out/${out_name}_bg.wasm"
    if command -v wasm-dis >/dev/null; then check_externref_export "$bg"; fi

    local raw raw_before gz js
    raw=$(stat -c %s "$bg")
    raw_before=$(stat -c %s "$wasm")
    gz=$(gzip -9 -c "$bg" | wc -c)
    js=$(stat -c %s "$out/$out_name.js")
    echo "build-wasm: cargo ${t_cargo}s, wasm-opt ${t_opt}s, wasm-bindgen ${t_bindgen}s"
    echo "build-wasm: $bg: $(kb "$raw") raw (cargo's output: $(kb "$raw_before")), $(kb "$gz") gzip -9; glue $out_name.js $(kb "$js")"
}

# Cargo.toml: wasm-full builds our crate at opt-level 3 (the kernels), wasm
# everything at "s" (the light build, where every byte is a visitor's).
if [ "${1:-}" = "--light" ]; then
    # Its own target folder: the full build's artifact keeps its place.
    if std_toolchain; then
        std_abort=1 build ernie_search_light wasm -Os "$target_dir/light" --no-default-features
    else
        echo "build-wasm: the light build with rustup's std (about 13 KiB gzip larger): the smaller one needs Debian's rustc-web, cargo-web, rust-web-src and lld-19 (scripts/setup.sh --browser installs them)" >&2
        build ernie_search_light wasm -Os "$target_dir/light" --no-default-features
    fi
else
    build ernie_search wasm-full -O3 "$target_dir"
    # The relaxed twin differs only in our crate's feature (the kernel carries
    # its own #[target_feature]), so it reuses every compiled dependency.
    build ernie_search_relaxed wasm-full -O3 "$target_dir" --features relaxed-simd
    # The threaded build (feature `threads`: rayon's pool on Web Workers, for
    # cross-origin isolated pages; simd128's kernel, no WebGPU). Its own
    # target folder: its std and every dependency are built with atomics.
    if std_toolchain; then
        build ernie_search_threads wasm-full -O3 "$target_dir/threads" --no-default-features --features threads
    else
        rm -rf "$out/ernie_search_threads.js" "$out/ernie_search_threads_bg.wasm" "$out/snippets"
        echo "build-wasm: NO threaded build: it needs Debian's rustc-web, cargo-web, rust-web-src and lld-19 (scripts/setup.sh installs them); the package runs one thread" >&2
    fi
fi

# The copies of the scripts a static site serves: `index-site` embeds
# pkg/min/ (cli/build.rs), minified by esbuild (pinned in scripts/minify/);
# the npm package keeps the readable ones, which an app's bundler minifies.
if command -v node >/dev/null && command -v npm >/dev/null; then
    (cd scripts/minify && { [ -d node_modules/esbuild ] || npm ci --no-audit --no-fund --loglevel=error; })
    node scripts/minify/minify.mjs
else
    rm -rf "$out/min"
    echo "build-wasm: NO minified site scripts (node and npm are needed): index-site copies the readable ones, about 9 KB more gzip per visitor" >&2
fi
