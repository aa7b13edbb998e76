//! The `ernie-search` command: glue over the library and the training crate.

use std::process::ExitCode;

use ernie_search_cli::{cli, run};

use clap::Parser;

fn main() -> ExitCode {
    match run::run(cli::Cli::parse()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(2)
        }
    }
}
