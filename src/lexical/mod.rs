//! Keyword search beside the vectors: an analyzer (words, stop words, stems)
//! and a BM25 index split into term blocks.

pub mod analyze;
mod bm25;

pub use analyze::Analyzer;
pub use bm25::{block_of, corpus_digest, Bm25Params, LexicalIndex, LexicalMeta, Postings, TermBlock};
