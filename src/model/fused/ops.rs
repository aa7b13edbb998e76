//! The element-wise and row-wise steps of the fused forward pass, each one
//! pass over a buffer that is reused: bias + activation, bias + residual +
//! layer norm, softmax, and attention for one sequence (no padding, so no
//! mask). Plain loops over slices that the compiler vectorises; `exp` and
//! `erf` are our own polynomial forms because libm's are scalar calls.

/// `e^x`, relative error below 2e-7 on [-87, 88]; 0 below, +inf-free above.
#[inline(always)]
pub fn exp(x: f32) -> f32 {
    let x = x.clamp(-87.0, 88.0);
    // Round to nearest with the 1.5 * 2^23 trick (vectorises, unlike round()).
    let magic = 12_582_912.0f32;
    let n = (x * std::f32::consts::LOG2_E + magic) - magic;
    // r = x - n ln2, with ln2 split in two (Cody-Waite) so r keeps its bits.
    let r = x - n * 0.693_145_75 - n * 1.428_606_8e-6;
    // e^r on |r| <= ln2 / 2: Taylor to degree 6 (error < 1.3e-7).
    let p = 1.0 / 720.0f32;
    let p = p * r + 1.0 / 120.0;
    let p = p * r + 1.0 / 24.0;
    let p = p * r + 1.0 / 6.0;
    let p = p * r + 0.5;
    let p = p * r + 1.0;
    let p = p * r + 1.0;
    p * f32::from_bits(((n as i32 + 127) as u32) << 23)
}

/// `erf(x)`, absolute error below 6e-7 in f32 (Abramowitz and Stegun 7.1.26 form,
/// with Hastings' coefficients).
#[inline(always)]
fn erf(x: f32) -> f32 {
    let a = x.abs();
    let t = 1.0 / (1.0 + 0.327_591_1 * a);
    let y = t * (0.254_829_6 + t * (-0.284_496_74 + t * (1.421_413_8 + t * (-1.453_152_1 + t * 1.061_405_4))));
    let r = 1.0 - y * exp(-a * a);
    r.copysign(x)
}

/// The encoder's activation, named as in `config.json`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Activation {
    /// Exact GELU, `x * (1 + erf(x / sqrt 2)) / 2` (BERT's "gelu").
    Gelu,
    /// The tanh form ("gelu_new").
    GeluTanh,
    Relu,
}

/// `x[r][c] = act(x[r][c] + bias[c])`.
pub fn bias_activation(x: &mut [f32], bias: &[f32], act: Activation) {
    for row in x.chunks_exact_mut(bias.len()) {
        match act {
            Activation::Gelu => {
                for (v, b) in row.iter_mut().zip(bias) {
                    let u = *v + b;
                    *v = 0.5 * u * (1.0 + erf(u * std::f32::consts::FRAC_1_SQRT_2));
                }
            }
            Activation::GeluTanh => {
                for (v, b) in row.iter_mut().zip(bias) {
                    let u = *v + b;
                    // tanh(z) = 1 - 2 / (e^{2z} + 1)
                    let z = 0.797_884_6 * (u + 0.044_715 * u * u * u);
                    *v = 0.5 * u * (2.0 - 2.0 / (exp(2.0 * z) + 1.0));
                }
            }
            Activation::Relu => {
                for (v, b) in row.iter_mut().zip(bias) {
                    *v = (*v + b).max(0.0);
                }
            }
        }
    }
}

/// `x[r][c] += bias[c]`.
pub fn add_bias(x: &mut [f32], bias: &[f32]) {
    for row in x.chunks_exact_mut(bias.len()) {
        for (v, b) in row.iter_mut().zip(bias) {
            *v += b;
        }
    }
}

/// The residual block's end: `x = layer_norm(y + bias + x)` row by row.
pub fn bias_residual_norm(y: &[f32], bias: &[f32], x: &mut [f32], gamma: &[f32], beta: &[f32], eps: f32) {
    for (yr, xr) in y.chunks_exact(bias.len()).zip(x.chunks_exact_mut(bias.len())) {
        for ((v, a), b) in xr.iter_mut().zip(yr).zip(bias) {
            *v += a + b;
        }
        layer_norm_row(xr, gamma, beta, eps);
    }
}

/// Layer norm of every row of `x`, in place.
pub fn layer_norm(x: &mut [f32], gamma: &[f32], beta: &[f32], eps: f32) {
    for row in x.chunks_exact_mut(gamma.len()) {
        layer_norm_row(row, gamma, beta, eps);
    }
}

fn layer_norm_row(row: &mut [f32], gamma: &[f32], beta: &[f32], eps: f32) {
    let n = row.len() as f32;
    let mean = row.iter().sum::<f32>() / n;
    let var = row.iter().map(|v| (v - mean) * (v - mean)).sum::<f32>() / n;
    let inv = 1.0 / (var + eps).sqrt();
    for ((v, g), b) in row.iter_mut().zip(gamma).zip(beta) {
        *v = (*v - mean) * inv * g + b;
    }
}

/// Softmax of one row, in place.
pub fn softmax(row: &mut [f32]) {
    let max = max(row);
    // Separate passes: the exp loop vectorises, the sum keeps eight lanes.
    for v in row.iter_mut() {
        *v = exp(*v - max);
    }
    let inv = 1.0 / sum(row);
    for v in row.iter_mut() {
        *v *= inv;
    }
}

/// Scratch for [`attention`]: one head's keys transposed and values packed,
/// and the scores of one block of query rows.
#[derive(Default)]
pub struct AttentionScratch {
    keys_t: Vec<f32>,
    values: Vec<f32>,
    queries: Vec<f32>,
    scores: Vec<f32>,
}

/// Keys whose scores one pass keeps in registers.
const KB: usize = 16;
/// Query rows that share each load of a key or value row.
const QB: usize = 4;

/// Self-attention of one sequence. `qkv`: `[len, 3 * hidden]` (queries, keys,
/// values side by side); `ctx`: `[len, hidden]` out. Per head the keys are
/// transposed (`[dh, len]`, padded to `KB` columns with zeros) and the
/// values packed (`[len, dh]`); `QB` query rows at a time, a block of
/// `KB` scores (or outputs) stays in registers while the key (value) rows
/// stream past once for all of them. Each sum runs in the order of the plain
/// loops (over `d`, then over keys), so the result does not depend on the
/// blocking.
pub fn attention(qkv: &[f32], len: usize, hidden: usize, heads: usize, ctx: &mut [f32], s: &mut AttentionScratch) {
    let dh = hidden / heads;
    let scale = 1.0 / (dh as f32).sqrt();
    let stride = 3 * hidden;
    let lp = len.next_multiple_of(KB);
    s.keys_t.clear();
    s.keys_t.resize(dh * lp, 0.0);
    s.values.resize(len * dh, 0.0);
    s.queries.resize(QB * dh, 0.0);
    s.scores.resize(QB * lp, 0.0);
    for h in 0..heads {
        for t in 0..len {
            let row = &qkv[t * stride..][..stride];
            for d in 0..dh {
                s.keys_t[d * lp + t] = row[hidden + h * dh + d];
            }
            s.values[t * dh..][..dh].copy_from_slice(&row[2 * hidden + h * dh..][..dh]);
        }
        for t0 in (0..len).step_by(QB) {
            let rows = (len - t0).min(QB);
            // Rows past the sequence repeat its last row; their results are dropped.
            for r in 0..QB {
                let t = t0 + r.min(rows - 1);
                for (q, &x) in s.queries[r * dh..][..dh].iter_mut().zip(&qkv[t * stride + h * dh..][..dh]) {
                    *q = x * scale;
                }
            }
            scores_block(&s.queries, &s.keys_t, dh, lp, &mut s.scores);
            for r in 0..rows {
                softmax(&mut s.scores[r * lp..][..len]);
            }
            context_block(&s.scores, &s.values, (len, lp, dh), rows, &mut ctx[t0 * hidden + h * dh..], hidden);
        }
    }
}

/// `acc[r] += coef(r) * row` for each of the [`QB`] rows: one load of `row`
/// serves them all.
#[inline(always)]
fn add_outer(acc: &mut [[f32; KB]; QB], row: &[f32; KB], coef: impl Fn(usize) -> f32) {
    for (r, a) in acc.iter_mut().enumerate() {
        let c = coef(r);
        for (a, x) in a.iter_mut().zip(row) {
            *a += c * x;
        }
    }
}

/// `scores[r][j] = sum_d queries[r][d] * keys_t[d][j]` for [`QB`] rows and
/// every (padded) key `j`.
fn scores_block(queries: &[f32], keys_t: &[f32], dh: usize, lp: usize, scores: &mut [f32]) {
    for j0 in (0..lp).step_by(KB) {
        let mut acc = [[0f32; KB]; QB];
        for d in 0..dh {
            let k: &[f32; KB] = keys_t[d * lp + j0..][..KB].try_into().expect("KB keys");
            add_outer(&mut acc, k, |r| queries[r * dh + d]);
        }
        for (r, a) in acc.iter().enumerate() {
            scores[r * lp + j0..][..KB].copy_from_slice(a);
        }
    }
}

/// `out[r * stride + x] = sum_j probs[r][j] * values[j][x]` for the first
/// `rows` rows (`shape`: keys, padded keys, head size).
fn context_block(
    probs: &[f32],
    values: &[f32],
    shape: (usize, usize, usize),
    rows: usize,
    out: &mut [f32],
    stride: usize,
) {
    let (len, lp, dh) = shape;
    let mut x0 = 0;
    while x0 + KB <= dh {
        let mut acc = [[0f32; KB]; QB];
        for j in 0..len {
            let v: &[f32; KB] = values[j * dh + x0..][..KB].try_into().expect("KB values");
            add_outer(&mut acc, v, |r| probs[r * lp + j]);
        }
        for (r, a) in acc.iter().enumerate().take(rows) {
            out[r * stride + x0..][..KB].copy_from_slice(a);
        }
        x0 += KB;
    }
    // A head size that is not a multiple of KB: the rest, plainly.
    for r in 0..rows {
        for x in x0..dh {
            out[r * stride + x] = (0..len).fold(0.0, |a, j| a + probs[r * lp + j] * values[j * dh + x]);
        }
    }
}

/// Sum with eight running lanes, so it vectorises without fast-math.
/// The largest value, eight lanes at a time: `f32::max` is a libm call in
/// wasm (its NaN rule is not `f32.max`'s) and a fold is a serial chain.
fn max(a: &[f32]) -> f32 {
    let pick = |m: f32, v: f32| if v > m { v } else { m };
    let mut acc = [f32::NEG_INFINITY; 8];
    let chunks = a.chunks_exact(8);
    let tail = chunks.remainder().iter().fold(f32::NEG_INFINITY, |m, &v| pick(m, v));
    for c in chunks {
        for i in 0..8 {
            acc[i] = pick(acc[i], c[i]);
        }
    }
    acc.iter().fold(tail, |m, &v| pick(m, v))
}

fn sum(a: &[f32]) -> f32 {
    let mut acc = [0f32; 8];
    let chunks = a.chunks_exact(8);
    let tail: f32 = chunks.remainder().iter().sum();
    for c in chunks {
        for i in 0..8 {
            acc[i] += c[i];
        }
    }
    acc.iter().sum::<f32>() + tail
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exp_and_erf_stay_within_their_bounds() {
        let mut worst_exp = 0f64;
        let mut worst_erf = 0f64;
        for i in -8000..=8000 {
            let x = i as f32 / 100.0;
            let e = (x as f64).exp();
            worst_exp = worst_exp.max(((exp(x) as f64 - e) / e).abs());
            let want = libm_erf(x as f64 / 10.0);
            worst_erf = worst_erf.max((erf(x / 10.0) as f64 - want).abs());
        }
        assert!(worst_exp < 3e-7, "exp relative error {worst_exp}");
        assert!(worst_erf < 6e-7, "erf absolute error {worst_erf}");
        assert_eq!(exp(-200.0), exp(-87.0));
        assert!(exp(200.0).is_finite());
    }

    /// erf by its Taylor series (|x| <= 3) or the continued fraction: slow, exact enough.
    fn libm_erf(x: f64) -> f64 {
        if x.abs() > 5.0 {
            return x.signum();
        }
        let (mut term, mut sum) = (x, x);
        for n in 1..200 {
            term *= -x * x / n as f64;
            sum += term / (2 * n + 1) as f64;
        }
        sum * 2.0 / std::f64::consts::PI.sqrt()
    }

    #[test]
    fn softmax_sums_to_one_and_keeps_order() {
        let mut r = [1.0, 3.0, -2.0, 3.0];
        softmax(&mut r);
        assert!((r.iter().sum::<f32>() - 1.0).abs() < 1e-6);
        assert!(r[1] == r[3] && r[1] > r[0] && r[0] > r[2]);
    }

    #[test]
    fn row_max_finds_the_largest_wherever_it_sits() {
        for len in 1..20 {
            for at in 0..len {
                let mut row: Vec<f32> = (0..len).map(|i| -(i as f32) - 1.0).collect();
                row[at] = 0.5;
                assert_eq!(max(&row), 0.5, "len {len}, max at {at}");
            }
        }
        assert_eq!(max(&[-3.0; 9]), -3.0);
    }

    #[test]
    fn layer_norm_centres_and_scales() {
        let mut x = [1.0, 2.0, 3.0, 4.0];
        layer_norm(&mut x, &[1.0; 4], &[0.5; 4], 1e-12);
        assert!((x.iter().sum::<f32>() / 4.0 - 0.5).abs() < 1e-6);
        assert!((x.iter().map(|v| (v - 0.5) * (v - 0.5)).sum::<f32>() / 4.0 - 1.0).abs() < 1e-5);
    }

    #[test]
    fn attention_over_one_token_returns_its_value() {
        // One token attends only to itself: the context is its value vector.
        let (hidden, heads) = (4, 2);
        let qkv = [0.3, -1.0, 2.0, 0.5, 1.0, 1.0, 1.0, 1.0, 7.0, 8.0, 9.0, 10.0];
        let mut ctx = [0.0; 4];
        attention(&qkv, 1, hidden, heads, &mut ctx, &mut AttentionScratch::default());
        assert_eq!(ctx, [7.0, 8.0, 9.0, 10.0]);
    }

    /// The plain loops the blocked kernel must reproduce bit for bit.
    fn naive_attention(qkv: &[f32], len: usize, hidden: usize, heads: usize) -> Vec<f32> {
        let (dh, stride) = (hidden / heads, 3 * hidden);
        let scale = 1.0 / (dh as f32).sqrt();
        let mut ctx = vec![0f32; len * hidden];
        for h in 0..heads {
            for t in 0..len {
                let mut scores: Vec<f32> = (0..len)
                    .map(|j| {
                        (0..dh).fold(0.0, |a, d| {
                            a + qkv[t * stride + h * dh + d] * scale * qkv[j * stride + hidden + h * dh + d]
                        })
                    })
                    .collect();
                softmax(&mut scores);
                for x in 0..dh {
                    ctx[t * hidden + h * dh + x] =
                        (0..len).fold(0.0, |a, j| a + scores[j] * qkv[j * stride + 2 * hidden + h * dh + x]);
                }
            }
        }
        ctx
    }

    #[test]
    fn blocked_attention_equals_the_plain_loops_on_ragged_shapes() {
        let mut seed = 17u64;
        // Head sizes on and off the KB block, lengths on and off QB and KB.
        for &(len, hidden, heads) in &[(1, 64, 2), (3, 64, 2), (5, 48, 2), (16, 96, 3), (17, 64, 1), (37, 384, 12)] {
            let qkv: Vec<f32> = (0..len * 3 * hidden)
                .map(|_| (crate::rng::splitmix64(&mut seed) >> 40) as f32 / (1u64 << 24) as f32 * 4.0 - 2.0)
                .collect();
            let mut ctx = vec![f32::NAN; len * hidden];
            let mut scratch = AttentionScratch::default();
            attention(&qkv, len, hidden, heads, &mut ctx, &mut scratch);
            assert_eq!(ctx, naive_attention(&qkv, len, hidden, heads), "{len} tokens, {hidden}/{heads}");
            // The scratch is reused: a shorter sequence after a longer one.
            attention(&qkv[..3 * hidden], 1, hidden, heads, &mut ctx[..hidden], &mut scratch);
            assert_eq!(&ctx[..hidden], &naive_attention(&qkv[..3 * hidden], 1, hidden, heads)[..]);
        }
    }
}
