//! The encoder's memory-bound steps, layer norm, the attention softmax and
//! GELU, as fused CPU kernels with their own backward passes.
//!
//! Built from candle ops, a layer norm is ~9 passes over the activations
//! forward and ~20 backward, and the attention softmax the same over the
//! [b, heads, len, len] scores, 6x larger than the hidden states at 192
//! tokens; on a CPU those passes, not the matmuls, were most of a training
//! step. Here each is one or two passes per direction. Other devices and
//! dtypes take the op-by-op reference (`*_reference`), which the tests also
//! hold the kernels to.

use candle_core::{CpuStorage, CustomOp1, CustomOp2, CustomOp3, DType, Layout, Result, Shape, Tensor, D};
use rayon::prelude::*;

/// `softmax(scores * scale + bias)` over the last dim. `scores` is
/// [b, heads, q, k]; `bias` is the additive key mask, [b, 1, 1, k], and gets
/// no gradient.
pub fn attention_softmax(scores: &Tensor, bias: &Tensor, scale: f64) -> Result<Tensor> {
    let (b, _, _, k) = scores.dims4()?;
    if bias.dims() != [b, 1, 1, k] {
        candle_core::bail!("attention bias {:?} does not match scores {:?}", bias.dims(), scores.dims());
    }
    if !fused(scores) {
        return attention_softmax_reference(scores, bias, scale);
    }
    scores.contiguous()?.apply_op2(&bias.contiguous()?, AttentionSoftmax { scale: scale as f32 })
}

pub fn attention_softmax_reference(scores: &Tensor, bias: &Tensor, scale: f64) -> Result<Tensor> {
    candle_nn::ops::softmax(&(scores * scale)?.broadcast_add(bias)?, D::Minus1)
}

/// Layer norm over the last dim (population variance, as BERT).
pub fn layer_norm(x: &Tensor, w: &Tensor, b: &Tensor, eps: f64) -> Result<Tensor> {
    let h = x.dim(D::Minus1)?;
    if w.dims() != [h] || b.dims() != [h] {
        candle_core::bail!("layer norm weights {:?}/{:?} do not match hidden size {h}", w.dims(), b.dims());
    }
    if !fused(x) {
        return layer_norm_reference(x, w, b, eps);
    }
    x.contiguous()?.apply_op3(w, b, LayerNorm { eps: eps as f32 })
}

pub fn layer_norm_reference(x: &Tensor, w: &Tensor, b: &Tensor, eps: f64) -> Result<Tensor> {
    let mean = x.mean_keepdim(D::Minus1)?;
    let xc = x.broadcast_sub(&mean)?;
    let var = xc.sqr()?.mean_keepdim(D::Minus1)?;
    let xn = xc.broadcast_div(&(var + eps)?.sqrt()?)?;
    xn.broadcast_mul(w)?.broadcast_add(b)
}

/// GELU with the exact (erf) form, as BERT.
pub fn gelu(x: &Tensor) -> Result<Tensor> {
    if !fused(x) {
        return x.gelu_erf();
    }
    x.contiguous()?.apply_op1(Gelu)
}

fn fused(x: &Tensor) -> bool {
    x.device().is_cpu() && x.dtype() == DType::F32
}

/// The f32 data of a contiguous CPU tensor.
fn data<'a>(s: &'a CpuStorage, l: &Layout) -> Result<&'a [f32]> {
    match l.contiguous_offsets() {
        Some((start, end)) => Ok(&s.as_slice::<f32>()?[start..end]),
        None => candle_core::bail!("fused op needs a contiguous input"),
    }
}

fn output(v: Vec<f32>, l: &Layout) -> (CpuStorage, Shape) {
    (CpuStorage::F32(v), l.shape().clone())
}

/// The length of the last dim: the row every kernel works along.
fn row_len(l: &Layout) -> usize {
    l.shape().dims().last().copied().unwrap_or(1)
}

/// A new buffer shaped like `a`, filled in parallel, `width` elements at a
/// time, by `f(chunk index, out, a's chunk)`.
fn map_chunks(a: &[f32], width: usize, f: impl Fn(usize, &mut [f32], &[f32]) + Sync) -> Vec<f32> {
    let mut out = vec![0f32; a.len()];
    out.par_chunks_mut(width).zip(a.par_chunks(width)).enumerate().for_each(|(i, (o, a))| f(i, o, a));
    out
}

/// As `map_chunks`, over two same-shaped inputs: `f(out, a's chunk, b's chunk)`.
fn map_chunks2(a: &[f32], b: &[f32], width: usize, f: impl Fn(&mut [f32], &[f32], &[f32]) + Sync) -> Vec<f32> {
    let mut out = vec![0f32; a.len()];
    out.par_chunks_mut(width).zip(a.par_chunks(width).zip(b.par_chunks(width))).for_each(|(o, (a, b))| f(o, a, b));
    out
}

struct AttentionSoftmax {
    scale: f32,
}

impl CustomOp2 for AttentionSoftmax {
    fn name(&self) -> &'static str {
        "attention-softmax"
    }

    fn cpu_fwd(&self, s1: &CpuStorage, l1: &Layout, s2: &CpuStorage, l2: &Layout) -> Result<(CpuStorage, Shape)> {
        let (scores, bias) = (data(s1, l1)?, data(s2, l2)?);
        let (_, heads, q, k) = l1.shape().dims4()?;
        let out = map_chunks(scores, k, |row, y, s| {
            let mask = &bias[row / (heads * q) * k..][..k];
            let mut max = f32::NEG_INFINITY;
            for ((y, &s), &m) in y.iter_mut().zip(s).zip(mask) {
                *y = s * self.scale + m;
                max = max.max(*y);
            }
            let mut sum = 0f32;
            for y in y.iter_mut() {
                *y = (*y - max).exp();
                sum += *y;
            }
            y.iter_mut().for_each(|y| *y /= sum);
        });
        Ok(output(out, l1))
    }

    fn bwd(&self, _: &Tensor, _: &Tensor, res: &Tensor, grad: &Tensor) -> Result<(Option<Tensor>, Option<Tensor>)> {
        let dx = res.apply_op2_no_bwd(&grad.contiguous()?, &SoftmaxGrad { scale: self.scale })?;
        Ok((Some(dx), None))
    }
}

/// d scores = scale * y * (g - sum(g * y)), row by row; args (y, g).
struct SoftmaxGrad {
    scale: f32,
}

impl CustomOp2 for SoftmaxGrad {
    fn name(&self) -> &'static str {
        "attention-softmax-grad"
    }

    fn cpu_fwd(&self, s1: &CpuStorage, l1: &Layout, s2: &CpuStorage, l2: &Layout) -> Result<(CpuStorage, Shape)> {
        let (y, g) = (data(s1, l1)?, data(s2, l2)?);
        let out = map_chunks2(y, g, row_len(l1), |d, y, g| {
            let dot: f32 = y.iter().zip(g).map(|(y, g)| y * g).sum();
            for ((d, &y), &g) in d.iter_mut().zip(y).zip(g) {
                *d = self.scale * y * (g - dot);
            }
        });
        Ok(output(out, l1))
    }
}

struct LayerNorm {
    eps: f32,
}

/// Mean and 1/std of one row.
fn moments(x: &[f32], eps: f32) -> (f32, f32) {
    let n = x.len() as f32;
    let mean = x.iter().sum::<f32>() / n;
    let var = x.iter().map(|v| (v - mean) * (v - mean)).sum::<f32>() / n;
    (mean, 1.0 / (var + eps).sqrt())
}

impl CustomOp3 for LayerNorm {
    fn name(&self) -> &'static str {
        "layer-norm"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
        s3: &CpuStorage,
        l3: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let (x, w, b) = (data(s1, l1)?, data(s2, l2)?, data(s3, l3)?);
        let out = map_chunks(x, w.len(), |_, y, x| {
            let (mean, rstd) = moments(x, self.eps);
            for (((y, &x), &w), &b) in y.iter_mut().zip(x).zip(w).zip(b) {
                *y = (x - mean) * rstd * w + b;
            }
        });
        Ok(output(out, l1))
    }

    fn bwd(
        &self,
        x: &Tensor,
        w: &Tensor,
        _: &Tensor,
        _: &Tensor,
        grad: &Tensor,
    ) -> Result<(Option<Tensor>, Option<Tensor>, Option<Tensor>)> {
        let grad = grad.contiguous()?;
        let dx = x.apply_op3_no_bwd(w, &grad, &LayerNormGrad { eps: self.eps })?;
        let dwb = x.apply_op2_no_bwd(&grad, &LayerNormParamGrad { eps: self.eps })?;
        Ok((Some(dx), Some(dwb.get(0)?), Some(dwb.get(1)?)))
    }
}

/// dx = rstd * (g*w - mean(g*w) - xhat * mean(g*w*xhat)), row by row; args (x, w, g).
struct LayerNormGrad {
    eps: f32,
}

impl CustomOp3 for LayerNormGrad {
    fn name(&self) -> &'static str {
        "layer-norm-grad"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
        s3: &CpuStorage,
        l3: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let (x, w, g) = (data(s1, l1)?, data(s2, l2)?, data(s3, l3)?);
        let h = w.len();
        let out = map_chunks2(x, g, h, |d, x, g| {
            let (mean, rstd) = moments(x, self.eps);
            let (mut m1, mut m2) = (0f32, 0f32);
            for ((&x, &g), &w) in x.iter().zip(g).zip(w) {
                m1 += g * w;
                m2 += g * w * (x - mean) * rstd;
            }
            let (m1, m2) = (m1 / h as f32, m2 / h as f32);
            for (((d, &x), &g), &w) in d.iter_mut().zip(x).zip(g).zip(w) {
                *d = rstd * (g * w - m1 - (x - mean) * rstd * m2);
            }
        });
        Ok(output(out, l1))
    }
}

/// The weight and bias gradients, stacked as [2, h]: sums over rows of
/// g * xhat and of g; args (x, g).
struct LayerNormParamGrad {
    eps: f32,
}

impl CustomOp2 for LayerNormParamGrad {
    fn name(&self) -> &'static str {
        "layer-norm-param-grad"
    }

    fn cpu_fwd(&self, s1: &CpuStorage, l1: &Layout, s2: &CpuStorage, l2: &Layout) -> Result<(CpuStorage, Shape)> {
        let (x, g) = (data(s1, l1)?, data(s2, l2)?);
        let h = row_len(l1);
        // Partial sums over blocks of rows, then added: [dw.., db..].
        let sums = x
            .par_chunks(h * 64)
            .zip(g.par_chunks(h * 64))
            .map(|(x, g)| {
                let mut acc = vec![0f32; 2 * h];
                for (x, g) in x.chunks(h).zip(g.chunks(h)) {
                    let (mean, rstd) = moments(x, self.eps);
                    for (j, (&x, &g)) in x.iter().zip(g).enumerate() {
                        acc[j] += g * (x - mean) * rstd;
                        acc[h + j] += g;
                    }
                }
                acc
            })
            .reduce(
                || vec![0f32; 2 * h],
                |mut a, b| {
                    a.iter_mut().zip(b).for_each(|(a, b)| *a += b);
                    a
                },
            );
        Ok((CpuStorage::F32(sums), Shape::from((2, h))))
    }
}

/// (Phi(x), e^(-x^2/2)): the normal CDF through erf (Abramowitz & Stegun
/// 7.1.26, |error| < 1.5e-7), whose exponential is also the density's.
fn normal_cdf(x: f32) -> (f32, f32) {
    const P: f32 = 0.327_591_1;
    const A: [f32; 5] = [0.254_829_6, -0.284_496_74, 1.421_413_7, -1.453_152_1, 1.061_405_4];
    let z = x.abs() * std::f32::consts::FRAC_1_SQRT_2;
    let e = (-z * z).exp();
    let t = 1.0 / (1.0 + P * z);
    let poly = t * (A[0] + t * (A[1] + t * (A[2] + t * (A[3] + t * A[4]))));
    let erf = (1.0 - poly * e).copysign(x);
    (0.5 * (1.0 + erf), e)
}

/// Elements per parallel task of the element-wise kernels.
const ELEMENTWISE_CHUNK: usize = 4096;

struct Gelu;

impl CustomOp1 for Gelu {
    fn name(&self) -> &'static str {
        "gelu-erf"
    }

    fn cpu_fwd(&self, s: &CpuStorage, l: &Layout) -> Result<(CpuStorage, Shape)> {
        let x = data(s, l)?;
        let out = map_chunks(x, ELEMENTWISE_CHUNK, |_, y, x| {
            y.iter_mut().zip(x).for_each(|(y, &x)| *y = x * normal_cdf(x).0);
        });
        Ok(output(out, l))
    }

    fn bwd(&self, x: &Tensor, _: &Tensor, grad: &Tensor) -> Result<Option<Tensor>> {
        Ok(Some(x.apply_op2_no_bwd(&grad.contiguous()?, &GeluGrad)?))
    }
}

/// dx = g * (Phi(x) + x * phi(x)); args (x, g).
struct GeluGrad;

impl CustomOp2 for GeluGrad {
    fn name(&self) -> &'static str {
        "gelu-erf-grad"
    }

    fn cpu_fwd(&self, s1: &CpuStorage, l1: &Layout, s2: &CpuStorage, l2: &Layout) -> Result<(CpuStorage, Shape)> {
        let (x, g) = (data(s1, l1)?, data(s2, l2)?);
        let inv_sqrt_2pi = 0.5 * std::f32::consts::FRAC_2_SQRT_PI * std::f32::consts::FRAC_1_SQRT_2;
        let out = map_chunks2(x, g, ELEMENTWISE_CHUNK, |d, x, g| {
            for ((d, &x), &g) in d.iter_mut().zip(x).zip(g) {
                let (cdf, e) = normal_cdf(x);
                *d = g * (cdf + x * e * inv_sqrt_2pi);
            }
        });
        Ok(output(out, l1))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::{Device, Var};

    fn max_diff(a: &Tensor, b: &Tensor) -> f32 {
        (a - b).unwrap().abs().unwrap().flatten_all().unwrap().max(0).unwrap().to_scalar::<f32>().unwrap()
    }

    /// Value and gradients of sum(f(args) * r) for a fixed random r.
    fn value_and_grads(
        args: &[Var],
        f: impl Fn(&[&Tensor]) -> Result<Tensor>,
        r: &Tensor,
    ) -> (Tensor, Vec<Option<Tensor>>) {
        let ts: Vec<&Tensor> = args.iter().map(|v| v.as_tensor()).collect();
        let y = f(&ts).unwrap();
        let grads = (&y * r).unwrap().sum_all().unwrap().backward().unwrap();
        (y, args.iter().map(|v| grads.get(v.as_tensor()).cloned()).collect())
    }

    #[test]
    fn layer_norm_matches_the_reference_forward_and_backward() {
        let dev = Device::Cpu;
        let x = Var::from_tensor(&(Tensor::randn(0f32, 3.0, (3, 5, 16), &dev).unwrap() + 2.0).unwrap()).unwrap();
        let w = Var::from_tensor(&Tensor::randn(1f32, 0.5, 16, &dev).unwrap()).unwrap();
        let b = Var::from_tensor(&Tensor::randn(0f32, 0.5, 16, &dev).unwrap()).unwrap();
        let r = Tensor::randn(0f32, 1.0, (3, 5, 16), &dev).unwrap();
        let args = [x, w, b];
        let (y1, g1) = value_and_grads(&args, |t| layer_norm(t[0], t[1], t[2], 1e-12), &r);
        let (y2, g2) = value_and_grads(&args, |t| layer_norm_reference(t[0], t[1], t[2], 1e-12), &r);
        assert!(max_diff(&y1, &y2) < 1e-5, "forward differs by {}", max_diff(&y1, &y2));
        for (i, (a, b)) in g1.iter().zip(&g2).enumerate() {
            let (a, b) = (a.as_ref().expect("fused grad"), b.as_ref().expect("reference grad"));
            assert_eq!(a.dims(), b.dims());
            assert!(max_diff(a, b) < 1e-4, "grad {i} differs by {}", max_diff(a, b));
            assert!(a.abs().unwrap().sum_all().unwrap().to_scalar::<f32>().unwrap() > 1e-3, "grad {i} is zero");
        }
    }

    #[test]
    fn gelu_matches_candles_erf_gelu_forward_and_backward() {
        let dev = Device::Cpu;
        let x = Var::from_tensor(&Tensor::randn(0f32, 3.0, (4, 7, 33), &dev).unwrap()).unwrap();
        let r = Tensor::randn(0f32, 1.0, (4, 7, 33), &dev).unwrap();
        let args = [x];
        let (y1, g1) = value_and_grads(&args, |t| gelu(t[0]), &r);
        let (y2, g2) = value_and_grads(&args, |t| t[0].gelu_erf(), &r);
        assert!(max_diff(&y1, &y2) < 2e-6, "forward differs by {}", max_diff(&y1, &y2));
        let (a, b) = (g1[0].as_ref().unwrap(), g2[0].as_ref().unwrap());
        assert!(max_diff(a, b) < 2e-6, "grad differs by {}", max_diff(a, b));
    }

    #[test]
    fn attention_softmax_matches_the_reference_and_masks_keys() {
        let dev = Device::Cpu;
        let (b, h, q, k) = (2, 3, 4, 6);
        let s = Var::from_tensor(&Tensor::randn(0f32, 4.0, (b, h, q, k), &dev).unwrap()).unwrap();
        // Second sequence: the last two keys are padding.
        let mask: Vec<f32> = (0..b * k).map(|i| if i >= b * k - 2 { -1e4 } else { 0.0 }).collect();
        let bias = Tensor::from_vec(mask, (b, 1, 1, k), &dev).unwrap();
        let r = Tensor::randn(0f32, 1.0, (b, h, q, k), &dev).unwrap();
        let args = [s];
        let (y1, g1) = value_and_grads(&args, |t| attention_softmax(t[0], &bias, 0.3), &r);
        let (y2, g2) = value_and_grads(&args, |t| attention_softmax_reference(t[0], &bias, 0.3), &r);
        assert!(max_diff(&y1, &y2) < 1e-6);
        let (a, b2) = (g1[0].as_ref().unwrap(), g2[0].as_ref().unwrap());
        assert!(max_diff(a, b2) < 1e-5, "grad differs by {}", max_diff(a, b2));
        let rows = y1.sum(D::Minus1).unwrap().flatten_all().unwrap().to_vec1::<f32>().unwrap();
        assert!(rows.iter().all(|s| (s - 1.0).abs() < 1e-5));
        let padded = y1.get(1).unwrap().narrow(D::Minus1, k - 2, 2).unwrap().abs().unwrap().sum_all().unwrap();
        assert!(padded.to_scalar::<f32>().unwrap() < 1e-6, "padding keys got attention");
        assert!(attention_softmax(&y1, &Tensor::zeros((b, 1, 1, k + 1), DType::F32, &dev).unwrap(), 1.0).is_err());
    }
}
