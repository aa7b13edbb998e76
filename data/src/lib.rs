//! What ernie-search reads from outside and how it is judged, natively:
//! registry packages (`fetch`), Hugging Face checkpoints turned into model
//! files (`convert`), BEIR sets and the BIG-bench conversion (`beir`,
//! `bigbench`), corpus files and static sites turned into passages (`corpus`,
//! `site`), and evaluation with run files (`eval`). The CLI and training both
//! use it; it depends only on the library.

pub mod beir;
pub mod bigbench;
pub mod convert;
pub mod corpus;
pub mod eval;
pub mod fetch;
pub mod progress;
pub mod site;
