//! The lexical index on disk: one meta file and `n_blocks` term-block files.
//!
//! Both share one frame:
//! ```text
//! offset size  field
//!      0    8  magic: "ERNIELXM" (meta) or "ERNIELXB" (block)
//!      8    4  format version (u32 LE)
//!     12    4  n_blocks
//!     16    4  block number (0 in the meta file)
//!     20    4  reserved (0)
//!     24    8  passages (u64)
//!     32   32  corpus digest (sha256 of the passage ids, in index order)
//!     64    4  k1 (f32)
//!     68    4  b (f32)
//!     72    8  body length (u64)
//!     80    4  CRC-32 of bytes 0..80 and the body
//!     84    4  reserved (0)
//!     88       body
//! ```
//! Meta body: each passage's length in terms (LEB128). Block body: the term
//! count, then per term (sorted): byte length, UTF-8, document frequency, and
//! that many (passage-ordinal delta, term frequency) pairs, all LEB128.

use super::varint::{get, put};
use crate::lexical::{Bm25Params, LexicalMeta, Postings, TermBlock};
use crate::{Error, Result};

pub const META_MAGIC: &[u8; 8] = b"ERNIELXM";
pub const BLOCK_MAGIC: &[u8; 8] = b"ERNIELXB";
pub const LEXICAL_FORMAT_VERSION: u32 = 1;
const HEADER: usize = 88;

struct Frame {
    n_blocks: u32,
    number: u32,
    passages: u64,
    corpus: [u8; 32],
    params: Bm25Params,
}

fn frame(magic: &[u8; 8], f: &Frame, body: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(HEADER + body.len());
    out.extend_from_slice(magic);
    out.extend_from_slice(&LEXICAL_FORMAT_VERSION.to_le_bytes());
    out.extend_from_slice(&f.n_blocks.to_le_bytes());
    out.extend_from_slice(&f.number.to_le_bytes());
    out.extend_from_slice(&0u32.to_le_bytes());
    out.extend_from_slice(&f.passages.to_le_bytes());
    out.extend_from_slice(&f.corpus);
    out.extend_from_slice(&f.params.k1.to_le_bytes());
    out.extend_from_slice(&f.params.b.to_le_bytes());
    out.extend_from_slice(&(body.len() as u64).to_le_bytes());
    let mut crc = crate::format::crc32::Hasher::new();
    crc.update(&out);
    crc.update(body);
    out.extend_from_slice(&crc.finalize().to_le_bytes());
    out.extend_from_slice(&0u32.to_le_bytes());
    out.extend_from_slice(body);
    out
}

fn unframe<'a>(bytes: &'a [u8], magic: &[u8; 8], what: &'static str) -> Result<(Frame, &'a [u8])> {
    if bytes.len() < 8 || &bytes[..8] != magic {
        return Err(Error::format(what, "bad magic: not this part of an ernie-search lexical index"));
    }
    if bytes.len() < HEADER {
        return Err(Error::format(what, format!("truncated: {} bytes, the header alone is {HEADER}", bytes.len())));
    }
    let u32_at = |o: usize| u32::from_le_bytes([bytes[o], bytes[o + 1], bytes[o + 2], bytes[o + 3]]);
    let u64_at = |o: usize| u64::from_le_bytes(bytes[o..o + 8].try_into().unwrap_or([0; 8]));
    let version = u32_at(8);
    if version != LEXICAL_FORMAT_VERSION {
        return Err(Error::Version { what, found: version, supported: LEXICAL_FORMAT_VERSION });
    }
    let body = &bytes[HEADER..];
    if body.len() as u64 != u64_at(72) {
        return Err(Error::format(
            what,
            format!("truncated or padded: header announces {} body bytes, file holds {}", u64_at(72), body.len()),
        ));
    }
    let mut crc = crate::format::crc32::Hasher::new();
    crc.update(&bytes[..80]);
    crc.update(body);
    let (stored, computed) = (u32_at(80), crc.finalize());
    if stored != computed {
        return Err(Error::Checksum { what, stored, computed });
    }
    let n_blocks = u32_at(12);
    if n_blocks == 0 || n_blocks as usize > super::shard::MAX_LEXICAL_BLOCKS {
        return Err(Error::format(
            what,
            format!("{n_blocks} blocks (1 to {} allowed)", super::shard::MAX_LEXICAL_BLOCKS),
        ));
    }
    let mut corpus = [0u8; 32];
    corpus.copy_from_slice(&bytes[32..64]);
    let params = Bm25Params { k1: f32::from_bits(u32_at(64)), b: f32::from_bits(u32_at(68)) };
    Ok((Frame { n_blocks, number: u32_at(16), passages: u64_at(24), corpus, params }, body))
}

pub fn meta_to_bytes(m: &LexicalMeta) -> Vec<u8> {
    let mut body = Vec::with_capacity(m.doc_len.len() * 2);
    m.doc_len.iter().for_each(|&l| put(&mut body, l));
    let f =
        Frame { n_blocks: m.n_blocks, number: 0, passages: m.doc_len.len() as u64, corpus: m.corpus, params: m.params };
    frame(META_MAGIC, &f, &body)
}

pub fn meta_from_bytes(bytes: &[u8]) -> Result<LexicalMeta> {
    const WHAT: &str = "lexical meta file";
    let (f, mut body) = unframe(bytes, META_MAGIC, WHAT)?;
    let n = usize::try_from(f.passages)
        .ok()
        .filter(|n| *n <= body.len())
        .ok_or_else(|| Error::format(WHAT, format!("{} passages cannot fit in {} bytes", f.passages, body.len())))?;
    let mut doc_len = Vec::with_capacity(n);
    for _ in 0..n {
        doc_len.push(get(&mut body, WHAT)?);
    }
    if !body.is_empty() {
        return Err(Error::format(WHAT, "unexpected bytes after the passage lengths"));
    }
    Ok(LexicalMeta { params: f.params, doc_len, n_blocks: f.n_blocks, corpus: f.corpus })
}

/// One block as bytes; terms sorted, so equal content gives equal bytes (and names).
pub fn block_to_bytes(meta: &LexicalMeta, number: u32, block: &TermBlock) -> Vec<u8> {
    let mut terms: Vec<(&String, &Postings)> = block.iter().collect();
    terms.sort_by(|a, b| a.0.cmp(b.0));
    let mut body = Vec::new();
    put(&mut body, terms.len() as u32);
    for (t, p) in terms {
        put(&mut body, t.len() as u32);
        body.extend_from_slice(t.as_bytes());
        put(&mut body, p.docs.len() as u32);
        let mut prev = 0;
        for (&d, &tf) in p.docs.iter().zip(&p.tfs) {
            put(&mut body, d - prev);
            put(&mut body, tf);
            prev = d;
        }
    }
    let f = Frame {
        n_blocks: meta.n_blocks,
        number,
        passages: meta.doc_len.len() as u64,
        corpus: meta.corpus,
        params: meta.params,
    };
    frame(BLOCK_MAGIC, &f, &body)
}

/// A block: its number, the corpus it belongs to, its terms.
pub fn block_from_bytes(bytes: &[u8]) -> Result<(u32, [u8; 32], TermBlock)> {
    const WHAT: &str = "lexical block file";
    let (f, mut body) = unframe(bytes, BLOCK_MAGIC, WHAT)?;
    if f.number >= f.n_blocks {
        return Err(Error::format(WHAT, format!("block {} of {}", f.number, f.n_blocks)));
    }
    let n_terms = get(&mut body, WHAT)? as usize;
    // Each term takes at least 3 bytes: no capacity beyond what the body can hold.
    let mut block = TermBlock::with_capacity(n_terms.min(body.len() / 3));
    for _ in 0..n_terms {
        let len = get(&mut body, WHAT)? as usize;
        let term = body.get(..len).ok_or_else(|| Error::format(WHAT, "a term is cut off"))?;
        let term = std::str::from_utf8(term).map_err(|_| Error::format(WHAT, "a term is not UTF-8"))?.to_string();
        body = &body[len..];
        let df = get(&mut body, WHAT)? as usize;
        let mut p =
            Postings { docs: Vec::with_capacity(df.min(body.len())), tfs: Vec::with_capacity(df.min(body.len())) };
        let mut doc = 0u32;
        for i in 0..df {
            let delta = get(&mut body, WHAT)?;
            if i > 0 && delta == 0 {
                return Err(Error::format(WHAT, format!("term {term:?} lists a passage twice")));
            }
            doc = doc.checked_add(delta).filter(|d| (*d as u64) < f.passages).ok_or_else(|| {
                Error::format(WHAT, format!("term {term:?} names a passage past the last of {}", f.passages))
            })?;
            p.docs.push(doc);
            p.tfs.push(get(&mut body, WHAT)?);
        }
        block.insert(term, p);
    }
    if !body.is_empty() {
        return Err(Error::format(WHAT, "unexpected bytes after the last term"));
    }
    Ok((f.number, f.corpus, block))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lexical::LexicalIndex;

    #[test]
    fn round_trip_and_damage() {
        let idx =
            LexicalIndex::build(&["x", "y"], &["alpha beta beta", "beta gamma"], Bm25Params::default(), 2).unwrap();
        let meta = meta_from_bytes(&meta_to_bytes(idx.meta())).unwrap();
        assert_eq!(&meta, idx.meta());
        for b in 0..2 {
            let bytes = block_to_bytes(idx.meta(), b, idx.block(b).unwrap());
            let (n, corpus, block) = block_from_bytes(&bytes).unwrap();
            assert_eq!((n, &corpus, &block), (b, &idx.meta().corpus, idx.block(b).unwrap()));
            let mut bad = bytes.clone();
            *bad.last_mut().unwrap() ^= 1;
            assert!(matches!(block_from_bytes(&bad), Err(Error::Checksum { .. })));
            assert!(block_from_bytes(&bytes[..bytes.len() - 1]).is_err());
            assert!(meta_from_bytes(&bytes).is_err(), "a block is not a meta file");
        }
    }
}
