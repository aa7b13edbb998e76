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
/// Output rows per panel in the [`Layout::Rows`] layout.
pub const NR: usize = 4;
/// Activation rows a kernel call handles at once.
pub const MR: usize = 4;
/// The widest panel of any layout.
pub const MAX_W: usize = 16;
/// One kernel call's output: `MR` rows of up to `MAX_W` outputs.
pub type Tile = [[f32; MAX_W]; MR];

/// How a [`PackedMatrix`] lays out a panel's block.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Layout {
    /// [`NR`] rows per panel; each row's 32 bytes of a block contiguous
    /// (a kernel takes one row's block in one load and reduces across lanes).
    Rows,
    /// 8 outputs per panel; a block is 8 groups of `[output][4 bytes]`, so one
    /// 256-bit load holds 4 inputs of 8 outputs and `vpdpbusd` with a
    /// broadcast activation word accumulates each output in its own lane.
    Quads,
    /// [`Layout::Quads`] with 16 outputs per panel: one 512-bit load holds 4
    /// inputs of 16 outputs (AVX-512 VNNI).
    Quads16,
    /// 8 outputs per panel; a block is 16 groups of `[output][2 values]`, so
    /// one 128-bit load holds 2 inputs of 8 outputs; widened to i16, each half
    /// meets a broadcast pair of activations in `i32x4.dot_i16x8_s`, which
    /// accumulates 4 outputs in the 4 lanes (wasm32 simd128: no per-block
    /// horizontal sums).
    Pairs,
}

impl Layout {
    /// Outputs per panel.
    pub fn width(self) -> usize {
        match self {
            Layout::Rows => NR,
            Layout::Quads | Layout::Pairs => 8,
            Layout::Quads16 => 16,
        }
    }

    /// Where byte `j` of block `b` of panel row `r` lives, within panel-block
    /// `pb = p * blocks + b`.
    fn at(self, pb: usize, r: usize, j: usize) -> usize {
        let w = self.width();
        match self {
            Layout::Rows => (pb * w + r) * BLOCK + j,
            Layout::Quads | Layout::Quads16 => pb * w * BLOCK + (j / 4) * w * 4 + r * 4 + j % 4,
            Layout::Pairs => pb * w * BLOCK + (j / 2) * w * 2 + r * 2 + j % 2,
        }
    }
}

/// A weight matrix `[n, k]`, int8 with a scale per 32 inputs, packed in
/// panels of `layout.width()` rows (zero rows past `n`). For panel `p` and
/// block `b` (`pb = p * k / 32 + b`) the bytes are
/// `qs[pb * width * 32..][..width * 32]` in the layout's order and the scales
/// `scales[pb * width..][..width]`.
pub struct PackedMatrix {
    n: usize,
    k: usize,
    layout: Layout,
    /// The values, in the layout's order.
    qs: Vec<i8>,
    scales: Vec<f32>,
    /// `128 * sum(qw)` per row and block, laid out like `scales`: the VNNI
    /// kernel multiplies `qa + 128` (unsigned) and takes this back off.
    offsets: Vec<i32>,
}

impl fmt::Debug for PackedMatrix {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PackedMatrix({} x {}, {:?})", self.n, self.k, self.layout)
    }
}

impl PackedMatrix {
    /// `values`: `n * k` int8 row-major; `scales`: `n * k / 32`. `k` must be a
    /// multiple of 32 (the model loader checks). -128 becomes -127 so that
    /// `|w|` fits the unsigned 7-bit operands some kernels need; quantizers
    /// never write -128.
    pub fn from_rows(n: usize, k: usize, values: &[i8], scales: &[f32], layout: Layout) -> Self {
        assert!(k.is_multiple_of(BLOCK) && values.len() == n * k && scales.len() == n * (k / BLOCK));
        let (kb, w) = (k / BLOCK, layout.width());
        let panels = n.div_ceil(w);
        let size = panels * kb * w * BLOCK;
        let mut qs = vec![0i8; size];
        let mut sc = vec![0f32; panels * kb * w];
        let mut offsets = vec![0i32; panels * kb * w];
        for row in 0..n {
            let (p, r) = (row / w, row % w);
            for b in 0..kb {
                let src = &values[row * k + b * BLOCK..][..BLOCK];
                let pb = p * kb + b;
                let mut sum = 0i32;
                for (j, &v) in src.iter().enumerate() {
                    let v = v.max(-127);
                    qs[layout.at(pb, r, j)] = v;
                    sum += v as i32;
                }
                sc[pb * w + r] = scales[row * kb + b];
                offsets[pb * w + r] = 128 * sum;
            }
        }
        Self { n, k, layout, qs, scales: sc, offsets }
    }

    /// The same matrix in another layout.
    pub fn repack(&self, layout: Layout) -> PackedMatrix {
        if layout == self.layout {
            return Self { qs: self.qs.clone(), scales: self.scales.clone(), offsets: self.offsets.clone(), ..*self };
        }
        let (kb, w) = (self.blocks(), self.layout.width());
        let mut values = vec![0i8; self.n * self.k];
        let mut scales = vec![0f32; self.n * kb];
        for row in 0..self.n {
            let (p, r) = (row / w, row % w);
            for b in 0..kb {
                let pb = p * kb + b;
                for j in 0..BLOCK {
                    values[row * self.k + b * BLOCK + j] = self.qs[self.layout.at(pb, r, j)];
                }
                scales[row * kb + b] = self.scales[pb * w + r];
            }
        }
        Self::from_rows(self.n, self.k, &values, &scales, layout)
    }

    pub fn n(&self) -> usize {
        self.n
    }

    pub fn k(&self) -> usize {
        self.k
    }

    pub fn layout(&self) -> Layout {
        self.layout
    }

    pub(super) fn blocks(&self) -> usize {
        self.k / BLOCK
    }

    /// Panel `p`: its bytes, scales and offsets for every block.
    pub(super) fn panel(&self, p: usize) -> (&[i8], &[f32], &[i32]) {
        let (kb, w) = (self.blocks(), self.layout.width());
        (
            &self.qs[p * kb * w * BLOCK..][..kb * w * BLOCK],
            &self.scales[p * kb * w..][..kb * w],
            &self.offsets[p * kb * w..][..kb * w],
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
    /// `qs + 128` as unsigned bytes, for `vpdpbusd` (x86-64 only).
    flipped: Vec<u8>,
    /// `qs` widened to i16, for the [`Layout::Pairs`] kernel (wasm32 only).
    wide: Vec<i16>,
    /// `max(qs, 0)` and `max(-qs, 0)`: the 7-bit unsigned operands of the
    /// relaxed-SIMD kernel (its build only).
    pos: Vec<u8>,
    neg: Vec<u8>,
    /// The one kernel whose form `quantize` prepares (None: every form).
    only: Option<Isa>,
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
        #[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
        self.quantize_wasm(x);
        #[cfg(not(all(target_arch = "wasm32", target_feature = "simd128")))]
        self.quantize_native(x);
    }

    /// SSE4.1 where the CPU has it, else the scalar arithmetic; then the forms.
    #[cfg(not(all(target_arch = "wasm32", target_feature = "simd128")))]
    fn quantize_native(&mut self, x: &[f32]) {
        #[cfg(target_arch = "x86_64")]
        if is_x86_feature_detected!("sse4.1") {
            // SAFETY: the CPU has SSE4.1.
            unsafe { super::gemm_x86::quantize_sse41(x, &mut self.qs, &mut self.scales) };
            self.flip();
            return;
        }
        quantize_scalar(x, &mut self.qs, &mut self.scales);
        self.flip();
    }

    /// simd128: the values, the scales and the running kernel's form in one pass.
    #[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
    fn quantize_wasm(&mut self, x: &[f32]) {
        let n = x.len();
        let want = |isa: Isa| self.only.is_none_or(|only| only == isa);
        let (wide, split) = (want(Isa::Simd128), cfg!(feature = "relaxed-simd") && want(Isa::RelaxedSimd));
        self.wide.resize(if wide { n } else { 0 }, 0);
        self.pos.resize(if split { n } else { 0 }, 0);
        self.neg.resize(if split { n } else { 0 }, 0);
        let forms = super::gemm_wasm::Forms {
            wide: wide.then_some(&mut self.wide[..]),
            split: split.then_some((&mut self.pos[..], &mut self.neg[..])),
        };
        super::gemm_wasm::quantize_simd128(x, &mut self.qs, &mut self.scales, forms);
    }

    /// Prepares only `isa`'s form from now on (the encoder's kernel): the
    /// other forms cost a pass over the activations each for nothing.
    pub fn only_for(&mut self, isa: Isa) {
        self.only = Some(isa);
    }

    /// Whether `quantize` prepared the form `isa` reads.
    fn ready_for(&self, isa: Isa) -> bool {
        self.only.is_none_or(|only| only == isa || isa.layout() == Layout::Rows || (only.flipped() && isa.flipped()))
    }

    /// The forms the platform's kernels read besides `qs`.
    fn flip(&mut self) {
        let want = |isa: Isa| self.only.is_none_or(|only| only == isa);
        if cfg!(target_arch = "x86_64") && self.only.is_none_or(Isa::flipped) {
            self.flipped.clear();
            self.flipped.extend(self.qs.iter().map(|&v| v as u8 ^ 0x80));
        }
        if cfg!(target_arch = "wasm32") && want(Isa::Simd128) {
            self.wide.clear();
            self.wide.extend(self.qs.iter().map(|&v| v as i16));
        }
        if cfg!(all(target_arch = "wasm32", feature = "relaxed-simd")) && want(Isa::RelaxedSimd) {
            self.pos.clear();
            self.pos.extend(self.qs.iter().map(|&v| v.max(0) as u8));
            self.neg.clear();
            self.neg.extend(self.qs.iter().map(|&v| (v as i16).min(0).unsigned_abs() as u8));
        }
    }

    /// Rows as they are (tests): `values` in [-127, 127], `scales` per block.
    pub fn from_parts(m: usize, k: usize, values: Vec<i8>, scales: Vec<f32>) -> Self {
        assert!(k.is_multiple_of(BLOCK) && values.len() == m * k && scales.len() == m * k / BLOCK);
        assert!(values.iter().all(|&v| v >= -127), "activations are in [-127, 127]");
        let mut q = Self { m, k, qs: values, scales, ..Self::default() };
        q.flip();
        q
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

    /// Row `m` widened to i16 (wasm32 only).
    #[cfg(target_arch = "wasm32")]
    pub(super) fn row_wide(&self, m: usize) -> &[i16] {
        &self.wide[m * self.k..][..self.k]
    }

    /// Row `m` split into `max(qs, 0)` and `max(-qs, 0)` (the relaxed-SIMD build).
    #[cfg(all(target_arch = "wasm32", feature = "relaxed-simd"))]
    pub(super) fn row_split(&self, m: usize) -> (&[u8], &[u8]) {
        (&self.pos[m * self.k..][..self.k], &self.neg[m * self.k..][..self.k])
    }

    /// Row `m` as `qs + 128` (x86-64 only).
    #[cfg(target_arch = "x86_64")]
    pub(super) fn row_flipped(&self, m: usize) -> &[u8] {
        &self.flipped[m * self.k..][..self.k]
    }
}

/// [`QuantRows::quantize`]'s arithmetic, a value at a time: the reference the
/// SIMD version equals bit for bit.
pub(super) fn quantize_scalar(x: &[f32], qs: &mut [i8], scales: &mut [f32]) {
    for ((src, dst), s) in x.chunks_exact(BLOCK).zip(qs.chunks_exact_mut(BLOCK)).zip(scales) {
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
    /// x86-64 AVX-512 VNNI: the same on 512-bit registers, 16 outputs a load.
    Avx512Vnni,
    /// wasm32 simd128: i16 widening and `i32x4.dot_i16x8_s`.
    Simd128,
    /// wasm32 relaxed SIMD (the second `.wasm`, feature `relaxed-simd`):
    /// `i32x4.relaxed_dot_i8x16_i7x16_add_s` on split activations.
    RelaxedSimd,
}

impl Isa {
    /// Every kernel, the reference first.
    pub const ALL: [Isa; 6] = [Isa::Scalar, Isa::Avx2, Isa::AvxVnni, Isa::Avx512Vnni, Isa::Simd128, Isa::RelaxedSimd];

    /// The fastest kernel this CPU runs. `ERNIE_SEARCH_KERNEL=scalar` (or
    /// `avx2`, `avx-vnni`) forces a slower one, e.g. to test a CPU without VNNI.
    pub fn detect() -> Isa {
        let forced = std::env::var("ERNIE_SEARCH_KERNEL").ok();
        match forced.as_deref().and_then(Isa::named) {
            Some(isa @ (Isa::Scalar | Isa::Avx2 | Isa::AvxVnni)) if isa.available() => isa,
            _ => Self::best(),
        }
    }

    /// The kernel called `name` ([`Isa::as_str`], any case), available or not.
    pub fn named(name: &str) -> Option<Isa> {
        Isa::ALL.into_iter().find(|i| i.as_str().eq_ignore_ascii_case(name.trim()))
    }

    fn best() -> Isa {
        [Isa::Avx512Vnni, Isa::AvxVnni, Isa::Avx2, Isa::RelaxedSimd, Isa::Simd128]
            .into_iter()
            .find(|i| i.available())
            .unwrap_or(Isa::Scalar)
    }

    /// Whether this machine (or this wasm build) runs the kernel.
    pub fn available(self) -> bool {
        match self {
            Isa::Scalar => true,
            #[cfg(target_arch = "x86_64")]
            Isa::Avx2 => is_x86_feature_detected!("avx2") && is_x86_feature_detected!("fma"),
            #[cfg(target_arch = "x86_64")]
            Isa::AvxVnni => Isa::Avx2.available() && is_x86_feature_detected!("avxvnni"),
            #[cfg(target_arch = "x86_64")]
            Isa::Avx512Vnni => {
                Isa::Avx2.available()
                    && is_x86_feature_detected!("avx512f")
                    && is_x86_feature_detected!("avx512bw")
                    && is_x86_feature_detected!("avx512vnni")
            }
            #[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
            Isa::Simd128 => true,
            #[cfg(all(target_arch = "wasm32", feature = "relaxed-simd"))]
            Isa::RelaxedSimd => true,
            #[allow(unreachable_patterns)]
            _ => false,
        }
    }

    /// Whether the kernel reads the activations as `qs + 128` (the VNNI ones).
    fn flipped(self) -> bool {
        matches!(self, Isa::AvxVnni | Isa::Avx512Vnni)
    }

    /// The weight layout this kernel reads.
    pub fn layout(self) -> Layout {
        match self {
            Isa::AvxVnni | Isa::RelaxedSimd => Layout::Quads,
            Isa::Avx512Vnni => Layout::Quads16,
            Isa::Simd128 => Layout::Pairs,
            _ => Layout::Rows,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Isa::Scalar => "scalar",
            Isa::Avx2 => "avx2",
            Isa::AvxVnni => "avx-vnni",
            Isa::Avx512Vnni => "avx512-vnni",
            Isa::Simd128 => "simd128",
            Isa::RelaxedSimd => "relaxed-simd",
        }
    }
}

/// How long each kernel took on one product, best of its rounds.
#[derive(Debug, Clone, PartialEq)]
pub struct Timing {
    /// `(m, n, k)`: activation rows, outputs, inputs.
    pub shape: (usize, usize, usize),
    pub rounds: usize,
    /// Each candidate that ran, with its best time in ms, in the order given.
    pub ms: Vec<(Isa, f64)>,
}

impl Timing {
    /// The fastest kernel; the first given on a tie (or when none ran: the reference).
    pub fn fastest(&self) -> Isa {
        let mut best: Option<(Isa, f64)> = None;
        for &(isa, ms) in &self.ms {
            if best.is_none_or(|(_, b)| ms < b) {
                best = Some((isa, ms));
            }
        }
        best.map_or(Isa::Scalar, |(isa, _)| isa)
    }
}

impl fmt::Display for Timing {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (m, n, k) = self.shape;
        write!(f, "timed at load on a {m} x {k} by {k} x {n} product, best of {}:", self.rounds)?;
        for (i, (isa, ms)) in self.ms.iter().enumerate() {
            write!(f, "{} {} {ms:.2} ms", if i == 0 { "" } else { "," }, isa.as_str())?;
        }
        Ok(())
    }
}

/// Times the available `candidates` on one `(m, n, k)` product (`k` in
/// 32-blocks) of seeded values, taking turns for `rounds` rounds after a
/// warm-up, by `now` (a clock in ms). For a build whose kernels' order
/// depends on the CPU: the relaxed-SIMD build's dot product is one
/// `vpdpbusd` where the browser has AVX-VNNI, and twice three instructions
/// where it does not, which loses to simd128. The kernels give the same
/// bits, so only speed rides on the choice.
pub fn time_kernels(
    candidates: &[Isa],
    shape: (usize, usize, usize),
    rounds: usize,
    now: &mut dyn FnMut() -> f64,
) -> Timing {
    let (m, n, k) = shape;
    let (a, w) = exact_problem(&mut 7, m, n, k);
    let runs: Vec<(Isa, PackedMatrix)> =
        candidates.iter().filter(|i| i.available()).map(|&i| (i, w.repack(i.layout()))).collect();
    let mut out = vec![0f32; m * n];
    let mut best = vec![f64::INFINITY; runs.len()];
    for round in 0..=rounds {
        for (i, (isa, w)) in runs.iter().enumerate() {
            let t0 = now();
            gemm(*isa, &a, w, &mut out);
            let ms = now() - t0;
            // Round 0 warms the caches and the engine's tiers up.
            if round > 0 {
                best[i] = best[i].min(ms);
            }
        }
    }
    Timing { shape, rounds, ms: runs.iter().zip(best).map(|((isa, _), ms)| (*isa, ms)).collect() }
}

/// `out` (`a.rows() * w.n()`, row-major) = `a` times `w` transposed. The
/// matrix's layout decides the kernel family; an `isa` that is unavailable
/// or reads another layout runs the scalar reference.
pub fn gemm(isa: Isa, a: &QuantRows, w: &PackedMatrix, out: &mut [f32]) {
    assert_eq!(a.k, w.k, "inner dimensions differ");
    assert_eq!(out.len(), a.m * w.n, "output size");
    let panels = w.n.div_ceil(w.layout.width());
    gemm_panels(isa, a, w, 0..panels, out, w.n);
}

/// [`gemm`] with the panels split across `threads` (on rayon's pool:
/// natively, and in the browser's threaded build): for one short sequence,
/// where there are no other sequences to spread. Each thread fills its own
/// columns; the result is the same bits.
pub fn gemm_threads(isa: Isa, a: &QuantRows, w: &PackedMatrix, out: &mut [f32], threads: usize) {
    #[cfg(any(all(feature = "encoder", not(target_arch = "wasm32")), feature = "threads"))]
    if threads > 1 && w.n.div_ceil(w.layout.width()) >= 4 * threads {
        let width = w.layout.width();
        let panels = w.n.div_ceil(width);
        assert_eq!(a.k, w.k, "inner dimensions differ");
        assert_eq!(out.len(), a.m * w.n, "output size");
        use rayon::prelude::*;
        let per = panels.div_ceil(threads);
        let parts: Vec<(usize, usize, Vec<f32>)> = (0..threads)
            .into_par_iter()
            .map(|t| {
                let ps = t * per..((t + 1) * per).min(panels);
                let (c0, c1) = (ps.start * width, (ps.end * width).min(w.n));
                let mut part = vec![0f32; a.m * (c1 - c0)];
                gemm_panels(isa, a, w, ps, &mut part, c1 - c0);
                (c0, c1, part)
            })
            .collect();
        for (c0, c1, part) in parts {
            for (row, src) in out.chunks_exact_mut(w.n).zip(part.chunks_exact(c1 - c0)) {
                row[c0..c1].copy_from_slice(src);
            }
        }
        return;
    }
    let _ = threads;
    gemm(isa, a, w, out)
}

/// Panels `ps` of the product into `out`, whose rows are `stride` wide and
/// start at the first panel's first column.
fn gemm_panels(isa: Isa, a: &QuantRows, w: &PackedMatrix, ps: std::ops::Range<usize>, out: &mut [f32], stride: usize) {
    let isa = if isa.available() && isa.layout() == w.layout && a.ready_for(isa) { isa } else { Isa::Scalar };
    let width = w.layout.width();
    let c0 = ps.start * width;
    // Panels outside, rows inside: a panel (width x k bytes) stays in L1
    // while every row passes, so the weights stream from memory once per
    // product rather than once per MR rows. One tile serves every call:
    // each kernel writes all of its rows x width.
    let mut tile = [[0f32; MAX_W]; MR];
    for p in ps {
        for m0 in (0..a.m).step_by(MR) {
            let rows = (a.m - m0).min(MR);
            panel(isa, a, m0, rows, w, p, &mut tile);
            let cols = (w.n - p * width).min(width);
            for (r, t) in tile.iter().enumerate().take(rows) {
                copy_cols(&mut out[(m0 + r) * stride + p * width - c0..][..cols], &t[..cols]);
            }
        }
    }
}

/// `dst.copy_from_slice(src)` for a tile row. In wasm32 a copy whose length
/// the compiler knows is two vector moves; any other is `memory.copy`, which
/// V8 runs as a call out of the module: once per row and panel, that was
/// 2 % of a query. (The tile is allocated once per product for the same
/// reason: zeroing it per call was a `memory.fill`.)
#[cfg(target_arch = "wasm32")]
#[inline(always)]
fn copy_cols(dst: &mut [f32], src: &[f32]) {
    match src.len() {
        8 => dst[..8].copy_from_slice(&src[..8]),
        _ => dst.copy_from_slice(src),
    }
}

/// Natively `memcpy`, as before: the fixed-size moves gave no difference
/// there that this machine's noise let `bench encode` see.
#[cfg(not(target_arch = "wasm32"))]
#[inline(always)]
fn copy_cols(dst: &mut [f32], src: &[f32]) {
    dst.copy_from_slice(src)
}

/// One `rows x width` tile: activation rows `m0..m0+rows` against panel `p`.
fn panel(isa: Isa, a: &QuantRows, m0: usize, rows: usize, w: &PackedMatrix, p: usize, tile: &mut Tile) {
    match isa {
        #[cfg(target_arch = "x86_64")]
        // SAFETY: `available()` checked the CPU features the kernels enable.
        Isa::Avx2 => unsafe { super::gemm_x86::panel_avx2(a, m0, rows, w, p, tile) },
        #[cfg(target_arch = "x86_64")]
        // SAFETY: as above.
        Isa::AvxVnni => unsafe { super::gemm_x86::panel_vnni(a, m0, rows, w, p, tile) },
        #[cfg(target_arch = "x86_64")]
        // SAFETY: as above.
        Isa::Avx512Vnni => unsafe { super::gemm_x86::panel_vnni512(a, m0, rows, w, p, tile) },
        #[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
        Isa::Simd128 => super::gemm_wasm::panel_simd128(a, m0, rows, w, p, tile),
        #[cfg(all(target_arch = "wasm32", feature = "relaxed-simd"))]
        // This build's module only validates where relaxed SIMD exists.
        Isa::RelaxedSimd => super::gemm_wasm::panel_relaxed(a, m0, rows, w, p, tile),
        _ => panel_scalar(a, m0, rows, w, p, tile),
    }
}

/// The reference, for either layout: block dot products in i32, scaled and
/// summed in block order.
fn panel_scalar(a: &QuantRows, m0: usize, rows: usize, w: &PackedMatrix, p: usize, tile: &mut Tile) {
    let (kb, width) = (w.blocks(), w.layout.width());
    for (r, t) in tile.iter_mut().enumerate().take(rows) {
        t.fill(0.0);
        let (aq, sa) = a.row(m0 + r);
        for b in 0..kb {
            let pb = p * kb + b;
            let x = &aq[b * BLOCK..][..BLOCK];
            for (n, acc) in t.iter_mut().enumerate().take(width) {
                let dot: i32 = x.iter().enumerate().map(|(j, &u)| u as i32 * w.qs[w.layout.at(pb, n, j)] as i32).sum();
                *acc += dot as f32 * (sa[b] * w.scales[pb * width + n]);
            }
        }
    }
}

/// Every SIMD kernel this build and CPU run, against [`Isa::Scalar`] on
/// ragged shapes (1-row products, widths that are not a panel, long inner
/// dimensions) whose f32 sums are exact, so any correct kernel gives the same
/// bits, then the activation quantization (`check_quantize`): the number of
/// checks passed, or the first that differs. The wasm package exports it (`checkKernels`) so the browser
/// tests run it on the engine's own kernels.
pub fn check_kernels() -> Result<usize, String> {
    let mut seed = 11u64;
    let mut ran = 0;
    for &(m, n, k) in &[(1, 1, 32), (1, 7, 64), (2, 4, 32), (5, 9, 128), (13, 17, 384), (4, 1536, 96), (31, 3, 1536)] {
        let (a, w) = exact_problem(&mut seed, m, n, k);
        let mut want = vec![0f32; m * n];
        gemm(Isa::Scalar, &a, &w, &mut want);
        for isa in Isa::ALL.into_iter().filter(|&i| i != Isa::Scalar && i.available()) {
            let mut got = vec![f32::NAN; m * n];
            gemm(isa, &a, &w.repack(isa.layout()), &mut got);
            if let Some(i) = (0..m * n).find(|&i| got[i].to_bits() != want[i].to_bits()) {
                return Err(format!(
                    "{} kernel at {m}x{n}x{k}: output {i} is {} where the reference has {}",
                    isa.as_str(),
                    got[i],
                    want[i]
                ));
            }
            ran += 1;
        }
    }
    check_quantize(&mut seed)?;
    Ok(ran + 1)
}

/// [`QuantRows::quantize`] as this build and CPU run it (SIMD where there
/// is one) against [`quantize_scalar`], with every form a kernel reads, on
/// blocks made to be awkward: exact ties, zeros, signed zeros, subnormals,
/// values near `f32::MAX`. Finite ones only: a NaN activation is garbage
/// whatever becomes of it, and LLVM's wasm lowering of the scalar clamp
/// already turns it into -127 where native code gives 0.
fn check_quantize(seed: &mut u64) -> Result<(), String> {
    let (m, k) = (3, 6 * BLOCK);
    let mut x: Vec<f32> = (0..m * k).map(|_| (crate::rng::splitmix64(seed) % 20_001) as f32 / 2500.0 - 4.0).collect();
    // Block 1: max 127 and every value on a half step (ties to even).
    x[BLOCK..2 * BLOCK].iter_mut().enumerate().for_each(|(j, v)| *v = if j == 0 { 127.0 } else { j as f32 - 16.5 });
    x[2 * BLOCK..3 * BLOCK].fill(0.0);
    x[3 * BLOCK + 5] = f32::MAX;
    x[4 * BLOCK + 7] = -f32::MAX / 3.0;
    x[5 * BLOCK..6 * BLOCK]
        .iter_mut()
        .enumerate()
        .for_each(|(j, v)| *v = f32::from_bits(j as u32 + 1) * if j % 2 == 0 { 1.0 } else { -1.0 });
    x[6 * BLOCK + 3] = -0.0;
    x[7 * BLOCK + 9] = 1e-30;
    let mut got = QuantRows::default();
    got.quantize(&x, m, k);
    let (mut qs, mut scales) = (vec![0i8; m * k], vec![0f32; m * k / BLOCK]);
    quantize_scalar(&x, &mut qs, &mut scales);
    if let Some(i) = (0..m * k).find(|&i| got.qs[i] != qs[i]) {
        return Err(format!("quantize: value {i} ({}) is {} where the reference has {}", x[i], got.qs[i], qs[i]));
    }
    if let Some(b) = (0..scales.len()).find(|&b| got.scales[b].to_bits() != scales[b].to_bits()) {
        return Err(format!("quantize: block {b}'s scale is {} where the reference has {}", got.scales[b], scales[b]));
    }
    let want = QuantRows::from_parts(m, k, qs, scales);
    for (name, same) in [
        ("i16", got.wide == want.wide),
        ("split", got.pos == want.pos && got.neg == want.neg),
        ("flipped", got.flipped == want.flipped),
    ] {
        if !same {
            return Err(format!("quantize: the {name} form differs from the reference's"));
        }
    }
    Ok(())
}

/// A random product whose f32 sums are exact: power-of-two scales and
/// sums below 2^22 (two fraction bits at most), so any summation order gives
/// the same bits. Every weight byte occurs, -128 included.
fn exact_problem(seed: &mut u64, m: usize, n: usize, k: usize) -> (QuantRows, PackedMatrix) {
    let mut below = |n: u64| crate::rng::splitmix64(seed) % n;
    let kb = k / BLOCK;
    let a: Vec<i8> = (0..m * k).map(|_| (below(255) as i32 - 127) as i8).collect();
    let sa = (0..m * kb).map(|_| [0.5f32, 1.0, 2.0][below(3) as usize]).collect();
    let w: Vec<i8> = (0..n * k).map(|_| below(256) as u8 as i8).collect();
    let sw: Vec<f32> = (0..n * kb).map(|_| [0.5f32, 1.0, 2.0][below(3) as usize]).collect();
    (QuantRows::from_parts(m, k, a, sa), PackedMatrix::from_rows(n, k, &w, &sw, Layout::Rows))
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
            for layout in [Layout::Rows, Layout::Quads, Layout::Quads16, Layout::Pairs] {
                gemm(Isa::Scalar, &a, &PackedMatrix::from_rows(n, k, &w, &sw, layout), &mut out);
                for (x, y) in out.iter().zip(naive(&a, &w, &sw, n)) {
                    assert!((x - y).abs() <= 1e-4 * y.abs().max(1.0), "{x} vs {y} at {m}x{n}x{k} {layout:?}");
                }
            }
        }
    }

    #[test]
    fn every_available_kernel_equals_the_scalar_reference_exactly() {
        let checked = check_kernels().unwrap();
        // Natively at least one SIMD kernel runs on any x86-64 CI machine.
        assert!(checked > 0 || !cfg!(target_arch = "x86_64") || !Isa::Avx2.available());
        eprintln!("kernels checked against the reference: {checked} shape x kernel pairs");
    }

    #[test]
    fn splitting_panels_across_threads_gives_the_same_bits() {
        let mut rng = Rng::new(9);
        for &(m, n, k) in &[(17, 384, 384), (3, 1536, 64), (1, 100, 32), (5, 30, 32)] {
            let (a, w) = exact_problem(&mut rng.0, m, n, k);
            let w = w.repack(Isa::detect().layout());
            let (mut one, mut many) = (vec![0f32; m * n], vec![f32::NAN; m * n]);
            gemm(Isa::detect(), &a, &w, &mut one);
            gemm_threads(Isa::detect(), &a, &w, &mut many, 3);
            assert_eq!(one, many, "{m}x{n}x{k}");
        }
    }

    #[test]
    fn repacking_keeps_every_value_and_scale() {
        let mut rng = Rng::new(5);
        let (a, w) = exact_problem(&mut rng.0, 3, 21, 96);
        let there_and_back = w.repack(Layout::Quads).repack(Layout::Quads16).repack(Layout::Pairs).repack(Layout::Rows);
        assert_eq!((there_and_back.qs.clone(), there_and_back.scales.clone()), (w.qs.clone(), w.scales.clone()));
        assert_eq!(there_and_back.offsets, w.offsets);
        let (mut x, mut y) = (vec![0f32; 3 * 21], vec![0f32; 3 * 21]);
        gemm(Isa::Scalar, &a, &w, &mut x);
        gemm(Isa::Scalar, &a, &w.repack(Layout::Quads), &mut y);
        assert_eq!(x, y);
        gemm(Isa::Scalar, &a, &w.repack(Layout::Pairs), &mut y);
        assert_eq!(x, y);
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
    fn quantizing_with_simd_equals_the_scalar_arithmetic() {
        let mut rng = Rng::new(13);
        let mut x: Vec<f32> = (0..9 * 96).map(|_| ((rng.unit() - 0.5) * 20.0) as f32).collect();
        x[..32].fill(0.0); // a zero block
        x[40] = 1e-30; // tiny values
        for v in &mut x[64..96] {
            *v = v.round() / 2.0; // exact halves: ties to even
        }
        let (mut qs, mut scales) = (vec![0i8; x.len()], vec![0f32; x.len() / BLOCK]);
        quantize_scalar(&x, &mut qs, &mut scales);
        let mut q = QuantRows::default();
        q.quantize(&x, 9, 96);
        assert_eq!((q.qs.clone(), q.scales.clone()), (qs, scales));
        assert!(q.flipped.iter().zip(&q.qs).all(|(&f, &v)| f == v as u8 ^ 0x80) || !cfg!(target_arch = "x86_64"));
    }

    #[test]
    fn forcing_the_scalar_kernel_is_honoured() {
        // The switch is read each call; other values fall back to the best.
        assert!(Isa::detect().available());
        assert!(Isa::Scalar.available());
        assert_eq!(Isa::named(" AVX-VNNI "), Some(Isa::AvxVnni));
        assert_eq!(Isa::named("relaxed-simd"), Some(Isa::RelaxedSimd));
        assert_eq!(Isa::named("neon"), None);
    }

    /// A clock that moves by the next scripted step at each reading after the
    /// first of a pair: kernel `i` of `n` "takes" `steps[i]` ms every round.
    fn scripted(steps: Vec<f64>) -> impl FnMut() -> f64 {
        let (mut t, mut reading) = (0.0, 0usize);
        move || {
            if reading % 2 == 1 {
                t += steps[(reading / 2) % steps.len()];
            }
            reading += 1;
            t
        }
    }

    #[test]
    fn timing_keeps_the_fastest_available_kernel() {
        let slow_first = Isa::Avx2.available();
        let candidates = [Isa::Avx2, Isa::Scalar, Isa::RelaxedSimd];
        let steps = if slow_first { vec![3.0, 1.0] } else { vec![1.0] };
        let timing = time_kernels(&candidates, (5, 9, 64), 3, &mut scripted(steps));
        // The relaxed kernel does not run natively, so it is not timed.
        assert!(timing.ms.iter().all(|(isa, _)| isa.available()));
        assert_eq!(timing.fastest(), Isa::Scalar);
        if slow_first {
            assert_eq!(timing.ms, vec![(Isa::Avx2, 3.0), (Isa::Scalar, 1.0)]);
            assert_eq!(
                timing.to_string(),
                "timed at load on a 5 x 64 by 64 x 9 product, best of 3: avx2 3.00 ms, scalar 1.00 ms"
            );
        }
        // A tie keeps the first given; nothing timed falls back to the reference.
        let tie = Timing { shape: (1, 1, 32), rounds: 1, ms: vec![(Isa::Avx2, 1.0), (Isa::Scalar, 1.0)] };
        assert_eq!(tie.fastest(), Isa::Avx2);
        assert_eq!(Timing { ms: vec![], ..tie }.fastest(), Isa::Scalar);
    }
}
