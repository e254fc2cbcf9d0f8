//! The accuracy reward for math: find the final answer in a completion and
//! decide whether it equals the gold answer.
//!
//! # Layout
//!
//! * [`extract`] — where the answer is: `<answer>` tags, `\boxed{}`, "the final
//!   answer is", LaTeX environments, bare numbers; rightmost first.
//! * [`envs`] — LaTeX environment and "answer" phrase matchers.
//! * [`normalize`] — LaTeX clean-up (boxes, presentation, units).
//! * [`latex`] — parser to [`expr::Expr`].
//! * [`compare`] — equivalence of numbers, expressions, relations and sets.
//!
//! Every check runs under a time budget; a check that runs out of it counts
//! as not correct and is reported as undecided.

pub mod compare;
pub mod envs;
pub mod expr;
pub mod extract;
pub mod latex;
pub mod normalize;
pub mod number;
pub mod suite;

use std::time::{Duration, Instant};

use compare::{Budget, CompareOptions};
use extract::{Candidate, ExtractOptions, Target};

/// How answers are found and compared.
#[derive(Debug, Clone, PartialEq)]
pub struct MathConfig {
    /// Only the text after the closing tag of this reasoning block counts
    /// (`think` → `<think>…</think>`); an unclosed block leaves no answer.
    /// `None` reads the whole completion.
    pub reasoning_tag: Option<String>,
    /// When the completion has `<answer>…</answer>` (this tag), only the last
    /// such block is searched. `None` ignores answer tags.
    pub answer_tag: Option<String>,
    /// Read GSM8K-style `#### 42` answers.
    pub gsm8k_marker: bool,
    /// Prefer the last `\boxed{}` over "the final answer is …".
    pub boxed_first: bool,
    /// Accept LaTeX that no "answer" wording points at.
    pub bare_latex: bool,
    /// Fall back to the last number (or arithmetic expression) in the text.
    pub last_number: bool,
    pub compare: CompareOptions,
    /// Time one check may take before it counts as undecided.
    pub budget: Duration,
}

impl Default for MathConfig {
    fn default() -> Self {
        Self {
            reasoning_tag: Some("think".into()),
            answer_tag: Some("answer".into()),
            gsm8k_marker: true,
            boxed_first: false,
            bare_latex: true,
            last_number: true,
            compare: CompareOptions::default(),
            budget: Duration::from_millis(500),
        }
    }
}

/// The outcome of one check.
#[derive(Debug, Clone, PartialEq)]
pub struct MathVerdict {
    pub correct: bool,
    /// False when the time budget ran out before a decision.
    pub decided: bool,
    pub pred_extracted: Option<String>,
    pub gold_extracted: Option<String>,
}

impl MathConfig {
    fn targets(&self) -> Vec<Target> {
        vec![
            Target::Latex {
                boxed_priority: Some(if self.boxed_first { 0 } else { 50 }),
                without_anchor: self.bare_latex,
            },
            Target::Expr {
                without_anchor: self.last_number,
            },
        ]
    }

    /// The part of a completion that may hold its final answer.
    pub fn answer_region<'t>(&self, completion: &'t str) -> &'t str {
        let mut text = completion;
        if let Some(tag) = &self.reasoning_tag {
            let open = format!("<{tag}>");
            let close = format!("</{tag}>");
            if let Some(end) = text.rfind(&close) {
                text = &text[end + close.len()..];
            } else if text.contains(&open) {
                return "";
            }
        }
        if let Some(tag) = &self.answer_tag {
            let open = format!("<{tag}>");
            let close = format!("</{tag}>");
            if let Some(start) = text.rfind(&open) {
                let inner = &text[start + open.len()..];
                text = match inner.find(&close) {
                    Some(end) => &inner[..end],
                    None => inner,
                };
            }
        }
        if self.gsm8k_marker
            && let Some(start) = text.rfind("####")
        {
            text = &text[start + 4..];
        }
        text
    }

    /// Answers found in a completion, best first.
    pub fn extract_prediction(&self, completion: &str) -> Vec<Candidate> {
        let region = self.answer_region(completion);
        if region.trim().is_empty() {
            return Vec::new();
        }
        if let Some(value) = bare_math(region) {
            return vec![
                Candidate::Value(value),
                Candidate::Text(region.trim().to_owned()),
            ];
        }
        extract::extract(region, &self.targets(), ExtractOptions::default())
    }

    /// The gold answer, written as plain text, LaTeX (with or without `$`) or
    /// `\boxed{}`.
    pub fn extract_gold(&self, gold: &str) -> Vec<Candidate> {
        if let Some(value) = bare_math(gold) {
            return vec![
                Candidate::Value(value),
                Candidate::Text(gold.trim().to_owned()),
            ];
        }
        extract::extract(
            gold,
            &[Target::latex(), Target::expr()],
            ExtractOptions::default(),
        )
    }

    /// Checks a completion (or a bare predicted answer) against the gold answer.
    pub fn check(&self, gold: &str, pred: &str) -> MathVerdict {
        let started = Instant::now();
        let gold_candidates = self.extract_gold(gold);
        let pred_candidates = self.extract_prediction(pred);
        let budget = Budget::until(started + self.budget);
        let correct = !gold_candidates.is_empty()
            && !pred_candidates.is_empty()
            && compare::verify(&gold_candidates, &pred_candidates, self.compare, &budget);
        MathVerdict {
            correct: correct && !budget.exceeded(),
            decided: !budget.exceeded(),
            pred_extracted: describe(&pred_candidates),
            gold_extracted: describe(&gold_candidates),
        }
    }
}

/// The best candidate as text: what was matched (normalised), or the parsed
/// value when no text was kept.
fn describe(candidates: &[Candidate]) -> Option<String> {
    let text = candidates.iter().find_map(|c| match c {
        Candidate::Text(t) if !t.trim().is_empty() => Some(t.trim().to_owned()),
        _ => None,
    });
    text.or_else(|| {
        candidates.iter().find_map(|c| match c {
            Candidate::Value(v) => Some(v.to_string()),
            Candidate::Text(_) => None,
        })
    })
}

/// Longest text read as a whole answer rather than searched for one.
const BARE_ANSWER_LIMIT: usize = 1000;

/// A text that is nothing but math (`x = 2, x = -3`, `\frac34i`, `(1, 4.5)`),
/// parsed as a whole. Prose (a run of three letters outside LaTeX commands)
/// is searched for its answer instead.
fn bare_math(text: &str) -> Option<expr::Expr> {
    let text = text.trim();
    if text.is_empty() || text.len() > BARE_ANSWER_LIMIT || has_words(text) {
        return None;
    }
    extract::parse_latex(&normalize::normalize(text, normalize::Boxed::Last))
}

fn has_words(text: &str) -> bool {
    let mut run = 0;
    let mut in_command = false;
    let mut text_group = 0usize;
    let bytes = text.as_bytes();
    for (i, &b) in bytes.iter().enumerate() {
        if b == b'\\' {
            in_command = true;
            run = 0;
            // \text{…} and friends hold words that are part of the answer.
            let rest = &text[i + 1..];
            if [
                "text{",
                "textbf{",
                "mathrm{",
                "mbox{",
                "textnormal{",
                "operatorname{",
                "begin{",
                "end{",
            ]
            .iter()
            .any(|p| rest.starts_with(p))
            {
                text_group = 1;
            }
            continue;
        }
        if in_command {
            if b.is_ascii_alphabetic() {
                continue;
            }
            in_command = false;
            if text_group == 1 && b == b'{' {
                text_group = 2;
                continue;
            }
        }
        if text_group >= 2 {
            match b {
                b'{' => text_group += 1,
                b'}' => {
                    text_group -= 1;
                    if text_group == 1 {
                        text_group = 0;
                    }
                }
                _ => {}
            }
            continue;
        }
        if b.is_ascii_alphabetic() {
            run += 1;
            if run >= 3 {
                return true;
            }
        } else {
            run = 0;
        }
    }
    false
}
