//! x86-64 kernels for [`super::gemm`], one `rows x width` tile per call.
//!
//! AVX2 reads [`Layout::Rows`](super::gemm::Layout): the [`NR`] weight rows of
//! a block sit in registers while each activation row streams past; a block's
//! four i32 dot products are folded into one register by two `vphaddd`
//! rounds, converted once and scaled with one FMA.
//!
//! AVX-VNNI reads [`Layout::Quads`](super::gemm::Layout): each 256-bit weight
//! load holds 4 inputs of 8 outputs, so `vpdpbusd` with a broadcast 4-byte
//! activation word accumulates each output in its own lane: no horizontal
//! reduction, and one convert + FMA per block serves 8 outputs. AVX-512 VNNI
//! does the same on [`Layout::Quads16`](super::gemm::Layout), 16 outputs a load.

use std::arch::x86_64::*;

use super::gemm::{PackedMatrix, QuantRows, Tile, BLOCK, NR};

/// AVX2: `vpmaddubsw(|w|, sign(a, w))` then `vpmaddwd` by ones. `|w| <= 127`
/// and `|a| <= 127` keep the i16 pair sums below saturation.
///
/// # Safety
/// The CPU must have AVX2 and FMA.
#[target_feature(enable = "avx2,fma")]
pub(super) unsafe fn panel_avx2(a: &QuantRows, m0: usize, rows: usize, w: &PackedMatrix, p: usize, tile: &mut Tile) {
    by_rows!(tile_avx2, rows, (a, m0, w, p, tile))
}

/// AVX-VNNI: `vpdpbusd(a + 128, w)` minus `128 * sum(w)` (the packed offsets),
/// on a [`Layout::Quads`](super::gemm::Layout) matrix.
///
/// # Safety
/// The CPU must have AVX2, FMA and AVX-VNNI.
#[target_feature(enable = "avx2,fma,avxvnni")]
pub(super) unsafe fn panel_vnni(a: &QuantRows, m0: usize, rows: usize, w: &PackedMatrix, p: usize, tile: &mut Tile) {
    by_rows!(tile_vnni, rows, (a, m0, w, p, tile))
}

#[target_feature(enable = "avx2,fma")]
unsafe fn tile_avx2<const R: usize>(a: &QuantRows, m0: usize, w: &PackedMatrix, p: usize, tile: &mut Tile) {
    let (wq, ws, _) = w.panel(p);
    let rows: [(&[i8], &[f32]); R] = std::array::from_fn(|r| a.row(m0 + r));
    let ones = _mm256_set1_epi16(1);
    let mut acc = [_mm256_setzero_ps(); R];
    for b in 0..w.blocks() {
        let wb = wq[b * NR * BLOCK..][..NR * BLOCK].as_ptr() as *const __m256i;
        let wv: [__m256i; NR] = std::array::from_fn(|n| _mm256_loadu_si256(wb.add(n)));
        let wabs: [__m256i; NR] = std::array::from_fn(|n| _mm256_abs_epi8(wv[n]));
        let sw = _mm_loadu_ps(ws[b * NR..][..NR].as_ptr());
        let sw = _mm256_set_m128(sw, sw);
        for r in 0..R {
            let x = _mm256_loadu_si256(rows[r].0[b * BLOCK..][..BLOCK].as_ptr() as *const __m256i);
            let d: [__m256i; NR] = std::array::from_fn(|n| {
                _mm256_madd_epi16(_mm256_maddubs_epi16(wabs[n], _mm256_sign_epi8(x, wv[n])), ones)
            });
            let h = _mm256_hadd_epi32(_mm256_hadd_epi32(d[0], d[1]), _mm256_hadd_epi32(d[2], d[3]));
            let s = _mm256_mul_ps(_mm256_set1_ps(rows[r].1[b]), sw);
            acc[r] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(h), s, acc[r]);
        }
    }
    store(&acc, tile);
}

#[target_feature(enable = "avx2,fma,avxvnni")]
unsafe fn tile_vnni<const R: usize>(a: &QuantRows, m0: usize, w: &PackedMatrix, p: usize, tile: &mut Tile) {
    const W: usize = 8;
    let (wq, ws, offsets) = w.panel(p);
    let rows: [(&[u8], &[f32]); R] = std::array::from_fn(|r| (a.row_flipped(m0 + r), a.row(m0 + r).1));
    let mut acc = [_mm256_setzero_ps(); R];
    for b in 0..w.blocks() {
        let wb = wq[b * W * BLOCK..][..W * BLOCK].as_ptr() as *const __m256i;
        let sw = _mm256_loadu_ps(ws[b * W..][..W].as_ptr());
        let off = _mm256_loadu_si256(offsets[b * W..][..W].as_ptr() as *const __m256i);
        // Two chains per row (even and odd groups): vpdpbusd's latency is
        // hidden behind 2 * R independent sums.
        let mut even = [_mm256_setzero_si256(); R];
        let mut odd = [_mm256_setzero_si256(); R];
        for g in (0..BLOCK / 4).step_by(2) {
            let (w0, w1) = (_mm256_loadu_si256(wb.add(g)), _mm256_loadu_si256(wb.add(g + 1)));
            for r in 0..R {
                let words = rows[r].0[b * BLOCK + 4 * g..][..8].as_ptr() as *const i32;
                let (x0, x1) =
                    (_mm256_set1_epi32(words.read_unaligned()), _mm256_set1_epi32(words.add(1).read_unaligned()));
                even[r] = _mm256_dpbusd_avx_epi32(even[r], x0, w0);
                odd[r] = _mm256_dpbusd_avx_epi32(odd[r], x1, w1);
            }
        }
        for r in 0..R {
            let dot = _mm256_sub_epi32(_mm256_add_epi32(even[r], odd[r]), off);
            let s = _mm256_mul_ps(_mm256_set1_ps(rows[r].1[b]), sw);
            acc[r] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(dot), s, acc[r]);
        }
    }
    for r in 0..R {
        _mm256_storeu_ps(tile[r].as_mut_ptr(), acc[r]);
    }
}

/// AVX-512 VNNI: as [`panel_vnni`] on 512-bit registers, on a
/// [`Layout::Quads16`](super::gemm::Layout) matrix.
///
/// # Safety
/// The CPU must have AVX2, FMA, AVX-512 F/BW and AVX-512 VNNI.
#[target_feature(enable = "avx2,fma,avx512f,avx512bw,avx512vnni")]
pub(super) unsafe fn panel_vnni512(a: &QuantRows, m0: usize, rows: usize, w: &PackedMatrix, p: usize, tile: &mut Tile) {
    by_rows!(tile_vnni512, rows, (a, m0, w, p, tile))
}

#[target_feature(enable = "avx2,fma,avx512f,avx512bw,avx512vnni")]
unsafe fn tile_vnni512<const R: usize>(a: &QuantRows, m0: usize, w: &PackedMatrix, p: usize, tile: &mut Tile) {
    const W: usize = 16;
    let (wq, ws, offsets) = w.panel(p);
    let rows: [(&[u8], &[f32]); R] = std::array::from_fn(|r| (a.row_flipped(m0 + r), a.row(m0 + r).1));
    let mut acc = [_mm512_setzero_ps(); R];
    for b in 0..w.blocks() {
        let wb = wq[b * W * BLOCK..][..W * BLOCK].as_ptr() as *const __m512i;
        let sw = _mm512_loadu_ps(ws[b * W..][..W].as_ptr());
        let off = _mm512_loadu_si512(offsets[b * W..][..W].as_ptr() as *const __m512i);
        let mut even = [_mm512_setzero_si512(); R];
        let mut odd = [_mm512_setzero_si512(); R];
        for g in (0..BLOCK / 4).step_by(2) {
            let (w0, w1) = (_mm512_loadu_si512(wb.add(g)), _mm512_loadu_si512(wb.add(g + 1)));
            for r in 0..R {
                let words = rows[r].0[b * BLOCK + 4 * g..][..8].as_ptr() as *const i32;
                let (x0, x1) =
                    (_mm512_set1_epi32(words.read_unaligned()), _mm512_set1_epi32(words.add(1).read_unaligned()));
                even[r] = _mm512_dpbusd_epi32(even[r], x0, w0);
                odd[r] = _mm512_dpbusd_epi32(odd[r], x1, w1);
            }
        }
        for r in 0..R {
            let dot = _mm512_sub_epi32(_mm512_add_epi32(even[r], odd[r]), off);
            let s = _mm512_mul_ps(_mm512_set1_ps(rows[r].1[b]), sw);
            acc[r] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(dot), s, acc[r]);
        }
    }
    for r in 0..R {
        _mm512_storeu_ps(tile[r].as_mut_ptr(), acc[r]);
    }
}

/// [`QuantRows::quantize`](super::gemm::QuantRows) four values at a time, with
/// the same arithmetic as [`super::gemm::quantize_scalar`] (one multiply, a
/// round-to-nearest-even convert, the same clamp), so the same bytes.
///
/// # Safety
/// The CPU must have SSE4.1.
#[target_feature(enable = "sse4.1")]
pub(super) unsafe fn quantize_sse41(x: &[f32], qs: &mut [i8], scales: &mut [f32]) {
    let abs = _mm_castsi128_ps(_mm_set1_epi32(0x7fff_ffff));
    let (lo, hi) = (_mm_set1_epi32(-127), _mm_set1_epi32(127));
    for ((src, dst), s) in x.chunks_exact(BLOCK).zip(qs.chunks_exact_mut(BLOCK)).zip(scales) {
        let p = src.as_ptr();
        let v: [__m128; 8] = std::array::from_fn(|i| _mm_loadu_ps(p.add(4 * i)));
        let mut m = _mm_and_ps(v[0], abs);
        for vi in &v[1..] {
            m = _mm_max_ps(m, _mm_and_ps(*vi, abs));
        }
        m = _mm_max_ps(m, _mm_movehl_ps(m, m));
        m = _mm_max_ss(m, _mm_shuffle_ps::<1>(m, m));
        let d = _mm_cvtss_f32(m) / 127.0;
        let inv = _mm_set1_ps(if d > 0.0 { 1.0 / d } else { 0.0 });
        // NaN lanes (a NaN input, or infinity times 0) become 0 as in the
        // scalar `as i32`; cvtps alone would give i32::MIN, clamped to -127.
        let q: [__m128i; 8] = std::array::from_fn(|i| {
            let y = _mm_mul_ps(v[i], inv);
            let y = _mm_and_ps(y, _mm_cmpord_ps(y, y));
            _mm_min_epi32(_mm_max_epi32(_mm_cvtps_epi32(y), lo), hi)
        });
        let out = dst.as_mut_ptr() as *mut __m128i;
        _mm_storeu_si128(out, _mm_packs_epi16(_mm_packs_epi32(q[0], q[1]), _mm_packs_epi32(q[2], q[3])));
        _mm_storeu_si128(out.add(1), _mm_packs_epi16(_mm_packs_epi32(q[4], q[5]), _mm_packs_epi32(q[6], q[7])));
        *s = d;
    }
}

/// Lanes 0..4 and 4..8 hold the two halves of the same four outputs.
#[target_feature(enable = "avx2")]
unsafe fn store<const R: usize>(acc: &[__m256; R], tile: &mut Tile) {
    for r in 0..R {
        let sum = _mm_add_ps(_mm256_castps256_ps128(acc[r]), _mm256_extractf128_ps(acc[r], 1));
        _mm_storeu_ps(tile[r].as_mut_ptr(), sum);
    }
}
