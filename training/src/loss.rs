//! The loss terms over candidate lists. Scores are [queries, candidates];
//! `mask` is 1 where a candidate counts and 0 where it is hidden (a passage
//! relevant to the query other than its own positive). Hidden entries get a
//! large negative logit instead of -inf, so 0 * log 0 terms stay finite.

use anyhow::Result;
use candle_core::{Tensor, D};

const HIDDEN_LOGIT: f64 = -1e4;

/// log softmax(scores / tau) with hidden candidates pushed out.
pub fn log_probs(scores: &Tensor, tau: f64, mask: &Tensor) -> Result<Tensor> {
    let logits = (scores / tau)?.broadcast_mul(mask)?.broadcast_add(&((1.0 - mask)? * HIDDEN_LOGIT)?)?;
    Ok(candle_nn::ops::log_softmax(&logits, D::Minus1)?)
}

/// Contrastive: mean over queries of -log P(positive | q); `targets` `[b]` u32
/// is the positive's column.
pub fn contrastive(scores: &Tensor, tau: f64, mask: &Tensor, targets: &Tensor) -> Result<Tensor> {
    let lp = log_probs(scores, tau, mask)?;
    Ok(lp.gather(&targets.unsqueeze(1)?, 1)?.neg()?.mean_all()?)
}

/// KL(P_teacher || P_student), mean over queries; the teacher is detached, so
/// only the student learns from this term.
pub fn kl(teacher: &Tensor, tau_t: f64, student: &Tensor, tau_s: f64, mask: &Tensor) -> Result<Tensor> {
    let lt = log_probs(&teacher.detach(), tau_t, mask)?;
    let ls = log_probs(student, tau_s, mask)?;
    Ok((lt.exp()? * (lt - ls)?)?.sum(D::Minus1)?.mean_all()?)
}

/// Mean over rows of the squared Euclidean distance between `student` and a
/// (detached) `teacher`, both [rows, dim]: embedding distillation.
pub fn squared_distance(student: &Tensor, teacher: &Tensor) -> Result<Tensor> {
    Ok((student - teacher.detach())?.sqr()?.sum(D::Minus1)?.mean_all()?)
}

/// KL between two row-stochastic matrices given as probabilities (teacher)
/// and log-probabilities (student), mean over rows.
pub fn kl_rows(teacher_probs: &Tensor, student_log_probs: &Tensor) -> Result<Tensor> {
    let t = teacher_probs.detach().clamp(1e-12, 1.0)?;
    Ok((t.clone() * (t.log()? - student_log_probs)?)?.sum(D::Minus1)?.mean_all()?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::Device;

    #[test]
    fn contrastive_and_kl_match_hand_computation() -> Result<()> {
        let d = Device::Cpu;
        let s = Tensor::new(&[[2.0f32, 1.0, 0.0], [0.0, 0.0, 5.0]], &d)?;
        let mask = Tensor::new(&[[1.0f32, 1.0, 1.0], [1.0, 1.0, 0.0]], &d)?;
        let t = Tensor::new(&[0u32, 1], &d)?;
        let got = contrastive(&s, 1.0, &mask, &t)?.to_scalar::<f32>()?;
        let row0 = -(2.0f32.exp() / (2.0f32.exp() + 1.0f32.exp() + 1.0)).ln();
        let row1 = -(0.5f32).ln(); // the hidden 5.0 does not count
        assert!((got - (row0 + row1) / 2.0).abs() < 1e-5, "{got}");
        // KL of a distribution with itself is zero; with another it is positive.
        assert!(kl(&s, 1.0, &s, 1.0, &mask)?.to_scalar::<f32>()?.abs() < 1e-6);
        let other = Tensor::new(&[[0.0f32, 1.0, 2.0], [1.0, 0.0, -3.0]], &d)?;
        assert!(kl(&s, 1.0, &other, 1.0, &mask)?.to_scalar::<f32>()? > 0.1);
        Ok(())
    }

    #[test]
    fn kl_does_not_train_the_teacher() -> Result<()> {
        let d = Device::Cpu;
        let teacher = candle_core::Var::new(&[[1.0f32, 0.0]], &d)?;
        let student = candle_core::Var::new(&[[0.0f32, 1.0]], &d)?;
        let mask = Tensor::ones((1, 2), candle_core::DType::F32, &d)?;
        let g = kl(teacher.as_tensor(), 1.0, student.as_tensor(), 1.0, &mask)?.backward()?;
        assert!(g.get(teacher.as_tensor()).is_none());
        assert!(g.get(student.as_tensor()).is_some());
        Ok(())
    }
}
