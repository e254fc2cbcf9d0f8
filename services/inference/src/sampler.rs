//! Sampling inside mistral.rs through a logits processor of our own: it
//! draws each token with its own seeded RNG, records the token id and its
//! natural-log probability, and leaves the engine nothing to choose.

use std::sync::{Arc, Mutex};

use candle_core::{Result, Tensor};
use mistralrs::CustomLogitsProcessor;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

/// How one completion is sampled.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Sampling {
    /// 0 is greedy.
    pub temperature: f64,
    pub top_p: f64,
    pub top_k: Option<usize>,
    pub seed: u64,
}

/// The tokens a processor chose, by position after the prompt.
pub type Record = Arc<Mutex<Vec<Option<(u32, f32)>>>>;

pub struct SeededSampler {
    sampling: Sampling,
    prompt_len: usize,
    rng: Mutex<StdRng>,
    record: Record,
}

impl SeededSampler {
    pub fn new(sampling: Sampling, prompt_len: usize) -> (Arc<Self>, Record) {
        let record: Record = Arc::default();
        let sampler = Self {
            sampling,
            prompt_len,
            rng: Mutex::new(StdRng::seed_from_u64(sampling.seed)),
            record: record.clone(),
        };
        (Arc::new(sampler), record)
    }
}

/// Picks a token from `logits` and returns it with its log-probability under
/// `softmax(logits / T)` (before top-k/top-p truncation, as the learner
/// computes it).
pub fn choose(logits: &[f32], sampling: &Sampling, rng: &mut StdRng) -> (u32, f32) {
    let greedy = sampling.temperature <= 0.0;
    let t = if greedy { 1.0 } else { sampling.temperature };
    let scaled: Vec<f64> = logits.iter().map(|&l| f64::from(l) / t).collect();
    let max = scaled.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    let log_z = max + scaled.iter().map(|s| (s - max).exp()).sum::<f64>().ln();
    let logp = |i: usize| (scaled[i] - log_z) as f32;
    if greedy {
        let best = (0..scaled.len())
            .max_by(|&a, &b| scaled[a].total_cmp(&scaled[b]))
            .unwrap_or(0);
        return (best as u32, logp(best));
    }
    // Candidates by decreasing probability, cut by top-k and top-p.
    let mut order: Vec<usize> = (0..scaled.len())
        .filter(|&i| scaled[i].is_finite())
        .collect();
    order.sort_unstable_by(|&a, &b| scaled[b].total_cmp(&scaled[a]));
    if let Some(k) = sampling.top_k.filter(|k| *k > 0) {
        order.truncate(k.max(1));
    }
    let probs: Vec<f64> = order.iter().map(|&i| (scaled[i] - log_z).exp()).collect();
    let mut keep = probs.len();
    if sampling.top_p < 1.0 {
        let mut cumulative = 0.0;
        for (n, p) in probs.iter().enumerate() {
            cumulative += p;
            if cumulative >= sampling.top_p {
                keep = n + 1;
                break;
            }
        }
    }
    let mass: f64 = probs[..keep].iter().sum();
    let mut draw = rng.random::<f64>() * mass;
    let mut chosen = order[keep - 1];
    for (n, p) in probs[..keep].iter().enumerate() {
        if draw < *p {
            chosen = order[n];
            break;
        }
        draw -= p;
    }
    (chosen as u32, logp(chosen))
}

impl CustomLogitsProcessor for SeededSampler {
    fn apply(&self, logits: &Tensor, context: &[u32]) -> Result<Tensor> {
        let values: Vec<f32> = logits.to_dtype(candle_core::DType::F32)?.to_vec1()?;
        let position = context.len().saturating_sub(self.prompt_len);
        let mut record = self.record.lock().unwrap_or_else(|p| p.into_inner());
        // The engine may ask twice for one position; answer the same.
        let (id, _) = match record.get(position).copied().flatten() {
            Some(done) => done,
            None => {
                let mut rng = self.rng.lock().unwrap_or_else(|p| p.into_inner());
                let choice = choose(&values, &self.sampling, &mut rng);
                if record.len() <= position {
                    record.resize(position + 1, None);
                }
                record[position] = Some(choice);
                choice
            }
        };
        let mut forced = vec![f32::NEG_INFINITY; values.len()];
        forced[id as usize] = 0.0;
        Tensor::from_vec(forced, values.len(), logits.device())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn greedy_takes_the_largest_logit_and_reports_its_log_probability() {
        let logits = [1.0f32, 3.0, 2.0];
        let s = Sampling {
            temperature: 0.0,
            top_p: 1.0,
            top_k: None,
            seed: 0,
        };
        let (id, lp) = choose(&logits, &s, &mut StdRng::seed_from_u64(0));
        assert_eq!(id, 1);
        let z: f64 = logits.iter().map(|l| f64::from(*l).exp()).sum();
        assert!((f64::from(lp) - (3.0 - z.ln())).abs() < 1e-6);
    }

    #[test]
    fn sampling_follows_the_distribution_and_is_reproducible() {
        let logits = [0.0f32, (3.0f32).ln()]; // p = 0.25, 0.75
        let s = Sampling {
            temperature: 1.0,
            top_p: 1.0,
            top_k: None,
            seed: 42,
        };
        let mut rng = StdRng::seed_from_u64(42);
        let draws: Vec<u32> = (0..4000).map(|_| choose(&logits, &s, &mut rng).0).collect();
        let ones = draws.iter().filter(|d| **d == 1).count() as f64 / 4000.0;
        assert!((ones - 0.75).abs() < 0.03, "{ones}");
        let mut again = StdRng::seed_from_u64(42);
        let replay: Vec<u32> = (0..4000)
            .map(|_| choose(&logits, &s, &mut again).0)
            .collect();
        assert_eq!(draws, replay);
    }

    #[test]
    fn top_k_and_top_p_restrict_the_candidates() {
        let logits = [5.0f32, 4.0, 0.0, -1.0];
        let mut rng = StdRng::seed_from_u64(1);
        let k = Sampling {
            temperature: 1.0,
            top_p: 1.0,
            top_k: Some(2),
            seed: 1,
        };
        assert!((0..500).all(|_| choose(&logits, &k, &mut rng).0 < 2));
        let p = Sampling {
            temperature: 1.0,
            top_p: 0.5,
            top_k: None,
            seed: 1,
        };
        assert!((0..500).all(|_| choose(&logits, &p, &mut rng).0 == 0));
    }
}
