//! Vector storage types and the dot products that scan them.

use half::f16;

use crate::{Error, Result};

/// How the index stores its vectors.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum VectorDType {
    F32,
    F16,
    /// Symmetric int8 with one f32 scale per vector (`x ~= scale * q`).
    Int8,
}

impl VectorDType {
    pub fn as_str(self) -> &'static str {
        match self {
            VectorDType::F32 => "f32",
            VectorDType::F16 => "f16",
            VectorDType::Int8 => "int8",
        }
    }
    pub(crate) fn code(self) -> u32 {
        match self {
            VectorDType::F32 => 0,
            VectorDType::F16 => 1,
            VectorDType::Int8 => 2,
        }
    }
    pub(crate) fn from_code(c: u32) -> Option<Self> {
        [VectorDType::F32, VectorDType::F16, VectorDType::Int8].into_iter().find(|d| d.code() == c)
    }
}

impl std::str::FromStr for VectorDType {
    type Err = crate::Error;
    fn from_str(s: &str) -> crate::Result<Self> {
        match s.to_ascii_lowercase().as_str() {
            "f32" => Ok(Self::F32),
            "f16" => Ok(Self::F16),
            "int8" | "i8" => Ok(Self::Int8),
            o => Err(crate::Error::Invalid(format!("vector dtype must be f32, f16 or int8, got {o:?}"))),
        }
    }
}

/// The vectors of an index, row-major, `dim` values per row.
#[derive(Debug, Clone, PartialEq)]
pub enum Store {
    F32(Vec<f32>),
    F16(Vec<f16>),
    Int8 { q: Vec<i8>, scales: Vec<f32> },
}

impl Store {
    pub fn empty(dtype: VectorDType) -> Self {
        match dtype {
            VectorDType::F32 => Store::F32(Vec::new()),
            VectorDType::F16 => Store::F16(Vec::new()),
            VectorDType::Int8 => Store::Int8 { q: Vec::new(), scales: Vec::new() },
        }
    }

    pub fn dtype(&self) -> VectorDType {
        match self {
            Store::F32(_) => VectorDType::F32,
            Store::F16(_) => VectorDType::F16,
            Store::Int8 { .. } => VectorDType::Int8,
        }
    }

    /// No NaN or infinity anywhere (a damaged file's vectors rank at random).
    pub fn all_finite(&self) -> bool {
        match self {
            Store::F32(d) => d.iter().all(|x| x.is_finite()),
            Store::F16(d) => d.iter().all(|x| x.is_finite()),
            Store::Int8 { scales, .. } => scales.iter().all(|x| x.is_finite()),
        }
    }

    pub fn push(&mut self, v: &[f32]) {
        match self {
            Store::F32(d) => d.extend_from_slice(v),
            Store::F16(d) => d.extend(v.iter().map(|x| f16::from_f32(*x))),
            Store::Int8 { q, scales } => {
                let (row, scale) = quantize_i8(v);
                q.extend_from_slice(&row);
                scales.push(scale);
            }
        }
    }

    /// Scores every row against `query` into `out` (one score per row).
    pub fn scan(&self, dim: usize, query: &[f32], out: &mut Vec<f32>) {
        out.clear();
        match self {
            Store::F32(d) => out.extend(d.chunks_exact(dim).map(|r| dot_f32(query, r))),
            Store::F16(d) => {
                let mut row = vec![0f32; dim];
                out.extend(d.chunks_exact(dim).map(|r| {
                    for (o, x) in row.iter_mut().zip(r) {
                        *o = x.to_f32();
                    }
                    dot_f32(query, &row)
                }))
            }
            Store::Int8 { q, scales } => {
                // The query is quantized too: an i8 x i8 -> i32 dot product
                // reads a quarter of the bytes of f32 and vectorises well.
                let (qq, qs) = quantize_i8(query);
                out.extend(q.chunks_exact(dim).zip(scales).map(|(r, s)| dot_i8(&qq, r) as f32 * qs * s));
            }
        }
    }

    /// Scores only `rows` against `query`, each into `out[row]` (`out` has a
    /// place per row): what [`scan`](Self::scan) gives for them, at the cost
    /// of the rows asked for. A row past the store or `out` is skipped.
    pub fn scan_rows(&self, dim: usize, query: &[f32], rows: impl IntoIterator<Item = usize>, out: &mut [f32]) {
        match self {
            Store::Int8 { q, scales } => {
                let (qq, qs) = quantize_i8(query);
                for r in rows {
                    let span = r * dim..(r + 1) * dim;
                    if let (Some(row), Some(s), Some(o)) = (q.get(span), scales.get(r), out.get_mut(r)) {
                        *o = dot_i8(&qq, row) as f32 * qs * s;
                    }
                }
            }
            _ => {
                for r in rows {
                    if let (Some(row), Some(o)) = (self.row(dim, r), out.get_mut(r)) {
                        *o = dot_f32(query, &row);
                    }
                }
            }
        }
    }

    /// Row `i` as floats.
    pub fn row(&self, dim: usize, i: usize) -> Option<Vec<f32>> {
        let span = i.checked_mul(dim)?..(i + 1).checked_mul(dim)?;
        match self {
            Store::F32(d) => d.get(span).map(<[f32]>::to_vec),
            Store::F16(d) => d.get(span).map(|r| r.iter().map(|x| x.to_f32()).collect()),
            Store::Int8 { q, scales } => {
                let s = *scales.get(i)?;
                q.get(span).map(|r| r.iter().map(|&x| x as f32 * s).collect())
            }
        }
    }

    /// Bytes one full scan reads.
    pub fn bytes(&self) -> usize {
        match self {
            Store::F32(d) => d.len() * 4,
            Store::F16(d) => d.len() * 2,
            Store::Int8 { q, scales } => q.len() + scales.len() * 4,
        }
    }
}

/// How many bits a file gives each quantized value: the cluster lists'
/// vectors and the token table's rows. Each halving halves what a browser
/// downloads per probed cluster or table chunk; on the wiki set's 1,809 dev
/// questions neither int4 nor int2 moved the light engine's hybrid MRR@10
/// by more than 0.002 (`ernie-search table eval --clusters 101 --cluster-bits
/// 2|4|8`, BENCHMARKS.md); its dense mode alone loses a little more at each.
/// Every width is held as i8 in memory, so one scan serves them all.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ValueBits {
    Int2,
    #[default]
    Int4,
    Int8,
}

impl ValueBits {
    pub fn bits(self) -> u32 {
        match self {
            ValueBits::Int2 => 2,
            ValueBits::Int4 => 4,
            ValueBits::Int8 => 8,
        }
    }

    pub fn from_bits(bits: u32) -> Option<Self> {
        match bits {
            2 => Some(ValueBits::Int2),
            4 => Some(ValueBits::Int4),
            8 => Some(ValueBits::Int8),
            _ => None,
        }
    }

    /// Symmetric quantization of one vector to this width (i8 values, a scale).
    pub fn quantize(self, v: &[f32]) -> (Vec<i8>, f32) {
        match self {
            ValueBits::Int2 => quantize_two_bits(v),
            ValueBits::Int4 => quantize_symmetric(v, 7),
            ValueBits::Int8 => quantize_symmetric(v, 127),
        }
    }

    /// Bytes one row of `dim` values takes in a file.
    pub fn row_bytes(self, dim: usize) -> usize {
        match self {
            ValueBits::Int2 => dim.div_ceil(4),
            ValueBits::Int4 => dim.div_ceil(2),
            ValueBits::Int8 => dim,
        }
    }

    /// Appends one row's values at this width: int8 as bytes; int4 two to a
    /// byte (two's complement), value `2j` in the low nibble of byte `j` and
    /// value `2j + 1` in its high nibble; int2 four to a byte, value `4j + i`
    /// in bits `2i..2i + 2` of byte `j` as `(v + 3) / 2` (the levels -3, -1,
    /// 1, 3 as 0..=3).
    pub fn pack(self, row: &[i8], out: &mut Vec<u8>) {
        match self {
            ValueBits::Int8 => out.extend(row.iter().map(|&x| x as u8)),
            ValueBits::Int4 => out.extend(row.chunks(2).map(|p| {
                let hi = p.get(1).copied().unwrap_or(0);
                (p[0] as u8 & 0x0F) | ((hi as u8) << 4)
            })),
            ValueBits::Int2 => out.extend(row.chunks(4).map(|p| {
                p.iter().enumerate().fold(0u8, |b, (j, &x)| b | ((((x.clamp(-3, 3) + 3) / 2) as u8) << (2 * j)))
            })),
        }
    }

    /// One row's values back from `self.row_bytes(out.len())` bytes.
    pub fn unpack(self, bytes: &[u8], out: &mut [i8]) {
        match self {
            ValueBits::Int8 => out.iter_mut().zip(bytes).for_each(|(o, &b)| *o = b as i8),
            ValueBits::Int4 => {
                for (pair, &b) in out.chunks_mut(2).zip(bytes) {
                    // Shifting the nibble to the top and back extends its sign.
                    pair[0] = ((b << 4) as i8) >> 4;
                    if let Some(hi) = pair.get_mut(1) {
                        *hi = (b as i8) >> 4;
                    }
                }
            }
            ValueBits::Int2 => {
                for (four, &b) in out.chunks_mut(4).zip(bytes) {
                    four.iter_mut().enumerate().for_each(|(j, o)| *o = 2 * ((b >> (2 * j)) & 3) as i8 - 3);
                }
            }
        }
    }
}

impl std::str::FromStr for ValueBits {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        match s.to_ascii_lowercase().as_str() {
            "2" | "int2" | "i2" => Ok(ValueBits::Int2),
            "4" | "int4" | "i4" => Ok(ValueBits::Int4),
            "8" | "int8" | "i8" => Ok(ValueBits::Int8),
            o => Err(Error::Invalid(format!("quantized values are 2, 4 or 8 bits, got {o:?}"))),
        }
    }
}

/// Symmetric per-vector quantization: scale = max|x| / 127.
pub fn quantize_i8(v: &[f32]) -> (Vec<i8>, f32) {
    quantize_symmetric(v, 127)
}

/// Symmetric per-vector quantization to -`top`..=`top` (127 for int8, 7 for
/// int4), held as i8 so that one dot product scans either.
pub fn quantize_symmetric(v: &[f32], top: i8) -> (Vec<i8>, f32) {
    let max = v.iter().fold(0f32, |m, x| m.max(x.abs()));
    if max == 0.0 || top <= 0 {
        return (vec![0; v.len()], 0.0);
    }
    let top = f32::from(top);
    let scale = max / top;
    (v.iter().map(|x| (x / scale).round().clamp(-top, top) as i8).collect(), scale)
}

/// Two bits a value: the levels -3, -1, 1, 3 (times the scale), the four
/// cells of width 2 x scale around zero, no value exactly 0. The cell width
/// is about one standard deviation of the vector's values (what minimizes
/// the error for values near a normal law), and the scale is then fitted by
/// least squares to the levels chosen, so a row's dot products stay unbiased.
pub fn quantize_two_bits(v: &[f32]) -> (Vec<i8>, f32) {
    let rms = (v.iter().map(|x| x * x).sum::<f32>() / v.len().max(1) as f32).sqrt();
    if rms == 0.0 || !rms.is_finite() {
        // No level is 0: a zero row is any level with scale 0 (what packs and reads back).
        return (vec![1; v.len()], 0.0);
    }
    let width = 0.996 * rms;
    let q: Vec<i8> = v.iter().map(|x| 2 * (x / width).floor().clamp(-2.0, 1.0) as i8 + 1).collect();
    let (xq, qq) = q.iter().zip(v).fold((0f32, 0f32), |(a, b), (&q, &x)| (a + q as f32 * x, b + (q as f32).powi(2)));
    (q, if qq > 0.0 { xq / qq } else { 0.0 })
}

/// Eight independent accumulators let the compiler keep a SIMD register busy.
#[inline]
pub fn dot_f32(a: &[f32], b: &[f32]) -> f32 {
    let mut acc = [0f32; 8];
    let (ac, bc) = (a.chunks_exact(8), b.chunks_exact(8));
    let tail: f32 = ac.remainder().iter().zip(bc.remainder()).map(|(x, y)| x * y).sum();
    for (x, y) in ac.zip(bc) {
        for i in 0..8 {
            acc[i] += x[i] * y[i];
        }
    }
    acc.iter().sum::<f32>() + tail
}

#[inline]
pub fn dot_i8(a: &[i8], b: &[i8]) -> i32 {
    let mut acc = [0i32; 16];
    let (ac, bc) = (a.chunks_exact(16), b.chunks_exact(16));
    let tail: i32 = ac.remainder().iter().zip(bc.remainder()).map(|(x, y)| *x as i32 * *y as i32).sum();
    for (x, y) in ac.zip(bc) {
        for i in 0..16 {
            acc[i] += x[i] as i32 * y[i] as i32;
        }
    }
    acc.iter().sum::<i32>() + tail
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rng::splitmix64;

    /// Near-normal values (the sum of 12 uniforms, centred).
    fn gaussian_row(state: &mut u64, dim: usize) -> Vec<f32> {
        let uniform = |s: &mut u64| (splitmix64(s) >> 40) as f32 / (1u64 << 24) as f32;
        (0..dim).map(|_| (0..12).map(|_| uniform(state)).sum::<f32>() - 6.0).collect()
    }

    #[test]
    fn every_width_packs_and_unpacks_to_the_same_values() {
        let mut rng = 7u64;
        for bits in [ValueBits::Int2, ValueBits::Int4, ValueBits::Int8] {
            for dim in [1, 2, 3, 4, 5, 383, 384] {
                let (q, _) = bits.quantize(&gaussian_row(&mut rng, dim));
                let mut packed = Vec::new();
                bits.pack(&q, &mut packed);
                assert_eq!(packed.len(), bits.row_bytes(dim), "{bits:?} dim {dim}");
                let mut back = vec![0i8; dim];
                bits.unpack(&packed, &mut back);
                assert_eq!(back, q, "{bits:?} dim {dim}");
                assert_eq!(ValueBits::from_bits(bits.bits()), Some(bits));
            }
        }
        assert_eq!(ValueBits::from_bits(3), None);
        assert!("3".parse::<ValueBits>().is_err());
        assert_eq!("2".parse::<ValueBits>().unwrap(), ValueBits::Int2);
    }

    #[test]
    fn two_bit_rows_keep_signs_and_dot_products() {
        let mut rng = 11u64;
        let (dim, n) = (384, 200);
        let rows: Vec<Vec<f32>> = (0..n).map(|_| gaussian_row(&mut rng, dim)).collect();
        let query = gaussian_row(&mut rng, dim);
        let mut exact = Vec::new();
        let mut approx = Vec::new();
        for row in &rows {
            let (q, scale) = ValueBits::Int2.quantize(row);
            assert!(q.iter().all(|v| [-3, -1, 1, 3].contains(v)), "levels {q:?}");
            assert!(q.iter().zip(row).all(|(&v, &x)| x == 0.0 || (v > 0) == (x > 0.0)), "a sign flipped");
            assert!(scale > 0.0 && scale.is_finite());
            // The fitted scale makes the row's own length come back within a few percent.
            let own: f32 = q.iter().zip(row).map(|(&v, &x)| v as f32 * scale * x).sum();
            let len: f32 = row.iter().map(|x| x * x).sum();
            assert!((own / len - 1.0).abs() < 0.15, "own {own} vs {len}");
            exact.push(dot_f32(row, &query));
            approx.push(q.iter().zip(&query).map(|(&v, &y)| v as f32 * scale * y).sum::<f32>());
        }
        // Scores against a query stay close to the floats' (correlation above 0.9).
        let mean = |v: &[f32]| v.iter().sum::<f32>() / v.len() as f32;
        let (me, ma) = (mean(&exact), mean(&approx));
        let cov: f32 = exact.iter().zip(&approx).map(|(e, a)| (e - me) * (a - ma)).sum();
        let ve: f32 = exact.iter().map(|e| (e - me).powi(2)).sum();
        let va: f32 = approx.iter().map(|a| (a - ma).powi(2)).sum();
        assert!(cov / (ve * va).sqrt() > 0.9, "correlation {}", cov / (ve * va).sqrt());
        // A zero row stays zero through a file: levels it can pack, scale 0.
        let (q, scale) = ValueBits::Int2.quantize(&[0.0; 5]);
        let mut packed = Vec::new();
        ValueBits::Int2.pack(&q, &mut packed);
        let mut back = vec![0i8; 5];
        ValueBits::Int2.unpack(&packed, &mut back);
        assert_eq!((back, scale), (q, 0.0));
    }
}
