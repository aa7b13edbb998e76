//! Distillation with the ERNIE-Search method (arXiv 2205.09153): a student
//! encoder with a dual-encoder (DE) head and a late-interaction (LI, ColBERT)
//! head trained together (self on-the-fly distillation, LI -> DE), a
//! cross-encoder (CE) teacher, and the cascade CE -> LI -> DE.
//!
//! data -> bert/model (over ops, the fused CPU kernels) (scorers) -> loss -> fit (loop, optimizer, checkpoints)
//! -> stages (warm-up, CE, cascade) -> pipeline (export, mining, evaluation)
//! -> commands (the CLI's stage subcommands), ablate (the table) and probe
//! (each scorer reranking the same dev candidates).

pub mod ablate;
pub mod bench;
pub mod bert;
pub mod checkpoint;
pub mod commands;
pub mod data;
pub mod fit;
pub mod loss;
pub mod model;
pub mod ops;
pub mod optim;
pub mod params;
pub mod pipeline;
pub mod plot;
pub mod probe;
pub mod projection;
pub mod recipe;
pub mod rng;
pub mod stages;
pub mod table;
pub mod table_ablate;
