//! Helpers shared by the fuzz targets: an allocator that makes a huge
//! allocation a crash, and checksum repair.
//!
//! libFuzzer's `-malloc_limit_mb` needs a sanitizer's malloc hooks, and these
//! targets build without one (`-s none`, the stable toolchain), so the limit
//! is enforced here instead: any single allocation above `FUZZ_MEM_MB`
//! (default 2048) prints its size and a backtrace and aborts, which libFuzzer
//! reports as a crash and saves the input. (A lazily-zeroed `vec![0; huge]`
//! would otherwise slip under `-rss_limit_mb`.)
//!
//! The index, lexical, table and embedding cache files carry a length and a
//! CRC-32. A fuzzer almost never mutates a file and fixes its checksum too,
//! so every target
//! for those formats reads each input twice: as it is (the length and CRC
//! checks themselves are fuzzed) and "repaired" (length and CRC rewritten to
//! match), which lets the mutations reach the code behind the checksum.

/// Index file (`format::index`): body length at 64 (u64), CRC-32 at 72 (of
/// bytes 0..72 and the body from version 3 on, of the body alone before),
/// body from 80.
pub fn repair_index(data: &[u8]) -> Option<Vec<u8>> {
    const HEADER: usize = 80;
    if data.len() < HEADER || &data[..8] != b"ERNIEIDX" {
        return None;
    }
    let mut out = data.to_vec();
    let body_len = (out.len() - HEADER) as u64;
    out[64..72].copy_from_slice(&body_len.to_le_bytes());
    let version = u32::from_le_bytes([out[8], out[9], out[10], out[11]]);
    let mut h = crc32fast::Hasher::new();
    if version >= 3 {
        h.update(&out[..72]);
    }
    h.update(&out[HEADER..]);
    out[72..76].copy_from_slice(&h.finalize().to_le_bytes());
    (out != data).then_some(out)
}

/// Lexical meta or block file (`format::lexical`): body length at 72 (u64),
/// CRC-32 of bytes 0..80 and the body at 80, body from 88.
pub fn repair_lexical(data: &[u8], magic: &[u8; 8]) -> Option<Vec<u8>> {
    const HEADER: usize = 88;
    if data.len() < HEADER || &data[..8] != magic {
        return None;
    }
    let mut out = data.to_vec();
    let body_len = (out.len() - HEADER) as u64;
    out[72..80].copy_from_slice(&body_len.to_le_bytes());
    let mut h = crc32fast::Hasher::new();
    h.update(&out[..80]);
    h.update(&out[HEADER..]);
    out[80..84].copy_from_slice(&h.finalize().to_le_bytes());
    (out != data).then_some(out)
}

/// Token table (`format::table`): body length at 64 (u64), CRC-32 of bytes
/// 0..72 and the tokenizer JSON at 72. Version 1: then one CRC-32 per chunk
/// after the JSON. Version 2: the CRC-32 of the chunks' CRCs at 76, and each
/// chunk ends with the CRC-32 of its bytes, its number and bytes 72..80. The
/// geometry (dim 12, vocab 16, rows per chunk 20, tokenizer length 28) is
/// taken as it is, and the chunk CRCs rewritten only where it fits the file.
pub fn repair_table(data: &[u8]) -> Option<Vec<u8>> {
    const HEADER: usize = 80;
    if data.len() < HEADER || &data[..8] != b"ERNIETBL" {
        return None;
    }
    let u = |at: usize| u32::from_le_bytes([data[at], data[at + 1], data[at + 2], data[at + 3]]) as usize;
    let (version, dim, vocab, r, tok) = (u(8), u(12), u(16), u(20), u(28));
    let mut out = data.to_vec();
    let body_len = (out.len() - HEADER) as u64;
    out[64..72].copy_from_slice(&body_len.to_le_bytes());
    let tok_end = HEADER.checked_add(tok).filter(|&e| e <= out.len())?;
    let mut h = crc32fast::Hasher::new();
    h.update(&out[..72]);
    h.update(&out[HEADER..tok_end]);
    out[72..76].copy_from_slice(&h.finalize().to_le_bytes());
    if r > 0 && r <= vocab && vocab <= 1 << 20 && dim <= 8192 {
        let n_chunks = vocab.div_ceil(r);
        let len = |c: usize| r.min(vocab - c * r) * (8 + dim);
        if version == 1 {
            let mut at = tok_end + n_chunks * 4;
            for c in 0..n_chunks {
                if at + len(c) > out.len() {
                    break;
                }
                let crc = crc32fast::hash(&out[at..at + len(c)]);
                out[tok_end + 4 * c..tok_end + 4 * c + 4].copy_from_slice(&crc.to_le_bytes());
                at += len(c);
            }
        } else {
            let (mut spans, mut at) = (Vec::new(), tok_end);
            for c in 0..n_chunks {
                if at + len(c) + 4 > out.len() {
                    break;
                }
                spans.push(at..at + len(c));
                at += len(c) + 4;
            }
            let mut all = crc32fast::Hasher::new();
            spans.iter().for_each(|s| all.update(&crc32fast::hash(&out[s.clone()]).to_le_bytes()));
            out[76..80].copy_from_slice(&all.finalize().to_le_bytes());
            let tag: Vec<u8> = out[72..80].to_vec();
            for (c, s) in spans.into_iter().enumerate() {
                let mut h = crc32fast::Hasher::new();
                h.update(&out[s.clone()]);
                h.update(&(c as u32).to_le_bytes());
                h.update(&tag);
                out[s.end..s.end + 4].copy_from_slice(&h.finalize().to_le_bytes());
            }
        }
    }
    (out != data).then_some(out)
}

/// Cluster head and list (`format::clusters`): the head's body length at 72
/// (u64) and CRC-32 of bytes 0..80 and the body at 80, body from 88; the
/// list's length at 32 and CRC-32 of bytes 0..40 and the body at 40, body
/// from 48, and the head's CRC at 24 (which build it belongs to).
pub fn repair_clusters(head: &[u8], list: &[u8]) -> Option<(Vec<u8>, Vec<u8>)> {
    fn frame(data: &[u8], magic: &[u8; 8], header: usize) -> Option<(Vec<u8>, u32)> {
        if data.len() < header || &data[..8] != magic {
            return None;
        }
        let mut out = data.to_vec();
        let len = (out.len() - header) as u64;
        out[header - 16..header - 8].copy_from_slice(&len.to_le_bytes());
        let mut h = crc32fast::Hasher::new();
        h.update(&out[..header - 8]);
        h.update(&out[header..]);
        let crc = h.finalize();
        out[header - 8..header - 4].copy_from_slice(&crc.to_le_bytes());
        Some((out, crc))
    }
    let (h, tag) = frame(head, b"ERNIECLH", 88)?;
    let mut l = list.to_vec();
    if l.len() >= 48 && &l[..8] == b"ERNIECLL" {
        l[24..28].copy_from_slice(&tag.to_le_bytes());
        l = frame(&l, b"ERNIECLL", 48)?.0;
    }
    (h != head || l != list).then_some((h, l))
}

/// Embedding cache (`format::embed_cache`): the entry count at 16 (u64) set
/// to what the file's length holds at its dimension (12), and the CRC-32 of
/// everything before it in the last 4 bytes.
pub fn repair_embed_cache(data: &[u8]) -> Option<Vec<u8>> {
    const HEADER: usize = 56;
    if data.len() < HEADER + 4 || &data[..8] != b"ERNIEEMB" {
        return None;
    }
    let dim = u32::from_le_bytes([data[12], data[13], data[14], data[15]]) as usize;
    let mut out = data.to_vec();
    if (1..=8192).contains(&dim) {
        let count = ((out.len() - HEADER - 4) / (32 + 4 * dim)) as u64;
        out[16..24].copy_from_slice(&count.to_le_bytes());
    }
    let n = out.len() - 4;
    let crc = crc32fast::hash(&out[..n]);
    out[n..].copy_from_slice(&crc.to_le_bytes());
    (out != data).then_some(out)
}

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering};

static LIMIT: AtomicUsize = AtomicUsize::new(2048 << 20);

/// Call once from each target's `init`: reads `FUZZ_MEM_MB`.
pub fn init() {
    if let Some(mb) = std::env::var("FUZZ_MEM_MB").ok().and_then(|v| v.parse::<usize>().ok()) {
        LIMIT.store(mb.saturating_mul(1 << 20), Ordering::Relaxed);
    }
}

/// The system allocator, with a cap on any single allocation.
pub struct Capped;

#[inline]
fn check(size: usize) {
    if size > LIMIT.load(Ordering::Relaxed) {
        too_big(size);
    }
}

#[cold]
#[inline(never)]
fn too_big(size: usize) -> ! {
    use std::io::Write;
    // Small allocations still succeed, so the backtrace can be captured.
    let bt = std::backtrace::Backtrace::force_capture();
    let limit = LIMIT.load(Ordering::Relaxed) >> 20;
    let _ = writeln!(
        std::io::stderr(),
        "==fuzz== malloc limit exceeded: one allocation of {size} bytes (limit {limit} MB)\n{bt}"
    );
    std::process::abort();
}

unsafe impl GlobalAlloc for Capped {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        check(layout.size());
        System.alloc(layout)
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        check(layout.size());
        System.alloc_zeroed(layout)
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        check(new_size);
        System.realloc(ptr, layout, new_size)
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        System.dealloc(ptr, layout)
    }
}

#[global_allocator]
static GLOBAL: Capped = Capped;
