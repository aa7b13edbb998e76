//! The native side of ernie-search: fetching registry packages, converting
//! checkpoints, data sets, corpus embedding, static sites, evaluation and benchmarks. The
//! `ernie-search` binary (main.rs) is a thin CLI over these modules.

pub mod bench;
pub mod cli;
pub mod convert;
pub mod data;
pub mod embed;
pub mod eval;
pub mod fetch;
pub mod run;
pub mod site;
pub mod train;
