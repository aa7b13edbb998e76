//! The index file.
//!
//! ```text
//! offset size  field
//!      0    8  magic "ERNIEIDX"
//!      8    4  format version (u32 LE)
//!     12    4  vector dtype: 0 f32, 1 f16, 2 int8
//!     16    4  dimension
//!     20    4  reserved (0)
//!     24    8  passages (u64)
//!     32   32  model fingerprint (sha256)
//!     64    8  body length in bytes (u64)
//!     72    4  CRC-32 of bytes 0..72 and the body (version 3; of the
//!              body alone in versions 1 and 2)
//!     76    4  reserved (0)
//!     80       body: windows per passage (LEB128 each, version 2 only),
//!              vectors (rows*dim, little-endian; rows = the sum of the
//!              windows), int8 scales (rows f32, int8 only), then each
//!              passage id as u32 length + UTF-8
//! ```
//! Versions 1 (one vector per passage, no window counts) and 2 (a CRC that
//! leaves the header out) are still read. Every vector value and scale must be
//! finite: a NaN would rank passages at random.

use half::f16;

use super::varint;
use crate::index::quant::{Store, VectorDType};
use crate::index::FlatIndex;
use crate::{Error, Result};

pub const MAGIC: &[u8; 8] = b"ERNIEIDX";
pub const INDEX_FORMAT_VERSION: u32 = 3;
const HEADER: usize = 80;
const WHAT: &str = "index file";

pub fn to_bytes(index: &FlatIndex) -> Result<Vec<u8>> {
    if index.clusters.is_some() {
        return Err(Error::Invalid(
            "an index read by cluster holds only the clusters loaded: it cannot be written".into(),
        ));
    }
    let fp = parse_fingerprint(&index.fingerprint)?;
    let mut body = Vec::with_capacity(index.store.bytes() + index.ids.len() * 21);
    index.windows.iter().for_each(|&w| varint::put(&mut body, w));
    match &index.store {
        Store::F32(d) => d.iter().for_each(|x| body.extend_from_slice(&x.to_le_bytes())),
        Store::F16(d) => d.iter().for_each(|x| body.extend_from_slice(&x.to_le_bytes())),
        Store::Int8 { q, scales } => {
            body.extend(q.iter().map(|x| *x as u8));
            scales.iter().for_each(|x| body.extend_from_slice(&x.to_le_bytes()));
        }
    }
    for id in &index.ids {
        body.extend_from_slice(&(id.len() as u32).to_le_bytes());
        body.extend_from_slice(id.as_bytes());
    }
    let mut out = Vec::with_capacity(HEADER + body.len());
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&INDEX_FORMAT_VERSION.to_le_bytes());
    out.extend_from_slice(&index.store.dtype().code().to_le_bytes());
    out.extend_from_slice(&(index.dim as u32).to_le_bytes());
    out.extend_from_slice(&0u32.to_le_bytes());
    out.extend_from_slice(&(index.ids.len() as u64).to_le_bytes());
    out.extend_from_slice(&fp);
    out.extend_from_slice(&(body.len() as u64).to_le_bytes());
    out.extend_from_slice(&checksum(&out, &body).to_le_bytes());
    out.extend_from_slice(&0u32.to_le_bytes());
    out.extend_from_slice(&body);
    Ok(out)
}

pub fn from_bytes(bytes: &[u8]) -> Result<FlatIndex> {
    if bytes.len() < 8 || &bytes[..8] != MAGIC {
        return Err(Error::format(WHAT, "not an ernie-search index (bad magic); build one with `ernie-search index`"));
    }
    if bytes.len() < HEADER {
        return Err(Error::format(WHAT, format!("truncated: {} bytes, the header alone is {HEADER}", bytes.len())));
    }
    let u32_at = |o: usize| u32::from_le_bytes([bytes[o], bytes[o + 1], bytes[o + 2], bytes[o + 3]]);
    let u64_at = |o: usize| u64::from_le_bytes(bytes[o..o + 8].try_into().unwrap_or([0; 8]));
    let version = u32_at(8);
    if !(1..=INDEX_FORMAT_VERSION).contains(&version) {
        return Err(Error::Version { what: WHAT, found: version, supported: INDEX_FORMAT_VERSION });
    }
    let dtype = VectorDType::from_code(u32_at(12))
        .ok_or_else(|| Error::format(WHAT, format!("unknown vector dtype code {}", u32_at(12))))?;
    let dim = u32_at(16) as usize;
    let count = u64_at(24);
    let fingerprint = crate::format::hex(&bytes[32..64]);
    let body_len = u64_at(64);
    let stored = u32_at(72);
    let mut body = &bytes[HEADER..];
    if body.len() as u64 != body_len {
        return Err(Error::format(
            WHAT,
            format!("truncated or padded: the header announces {body_len} body bytes, the file holds {}", body.len()),
        ));
    }
    let computed = if version >= 3 { checksum(&bytes[..72], body) } else { crate::format::crc32::hash(body) };
    if computed != stored {
        return Err(Error::Checksum { what: WHAT, stored, computed });
    }
    if dim == 0 {
        return Err(Error::format(WHAT, "dimension is 0"));
    }
    let n = usize::try_from(count)
        .ok()
        .filter(|n| *n <= body.len())
        .ok_or_else(|| Error::format(WHAT, format!("{count} passages cannot fit in {} body bytes", body.len())))?;
    let windows = if version == 1 {
        vec![1; n]
    } else {
        let mut w = Vec::with_capacity(n);
        for i in 0..n {
            match varint::get(&mut body, WHAT)? {
                0 => return Err(Error::format(WHAT, format!("passage {i} has no vector"))),
                c => w.push(c),
            }
        }
        w
    };
    // In u64, checked: on wasm32 a crafted count could wrap a 32-bit usize.
    let rows = windows.iter().map(|&w| w as u64).sum::<u64>();
    let elem: u64 = match dtype {
        VectorDType::F32 => 4,
        VectorDType::F16 => 2,
        VectorDType::Int8 => 1,
    };
    let scale_bytes = if dtype == VectorDType::Int8 { 4 } else { 0 };
    let too_big = || Error::format(WHAT, format!("{rows} vectors of {dim} {} do not fit in the body", dtype.as_str()));
    let vec_bytes = rows
        .checked_mul(dim as u64)
        .and_then(|v| v.checked_mul(elem))
        .and_then(|v| v.checked_add(rows.checked_mul(scale_bytes)?))
        .filter(|v| *v <= body.len() as u64)
        .ok_or_else(too_big)? as usize;
    let values = rows as usize * dim;
    let (vecs, mut rest) = body.split_at(vec_bytes);
    let store = match dtype {
        VectorDType::F32 => {
            Store::F32(vecs.chunks_exact(4).map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect())
        }
        VectorDType::F16 => Store::F16(vecs.chunks_exact(2).map(|c| f16::from_le_bytes([c[0], c[1]])).collect()),
        VectorDType::Int8 => {
            let (q, s) = vecs.split_at(values);
            Store::Int8 {
                q: q.iter().map(|x| *x as i8).collect(),
                scales: s.chunks_exact(4).map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect(),
            }
        }
    };
    if !store.all_finite() {
        return Err(Error::format(WHAT, "a vector value or scale is not a finite number (NaN or infinity)"));
    }
    let mut ids = Vec::with_capacity(n);
    for i in 0..n {
        if rest.len() < 4 {
            return Err(Error::format(WHAT, format!("passage id {i} of {n} is cut off")));
        }
        let len = u32::from_le_bytes([rest[0], rest[1], rest[2], rest[3]]) as usize;
        let id =
            rest.get(4..4 + len).ok_or_else(|| Error::format(WHAT, format!("passage id {i} of {n} is cut off")))?;
        let id = std::str::from_utf8(id).map_err(|_| Error::format(WHAT, format!("passage id {i} is not UTF-8")))?;
        ids.push(id.to_string());
        rest = &rest[4 + len..];
    }
    if !rest.is_empty() {
        return Err(Error::format(WHAT, format!("{} unexpected bytes after the last passage id", rest.len())));
    }
    Ok(FlatIndex { dim, ids, windows, store, fingerprint, clusters: None })
}

/// An index file, or the head of an index split by cluster
/// ([`super::clusters`]), told apart by their magic.
pub fn vectors_from_bytes(bytes: &[u8]) -> Result<FlatIndex> {
    match bytes.starts_with(super::clusters::HEAD_MAGIC) {
        true => super::clusters::head_from_bytes(bytes),
        false => from_bytes(bytes),
    }
}

/// CRC-32 over the header's first 72 bytes and the body.
fn checksum(header: &[u8], body: &[u8]) -> u32 {
    let mut crc = crate::format::crc32::Hasher::new();
    crc.update(&header[..72]);
    crc.update(body);
    crc.finalize()
}

pub(crate) fn parse_fingerprint(hex: &str) -> Result<[u8; 32]> {
    let mut out = [0u8; 32];
    if hex.len() != 64 || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(Error::Invalid(format!("model fingerprint must be 64 hex digits, got {hex:?}")));
    }
    for (i, o) in out.iter_mut().enumerate() {
        *o = u8::from_str_radix(&hex[2 * i..2 * i + 2], 16)
            .map_err(|_| Error::Invalid(format!("model fingerprint is not hex: {hex:?}")))?;
    }
    Ok(out)
}
