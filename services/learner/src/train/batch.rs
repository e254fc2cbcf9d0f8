//! Padded batches of prompt + completion token sequences.

use candle_core::{Device, Result, Tensor};

use crate::model::llama::Packing;

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

    /// Whether the token at `index` is a training target: a completion token
    /// that some position predicts (the first token never is).
    pub fn is_target(&self, index: usize) -> bool {
        index >= self.prompt_len.max(1) && index < self.tokens.len()
    }

    /// Training targets of the sequence (the 1s of its row of the mask).
    pub fn target_count(&self) -> usize {
        self.tokens.len().saturating_sub(self.prompt_len.max(1))
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
                mask.push(if s.is_target(j + 1) { 1.0f32 } else { 0.0 });
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

    /// The inverse of [`Self::completion_values`]: per-position values
    /// `[B, T-1]` holding each sequence's completion values in order and
    /// `fill` elsewhere.
    pub fn place_completion_values(&self, values: &[Vec<f32>], fill: f32) -> Result<Tensor> {
        let (rows, width) = self.mask.dims2()?;
        let mask: Vec<Vec<f32>> = self.mask.to_vec2()?;
        let mut out = Vec::with_capacity(rows * width);
        for (row, seq_values) in mask.iter().zip(values) {
            let mut next = seq_values.iter();
            for m in row {
                out.push(if *m > 0.0 {
                    *next.next().unwrap_or(&fill)
                } else {
                    fill
                });
            }
        }
        Tensor::from_vec(out, (rows, width), self.mask.device())
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

/// Several sequences per row, up to a row length: the same loss as the
/// padded [`Batch`] of the same sequences with less padding to compute (see
/// [`Packing`]).
#[derive(Debug, Clone)]
pub struct PackedBatch {
    /// `[rows, T]` u32.
    pub ids: Tensor,
    /// `[rows, T - 1]` f32: 1 where the predicted token belongs to the
    /// completion of the same sequence as the predicting one.
    pub mask: Tensor,
    pub packing: Packing,
}

impl PackedBatch {
    /// Which sequences share each row: in order, each into the first row
    /// with room for it within `row_tokens` (a longer one gets its own row).
    pub fn plan(sequences: &[Sequence], row_tokens: usize) -> Vec<Vec<usize>> {
        let mut rows: Vec<(usize, Vec<usize>)> = Vec::new();
        for (i, s) in sequences.iter().enumerate() {
            let len = s.tokens.len();
            match rows.iter_mut().find(|(used, _)| used + len <= row_tokens) {
                Some((used, members)) => {
                    *used += len;
                    members.push(i);
                }
                None => rows.push((len, vec![i])),
            }
        }
        rows.into_iter().map(|(_, members)| members).collect()
    }

    /// The rows of `plan` (indices into `sequences`), right-padded.
    pub fn new(
        sequences: &[Sequence],
        rows: &[Vec<usize>],
        pad: u32,
        device: &Device,
    ) -> Result<Self> {
        let row_len =
            |row: &Vec<usize>| -> usize { row.iter().map(|&i| sequences[i].tokens.len()).sum() };
        let width = rows.iter().map(row_len).max().unwrap_or(0).max(2);
        let mut ids = Vec::with_capacity(rows.len() * width);
        let mut mask = Vec::with_capacity(rows.len() * (width - 1));
        let mut segments = Vec::with_capacity(rows.len());
        for row in rows {
            let used = row_len(row);
            let mut row_segments = Vec::with_capacity(width);
            for (segment, &i) in row.iter().enumerate() {
                let s = &sequences[i];
                ids.extend(s.tokens.iter().copied());
                row_segments.extend(std::iter::repeat_n(segment as u32, s.tokens.len()));
                // Position j predicts j + 1; within a sequence, as in `Batch`.
                // The last token of a sequence predicts nothing.
                for target in 1..=s.tokens.len() {
                    mask.push(if s.is_target(target) { 1.0f32 } else { 0.0 });
                }
            }
            ids.extend(std::iter::repeat_n(pad, width - used));
            row_segments.extend(std::iter::repeat_n(u32::MAX, width - used));
            // Padding predicts nothing; the row has width − 1 predictions.
            mask.extend(std::iter::repeat_n(0.0, width - used));
            mask.pop();
            segments.push(row_segments);
        }
        Ok(Self {
            ids: Tensor::from_vec(ids, (rows.len(), width), device)?,
            mask: Tensor::from_vec(mask, (rows.len(), width - 1), device)?,
            packing: Packing::new(&segments)?,
        })
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
        // Per-completion values go to the masked positions and come back.
        let per_completion = vec![vec![-0.5, -1.5], vec![-2.0, -3.0]];
        let placed = batch.place_completion_values(&per_completion, 0.0).unwrap();
        let rows: Vec<Vec<f32>> = placed.to_vec2().unwrap();
        assert_eq!(rows, vec![vec![0.0, -0.5, -1.5], vec![-2.0, -3.0, 0.0]]);
        assert_eq!(batch.completion_values(&placed).unwrap(), per_completion);
    }

    #[test]
    fn totals_counted_from_sequences_match_the_padded_mask() {
        let seq = |tokens: Vec<u32>, prompt_len| Sequence { tokens, prompt_len };
        let sequences = [
            seq(vec![1, 2, 3, 4], 2),
            seq(vec![5, 6, 7], 0),
            seq(vec![8], 1),
            seq(vec![9, 10], 1),
        ];
        let batch = Batch::new(&sequences, 0, &Device::Cpu).unwrap();
        assert_eq!(
            crate::train::loss::Totals::of_sequences(&sequences),
            crate::train::loss::Totals::of(&batch.mask).unwrap()
        );
    }

    #[test]
    fn packing_fills_rows_in_order_and_masks_across_sequences() {
        let seq = |tokens: Vec<u32>, prompt_len| Sequence { tokens, prompt_len };
        let sequences = [
            seq(vec![1, 2, 3], 1),
            seq(vec![4, 5, 6, 7], 2),
            seq(vec![8, 9], 1),
        ];
        let rows = PackedBatch::plan(&sequences, 6);
        // [1 2 3] + [8 9] fit in 6 tokens; [4 5 6 7] starts a second row.
        assert_eq!(rows, vec![vec![0, 2], vec![1]]);
        let batch = PackedBatch::new(&sequences, &rows, 0, &Device::Cpu).unwrap();
        let ids: Vec<Vec<u32>> = batch.ids.to_vec2().unwrap();
        assert_eq!(ids, vec![vec![1, 2, 3, 8, 9], vec![4, 5, 6, 7, 0]]);
        let mask: Vec<Vec<f32>> = batch.mask.to_vec2().unwrap();
        // Row 0: 1→2, 2→3 trained; 3→8 crosses sequences; 8→9 trained.
        // Row 1: 4→5 is prompt; 5→6, 6→7 trained; 7→pad is not.
        assert_eq!(
            mask,
            vec![vec![1.0, 1.0, 0.0, 1.0], vec![0.0, 1.0, 1.0, 0.0]]
        );
    }
}
