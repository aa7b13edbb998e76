//! wasm32 simd128 kernel for [`super::gemm`], on a
//! [`Layout::Pairs`](super::gemm::Layout) matrix: one 16-byte load holds 2
//! inputs of 8 outputs; each half, widened to i16 as it is loaded
//! (`v128.load8x8_s`, once for all the tile's rows), meets a broadcast pair of (i16) activations in `i32x4.dot_i16x8_s`,
//! which adds both products of each output into its own lane. No horizontal
//! sums: a block ends with one convert and one scale per 4 outputs. The
//! weights stay int8 in memory, so a query (a few rows, bound by reading
//! the weights) streams half the bytes an i16 layout would. A relaxed-SIMD
//! kernel on the [`Layout::Quads`](super::gemm::Layout) bytes follows.

use std::arch::wasm32::*;

use super::gemm::{PackedMatrix, QuantRows, Tile, BLOCK};

/// Outputs per panel (two vectors of 4).
const W: usize = 8;

pub(super) fn panel_simd128(a: &QuantRows, m0: usize, rows: usize, w: &PackedMatrix, p: usize, tile: &mut Tile) {
    by_rows!(tile_simd, rows, (a, m0, w, p, tile))
}

#[inline(always)]
fn tile_simd<const R: usize>(a: &QuantRows, m0: usize, w: &PackedMatrix, p: usize, tile: &mut Tile) {
    // Every slice is checked here, once per tile: per block, the checks
    // and the address arithmetic they need cost as much as a third of the
    // block's multiply-adds in V8's code.
    let (wq, ws, kb) = checked_panel(w, p);
    let xs: [&[i16]; R] = std::array::from_fn(|r| a.row_wide(m0 + r));
    let sa = row_scales::<R>(a, m0, kb);
    assert!(xs.iter().all(|x| x.len() == kb * BLOCK));
    let mut acc = [[f32x4_splat(0.0); 2]; R];
    for b in 0..kb {
        // 2 * R independent sums: the multiply-add latency is hidden, and
        // each weight vector is loaded once for all R rows.
        let mut lo = [i32x4_splat(0); R];
        let mut hi = [i32x4_splat(0); R];
        // SAFETY: block b of the panel is 16 groups of 16 bytes at
        // b * W * BLOCK, and of each row 32 i16 (16 pairs) at b * BLOCK: in
        // bounds by the checks above.
        unsafe {
            let wb = wq.as_ptr().add(b * W * BLOCK);
            let xb: [*const i16; R] = std::array::from_fn(|r| xs[r].as_ptr().add(b * BLOCK));
            for j in 0..BLOCK / 2 {
                // `v128.load8x8_s`: a load that widens (one pmovsxbw on x86).
                let g = wb.add(j * 2 * W);
                let (w0, w1) = (i16x8_load_extend_i8x8(g), i16x8_load_extend_i8x8(g.add(W)));
                for r in 0..R {
                    let pair = v128_load32_splat(xb[r].add(2 * j) as *const u32);
                    lo[r] = i32x4_add(lo[r], i32x4_dot_i16x8(pair, w0));
                    hi[r] = i32x4_add(hi[r], i32x4_dot_i16x8(pair, w1));
                }
            }
            let sw = scales(ws, b);
            for r in 0..R {
                add_block(&mut acc[r], [lo[r], hi[r]], *sa[r].get_unchecked(b), sw);
            }
        }
    }
    store(&acc, tile);
}

/// Panel `p`'s bytes and scales and its block count, checked to hold `W`
/// outputs a block (the kernels then read them unchecked).
#[inline(always)]
fn checked_panel(w: &PackedMatrix, p: usize) -> (&[i8], &[f32], usize) {
    let (wq, ws, _) = w.panel(p);
    let kb = w.blocks();
    assert!(wq.len() == kb * W * BLOCK && ws.len() == kb * W);
    (wq, ws, kb)
}

/// The activation scales of rows `m0..m0 + R`, `kb` each (checked).
#[inline(always)]
fn row_scales<const R: usize>(a: &QuantRows, m0: usize, kb: usize) -> [&[f32]; R] {
    let sa: [&[f32]; R] = std::array::from_fn(|r| a.row(m0 + r).1);
    assert!(sa.iter().all(|s| s.len() == kb));
    sa
}

/// Block `b`'s eight weight scales, as two vectors.
#[inline(always)]
fn scales(ws: &[f32], b: usize) -> [v128; 2] {
    debug_assert!(ws.len() >= (b + 1) * W);
    // SAFETY: the callers checked that their panel holds eight scales a block.
    unsafe {
        let sw = ws.as_ptr().add(b * W) as *const v128;
        [v128_load(sw), v128_load(sw.add(1))]
    }
}

/// `acc += f32(dot) * (sa * sw)` over a row's 8 outputs (two vectors).
#[inline(always)]
fn add_block(acc: &mut [v128; 2], dot: [v128; 2], sa: f32, sw: [v128; 2]) {
    let s = f32x4_splat(sa);
    for h in 0..2 {
        acc[h] = f32x4_add(acc[h], f32x4_mul(f32x4_convert_i32x4(dot[h]), f32x4_mul(s, sw[h])));
    }
}

/// Each row's 8 outputs into the tile.
#[inline(always)]
fn store<const R: usize>(acc: &[[v128; 2]; R], tile: &mut Tile) {
    for r in 0..R {
        // SAFETY: a row of the tile holds MAX_W >= 8 floats.
        unsafe {
            v128_store(tile[r].as_mut_ptr() as *mut v128, acc[r][0]);
            v128_store(tile[r][4..].as_mut_ptr() as *mut v128, acc[r][1]);
        }
    }
}

/// wasm32 relaxed-SIMD kernel (the build with feature `relaxed-simd`; a
/// second `.wasm`, chosen at load where the browser validates it), on a
/// [`Layout::Quads`](super::gemm::Layout) matrix: `i32x4.relaxed_dot_i8x16_i7x16_add_s`
/// adds 4 byte products per output lane, 16 multiplies per instruction.
/// Its second operand must be 7-bit unsigned (x86 lowers it to `pmaddubsw`
/// or `vpdpbusd`), so activations come split into `max(a, 0)` and
/// `max(-a, 0)` ([`QuantRows`] keeps both) and the second half meets the
/// negated weights: `w.a = w.a+ + (-w).a-`, exact in i32 and deterministic
/// on every engine (no pair sum reaches the i16 saturation: 2 * 127 * 127).
#[cfg(feature = "relaxed-simd")]
#[target_feature(enable = "relaxed-simd")]
pub(super) fn panel_relaxed(a: &QuantRows, m0: usize, rows: usize, w: &PackedMatrix, p: usize, tile: &mut Tile) {
    by_rows!(tile_relaxed, rows, (a, m0, w, p, tile))
}

#[cfg(feature = "relaxed-simd")]
#[target_feature(enable = "relaxed-simd")]
fn tile_relaxed<const R: usize>(a: &QuantRows, m0: usize, w: &PackedMatrix, p: usize, tile: &mut Tile) {
    // Checked once per tile, as in `tile_simd`.
    let (wq, ws, kb) = checked_panel(w, p);
    let xs: [(&[u8], &[u8]); R] = std::array::from_fn(|r| a.row_split(m0 + r));
    let sa = row_scales::<R>(a, m0, kb);
    assert!(xs.iter().all(|(pos, neg)| pos.len() == kb * BLOCK && neg.len() == kb * BLOCK));
    let mut acc = [[f32x4_splat(0.0); 2]; R];
    for b in 0..kb {
        let mut lo = [i32x4_splat(0); R];
        let mut hi = [i32x4_splat(0); R];
        // SAFETY: block b of the panel is 8 groups of 32 bytes (8 outputs x
        // 4 inputs) at b * W * BLOCK, and of each half-row 32 bytes (8 words)
        // at b * BLOCK: in bounds by the assert above.
        unsafe {
            let wb = wq.as_ptr().add(b * W * BLOCK) as *const v128;
            let xb: [(*const u8, *const u8); R] =
                std::array::from_fn(|r| (xs[r].0.as_ptr().add(b * BLOCK), xs[r].1.as_ptr().add(b * BLOCK)));
            for j in 0..BLOCK / 4 {
                let (w0, w1) = (v128_load(wb.add(2 * j)), v128_load(wb.add(2 * j + 1)));
                let (n0, n1) = (i8x16_neg(w0), i8x16_neg(w1));
                for r in 0..R {
                    let pos = v128_load32_splat(xb[r].0.add(4 * j) as *const u32);
                    let neg = v128_load32_splat(xb[r].1.add(4 * j) as *const u32);
                    lo[r] = i32x4_relaxed_dot_i8x16_i7x16_add(w0, pos, lo[r]);
                    hi[r] = i32x4_relaxed_dot_i8x16_i7x16_add(w1, pos, hi[r]);
                    lo[r] = i32x4_relaxed_dot_i8x16_i7x16_add(n0, neg, lo[r]);
                    hi[r] = i32x4_relaxed_dot_i8x16_i7x16_add(n1, neg, hi[r]);
                }
            }
            let sw = scales(ws, b);
            for r in 0..R {
                add_block(&mut acc[r], [lo[r], hi[r]], *sa[r].get_unchecked(b), sw);
            }
        }
    }
    store(&acc, tile);
}

/// The activation forms a wasm kernel reads besides `qs`, written by
/// [`quantize_simd128`] in the same pass.
pub(super) struct Forms<'a> {
    /// `qs` widened to i16 (the simd128 kernel).
    pub wide: Option<&'a mut [i16]>,
    /// `max(qs, 0)` and `max(-qs, 0)` (the relaxed-SIMD kernel).
    pub split: Option<(&'a mut [u8], &'a mut [u8])>,
}

/// [`super::gemm::quantize_scalar`]'s arithmetic on simd128, the same bytes:
/// `f32x4.pmax(m, a)` is the scalar fold's `if a > m { a } else { m }` (a
/// NaN never wins), `f32x4.nearest` its `round_ties_even`, and a saturating
/// truncation then an integer clamp give what the float clamp and `as i32`
/// give (NaN to 0). The kernel's form is written from the same registers.
pub(super) fn quantize_simd128(x: &[f32], qs: &mut [i8], scales: &mut [f32], mut forms: Forms) {
    let (lo, hi, zero) = (i32x4_splat(-127), i32x4_splat(127), i8x16_splat(0));
    for (b, (src, s)) in x.chunks_exact(BLOCK).zip(scales.iter_mut()).enumerate() {
        // SAFETY: a block is 32 floats.
        let v: [v128; 8] = std::array::from_fn(|i| unsafe { v128_load(src[4 * i..].as_ptr() as *const v128) });
        let m = v.iter().fold(f32x4_splat(0.0), |m, &vi| f32x4_pmax(m, f32x4_abs(vi)));
        let lanes = [
            f32x4_extract_lane::<0>(m),
            f32x4_extract_lane::<1>(m),
            f32x4_extract_lane::<2>(m),
            f32x4_extract_lane::<3>(m),
        ];
        let d = lanes.iter().fold(0f32, |a, &b| if b > a { b } else { a }) / 127.0;
        let inv = f32x4_splat(if d > 0.0 { 1.0 / d } else { 0.0 });
        let q: [v128; 8] = std::array::from_fn(|i| {
            i32x4_min(i32x4_max(i32x4_trunc_sat_f32x4(f32x4_nearest(f32x4_mul(v[i], inv))), lo), hi)
        });
        let h: [v128; 4] = std::array::from_fn(|i| i16x8_narrow_i32x4(q[2 * i], q[2 * i + 1]));
        let bytes = [i8x16_narrow_i16x8(h[0], h[1]), i8x16_narrow_i16x8(h[2], h[3])];
        let at = b * BLOCK;
        // SAFETY: every form holds as many values as `x`, so block `b` fits.
        unsafe {
            let out = qs[at..][..BLOCK].as_mut_ptr() as *mut v128;
            v128_store(out, bytes[0]);
            v128_store(out.add(1), bytes[1]);
            if let Some(wide) = forms.wide.as_deref_mut() {
                let out = wide[at..][..BLOCK].as_mut_ptr() as *mut v128;
                for (i, &hv) in h.iter().enumerate() {
                    v128_store(out.add(i), hv);
                }
            }
            if let Some((pos, neg)) = forms.split.as_mut() {
                let (p, n) =
                    (pos[at..][..BLOCK].as_mut_ptr() as *mut v128, neg[at..][..BLOCK].as_mut_ptr() as *mut v128);
                for (i, &bv) in bytes.iter().enumerate() {
                    v128_store(p.add(i), i8x16_max(bv, zero));
                    v128_store(n.add(i), i8x16_max(i8x16_neg(bv), zero));
                }
            }
        }
        *s = d;
    }
}
