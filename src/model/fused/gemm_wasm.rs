//! wasm32 simd128 kernel for [`super::gemm`]: each block's 32 int8 products
//! widened to i16 and summed pairwise by `i32x4.dot_i16x8_s`; a block's four
//! outputs folded into one `i32x4` by two shuffle-add rounds, converted once
//! and scaled once.

use std::arch::wasm32::*;

use super::gemm::{PackedMatrix, QuantRows, Tile, BLOCK, NR};

pub(super) fn panel_simd128(a: &QuantRows, m0: usize, rows: usize, w: &PackedMatrix, p: usize, tile: &mut Tile) {
    match rows {
        1 => tile_simd::<1>(a, m0, w, p, tile),
        2 => tile_simd::<2>(a, m0, w, p, tile),
        3 => tile_simd::<3>(a, m0, w, p, tile),
        _ => tile_simd::<4>(a, m0, w, p, tile),
    }
}

/// 32 int8 at `s` as four i16x8.
#[inline(always)]
fn widen(s: &[i8]) -> [v128; 4] {
    let s = &s[..BLOCK];
    // SAFETY: `s` holds 32 bytes; v128_load has no alignment requirement.
    let (lo, hi) = unsafe { (v128_load(s.as_ptr() as *const v128), v128_load(s[16..].as_ptr() as *const v128)) };
    [i16x8_extend_low_i8x16(lo), i16x8_extend_high_i8x16(lo), i16x8_extend_low_i8x16(hi), i16x8_extend_high_i8x16(hi)]
}

#[inline(always)]
fn tile_simd<const R: usize>(a: &QuantRows, m0: usize, w: &PackedMatrix, p: usize, tile: &mut Tile) {
    let (wq, ws, _) = w.panel(p);
    let mut acc = [f32x4_splat(0.0); R];
    for b in 0..w.blocks() {
        // SAFETY: four f32 scales for this block.
        let sw = unsafe { v128_load(ws[b * NR..][..NR].as_ptr() as *const v128) };
        let wb = &wq[b * NR * BLOCK..][..NR * BLOCK];
        for r in 0..R {
            // One row at a time keeps the live registers under V8's 16:
            // 4 for the row, 4 for a weight row, 4 sums, the accumulators.
            let (aq, sa) = a.row(m0 + r);
            let x = widen(&aq[b * BLOCK..]);
            let mut d = [i32x4_splat(0); NR];
            for (n, dn) in d.iter_mut().enumerate() {
                let wv = widen(&wb[n * BLOCK..]);
                let s0 = i32x4_add(i32x4_dot_i16x8(x[0], wv[0]), i32x4_dot_i16x8(x[1], wv[1]));
                let s1 = i32x4_add(i32x4_dot_i16x8(x[2], wv[2]), i32x4_dot_i16x8(x[3], wv[3]));
                *dn = i32x4_add(s0, s1);
            }
            // [d0 d1 d2 d3] -> [sum d0, sum d1, sum d2, sum d3].
            let t01 = i32x4_add(i32x4_shuffle::<0, 4, 1, 5>(d[0], d[1]), i32x4_shuffle::<2, 6, 3, 7>(d[0], d[1]));
            let t23 = i32x4_add(i32x4_shuffle::<0, 4, 1, 5>(d[2], d[3]), i32x4_shuffle::<2, 6, 3, 7>(d[2], d[3]));
            let h = i32x4_add(i32x4_shuffle::<0, 1, 4, 5>(t01, t23), i32x4_shuffle::<2, 3, 6, 7>(t01, t23));
            let s = f32x4_mul(f32x4_splat(sa[b]), sw);
            acc[r] = f32x4_add(acc[r], f32x4_mul(f32x4_convert_i32x4(h), s));
        }
    }
    for r in 0..R {
        // SAFETY: a row of the tile holds MAX_W >= NR = 4 floats.
        unsafe { v128_store(tile[r].as_mut_ptr() as *mut v128, acc[r]) };
    }
}
