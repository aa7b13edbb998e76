//! Data sets: BIG-bench QA tasks converted to BEIR, and BEIR loading.

pub mod beir;
pub mod bigbench;
pub mod corpus;
