//! The token-table query encoder: a query's vector is the weighted mean of
//! one row per WordPiece token (Model2Vec, LightRetriever), L2-normalised, in
//! the passage encoder's vector space. No transformer runs at query time; the
//! rows are distilled from the dual-encoder (training's `table` stage), so the
//! table is tied to that encoder's fingerprint and an index from another
//! encoder is refused.
//!
//! Rows are held in chunks of consecutive token ids (the file's chunks), and a
//! table may hold only some of them: a reader that fetches the chunks a query
//! needs ([`TokenTable::missing_chunks`]) never loads the other 29,000 rows.

use crate::format::table::Head;
use crate::index::quant::ValueBits;
use crate::tokenize::WordPiece;
use crate::{Error, Result};

/// Rows `c * chunk_rows ..` of the table: one weight per token (0: the token
/// is ignored: special tokens, stop words, unseen tokens), one f32 scale per
/// row, and the rows' quantized values (int8, or int4 held as i8).
#[derive(Debug, Clone, PartialEq)]
pub struct Chunk {
    pub weights: Vec<f32>,
    pub scales: Vec<f32>,
    pub rows: Vec<i8>,
}

impl Chunk {
    /// Appends one row quantized to `bits`, with its scale.
    fn push_quantized(&mut self, row: &[f32], bits: ValueBits) {
        let (q, scale) = bits.quantize(row);
        // An all-zero row keeps scale 0: int2 has no zero level, so its
        // values are not zero and the scale must be (the file accepts 0).
        self.scales.push(scale);
        self.rows.extend(q);
    }

    pub(crate) fn check(&self, n: usize, dim: usize) -> Result<()> {
        if self.weights.len() != n || self.scales.len() != n || self.rows.len() != n * dim {
            return Err(Error::format("token table", "a chunk's rows, scales and weights disagree on its size"));
        }
        if self.weights.iter().chain(&self.scales).any(|x| !x.is_finite() || *x < 0.0) {
            return Err(Error::format("token table", "a weight or scale is negative or not finite"));
        }
        Ok(())
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct TokenTable {
    /// The fingerprint of the passage encoder the table was distilled against.
    pub fingerprint: String,
    pub dim: usize,
    vocab: usize,
    chunk_rows: usize,
    /// The width of the rows' values (what a file stores).
    bits: ValueBits,
    chunks: Vec<Option<Chunk>>,
}

impl TokenTable {
    /// Quantizes `rows` (`weights.len()` rows of `dim` floats) to `bits`,
    /// one symmetric scale per row, in chunks of `chunk_rows` tokens.
    pub fn from_f32(
        fingerprint: &str,
        dim: usize,
        rows: &[f32],
        weights: Vec<f32>,
        chunk_rows: usize,
        bits: ValueBits,
    ) -> Result<Self> {
        if dim == 0 || weights.is_empty() || rows.len() != weights.len() * dim {
            return Err(Error::Invalid(format!(
                "a token table needs vocab x dim floats: {} for {} tokens of {dim}",
                rows.len(),
                weights.len()
            )));
        }
        if rows.iter().chain(&weights).any(|x| !x.is_finite()) || weights.iter().any(|w| *w < 0.0) {
            return Err(Error::Invalid("token table rows must be finite and weights finite and >= 0".into()));
        }
        let chunk_rows = chunk_rows.clamp(1, weights.len());
        let mut table = Self::empty(fingerprint.to_string(), dim, weights.len(), chunk_rows, bits)?;
        for c in 0..table.n_chunks() {
            let (a, b) = table.chunk_span(c);
            let mut chunk = Chunk { weights: weights[a..b].to_vec(), scales: Vec::new(), rows: Vec::new() };
            rows[a * dim..b * dim].chunks(dim).for_each(|row| chunk.push_quantized(row, bits));
            table.set_chunk(c, chunk)?;
        }
        Ok(table)
    }

    /// The same rows in another order (row `i` is this table's row
    /// `order[i]`) and cut in chunks of `chunk_rows`, with no requantizing.
    pub fn reordered(&self, order: &[u32], chunk_rows: usize) -> Result<Self> {
        if order.len() != self.vocab {
            return Err(Error::Invalid(format!("an order of {} rows for a table of {}", order.len(), self.vocab)));
        }
        let chunk_rows = chunk_rows.clamp(1, self.vocab);
        let mut out = Self::empty(self.fingerprint.clone(), self.dim, self.vocab, chunk_rows, self.bits)?;
        for c in 0..out.n_chunks() {
            let (a, b) = out.chunk_span(c);
            let mut chunk =
                Chunk { weights: Vec::new(), scales: Vec::new(), rows: Vec::with_capacity((b - a) * self.dim) };
            for &old in &order[a..b] {
                let id = old as usize;
                let (w, s, row) =
                    self.entry(id).ok_or_else(|| Error::Invalid(format!("token table row {id} is not loaded")))?;
                chunk.weights.push(w);
                chunk.scales.push(s);
                chunk.rows.extend_from_slice(row);
            }
            out.set_chunk(c, chunk)?;
        }
        Ok(out)
    }

    /// Every row quantized again to `bits` from its values and scale (the
    /// weights unchanged); the same width returns the table as it is.
    pub fn requantized(&self, bits: ValueBits) -> Result<Self> {
        if bits == self.bits {
            return Ok(self.clone());
        }
        let mut out = Self::empty(self.fingerprint.clone(), self.dim, self.vocab, self.chunk_rows, bits)?;
        for c in 0..self.n_chunks() {
            let chunk = self.chunk(c).ok_or_else(|| Error::Invalid(format!("token table chunk {c} is not loaded")))?;
            let mut again = Chunk { weights: chunk.weights.clone(), scales: Vec::new(), rows: Vec::new() };
            for (row, &scale) in chunk.rows.chunks_exact(self.dim).zip(&chunk.scales) {
                let values: Vec<f32> = row.iter().map(|&q| q as f32 * scale).collect();
                again.push_quantized(&values, bits);
            }
            out.set_chunk(c, again)?;
        }
        Ok(out)
    }

    /// A table with no chunk loaded yet (see [`set_chunk`](Self::set_chunk)).
    pub fn empty(fingerprint: String, dim: usize, vocab: usize, chunk_rows: usize, bits: ValueBits) -> Result<Self> {
        if dim == 0 || vocab == 0 || chunk_rows == 0 || chunk_rows > vocab {
            return Err(Error::format("token table", format!("dim {dim}, {vocab} rows, {chunk_rows} rows per chunk")));
        }
        Ok(Self { fingerprint, dim, vocab, chunk_rows, bits, chunks: vec![None; vocab.div_ceil(chunk_rows)] })
    }

    /// Stores chunk `c`, checked against the table's geometry.
    pub fn set_chunk(&mut self, c: usize, chunk: Chunk) -> Result<()> {
        if c >= self.chunks.len() {
            return Err(Error::format("token table", format!("chunk {c} of {}", self.chunks.len())));
        }
        let (a, b) = self.chunk_span(c);
        chunk.check(b - a, self.dim)?;
        self.chunks[c] = Some(chunk);
        Ok(())
    }

    pub fn bits(&self) -> ValueBits {
        self.bits
    }
    pub fn vocab(&self) -> usize {
        self.vocab
    }
    pub fn chunk_rows(&self) -> usize {
        self.chunk_rows
    }
    pub fn n_chunks(&self) -> usize {
        self.chunks.len()
    }
    /// The token ids chunk `c` holds.
    pub fn chunk_span(&self, c: usize) -> (usize, usize) {
        (c * self.chunk_rows, ((c + 1) * self.chunk_rows).min(self.vocab))
    }
    pub fn chunk(&self, c: usize) -> Option<&Chunk> {
        self.chunks.get(c)?.as_ref()
    }
    pub fn loaded_chunks(&self) -> usize {
        self.chunks.iter().filter(|c| c.is_some()).count()
    }

    /// The chunks that `ids` fall in and that are not loaded, in order, once each.
    pub fn missing_chunks(&self, ids: &[u32]) -> Vec<usize> {
        let mut out: Vec<usize> = ids
            .iter()
            .map(|&id| id as usize / self.chunk_rows)
            .filter(|&c| c < self.chunks.len() && self.chunks[c].is_none())
            .collect();
        out.sort_unstable();
        out.dedup();
        out
    }

    /// Token `id`'s weight and row, when its chunk is loaded.
    fn entry(&self, id: usize) -> Option<(f32, f32, &[i8])> {
        if id >= self.vocab {
            return None;
        }
        let chunk = self.chunks.get(id / self.chunk_rows)?.as_ref()?;
        let i = id % self.chunk_rows;
        Some((chunk.weights[i], chunk.scales[i], &chunk.rows[i * self.dim..(i + 1) * self.dim]))
    }

    /// Row `id` as floats.
    pub fn row(&self, id: usize) -> Option<Vec<f32>> {
        let (_, s, q) = self.entry(id)?;
        Some(q.iter().map(|&x| x as f32 * s).collect())
    }

    /// The weighted mean of the rows of `ids`, L2-normalised; `Ok(None)` when
    /// no token carries weight (only special, stop-word or unknown tokens), so
    /// the caller can fall back to keywords and say so. A token whose chunk
    /// is not loaded is an error: load [`missing_chunks`](Self::missing_chunks) first.
    pub fn encode_ids(&self, ids: &[u32]) -> Result<Option<Vec<f32>>> {
        if let Some(&c) = self.missing_chunks(ids).first() {
            return Err(Error::Invalid(format!("token table chunk {c} is not loaded")));
        }
        let mut v = vec![0f32; self.dim];
        let mut total = 0f32;
        for &id in ids {
            let Some((w, scale, row)) = self.entry(id as usize) else { continue };
            if w <= 0.0 {
                continue;
            }
            let s = w * scale;
            v.iter_mut().zip(row).for_each(|(x, &q)| *x += s * q as f32);
            total += w;
        }
        let norm = v.iter().map(|x| x * x).sum::<f32>().sqrt();
        if total <= 0.0 || norm <= 0.0 || !norm.is_finite() {
            return Ok(None);
        }
        v.iter_mut().for_each(|x| *x /= norm);
        Ok(Some(v))
    }
}

/// A table with the tokenizer that splits queries into its rows.
pub struct TableEncoder {
    pub table: TokenTable,
    /// How hybrid fuses this encoder's queries (a table's dense side is
    /// weaker than the transformer's, so it gets its own weight); `None`:
    /// the retriever's fusion.
    pub fusion: Option<crate::Fusion>,
    tokenizer: WordPiece,
    /// Where the table came from a head alone: what checks the chunks added later.
    head: Option<Head>,
}

impl TableEncoder {
    pub fn new(table: TokenTable, tokenizer: WordPiece) -> Result<Self> {
        if tokenizer.vocab_size() > table.vocab() {
            return Err(Error::format(
                "token table",
                format!("{} rows for a tokenizer of {} tokens", table.vocab(), tokenizer.vocab_size()),
            ));
        }
        Ok(Self { table, tokenizer, fusion: None, head: None })
    }

    /// From a table file's contents (its own tokenizer).
    pub fn from_file(file: crate::format::table::TableFile) -> Result<Self> {
        let tok = WordPiece::from_json(file.tokenizer_json.as_bytes(), file.max_query_len)?;
        Self::new(file.table, tok)
    }

    /// From a table's head alone: no row loaded until [`add_chunk`](Self::add_chunk).
    pub fn from_head(head: Head) -> Result<Self> {
        let tok = WordPiece::from_json(head.tokenizer_json.as_bytes(), head.max_query_len)?;
        let mut encoder = Self::new(head.empty_table()?, tok)?;
        encoder.head = Some(head);
        Ok(encoder)
    }

    /// Adds chunk `c` from its file bytes, checked against the head's checksum.
    pub fn add_chunk(&mut self, c: usize, bytes: &[u8]) -> Result<()> {
        let head = self.head.as_ref().ok_or_else(|| Error::Invalid("this token table was loaded whole".into()))?;
        let chunk = head.chunk(c, bytes)?;
        self.table.set_chunk(c, chunk)
    }

    pub fn tokenizer(&self) -> &WordPiece {
        &self.tokenizer
    }

    /// The query's token ids (what decides which chunks it needs).
    pub fn token_ids(&self, query: &str) -> Result<Vec<u32>> {
        crate::model::check_query(query)?;
        Ok(self.tokenizer.encode(query))
    }

    /// A query's vector; `None` when none of its tokens carries weight.
    pub fn encode(&self, query: &str) -> Result<Option<Vec<f32>>> {
        self.table.encode_ids(&self.token_ids(query)?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_query_vector_is_the_weighted_mean_of_its_rows() {
        let rows = [1.0, 0.0, 0.0, 1.0, 0.5, 0.5];
        let t = TokenTable::from_f32("fp", 2, &rows, vec![1.0, 3.0, 0.0], 512, ValueBits::Int8).unwrap();
        let v = t.encode_ids(&[0, 1, 2, 99]).unwrap().unwrap();
        let (x, y) = (1.0f32, 3.0f32);
        let n = (x * x + y * y).sqrt();
        assert!((v[0] - x / n).abs() < 1e-2 && (v[1] - y / n).abs() < 1e-2, "{v:?}");
        assert_eq!(t.encode_ids(&[2, 99]).unwrap(), None, "only weightless or unknown tokens");
        assert!(TokenTable::from_f32("fp", 2, &rows[..5], vec![1.0; 3], 512, ValueBits::Int8).is_err());
        assert!(TokenTable::from_f32("fp", 2, &rows, vec![1.0, f32::NAN, 0.0], 512, ValueBits::Int8).is_err());
    }

    #[test]
    fn a_table_encodes_once_the_chunks_of_its_query_are_loaded() {
        let rows: Vec<f32> = (0..10 * 3).map(|i| (i as f32 * 0.7).cos()).collect();
        let full = TokenTable::from_f32("fp", 3, &rows, vec![1.0; 10], 4, ValueBits::Int8).unwrap();
        assert_eq!((full.n_chunks(), full.chunk_span(2)), (3, (8, 10)));
        // Ids past the vocabulary, in the last chunk's unused span or beyond, have no row.
        assert_eq!((full.row(10), full.row(11), full.row(usize::MAX)), (None, None, None));
        assert_eq!(full.encode_ids(&[10, 11]).unwrap(), None);
        let mut part = TokenTable::empty("fp".into(), 3, 10, 4, ValueBits::Int8).unwrap();
        let ids = [1, 9, 2];
        assert_eq!(part.missing_chunks(&ids), vec![0, 2]);
        assert!(part.encode_ids(&ids).is_err(), "chunks not loaded");
        for c in part.missing_chunks(&ids) {
            part.set_chunk(c, full.chunk(c).unwrap().clone()).unwrap();
        }
        assert_eq!(part.loaded_chunks(), 2);
        assert_eq!(part.encode_ids(&ids).unwrap(), full.encode_ids(&ids).unwrap());
        let order = [9, 0, 1, 2, 3, 4, 5, 6, 7, 8];
        let moved = full.reordered(&order, 3).unwrap();
        assert_eq!((moved.n_chunks(), moved.row(0), moved.row(1)), (4, full.row(9), full.row(0)));
        assert_eq!(moved.encode_ids(&[0, 2]).unwrap(), full.encode_ids(&[9, 1]).unwrap());
        assert!(full.reordered(&order[1..], 3).is_err());
        assert!(part.reordered(&order, 3).is_err(), "rows not loaded");
        let short = Chunk { weights: vec![1.0], scales: vec![1.0], rows: vec![0; 3] };
        assert!(part.set_chunk(1, short).is_err(), "a chunk of the wrong size");
        assert!(part.set_chunk(3, full.chunk(0).unwrap().clone()).is_err(), "no chunk 3");
    }

    #[test]
    fn int4_rows_stay_within_seven_levels_and_near_the_floats() {
        let (dim, vocab) = (64, 6);
        let rows: Vec<f32> = (0..vocab * dim).map(|i| ((i * 7919) as f32 * 0.013).sin()).collect();
        let int4 = TokenTable::from_f32("fp", dim, &rows, vec![1.0; vocab], 4, ValueBits::Int4).unwrap();
        let int8 = TokenTable::from_f32("fp", dim, &rows, vec![1.0; vocab], 4, ValueBits::Int8).unwrap();
        assert_eq!((int4.bits(), int8.bits()), (ValueBits::Int4, ValueBits::Int8));
        assert!(int4.chunk(0).unwrap().rows.iter().all(|q| (-7..=7).contains(q)));
        assert!(int8.chunk(0).unwrap().rows.iter().any(|q| q.abs() > 7), "int8 uses its range");
        let (a, b) = (int4.encode_ids(&[0, 3, 5]).unwrap().unwrap(), int8.encode_ids(&[0, 3, 5]).unwrap().unwrap());
        let cos: f32 = a.iter().zip(&b).map(|(x, y)| x * y).sum();
        assert!(cos > 0.99 && cos < 1.0, "int4 against int8: cosine {cos}");
        // Reordering keeps the width and the values.
        let moved = int4.reordered(&[5, 4, 3, 2, 1, 0], 4).unwrap();
        assert_eq!((moved.bits(), moved.row(0)), (ValueBits::Int4, int4.row(5)));
        // int8 quantized again to int4 lands on the levels int4 from the floats
        // mostly does (a value on a rounding edge may step once).
        let again = int8.requantized(ValueBits::Int4).unwrap();
        assert_eq!(again.bits(), ValueBits::Int4);
        let (x, y) = (&again.chunk(1).unwrap().rows, &int4.chunk(1).unwrap().rows);
        assert!(x.iter().zip(y).all(|(a, b)| (a - b).abs() <= 1));
        assert!(x.iter().zip(y).filter(|(a, b)| a == b).count() * 10 >= 9 * x.len());
        assert_eq!(int8.requantized(ValueBits::Int8).unwrap(), int8);
    }
}
