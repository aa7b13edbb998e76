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
    let max = row.iter().fold(f32::NEG_INFINITY, |a, &b| a.max(b));
    // Separate passes: the exp loop vectorises, the sum keeps eight lanes.
    for v in row.iter_mut() {
        *v = exp(*v - max);
    }
    let inv = 1.0 / sum(row);
    for v in row.iter_mut() {
        *v *= inv;
    }
}

/// Scratch for [`attention`]: one head's keys transposed and values packed.
#[derive(Default)]
pub struct AttentionScratch {
    keys_t: Vec<f32>,
    values: Vec<f32>,
    scores: Vec<f32>,
}

/// Self-attention of one sequence. `qkv`: `[len, 3 * hidden]` (queries, keys,
/// values side by side); `ctx`: `[len, hidden]` out. Per head the keys are
/// transposed (`[dh, len]`) and the values packed (`[len, dh]`), so both
/// products run as unit-stride multiply-adds over whole rows.
pub fn attention(qkv: &[f32], len: usize, hidden: usize, heads: usize, ctx: &mut [f32], s: &mut AttentionScratch) {
    let dh = hidden / heads;
    let scale = 1.0 / (dh as f32).sqrt();
    let stride = 3 * hidden;
    s.keys_t.resize(dh * len, 0.0);
    s.values.resize(len * dh, 0.0);
    s.scores.resize(len, 0.0);
    for h in 0..heads {
        for t in 0..len {
            let row = &qkv[t * stride..][..stride];
            for d in 0..dh {
                s.keys_t[d * len + t] = row[hidden + h * dh + d];
            }
            s.values[t * dh..][..dh].copy_from_slice(&row[2 * hidden + h * dh..][..dh]);
        }
        for t in 0..len {
            let q = &qkv[t * stride + h * dh..][..dh];
            let scores = &mut s.scores[..len];
            scores.fill(0.0);
            for (d, &qd) in q.iter().enumerate() {
                let qd = qd * scale;
                for (sc, k) in scores.iter_mut().zip(&s.keys_t[d * len..][..len]) {
                    *sc += qd * k;
                }
            }
            softmax(scores);
            let out = &mut ctx[t * hidden + h * dh..][..dh];
            out.fill(0.0);
            for (&p, v) in scores.iter().zip(s.values.chunks_exact(dh)) {
                for (o, x) in out.iter_mut().zip(v) {
                    *o += p * x;
                }
            }
        }
    }
}

/// Sum with eight running lanes, so it vectorises without fast-math.
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
}
