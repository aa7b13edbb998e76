//! LEB128 unsigned integers, the varint of protobuf and wasm.

use crate::{Error, Result};

pub fn put(out: &mut Vec<u8>, mut v: u32) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

/// Reads one number from the front of `buf` and advances it.
pub fn get(buf: &mut &[u8], what: &'static str) -> Result<u32> {
    let mut v: u64 = 0;
    for (i, &byte) in buf.iter().enumerate().take(5) {
        v |= ((byte & 0x7f) as u64) << (7 * i);
        if byte & 0x80 == 0 {
            *buf = &buf[i + 1..];
            return u32::try_from(v).map_err(|_| Error::format(what, "a number overflows 32 bits"));
        }
    }
    Err(Error::format(what, "a number is cut off or longer than 5 bytes"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_cut_off() {
        let mut buf = Vec::new();
        for v in [0, 1, 127, 128, 300, u32::MAX] {
            put(&mut buf, v);
        }
        let mut s = buf.as_slice();
        for v in [0, 1, 127, 128, 300, u32::MAX] {
            assert_eq!(get(&mut s, "t").unwrap(), v);
        }
        assert!(s.is_empty());
        assert!(get(&mut &[0x80u8, 0x80][..], "t").is_err());
        assert!(get(&mut &[0xffu8, 0xff, 0xff, 0xff, 0x7f][..], "t").is_err(), "2^35 - 1 overflows");
    }
}
