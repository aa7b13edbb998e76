//! A projection to fewer dimensions, fitted on the passage vectors (their
//! principal subspace) and applied to both sides, passages and queries: the
//! token table's optional reduced dimension. A query's score against every
//! passage loses the same `q . mean` term whether or not the vectors are
//! centred, so vectors are projected as they are.

use anyhow::{bail, Result};

use crate::rng::Rng;

pub struct Projection {
    pub from: usize,
    pub to: usize,
    /// `to` orthonormal rows of `from` values.
    pub rows: Vec<f32>,
}

impl Projection {
    /// The top-`to` principal subspace of `vectors` (each `from` long), by
    /// subspace iteration on their covariance; deterministic given `seed`.
    pub fn fit(vectors: &[Vec<f32>], from: usize, to: usize, seed: u64) -> Result<Self> {
        if to == 0 || to > from || vectors.len() < 2 {
            bail!("a projection from {from} to {to} dimensions needs 0 < {to} <= {from} and at least 2 vectors");
        }
        if let Some(v) = vectors.iter().find(|v| v.len() != from) {
            bail!("a vector of {} values among vectors of {from}", v.len());
        }
        let n = vectors.len() as f64;
        let mut mean = vec![0f64; from];
        vectors.iter().for_each(|v| mean.iter_mut().zip(v).for_each(|(m, &x)| *m += x as f64 / n));
        let mut cov = vec![0f64; from * from];
        let mut c = vec![0f64; from];
        for v in vectors {
            c.iter_mut().zip(v.iter().zip(&mean)).for_each(|(c, (&x, m))| *c = x as f64 - m);
            for i in 0..from {
                let ci = c[i] / n;
                cov[i * from..(i + 1) * from].iter_mut().zip(&c).for_each(|(a, &cj)| *a += ci * cj);
            }
        }
        // Subspace iteration: Q <- orth(C Q), `to` columns stored as rows.
        let mut rng = Rng::derive(seed, "projection", 0);
        let mut q: Vec<f64> = (0..to * from).map(|_| rng.normal() as f64).collect();
        orthonormalise(&mut q, from)?;
        for _ in 0..ITERATIONS {
            let mut z = vec![0f64; to * from];
            for (zr, qr) in z.chunks_mut(from).zip(q.chunks(from)) {
                for (i, zi) in zr.iter_mut().enumerate() {
                    *zi = cov[i * from..(i + 1) * from].iter().zip(qr).map(|(a, b)| a * b).sum();
                }
            }
            orthonormalise(&mut z, from)?;
            q = z;
        }
        Ok(Self { from, to, rows: q.into_iter().map(|x| x as f32).collect() })
    }

    /// `v` in the reduced space.
    pub fn apply(&self, v: &[f32]) -> Vec<f32> {
        self.rows.chunks(self.from).map(|r| r.iter().zip(v).map(|(a, b)| a * b).sum()).collect()
    }

    /// Each `from`-long row of `flat`, projected.
    pub fn apply_rows(&self, flat: &[f32]) -> Vec<f32> {
        flat.chunks(self.from).flat_map(|v| self.apply(v)).collect()
    }
}

/// Enough for the leading subspace of a 384-dim covariance to settle.
const ITERATIONS: usize = 60;

/// Gram-Schmidt over rows of `width` values, twice for stability.
fn orthonormalise(rows: &mut [f64], width: usize) -> Result<()> {
    let k = rows.len() / width;
    for _ in 0..2 {
        for i in 0..k {
            for j in 0..i {
                let (done, rest) = rows.split_at_mut(i * width);
                let (rj, ri) = (&done[j * width..(j + 1) * width], &mut rest[..width]);
                let d: f64 = ri.iter().zip(rj).map(|(a, b)| a * b).sum();
                ri.iter_mut().zip(rj).for_each(|(a, b)| *a -= d * b);
            }
            let r = &mut rows[i * width..(i + 1) * width];
            let norm = r.iter().map(|x| x * x).sum::<f64>().sqrt();
            if norm < 1e-12 {
                bail!("the vectors span fewer than {k} dimensions");
            }
            r.iter_mut().for_each(|x| *x /= norm);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_the_subspace_the_vectors_vary_in() {
        // Vectors of 6 dims that vary along dims 1 and 4 (widely) and 2 (a little).
        let mut rng = Rng::derive(1, "t", 0);
        let vs: Vec<Vec<f32>> = (0..500)
            .map(|_| {
                let mut v = vec![0.5f32; 6];
                v[1] += 3.0 * rng.normal();
                v[4] += 2.0 * rng.normal();
                v[2] += 0.1 * rng.normal();
                v
            })
            .collect();
        let p = Projection::fit(&vs, 6, 2, 9).unwrap();
        for r in p.rows.chunks(6) {
            let inside = r[1] * r[1] + r[4] * r[4];
            assert!(inside > 0.999, "a row outside dims 1 and 4: {r:?}");
        }
        // Dot products within the subspace survive the projection.
        let (a, b) = (vec![0.0, 1.0, 0.0, 0.0, 2.0, 0.0], vec![0.0, -1.0, 0.0, 0.0, 1.0, 0.0]);
        let d: f32 = p.apply(&a).iter().zip(p.apply(&b)).map(|(x, y)| x * y).sum();
        assert!((d - 1.0).abs() < 1e-3, "{d}");
        assert_eq!(p.apply_rows(&[a, b].concat()).len(), 4);
        assert!(Projection::fit(&vs, 6, 7, 9).is_err());
        assert!(Projection::fit(&vs[..1], 6, 2, 9).is_err());
        assert!(Projection::fit(&[vec![1.0; 5], vec![0.0; 6]], 6, 2, 9).is_err());
    }
}
