//! CRC-32 (IEEE 802.3, as zlib and PNG compute it): the checksum of every
//! file we write.
//!
//! Natively this is `crc32fast` (SIMD, gigabytes per second over model and
//! index files). In wasm32 it is [`Bytewise`]: one 1 KB table, one byte per
//! step. crc32fast's portable path there is slice-by-16, whose 16 KB table
//! does not compress; in the light build that was 16 KB gzip of every
//! visitor's first download, to check files of a few KB.

#[cfg(not(target_arch = "wasm32"))]
pub use crc32fast::Hasher;
#[cfg(target_arch = "wasm32")]
pub use Bytewise as Hasher;

/// The CRC-32 of `bytes`.
pub fn hash(bytes: &[u8]) -> u32 {
    let mut h = Hasher::new();
    h.update(bytes);
    h.finalize()
}

/// The reflected polynomial 0x04C11DB7.
const POLY: u32 = 0xEDB8_8320;

/// Each byte's CRC, computed by the compiler.
const TABLE: [u32; 256] = {
    let mut t = [0u32; 256];
    let mut i = 0;
    while i < 256 {
        let mut c = i as u32;
        let mut k = 0;
        while k < 8 {
            c = if c & 1 == 1 { POLY ^ (c >> 1) } else { c >> 1 };
            k += 1;
        }
        t[i] = c;
        i += 1;
    }
    t
};

/// CRC-32 one byte at a time, with crc32fast's `Hasher` interface.
#[derive(Debug, Clone)]
#[cfg_attr(not(target_arch = "wasm32"), allow(dead_code))]
pub struct Bytewise {
    state: u32,
}

#[cfg_attr(not(target_arch = "wasm32"), allow(dead_code))]
impl Bytewise {
    pub fn new() -> Self {
        Self { state: !0 }
    }

    pub fn update(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.state = TABLE[((self.state ^ b as u32) & 0xff) as usize] ^ (self.state >> 8);
        }
    }

    pub fn finalize(self) -> u32 {
        !self.state
    }
}

impl Default for Bytewise {
    fn default() -> Self {
        Self::new()
    }
}

#[cfg(all(test, not(target_arch = "wasm32")))]
mod tests {
    use super::*;
    use crate::rng::splitmix64;

    fn bytewise(parts: &[&[u8]]) -> u32 {
        let mut h = Bytewise::new();
        parts.iter().for_each(|p| h.update(p));
        h.finalize()
    }

    #[test]
    fn known_values() {
        // The standard check value, and the empty input.
        assert_eq!(bytewise(&[b"123456789"]), 0xCBF4_3926);
        assert_eq!(bytewise(&[]), 0);
    }

    #[test]
    fn equals_crc32fast_on_any_split() {
        let mut state = 7u64;
        for len in [1usize, 3, 15, 16, 17, 64, 1000, 65_537] {
            let bytes: Vec<u8> = (0..len).map(|_| splitmix64(&mut state) as u8).collect();
            let cut = len / 3;
            assert_eq!(bytewise(&[&bytes]), crc32fast::hash(&bytes), "{len} bytes");
            assert_eq!(bytewise(&[&bytes[..cut], &bytes[cut..]]), crc32fast::hash(&bytes), "{len} bytes cut at {cut}");
        }
    }
}
