//! Losses: SFT cross-entropy and the GRPO objective.

use candle_core::{D, Result, Tensor};
use serde::Deserialize;

use super::batch::Sequence;

/// How per-token losses become one number.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum LossAggregation {
    /// Mean over every completion token of the batch (DAPO).
    TokenMean,
    /// Mean over sequences of each sequence's token mean (original GRPO).
    SeqMeanTokenMean,
    /// Mean over sequences of each sequence's token sum divided by a
    /// constant, the generation budget (Dr. GRPO).
    SeqMeanTokenSumNorm,
}

/// Estimator of KL(π‖π_ref) per token.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum KlEstimator {
    /// `log π − log π_ref`.
    K1,
    /// `exp(log π_ref − log π) − (log π_ref − log π) − 1` (unbiased, ≥ 0).
    K3,
}

/// Denominators of the whole batch, so that micro-batches accumulate to
/// the same loss as one pass over the batch.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Totals {
    pub tokens: f64,
    pub sequences: f64,
}

impl Totals {
    /// The totals of the padded batch of `sequences`, without building it.
    pub fn of_sequences(sequences: &[Sequence]) -> Self {
        let targets: usize = sequences.iter().map(Sequence::target_count).sum();
        Self {
            tokens: (targets as f64).max(1.0),
            sequences: sequences.len() as f64,
        }
    }

    pub fn of(mask: &Tensor) -> Result<Self> {
        Ok(Self {
            tokens: f64::from(mask.sum_all()?.to_scalar::<f32>()?).max(1.0),
            sequences: mask.dim(0)? as f64,
        })
    }
}

/// Aggregates per-token values `[B, T]` under `mask` `[B, T]`; `norm` is the
/// divisor of `SeqMeanTokenSumNorm`.
pub fn aggregate(
    values: &Tensor,
    mask: &Tensor,
    mode: LossAggregation,
    norm: f64,
    totals: Totals,
) -> Result<Tensor> {
    let masked = (values * mask)?;
    match mode {
        LossAggregation::TokenMean => masked.sum_all()? / totals.tokens,
        LossAggregation::SeqMeanTokenMean => {
            let per_seq = masked.sum(D::Minus1)?;
            let lens = mask.sum(D::Minus1)?.clamp(1.0, f64::MAX)?;
            (per_seq / lens)?.sum_all()? / totals.sequences.max(1.0)
        }
        LossAggregation::SeqMeanTokenSumNorm => {
            (masked.sum(D::Minus1)? / norm.max(1.0))?.sum_all()? / totals.sequences.max(1.0)
        }
    }
}

/// SFT: mean negative log-likelihood of the completion tokens.
pub fn sft_loss(logprobs: &Tensor, mask: &Tensor, totals: Totals) -> Result<Tensor> {
    aggregate(
        &logprobs.neg()?,
        mask,
        LossAggregation::TokenMean,
        1.0,
        totals,
    )
}

/// Group-relative advantages: reward minus the group mean, divided by the
/// group's standard deviation when `scale` (GRPO) or not (Dr. GRPO).
pub fn advantages(rewards: &[f64], scale: bool) -> Vec<f64> {
    let n = rewards.len().max(1) as f64;
    let mean = rewards.iter().sum::<f64>() / n;
    let var = rewards.iter().map(|r| (r - mean).powi(2)).sum::<f64>() / n;
    let std = var.sqrt();
    rewards
        .iter()
        .map(|r| {
            if scale {
                (r - mean) / (std + 1e-6)
            } else {
                r - mean
            }
        })
        .collect()
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct GrpoObjective {
    pub clip_low: f64,
    pub clip_high: f64,
    pub kl_beta: f64,
    pub kl_estimator: KlEstimator,
    pub aggregation: LossAggregation,
    /// Divisor of `SeqMeanTokenSumNorm`.
    pub norm_tokens: f64,
}

/// Scalars describing one GRPO loss evaluation.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct GrpoStats {
    /// Share of completion tokens whose ratio was clipped.
    pub clip_fraction: f64,
    /// Mean per-token KL estimate to the reference (0 without one).
    pub kl: f64,
    /// Mean |ratio − 1|.
    pub ratio_deviation: f64,
}

/// The clipped policy-gradient loss. `logprobs` carries gradients; `old`
/// (the policy that sampled, recomputed by the learner) and `reference` do
/// not. Shapes: `[B, T]`; `advantages`: `[B]`.
pub fn grpo_loss(
    logprobs: &Tensor,
    old: &Tensor,
    reference: Option<&Tensor>,
    advantages: &Tensor,
    mask: &Tensor,
    objective: &GrpoObjective,
    totals: Totals,
) -> Result<(Tensor, GrpoStats)> {
    let ratio = (logprobs - old)?.exp()?;
    let adv = advantages.unsqueeze(1)?.broadcast_as(ratio.shape())?;
    let unclipped = (&ratio * &adv)?.neg()?;
    let clipped_ratio = ratio.clamp(1.0 - objective.clip_low, 1.0 + objective.clip_high)?;
    let clipped = (&clipped_ratio * &adv)?.neg()?;
    let mut per_token = unclipped.maximum(&clipped)?;
    let mut kl_mean = 0.0;
    let count = mask.sum_all()?.to_scalar::<f32>()?.max(1.0) as f64;
    if let Some(reference) = reference {
        let kl = match objective.kl_estimator {
            KlEstimator::K1 => (logprobs - reference)?,
            KlEstimator::K3 => {
                let d = (reference - logprobs)?;
                ((d.exp()? - &d)? - 1.0)?
            }
        };
        kl_mean = f64::from((&kl.detach() * mask)?.sum_all()?.to_scalar::<f32>()?) / count;
        if objective.kl_beta > 0.0 {
            per_token = (per_token + (kl * objective.kl_beta)?)?;
        }
    }
    let loss = aggregate(
        &per_token,
        mask,
        objective.aggregation,
        objective.norm_tokens,
        totals,
    )?;
    let ratio_d = ratio.detach();
    let clipped_tokens = ratio_d
        .ne(&clipped_ratio.detach())?
        .to_dtype(candle_core::DType::F32)?;
    let clip_fraction = f64::from((clipped_tokens * mask)?.sum_all()?.to_scalar::<f32>()?) / count;
    let deviation = f64::from(
        ((ratio_d - 1.0)?.abs()? * mask)?
            .sum_all()?
            .to_scalar::<f32>()?,
    ) / count;
    Ok((
        loss,
        GrpoStats {
            clip_fraction,
            kl: kl_mean,
            ratio_deviation: deviation,
        },
    ))
}

#[cfg(test)]
mod tests {
    use candle_core::Device;

    use super::*;

    fn t(rows: &[&[f32]]) -> Tensor {
        let width = rows[0].len();
        let flat: Vec<f32> = rows.iter().flat_map(|r| r.iter().copied()).collect();
        Tensor::from_vec(flat, (rows.len(), width), &Device::Cpu).unwrap()
    }

    fn scalar(x: &Tensor) -> f64 {
        f64::from(x.to_scalar::<f32>().unwrap())
    }

    #[test]
    fn advantages_are_centred_and_optionally_scaled() {
        let a = advantages(&[1.0, 0.0, 0.0, 1.0], true);
        assert!(
            a.iter()
                .zip([1.0, -1.0, -1.0, 1.0])
                .all(|(x, y)| (x - y).abs() < 1e-5),
            "{a:?}"
        );
        let b = advantages(&[1.0, 0.0, 0.0, 0.0], false);
        assert_eq!(b, vec![0.75, -0.25, -0.25, -0.25]);
        assert_eq!(advantages(&[0.5, 0.5], true), vec![0.0, 0.0]);
    }

    /// Two sequences: lengths 2 and 1 (mask), on-policy (ratio 1).
    /// Per-token loss is −A: seq 0 has A = 1, seq 1 has A = −1.
    #[test]
    fn on_policy_loss_matches_hand_computation_for_each_aggregation() {
        let logp = t(&[&[-1.0, -2.0], &[-0.5, -9.0]]);
        let mask = t(&[&[1.0, 1.0], &[1.0, 0.0]]);
        let adv = Tensor::new(&[1.0f32, -1.0], &Device::Cpu).unwrap();
        let objective = |aggregation| GrpoObjective {
            clip_low: 0.2,
            clip_high: 0.28,
            kl_beta: 0.0,
            kl_estimator: KlEstimator::K3,
            aggregation,
            norm_tokens: 4.0,
        };
        let totals = Totals::of(&mask).unwrap();
        let loss = |mode| {
            scalar(
                &grpo_loss(&logp, &logp, None, &adv, &mask, &objective(mode), totals)
                    .unwrap()
                    .0,
            )
        };
        // token mean: (−1 −1 +1) / 3
        assert!((loss(LossAggregation::TokenMean) - (-1.0 / 3.0)).abs() < 1e-6);
        // sequence mean of token means: (−1 + 1) / 2
        assert!(loss(LossAggregation::SeqMeanTokenMean).abs() < 1e-6);
        // sequence mean of token sums / 4: (−2/4 + 1/4) / 2
        assert!((loss(LossAggregation::SeqMeanTokenSumNorm) - (-0.125)).abs() < 1e-6);
    }

    #[test]
    fn ratios_beyond_the_clip_range_are_clipped_asymmetrically() {
        // Ratio e^0.5 ≈ 1.65 with A = 1: clipped to 1.28. Ratio e^−0.5 ≈ 0.61
        // with A = −1: clipped to 0.8, and max(−A·r, −A·clip) = 0.8.
        let old = t(&[&[-1.0], &[-1.0]]);
        let new = t(&[&[-0.5], &[-1.5]]);
        let mask = t(&[&[1.0], &[1.0]]);
        let adv = Tensor::new(&[1.0f32, -1.0], &Device::Cpu).unwrap();
        let objective = GrpoObjective {
            clip_low: 0.2,
            clip_high: 0.28,
            kl_beta: 0.0,
            kl_estimator: KlEstimator::K1,
            aggregation: LossAggregation::TokenMean,
            norm_tokens: 1.0,
        };
        let (loss, stats) = grpo_loss(
            &new,
            &old,
            None,
            &adv,
            &mask,
            &objective,
            Totals::of(&mask).unwrap(),
        )
        .unwrap();
        assert!(
            (scalar(&loss) - (-1.28 + 0.8) / 2.0).abs() < 1e-5,
            "{}",
            scalar(&loss)
        );
        assert_eq!(stats.clip_fraction, 1.0);
    }

    #[test]
    fn kl_penalty_uses_the_chosen_estimator() {
        let logp = t(&[&[-1.0]]);
        let reference = t(&[&[-1.5]]);
        let mask = t(&[&[1.0]]);
        let adv = Tensor::new(&[0.0f32], &Device::Cpu).unwrap();
        let objective = |kl_estimator| GrpoObjective {
            clip_low: 0.2,
            clip_high: 0.2,
            kl_beta: 0.1,
            kl_estimator,
            aggregation: LossAggregation::TokenMean,
            norm_tokens: 1.0,
        };
        let totals = Totals::of(&mask).unwrap();
        let (k1, s1) = grpo_loss(
            &logp,
            &logp,
            Some(&reference),
            &adv,
            &mask,
            &objective(KlEstimator::K1),
            totals,
        )
        .unwrap();
        assert!((scalar(&k1) - 0.05).abs() < 1e-6 && (s1.kl - 0.5).abs() < 1e-6);
        let (k3, _) = grpo_loss(
            &logp,
            &logp,
            Some(&reference),
            &adv,
            &mask,
            &objective(KlEstimator::K3),
            totals,
        )
        .unwrap();
        let expected = 0.1 * ((-0.5f64).exp() + 0.5 - 1.0);
        assert!((scalar(&k3) - expected).abs() < 1e-6);
    }

    #[test]
    fn sft_loss_is_the_mean_negative_log_likelihood_of_completion_tokens() {
        let logp = t(&[&[-1.0, -3.0], &[-2.0, -100.0]]);
        let mask = t(&[&[1.0, 1.0], &[1.0, 0.0]]);
        assert!(
            (scalar(&sft_loss(&logp, &mask, Totals::of(&mask).unwrap()).unwrap()) - 2.0).abs()
                < 1e-6
        );
    }
}

#[cfg(test)]
mod accumulation_tests {
    use candle_core::Device;

    use super::*;

    /// Splitting a batch in micro-batches and summing their losses gives the
    /// loss of the whole batch, in every aggregation mode.
    #[test]
    fn micro_batches_sum_to_the_full_batch_loss() {
        let values = Tensor::new(
            &[[1.0f32, 2.0, 3.0], [4.0, 5.0, 6.0], [7.0, 8.0, 9.0]],
            &Device::Cpu,
        )
        .unwrap();
        let mask = Tensor::new(
            &[[1.0f32, 1.0, 0.0], [1.0, 0.0, 0.0], [1.0, 1.0, 1.0]],
            &Device::Cpu,
        )
        .unwrap();
        let totals = Totals::of(&mask).unwrap();
        for mode in [
            LossAggregation::TokenMean,
            LossAggregation::SeqMeanTokenMean,
            LossAggregation::SeqMeanTokenSumNorm,
        ] {
            let whole = aggregate(&values, &mask, mode, 3.0, totals)
                .unwrap()
                .to_scalar::<f32>()
                .unwrap();
            let parts: f32 = [(0, 2), (2, 1)]
                .iter()
                .map(|&(start, len)| {
                    aggregate(
                        &values.narrow(0, start, len).unwrap(),
                        &mask.narrow(0, start, len).unwrap(),
                        mode,
                        3.0,
                        totals,
                    )
                    .unwrap()
                    .to_scalar::<f32>()
                    .unwrap()
                })
                .sum();
            assert!((whole - parts).abs() < 1e-5, "{mode:?}: {whole} vs {parts}");
        }
    }
}
