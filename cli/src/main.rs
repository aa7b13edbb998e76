//! The `ernie-search` command: one file per command under `commands/`, each
//! turning its flags into the libraries' options (the library `ernie-search`,
//! `ernie-search-data`, `ernie-search-train`) and printing what they return.

use std::process::ExitCode;

use clap::Parser;

mod commands;
mod flags;
mod load;

// Training allocates and frees multi-megabyte activations at every op. glibc's
// malloc hands blocks that large back to the kernel (mmap/munmap), so every
// step paid millions of page faults; mimalloc with purging off keeps and reuses
// them: 1.7x samples/s on the training benchmark (BENCHMARKS.md), for a few
// hundred MB more peak memory.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// `mi_option_purge_delay` in the `mi_option_t` enum of mimalloc.h (v3, the
/// version libmimalloc-sys 0.1.49 builds, pinned in Cargo.toml so the index
/// cannot move under us); -1 means never purge.
const MI_OPTION_PURGE_DELAY: libmimalloc_sys::mi_option_t = 15;

fn keep_freed_memory() {
    // SAFETY: sets a process-wide allocator option; no allocation is in flight.
    unsafe { libmimalloc_sys::mi_option_set(MI_OPTION_PURGE_DELAY, -1) };
}

fn main() -> ExitCode {
    keep_freed_memory();
    match commands::run(commands::Cli::parse()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(2)
        }
    }
}
