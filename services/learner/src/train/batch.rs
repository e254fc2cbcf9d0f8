//! Padded batches of prompt + completion token sequences.

use candle_core::{Device, Result, Tensor};

/// One training sequence: prompt tokens followed by completion tokens.
#[derive(Debug, Clone, PartialEq)]
pub struct Sequence {
    pub tokens: Vec<u32>,
    /// Tokens before this index are the prompt (not trained on).
    pub prompt_len: usize,
}

impl Sequence {
    pub fn completion_len(&self) -> usize {
        self.tokens.len() - self.prompt_len
    }
}

/// Right-padded token ids and, aligned with the per-token log-probs
/// (position `j` predicts token `j + 1`), a mask of completion tokens.
#[derive(Debug, Clone)]
pub struct Batch {
    /// `[B, T]` u32.
    pub ids: Tensor,
    /// `[B, T - 1]` f32: 1 where the predicted token belongs to the completion.
    pub mask: Tensor,
    /// Completion tokens per sequence.
    pub completion_lens: Vec<usize>,
}

impl Batch {
    pub fn new(sequences: &[Sequence], pad: u32, device: &Device) -> Result<Self> {
        let width = sequences
            .iter()
            .map(|s| s.tokens.len())
            .max()
            .unwrap_or(0)
            .max(2);
        let mut ids = Vec::with_capacity(sequences.len() * width);
        let mut mask = Vec::with_capacity(sequences.len() * (width - 1));
        for s in sequences {
            ids.extend(s.tokens.iter().copied());
            ids.extend(std::iter::repeat_n(pad, width - s.tokens.len()));
            for j in 0..width - 1 {
                let target = j + 1;
                let in_completion = target >= s.prompt_len.max(1) && target < s.tokens.len();
                mask.push(if in_completion { 1.0f32 } else { 0.0 });
            }
        }
        Ok(Self {
            ids: Tensor::from_vec(ids, (sequences.len(), width), device)?,
            mask: Tensor::from_vec(mask, (sequences.len(), width - 1), device)?,
            completion_lens: sequences.iter().map(Sequence::completion_len).collect(),
        })
    }

    /// Completion tokens in the batch.
    pub fn tokens(&self) -> usize {
        self.completion_lens.iter().sum()
    }

    /// Picks, from per-position values `[B, T-1]`, each sequence's completion
    /// values in order.
    pub fn completion_values(&self, values: &Tensor) -> Result<Vec<Vec<f32>>> {
        let rows: Vec<Vec<f32>> = values.to_vec2()?;
        let mask: Vec<Vec<f32>> = self.mask.to_vec2()?;
        Ok(rows
            .into_iter()
            .zip(mask)
            .map(|(r, m)| {
                r.into_iter()
                    .zip(m)
                    .filter(|(_, m)| *m > 0.0)
                    .map(|(v, _)| v)
                    .collect()
            })
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mask_marks_completion_targets_only() {
        let batch = Batch::new(
            &[
                Sequence {
                    tokens: vec![1, 2, 3, 4],
                    prompt_len: 2,
                },
                Sequence {
                    tokens: vec![1, 2, 3],
                    prompt_len: 1,
                },
            ],
            0,
            &Device::Cpu,
        )
        .unwrap();
        let ids: Vec<Vec<u32>> = batch.ids.to_vec2().unwrap();
        assert_eq!(ids, vec![vec![1, 2, 3, 4], vec![1, 2, 3, 0]]);
        let mask: Vec<Vec<f32>> = batch.mask.to_vec2().unwrap();
        // Sequence 0 predicts tokens 3 and 4 (positions 1, 2); sequence 1
        // predicts 2 and 3 (positions 0, 1); padding is never a target.
        assert_eq!(mask, vec![vec![0.0, 1.0, 1.0], vec![1.0, 1.0, 0.0]]);
        assert_eq!(batch.tokens(), 4);
    }
}
