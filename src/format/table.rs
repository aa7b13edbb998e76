//! The token-table file (the query encoder with no transformer, `crate::table`).
//!
//! ```text
//! offset size  field
//!      0    8  magic "ERNIETBL"
//!      8    4  format version (u32 LE) = 4 (1 to 3 are still read)
//!     12    4  dimension
//!     16    4  vocabulary (rows)
//!     20    4  rows per chunk
//!     24    2  max query length in tokens ([CLS] and [SEP] included)
//!     26    2  bits per value: 2, 4 or 8 (v1-v3: 0, meaning 8; their u32
//!              query length at 24 never reached 2^16)
//!     28    4  tokenizer JSON length in bytes
//!     32   32  fingerprint of the passage encoder the table was distilled against
//!     64    8  body length in bytes (u64)
//!     72    4  CRC-32 of bytes 0..72 and the tokenizer JSON
//!     76    4  CRC-32 of every chunk's CRC (v1: reserved, 0)
//!     80       the tokenizer JSON (v1: then one CRC-32 per chunk;  } the head
//!              v3: its vocabulary may be packed, `packed_vocab`)
//!              the chunks, in token-id order, chunk c holding rows c*R..
//!              (R rows, fewer in the last): weights (f32 each), scales (f32
//!              each), rows (dim values each: int8, or int4 two to a byte as
//!              `ValueBits::pack` lays them out), then (v2) the CRC-32 of
//!              those bytes, of c (u32) and of the head's CRC at 72
//! ```
//! The head says where every chunk lies, so a reader can take the head and
//! then only the chunks a query's token ids fall in ([`Head`]). Each chunk
//! carries its own checksum, bound to its number and its head (a chunk of
//! another build or place is refused), and the head's bytes depend on every
//! chunk's, so a folder may name chunks after their head; version 1 kept
//! the checksums in the head (15 KB of a head for 3,816 chunks);
//! an index folder stores the head and each chunk as files of their own,
//! whose concatenation is this file. Every size is checked against the file
//! before anything is allocated.

use super::index::parse_fingerprint;
use crate::index::quant::ValueBits;
use crate::table::{Chunk, TokenTable};
use crate::tokenize::WordPiece;
use crate::{Error, Result};

pub const MAGIC: &[u8; 8] = b"ERNIETBL";
/// 2: each chunk's CRC in the chunk; 3: the same layout, but the tokenizer
/// JSON may hold a packed vocabulary ([`WordPiece::sorted_json`]), which a
/// version-2 reader would refuse with a less clear error than this number;
/// 4: rows of 2, 4 or 8 bits, said at offset 26 (2 since 2026-12-08: an
/// older reader names the width it does not know).
pub const TABLE_FORMAT_VERSION: u32 = 4;
const HEADER: usize = 80;
const WHAT: &str = "token table";
/// Ceilings: a BERT vocabulary is 30,522 (multilingual ones up to 250k).
const MAX_VOCAB: usize = 1 << 20;
const MAX_DIM: usize = 8192;
const MAX_TOKENIZER_BYTES: usize = 64 << 20;
/// Rows per chunk: 4 rows of 384 int8 are 1.6 KB (int4: 0.8 KB); a query's tokens mostly
/// fall in chunks of their own (median 6 beyond the hot ones on the wiki
/// dev questions: 10 KB, against 19 KB with 8-row chunks and 75 KB with 32;
/// BENCHMARKS.md). The table rows are the first step of a query's critical
/// path (the cluster to probe needs the query vector), so their bytes count
/// twice; the cost is files in the folder (7,631 for BERT's vocabulary).
pub const DEFAULT_CHUNK_ROWS: usize = 4;

/// A table file's contents.
#[derive(Clone)]
pub struct TableFile {
    pub table: TokenTable,
    pub tokenizer_json: String,
    pub max_query_len: usize,
}

impl TableFile {
    /// The table as an index folder carries it: the vocabulary sorted and
    /// packed in the head ([`WordPiece::sorted_json`]: 49.6 KB gzipped
    /// instead of 117 for BERT's), the rows in the new id order, in chunks
    /// of `chunk_rows`.
    pub fn sorted(&self, chunk_rows: usize) -> Result<TableFile> {
        let (tokenizer_json, order) = WordPiece::sorted_json(&self.tokenizer_json)?;
        let rows = self.table.vocab() as u32;
        if order.len() > rows as usize {
            return Err(Error::Invalid(format!("a tokenizer of {} tokens for a table of {rows} rows", order.len())));
        }
        // Rows past the tokenizer's tokens (a model's padded vocabulary) stay
        // last; an empty order (ids with gaps, not reordered) keeps them all.
        let n = order.len() as u32;
        let order: Vec<u32> = order.into_iter().chain(n..rows).collect();
        Ok(TableFile {
            table: self.table.reordered(&order, chunk_rows)?,
            tokenizer_json,
            max_query_len: self.max_query_len,
        })
    }

    /// The same table with its values at `bits` (each row quantized again
    /// from its values and scale; int8 to int8 changes nothing).
    pub fn with_bits(self, bits: ValueBits) -> Result<TableFile> {
        Ok(TableFile { table: self.table.requantized(bits)?, ..self })
    }

    /// The table back in the id order of `model_tokenizer_json` (what a table
    /// is trained in) when it is that tokenizer's [`sorted`](Self::sorted)
    /// form, as an index folder carries it; any other table as it is.
    pub fn in_model_order(self, model_tokenizer_json: &str) -> Result<TableFile> {
        let (sorted, order) = WordPiece::sorted_json(model_tokenizer_json)?;
        if order.is_empty() || self.tokenizer_json != sorted {
            return Ok(self);
        }
        let mut back: Vec<u32> = vec![0; order.len()];
        order.iter().enumerate().for_each(|(new, &old)| back[old as usize] = new as u32);
        let n = back.len() as u32;
        back.extend(n..self.table.vocab() as u32);
        Ok(TableFile {
            table: self.table.reordered(&back, self.table.chunk_rows())?,
            tokenizer_json: WordPiece::compact_json(model_tokenizer_json)?,
            max_query_len: self.max_query_len,
        })
    }
}

/// Everything before the chunks: the geometry, the tokenizer and each chunk's checksum.
#[derive(Debug, Clone)]
pub struct Head {
    pub dim: usize,
    pub vocab: usize,
    pub chunk_rows: usize,
    pub max_query_len: usize,
    pub bits: ValueBits,
    pub fingerprint: String,
    pub tokenizer_json: String,
    check: ChunkCheck,
}

/// Where a chunk's checksum is.
#[derive(Debug, Clone)]
enum ChunkCheck {
    /// Version 1: in the head, one per chunk.
    InHead(Vec<u32>),
    /// Version 2: at the chunk's end, over its bytes, its number and the
    /// head's two checksums (bytes 72..80).
    InChunk { chunks: usize, head_tag: [u8; 8] },
}

/// A chunk's bytes before its checksum: a weight, a scale and the values of each row.
fn chunk_bytes(rows: usize, dim: usize, bits: ValueBits) -> usize {
    rows * (8 + bits.row_bytes(dim))
}

/// A version 2 chunk's checksum.
fn chunk_crc(payload: &[u8], c: usize, head_tag: &[u8; 8]) -> u32 {
    let mut h = crate::format::crc32::Hasher::new();
    h.update(payload);
    h.update(&(c as u32).to_le_bytes());
    h.update(head_tag);
    h.finalize()
}

fn u32_at(b: &[u8], at: usize) -> usize {
    u32::from_le_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]]) as usize
}

impl Head {
    pub fn n_chunks(&self) -> usize {
        match &self.check {
            ChunkCheck::InHead(crcs) => crcs.len(),
            ChunkCheck::InChunk { chunks, .. } => *chunks,
        }
    }
    /// The head's own length in the file.
    pub fn len(&self) -> usize {
        match &self.check {
            ChunkCheck::InHead(crcs) => HEADER + self.tokenizer_json.len() + 4 * crcs.len(),
            ChunkCheck::InChunk { .. } => HEADER + self.tokenizer_json.len(),
        }
    }
    /// Bytes a chunk carries besides its rows (its checksum, from version 2).
    fn trailer(&self) -> usize {
        match self.check {
            ChunkCheck::InHead(_) => 0,
            ChunkCheck::InChunk { .. } => 4,
        }
    }
    pub fn is_empty(&self) -> bool {
        false
    }
    /// Chunk `c`'s length in bytes.
    pub fn chunk_len(&self, c: usize) -> usize {
        chunk_bytes(self.chunk_rows.min(self.vocab.saturating_sub(c * self.chunk_rows)), self.dim, self.bits)
            + self.trailer()
    }
    /// Chunk `c`'s offset in the file.
    pub fn chunk_offset(&self, c: usize) -> usize {
        self.len() + c * (chunk_bytes(self.chunk_rows, self.dim, self.bits) + self.trailer())
    }
    /// A table with none of its chunks loaded.
    pub fn empty_table(&self) -> Result<TokenTable> {
        TokenTable::empty(self.fingerprint.clone(), self.dim, self.vocab, self.chunk_rows, self.bits)
    }

    /// Reads chunk `c` from its bytes (exactly its length), checked against
    /// its CRC; weights and scales must be finite and non-negative.
    pub fn chunk(&self, c: usize, bytes: &[u8]) -> Result<Chunk> {
        if c >= self.n_chunks() {
            return Err(Error::format(WHAT, format!("chunk {c} of {}", self.n_chunks())));
        }
        if bytes.len() != self.chunk_len(c) {
            return Err(Error::format(
                WHAT,
                format!("chunk {c} holds {} bytes, not {}", bytes.len(), self.chunk_len(c)),
            ));
        }
        let (bytes, trailer) = bytes.split_at(bytes.len() - self.trailer());
        let (stored, computed) = match &self.check {
            ChunkCheck::InHead(crcs) => (crcs[c], crate::format::crc32::hash(bytes)),
            ChunkCheck::InChunk { head_tag, .. } => (u32_at(trailer, 0) as u32, chunk_crc(bytes, c, head_tag)),
        };
        if stored != computed {
            return Err(Error::Checksum { what: "token table chunk", stored, computed });
        }
        let row_bytes = self.bits.row_bytes(self.dim);
        let n = bytes.len() / (8 + row_bytes);
        let f = |i: usize| f32::from_le_bytes([bytes[i], bytes[i + 1], bytes[i + 2], bytes[i + 3]]);
        let mut rows = vec![0i8; n * self.dim];
        for (row, packed) in rows.chunks_exact_mut(self.dim).zip(bytes[8 * n..].chunks_exact(row_bytes)) {
            self.bits.unpack(packed, row);
        }
        let chunk = Chunk {
            weights: (0..n).map(|i| f(4 * i)).collect(),
            scales: (0..n).map(|i| f(4 * (n + i))).collect(),
            rows,
        };
        chunk.check(n, self.dim)?;
        Ok(chunk)
    }
}

/// The head at the start of `bytes` (the head alone or more of the file).
/// Checks the header's checksum and that the sizes add up; `file_len`, when
/// given, must be the whole file's length.
pub fn head_from_bytes(bytes: &[u8], file_len: Option<u64>) -> Result<Head> {
    if bytes.len() < HEADER || &bytes[..8] != MAGIC {
        return Err(Error::format(WHAT, "not an ernie-search token table (bad magic or shorter than its header)"));
    }
    let version = u32_at(bytes, 8) as u32;
    if !(1..=TABLE_FORMAT_VERSION).contains(&version) {
        return Err(Error::format(WHAT, format!("format version {version}; this build reads {TABLE_FORMAT_VERSION}")));
    }
    let (dim, vocab, r, tok_len) = (u32_at(bytes, 12), u32_at(bytes, 16), u32_at(bytes, 20), u32_at(bytes, 28));
    let (max_query_len, width) = (u32_at(bytes, 24) & 0xFFFF, u32_at(bytes, 24) >> 16);
    let bits = match (version, width) {
        (1..=3, 0) => ValueBits::Int8,
        (4.., w) => ValueBits::from_bits(w as u32)
            .ok_or_else(|| Error::format(WHAT, format!("values of {w} bits (this reader knows 2, 4 and 8)")))?,
        (_, w) => return Err(Error::format(WHAT, format!("a version {version} table states {w} bits per value"))),
    };
    if dim == 0 || dim > MAX_DIM || vocab == 0 || vocab > MAX_VOCAB || r == 0 || r > vocab {
        return Err(Error::format(WHAT, format!("dimension {dim}, {vocab} rows, {r} rows per chunk")));
    }
    if !(3..=8192).contains(&max_query_len) || tok_len > MAX_TOKENIZER_BYTES {
        return Err(Error::format(WHAT, format!("query length {max_query_len}, tokenizer of {tok_len} bytes")));
    }
    let n_chunks = vocab.div_ceil(r);
    // A checksum per chunk, in the head (v1) or in the chunk (v2).
    // Up to 2^20 * 8200 bytes: checked, as usize is 32 bits on wasm32.
    let expected = vocab
        .checked_mul(8 + bits.row_bytes(dim))
        .and_then(|x| x.checked_add(n_chunks * 4))
        .and_then(|x| x.checked_add(tok_len))
        .ok_or_else(|| Error::format(WHAT, "sizes overflow"))?;
    let body_len = u64::from_le_bytes(bytes[64..72].try_into().unwrap_or_default());
    if body_len != expected as u64 || file_len.is_some_and(|n| n != HEADER as u64 + body_len) {
        return Err(Error::format(
            WHAT,
            format!("{file_len:?} bytes where the header asks for {} (truncated or padded)", HEADER + expected),
        ));
    }
    let head_len = HEADER + tok_len + if version == 1 { 4 * n_chunks } else { 0 };
    if bytes.len() < head_len {
        return Err(Error::format(WHAT, format!("{} bytes of a head of {head_len}", bytes.len())));
    }
    let tok = &bytes[HEADER..HEADER + tok_len];
    let mut h = crate::format::crc32::Hasher::new();
    h.update(&bytes[..72]);
    h.update(tok);
    let (stored, computed) = (u32_at(bytes, 72) as u32, h.finalize());
    if stored != computed {
        return Err(Error::Checksum { what: "token table header", stored, computed });
    }
    let tokenizer_json =
        std::str::from_utf8(tok).map_err(|_| Error::format(WHAT, "the tokenizer JSON is not UTF-8"))?.to_string();
    let check = match version {
        1 => ChunkCheck::InHead((0..n_chunks).map(|c| u32_at(bytes, HEADER + tok_len + 4 * c) as u32).collect()),
        _ => ChunkCheck::InChunk { chunks: n_chunks, head_tag: bytes[72..80].try_into().unwrap_or_default() },
    };
    let fingerprint = super::hex(&bytes[32..64]);
    Ok(Head { dim, vocab, chunk_rows: r, max_query_len, bits, fingerprint, tokenizer_json, check })
}

/// The file as its head and its chunks (what an index folder stores).
pub fn to_parts(t: &TableFile) -> Result<(Vec<u8>, Vec<Vec<u8>>)> {
    let table = &t.table;
    let (dim, vocab, r, bits) = (table.dim, table.vocab(), table.chunk_rows(), table.bits());
    if vocab > MAX_VOCAB || dim > MAX_DIM || t.tokenizer_json.len() > MAX_TOKENIZER_BYTES {
        return Err(Error::Invalid("token table too large".into()));
    }
    if !(3..=8192).contains(&t.max_query_len) {
        return Err(Error::Invalid(format!("a query length of {} tokens", t.max_query_len)));
    }
    let fp = parse_fingerprint(&table.fingerprint)?;
    let mut chunks = Vec::with_capacity(table.n_chunks());
    for c in 0..table.n_chunks() {
        let chunk = table.chunk(c).ok_or_else(|| Error::Invalid(format!("token table chunk {c} is not loaded")))?;
        let mut b = Vec::with_capacity(chunk_bytes(chunk.weights.len(), dim, bits));
        chunk.weights.iter().chain(&chunk.scales).for_each(|x| b.extend_from_slice(&x.to_le_bytes()));
        chunk.rows.chunks_exact(dim).for_each(|row| bits.pack(row, &mut b));
        chunks.push(b);
    }
    let tok = t.tokenizer_json.as_bytes();
    let body_len = tok.len() + 4 * chunks.len() + chunks.iter().map(Vec::len).sum::<usize>();
    let mut head = Vec::with_capacity(HEADER + tok.len());
    head.extend_from_slice(MAGIC);
    let query_len_and_bits = t.max_query_len as u32 | bits.bits() << 16;
    for v in [TABLE_FORMAT_VERSION, dim as u32, vocab as u32, r as u32, query_len_and_bits, tok.len() as u32] {
        head.extend_from_slice(&v.to_le_bytes());
    }
    head.extend_from_slice(&fp);
    head.extend_from_slice(&(body_len as u64).to_le_bytes());
    let mut h = crate::format::crc32::Hasher::new();
    h.update(&head);
    h.update(tok);
    head.extend_from_slice(&h.finalize().to_le_bytes());
    // The head changes whenever a chunk does (folders name chunks after it).
    let mut all = crate::format::crc32::Hasher::new();
    chunks.iter().for_each(|c| all.update(&crate::format::crc32::hash(c).to_le_bytes()));
    head.extend_from_slice(&all.finalize().to_le_bytes());
    head.extend_from_slice(tok);
    let tag: [u8; 8] = head[72..80].try_into().unwrap_or_default();
    for (c, chunk) in chunks.iter_mut().enumerate() {
        let crc = chunk_crc(chunk, c, &tag);
        chunk.extend_from_slice(&crc.to_le_bytes());
    }
    Ok((head, chunks))
}

pub fn to_bytes(t: &TableFile) -> Result<Vec<u8>> {
    let (mut out, chunks) = to_parts(t)?;
    chunks.iter().for_each(|c| out.extend_from_slice(c));
    Ok(out)
}

/// A whole table file, every chunk loaded.
pub fn from_bytes(bytes: &[u8]) -> Result<TableFile> {
    let head = head_from_bytes(bytes, Some(bytes.len() as u64))?;
    let mut table = head.empty_table()?;
    for c in 0..head.n_chunks() {
        let at = head.chunk_offset(c);
        table.set_chunk(c, head.chunk(c, &bytes[at..at + head.chunk_len(c)])?)?;
    }
    Ok(TableFile { table, tokenizer_json: head.tokenizer_json, max_query_len: head.max_query_len })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample_of(bits: ValueBits) -> TableFile {
        let rows: Vec<f32> = (0..7 * 3).map(|i| (i as f32 * 0.37).sin()).collect();
        let weights = (0..7).map(|i| i as f32 * 0.5).collect();
        let table = TokenTable::from_f32(&"ab".repeat(32), 3, &rows, weights, 3, bits).unwrap();
        TableFile { table, tokenizer_json: "{}".into(), max_query_len: 16 }
    }

    fn sample() -> TableFile {
        sample_of(ValueBits::Int8)
    }

    #[test]
    fn round_trip_and_every_damage_is_refused() {
        for bits in [ValueBits::Int8, ValueBits::Int4, ValueBits::Int2] {
            let bytes = to_bytes(&sample_of(bits)).unwrap();
            let back = from_bytes(&bytes).unwrap();
            assert_eq!(back.table, sample_of(bits).table);
            assert_eq!((back.max_query_len, back.table.chunk_rows(), back.tokenizer_json.as_str()), (16, 3, "{}"));
            assert!(from_bytes(&bytes[..bytes.len() - 1]).is_err(), "truncated");
            assert!(from_bytes(&[&bytes[..], &[0]].concat()).is_err(), "padded");
            for at in [9, 13, 17, 21, 25, 26, 40, 81, bytes.len() - 1] {
                let mut b = bytes.clone();
                b[at] ^= 0x10;
                assert!(from_bytes(&b).is_err(), "{bits:?}: byte {at} flipped");
            }
            let mut huge = bytes.clone();
            huge[16..20].copy_from_slice(&u32::MAX.to_le_bytes());
            assert!(from_bytes(&huge).is_err());
        }
    }

    /// Int4 rows take half the bytes of int8 ones (3 values: 2 bytes, not 3),
    /// int2 rows one byte, and a head stating another width is refused
    /// before any chunk is read.
    #[test]
    fn narrower_chunks_are_smaller_and_a_foreign_width_is_refused() {
        let (h8, c8) = to_parts(&sample_of(ValueBits::Int8)).unwrap();
        let (h4, c4) = to_parts(&sample_of(ValueBits::Int4)).unwrap();
        let (h2, c2) = to_parts(&sample_of(ValueBits::Int2)).unwrap();
        assert_eq!((c8[0].len(), c4[0].len(), c2[0].len()), (3 * (8 + 3) + 4, 3 * (8 + 2) + 4, 3 * (8 + 1) + 4));
        assert_eq!(head_from_bytes(&h2, None).unwrap().bits, ValueBits::Int2);
        assert_eq!(head_from_bytes(&h4, None).unwrap().bits, ValueBits::Int4);
        assert_eq!(head_from_bytes(&h8, None).unwrap().bits, ValueBits::Int8);
        for width in [0u16, 3, 5, 16] {
            let mut b = h4.clone();
            b[26..28].copy_from_slice(&width.to_le_bytes());
            let tok_len = u32_at(&b, 28);
            let mut h = crate::format::crc32::Hasher::new();
            h.update(&b[..72]);
            h.update(&b[HEADER..HEADER + tok_len]);
            b[72..76].copy_from_slice(&h.finalize().to_le_bytes());
            let e = head_from_bytes(&b, None).err().map(|e| e.to_string()).unwrap_or_default();
            assert!(e.contains(&format!("values of {width} bits")), "{width}: {e}");
        }
    }

    /// The sorted table encodes every query as the one it came from.
    #[cfg(feature = "encoder")]
    #[test]
    fn a_sorted_table_encodes_as_the_original() {
        use crate::table::TableEncoder;
        let tokenizer_json = crate::synthetic::tiny_tokenizer_json();
        let n = WordPiece::from_json(tokenizer_json.as_bytes(), 16).unwrap().vocab_size() + 3; // a padded vocabulary
        let rows: Vec<f32> = (0..n * 4).map(|i| (i as f32 * 0.37).sin()).collect();
        let weights = (0..n).map(|i| 0.5 + (i % 5) as f32).collect();
        let table = TokenTable::from_f32(&"ab".repeat(32), 4, &rows, weights, 32, ValueBits::Int4).unwrap();
        let file = TableFile { table, tokenizer_json, max_query_len: 16 };
        let sorted = file.sorted(8).unwrap();
        assert_eq!((sorted.table.vocab(), sorted.table.chunk_rows(), sorted.table.bits()), (n, 8, ValueBits::Int4));
        let back = from_bytes(&to_bytes(&sorted).unwrap()).unwrap();
        let unsorted = back.clone().in_model_order(&file.tokenizer_json).unwrap();
        assert_eq!(unsorted.table.reordered(&(0..n as u32).collect::<Vec<_>>(), 32).unwrap(), file.table);
        let (a, b) = (TableEncoder::from_file(file).unwrap(), TableEncoder::from_file(back).unwrap());
        for q in ["the who what", &crate::synthetic::WORDS[3..12].join(" "), "zq xk"] {
            assert_eq!(a.encode(q).unwrap(), b.encode(q).unwrap(), "{q:?}");
        }
    }

    /// Versions 2 and 3 (int8 rows, no width stated; the vocabulary of
    /// version 2 never packed) are still read.
    #[test]
    fn versions_2_and_3_are_read() {
        for version in [2u32, 3] {
            let v = older(version);
            assert_eq!(from_bytes(&v).unwrap().table, sample().table);
        }
        // Their query length was a u32: a high half is no width there.
        let mut v3 = older(3);
        v3[26] = 8;
        let e = from_bytes(&v3).err().map(|e| e.to_string()).unwrap_or_default();
        assert!(e.contains("version 3 table states 8 bits"), "{e}");
        let mut v5 = older(3);
        v5[8..12].copy_from_slice(&5u32.to_le_bytes());
        let e = from_bytes(&v5).err().map(|e| e.to_string()).unwrap_or_default();
        assert!(e.contains("format version 5; this build reads 4"), "{e}");
    }

    /// The int8 sample as version `version` (2 or 3) wrote it.
    fn older(version: u32) -> Vec<u8> {
        let file = sample();
        let (mut head, chunks) = to_parts(&file).unwrap();
        let tok_len = u32_at(&head, 28);
        head[8..12].copy_from_slice(&version.to_le_bytes());
        head[26..28].copy_from_slice(&[0, 0]);
        let mut h = crate::format::crc32::Hasher::new();
        h.update(&head[..72]);
        h.update(&head[HEADER..HEADER + tok_len]);
        head[72..76].copy_from_slice(&h.finalize().to_le_bytes());
        let tag: [u8; 8] = head[72..80].try_into().unwrap();
        let mut v2 = head;
        for (c, chunk) in chunks.iter().enumerate() {
            let payload = &chunk[..chunk.len() - 4];
            v2.extend_from_slice(payload);
            v2.extend_from_slice(&chunk_crc(payload, c, &tag).to_le_bytes());
        }
        v2
    }

    /// Version 1 (checksums in the head; the encoder rows a cache holds) is still read.
    #[test]
    fn a_version_1_file_is_read() {
        let file = sample();
        let (head, chunks) = to_parts(&file).unwrap();
        let tok_len = u32_at(&head, 28);
        let payloads: Vec<&[u8]> = chunks.iter().map(|c| &c[..c.len() - 4]).collect();
        let mut v1 = head[..72].to_vec();
        v1[8..12].copy_from_slice(&1u32.to_le_bytes());
        v1[26..28].copy_from_slice(&[0, 0]);
        let mut h = crate::format::crc32::Hasher::new();
        h.update(&v1);
        h.update(&head[HEADER..HEADER + tok_len]);
        v1.extend_from_slice(&h.finalize().to_le_bytes());
        v1.extend_from_slice(&[0; 4]);
        v1.extend_from_slice(&head[HEADER..]);
        payloads.iter().for_each(|p| v1.extend_from_slice(&crate::format::crc32::hash(p).to_le_bytes()));
        payloads.iter().for_each(|p| v1.extend_from_slice(p));
        let back = from_bytes(&v1).unwrap();
        assert_eq!(back.table, file.table);
        let mut bad = v1.clone();
        let last = bad.len() - 1;
        bad[last] ^= 1;
        assert!(from_bytes(&bad).is_err());
    }

    #[test]
    fn the_head_and_the_chunks_are_the_file_cut_at_chunk_boundaries() {
        let file = sample();
        let (head_bytes, chunks) = to_parts(&file).unwrap();
        assert_eq!([head_bytes.clone(), chunks.concat()].concat(), to_bytes(&file).unwrap());
        let head = head_from_bytes(&head_bytes, None).unwrap();
        assert_eq!((head.len(), head.n_chunks()), (head_bytes.len(), 3));
        let mut table = head.empty_table().unwrap();
        table.set_chunk(2, head.chunk(2, &chunks[2]).unwrap()).unwrap();
        assert_eq!(table.row(6), file.table.row(6));
        assert!(head.chunk(1, &chunks[2]).is_err(), "another chunk's bytes");
        assert!(head.chunk(0, &chunks[0][1..]).is_err(), "a short chunk");
        assert!(head_from_bytes(&head_bytes[..head_bytes.len() - 1], None).is_err(), "a short head");
    }
}
