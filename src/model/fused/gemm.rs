//! Our int8 GEMM: `out[m][n] = sum_b sa[m][b] * sw[n][b] * (qa[m][32b..] . qw[n][32b..])`.
//!
//! Weights are int8 with one f32 scale per 32 inputs (Q8_0's block; Q4_0
//! unpacks to the same), repacked once at load into panels of [`NR`] output
//! rows so a kernel streams one panel per block. Activations are quantized
//! per row and per 32-block on the fly ([`QuantRows`]), as candle does for its
//! Q8_0 matmul. Each block's dot product is exact in i32; only the scaled sum
//! over blocks is f32, so every kernel equals the scalar reference exactly
//! whenever those sums are exact (power-of-two scales, see the tests).

use std::fmt;

/// Inputs per scale block (Q8_0's and Q4_0's block).
pub const BLOCK: usize = 32;
/// Output rows per packed panel.
pub const NR: usize = 4;
/// Activation rows a kernel call handles at once.
pub const MR: usize = 4;

/// A weight matrix `[n, k]`, int8 with a scale per 32 inputs, packed in
/// panels of [`NR`] rows: for panel `p` and block `b`, the bytes
/// `qs[(p * kb + b) * NR * BLOCK..][..NR * BLOCK]` hold rows `p*NR..p*NR+NR`
/// (zero rows past `n`), and `scales[(p * kb + b) * NR..][..NR]` their scales.
pub struct PackedMatrix {
    n: usize,
    k: usize,
    qs: Vec<i8>,
    scales: Vec<f32>,
    /// `128 * sum(qw)` per row and block, laid out like `scales`: the VNNI
    /// kernel multiplies `qa + 128` (unsigned) and takes this back off.
    offsets: Vec<i32>,
}

impl fmt::Debug for PackedMatrix {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PackedMatrix({} x {})", self.n, self.k)
    }
}

impl PackedMatrix {
    /// `values`: `n * k` int8 row-major; `scales`: `n * k / 32`. `k` must be a
    /// multiple of 32 (the model loader checks). -128 becomes -127 so that
    /// `|w|` fits the unsigned 7-bit operands some kernels need; quantizers
    /// never write -128.
    pub fn from_rows(n: usize, k: usize, values: &[i8], scales: &[f32]) -> Self {
        assert!(k.is_multiple_of(BLOCK) && values.len() == n * k && scales.len() == n * (k / BLOCK));
        let kb = k / BLOCK;
        let panels = n.div_ceil(NR);
        let mut qs = vec![0i8; panels * kb * NR * BLOCK];
        let mut sc = vec![0f32; panels * kb * NR];
        let mut offsets = vec![0i32; panels * kb * NR];
        for row in 0..n {
            let (p, r) = (row / NR, row % NR);
            for b in 0..kb {
                let src = &values[row * k + b * BLOCK..][..BLOCK];
                let at = (p * kb + b) * NR + r;
                let dst = &mut qs[at * BLOCK..][..BLOCK];
                let mut sum = 0i32;
                for (d, &s) in dst.iter_mut().zip(src) {
                    *d = s.max(-127);
                    sum += *d as i32;
                }
                sc[at] = scales[row * kb + b];
                offsets[at] = 128 * sum;
            }
        }
        Self { n, k, qs, scales: sc, offsets }
    }

    pub fn n(&self) -> usize {
        self.n
    }

    pub fn k(&self) -> usize {
        self.k
    }

    pub(super) fn blocks(&self) -> usize {
        self.k / BLOCK
    }

    pub(super) fn panel(&self, p: usize) -> (&[i8], &[f32], &[i32]) {
        let kb = self.blocks();
        (
            &self.qs[p * kb * NR * BLOCK..][..kb * NR * BLOCK],
            &self.scales[p * kb * NR..][..kb * NR],
            &self.offsets[p * kb * NR..][..kb * NR],
        )
    }

    /// Bytes held (weights, scales, offsets).
    pub fn bytes(&self) -> usize {
        self.qs.len() + 4 * (self.scales.len() + self.offsets.len())
    }
}

/// Activation rows quantized to int8 per 32-block; kept and reused across calls.
#[derive(Default)]
pub struct QuantRows {
    m: usize,
    k: usize,
    qs: Vec<i8>,
    scales: Vec<f32>,
}

impl QuantRows {
    /// Quantizes `x` (`m * k`, row-major): scale = max|x| / 127 per block, values
    /// rounded to nearest, ties to even (in [-127, 127]).
    pub fn quantize(&mut self, x: &[f32], m: usize, k: usize) {
        assert!(k.is_multiple_of(BLOCK) && x.len() == m * k);
        self.m = m;
        self.k = k;
        self.qs.resize(m * k, 0);
        self.scales.resize(m * k / BLOCK, 0.0);
        for ((src, dst), s) in x.chunks_exact(BLOCK).zip(self.qs.chunks_exact_mut(BLOCK)).zip(&mut self.scales) {
            let amax = abs_max(src);
            let d = amax / 127.0;
            let inv = if d > 0.0 { 1.0 / d } else { 0.0 };
            // round_ties_even is one instruction (round() is a libm call).
            for (q, v) in dst.iter_mut().zip(src) {
                *q = (v * inv).round_ties_even().clamp(-127.0, 127.0) as i32 as i8;
            }
            *s = d;
        }
    }

    /// Rows as they are (tests): `values` in [-127, 127], `scales` per block.
    pub fn from_parts(m: usize, k: usize, values: Vec<i8>, scales: Vec<f32>) -> Self {
        assert!(k.is_multiple_of(BLOCK) && values.len() == m * k && scales.len() == m * k / BLOCK);
        assert!(values.iter().all(|&v| v >= -127), "activations are in [-127, 127]");
        Self { m, k, qs: values, scales }
    }

    pub fn rows(&self) -> usize {
        self.m
    }

    /// The values and the scales, row-major.
    pub fn into_parts(self) -> (Vec<i8>, Vec<f32>) {
        (self.qs, self.scales)
    }

    pub(super) fn row(&self, m: usize) -> (&[i8], &[f32]) {
        let kb = self.k / BLOCK;
        (&self.qs[m * self.k..][..self.k], &self.scales[m * kb..][..kb])
    }
}

/// `max |x|` over a block, eight lanes at a time (a plain fold is a serial chain).
fn abs_max(x: &[f32]) -> f32 {
    let mut m = [0f32; 8];
    for c in x.chunks_exact(8) {
        for i in 0..8 {
            let a = c[i].abs();
            m[i] = if a > m[i] { a } else { m[i] };
        }
    }
    m.iter().fold(0f32, |a, &b| if b > a { b } else { a })
}

/// Which kernel multiplies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Isa {
    /// Portable Rust: the reference every other kernel is tested against.
    Scalar,
    /// x86-64 AVX2: `|w|` times `sign(a, w)` with `vpmaddubsw`.
    Avx2,
    /// x86-64 AVX-VNNI: `vpdpbusd` on `a + 128` and `w`, minus `128 * sum(w)`.
    AvxVnni,
    /// wasm32 simd128: i16 widening and `i32x4.dot_i16x8_s`.
    Simd128,
}

impl Isa {
    /// The fastest kernel this CPU runs. `ERNIE_SEARCH_KERNEL=scalar` (or
    /// `avx2`) forces a slower one, e.g. to test a CPU without VNNI.
    pub fn detect() -> Isa {
        let forced = std::env::var("ERNIE_SEARCH_KERNEL").ok();
        let best = Self::best();
        match forced.as_deref().map(str::to_ascii_lowercase).as_deref() {
            Some("scalar") => Isa::Scalar,
            Some("avx2") if Isa::Avx2.available() => Isa::Avx2,
            _ => best,
        }
    }

    fn best() -> Isa {
        [Isa::AvxVnni, Isa::Avx2, Isa::Simd128].into_iter().find(|i| i.available()).unwrap_or(Isa::Scalar)
    }

    /// Whether this machine (or this wasm build) runs the kernel.
    pub fn available(self) -> bool {
        match self {
            Isa::Scalar => true,
            #[cfg(target_arch = "x86_64")]
            Isa::Avx2 => is_x86_feature_detected!("avx2") && is_x86_feature_detected!("fma"),
            #[cfg(target_arch = "x86_64")]
            Isa::AvxVnni => Isa::Avx2.available() && is_x86_feature_detected!("avxvnni"),
            #[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
            Isa::Simd128 => true,
            #[allow(unreachable_patterns)]
            _ => false,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Isa::Scalar => "scalar",
            Isa::Avx2 => "avx2",
            Isa::AvxVnni => "avx-vnni",
            Isa::Simd128 => "simd128",
        }
    }
}

/// `out` (`a.rows() * w.n()`, row-major) = `a` times `w` transposed. An
/// unavailable `isa` runs the scalar kernel.
pub fn gemm(isa: Isa, a: &QuantRows, w: &PackedMatrix, out: &mut [f32]) {
    assert_eq!(a.k, w.k, "inner dimensions differ");
    assert_eq!(out.len(), a.m * w.n, "output size");
    let isa = if isa.available() { isa } else { Isa::Scalar };
    for m0 in (0..a.m).step_by(MR) {
        let rows = (a.m - m0).min(MR);
        for p in 0..w.n.div_ceil(NR) {
            let mut tile = [[0f32; NR]; MR];
            panel(isa, a, m0, rows, w, p, &mut tile);
            let cols = (w.n - p * NR).min(NR);
            for (r, t) in tile.iter().enumerate().take(rows) {
                out[(m0 + r) * w.n + p * NR..][..cols].copy_from_slice(&t[..cols]);
            }
        }
    }
}

/// One `rows x NR` tile: activation rows `m0..m0+rows` against panel `p`.
fn panel(isa: Isa, a: &QuantRows, m0: usize, rows: usize, w: &PackedMatrix, p: usize, tile: &mut [[f32; NR]; MR]) {
    match isa {
        #[cfg(target_arch = "x86_64")]
        // SAFETY: `available()` checked the CPU features the kernels enable.
        Isa::Avx2 => unsafe { super::gemm_x86::panel_avx2(a, m0, rows, w, p, tile) },
        #[cfg(target_arch = "x86_64")]
        // SAFETY: as above.
        Isa::AvxVnni => unsafe { super::gemm_x86::panel_vnni(a, m0, rows, w, p, tile) },
        #[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
        Isa::Simd128 => super::gemm_wasm::panel_simd128(a, m0, rows, w, p, tile),
        _ => panel_scalar(a, m0, rows, w, p, tile),
    }
}

/// The reference: block dot products in i32, scaled and summed in block order.
fn panel_scalar(a: &QuantRows, m0: usize, rows: usize, w: &PackedMatrix, p: usize, tile: &mut [[f32; NR]; MR]) {
    let (wq, ws, _) = w.panel(p);
    for (r, t) in tile.iter_mut().enumerate().take(rows) {
        let (aq, sa) = a.row(m0 + r);
        for b in 0..w.blocks() {
            let x = &aq[b * BLOCK..][..BLOCK];
            for (n, acc) in t.iter_mut().enumerate() {
                let at = b * NR + n;
                let dot: i32 = x.iter().zip(&wq[at * BLOCK..][..BLOCK]).map(|(&u, &v)| u as i32 * v as i32).sum();
                *acc += dot as f32 * (sa[b] * ws[at]);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(crate) struct Rng(u64);
    impl Rng {
        pub(crate) fn new(seed: u64) -> Self {
            Self(seed)
        }
        pub(crate) fn below(&mut self, n: usize) -> usize {
            (crate::rng::splitmix64(&mut self.0) % n as u64) as usize
        }
        pub(crate) fn unit(&mut self) -> f64 {
            (crate::rng::splitmix64(&mut self.0) >> 11) as f64 / (1u64 << 53) as f64
        }
    }

    /// A random problem whose f32 sums are exact: power-of-two scales and
    /// sums below 2^22 (two fraction bits at most), so any summation order
    /// gives the same bits.
    fn exact_problem(rng: &mut Rng, m: usize, n: usize, k: usize) -> (QuantRows, PackedMatrix) {
        let kb = k / BLOCK;
        let pow2 = |rng: &mut Rng| [0.5f32, 1.0, 2.0][rng.below(3)];
        let a: Vec<i8> = (0..m * k).map(|_| (rng.below(255) as i32 - 127) as i8).collect();
        let sa = (0..m * kb).map(|_| pow2(rng)).collect();
        let w: Vec<i8> = (0..n * k).map(|_| rng.below(256) as u8 as i8).collect();
        let sw: Vec<f32> = (0..n * kb).map(|_| pow2(rng)).collect();
        (QuantRows::from_parts(m, k, a, sa), PackedMatrix::from_rows(n, k, &w, &sw))
    }

    fn naive(a: &QuantRows, w: &[i8], sw: &[f32], n: usize) -> Vec<f32> {
        let (m, k, kb) = (a.m, a.k, a.k / BLOCK);
        let mut out = vec![0f32; m * n];
        for i in 0..m {
            for j in 0..n {
                let mut acc = 0f64;
                for b in 0..kb {
                    let dot: i64 = (0..BLOCK)
                        .map(|t| a.qs[i * k + b * BLOCK + t] as i64 * w[j * k + b * BLOCK + t].max(-127) as i64)
                        .sum();
                    acc += dot as f64 * a.scales[i * kb + b] as f64 * sw[j * kb + b] as f64;
                }
                out[i * n + j] = acc as f32;
            }
        }
        out
    }

    #[test]
    fn scalar_matches_a_naive_product_on_ragged_shapes() {
        let mut rng = Rng::new(7);
        for &(m, n, k) in &[(1, 1, 32), (3, 5, 64), (7, 13, 96), (9, 4, 32), (1, 384, 384)] {
            let kb = k / BLOCK;
            let a = QuantRows::from_parts(
                m,
                k,
                (0..m * k).map(|_| rng.below(255) as i32 - 127).map(|v| v as i8).collect(),
                (0..m * kb).map(|_| rng.unit() as f32).collect(),
            );
            let w: Vec<i8> = (0..n * k).map(|_| rng.below(256) as u8 as i8).collect();
            let sw: Vec<f32> = (0..n * kb).map(|_| rng.unit() as f32).collect();
            let mut out = vec![0f32; m * n];
            gemm(Isa::Scalar, &a, &PackedMatrix::from_rows(n, k, &w, &sw), &mut out);
            for (x, y) in out.iter().zip(naive(&a, &w, &sw, n)) {
                assert!((x - y).abs() <= 1e-4 * y.abs().max(1.0), "{x} vs {y} at {m}x{n}x{k}");
            }
        }
    }

    #[test]
    fn every_available_kernel_equals_the_scalar_reference_exactly() {
        let mut rng = Rng::new(11);
        let isas = [Isa::Avx2, Isa::AvxVnni, Isa::Simd128];
        let mut ran = 0;
        for &(m, n, k) in
            &[(1, 1, 32), (1, 7, 64), (2, 4, 32), (5, 9, 128), (13, 17, 384), (4, 1536, 96), (31, 3, 1536)]
        {
            let (a, w) = exact_problem(&mut rng, m, n, k);
            let mut want = vec![0f32; m * n];
            gemm(Isa::Scalar, &a, &w, &mut want);
            for isa in isas.into_iter().filter(|i| i.available()) {
                let mut got = vec![f32::NAN; m * n];
                gemm(isa, &a, &w, &mut got);
                assert_eq!(got, want, "{isa:?} at {m}x{n}x{k}");
                ran += 1;
            }
        }
        eprintln!("kernels checked against the reference: {ran} shape x kernel pairs");
    }

    #[test]
    fn quantized_rows_round_trip_within_half_a_step() {
        let mut rng = Rng::new(3);
        let x: Vec<f32> = (0..3 * 64).map(|_| (rng.unit() as f32 - 0.5) * 10.0).collect();
        let mut q = QuantRows::default();
        q.quantize(&x, 3, 64);
        for (i, v) in x.iter().enumerate() {
            let d = q.scales[i / BLOCK];
            assert!((q.qs[i] as f32 * d - v).abs() <= d * 0.5 + 1e-6);
        }
        // A zero block quantizes to zeros with scale 0 (no division by zero).
        q.quantize(&[0.0; 32], 1, 32);
        assert!(q.qs.iter().all(|&v| v == 0) && q.scales == [0.0]);
    }

    #[test]
    fn forcing_the_scalar_kernel_is_honoured() {
        // The switch is read each call; other values fall back to the best.
        assert!(Isa::detect().available());
        assert!(Isa::Scalar.available());
    }
}
