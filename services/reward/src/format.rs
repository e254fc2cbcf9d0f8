//! The format reward of R1's template: reasoning in `<think>…</think>`,
//! then the answer in `<answer>…</answer>`, each exactly once, in that order,
//! with nothing but whitespace around them.

use serde::Deserialize;

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct FormatConfig {
    pub think_tag: String,
    pub answer_tag: String,
    /// The prompt already opened the reasoning block, so the completion
    /// starts inside it and must not open it again.
    pub prompt_opens_think: bool,
}

impl Default for FormatConfig {
    fn default() -> Self {
        Self {
            think_tag: "think".into(),
            answer_tag: "answer".into(),
            prompt_opens_think: false,
        }
    }
}

/// Whether a completion follows the template, and if not, why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FormatVerdict {
    pub well_formed: bool,
    pub detail: String,
}

impl FormatConfig {
    pub fn check(&self, completion: &str) -> FormatVerdict {
        match self.problem(completion) {
            None => FormatVerdict {
                well_formed: true,
                detail: "well-formed".into(),
            },
            Some(problem) => FormatVerdict {
                well_formed: false,
                detail: problem,
            },
        }
    }

    /// The reasoning between the think tags, if the completion has it.
    pub fn reasoning<'t>(&self, completion: &'t str) -> Option<&'t str> {
        let open = format!("<{}>", self.think_tag);
        let close = format!("</{}>", self.think_tag);
        let end = completion.find(&close)?;
        let start = match completion[..end].find(&open) {
            Some(s) => s + open.len(),
            None if self.prompt_opens_think => 0,
            None => return None,
        };
        Some(&completion[start..end])
    }

    fn problem(&self, completion: &str) -> Option<String> {
        let tags = [
            format!("<{}>", self.think_tag),
            format!("</{}>", self.think_tag),
            format!("<{}>", self.answer_tag),
            format!("</{}>", self.answer_tag),
        ];
        let expected_counts = [usize::from(!self.prompt_opens_think), 1, 1, 1];
        for (tag, expected) in tags.iter().zip(expected_counts) {
            let count = completion.matches(tag.as_str()).count();
            if count != expected {
                return Some(format!("{tag} appears {count} times, expected {expected}"));
            }
        }
        let position = |tag: &str| completion.find(tag).unwrap_or(0);
        let mut rest = completion.trim();
        if !self.prompt_opens_think {
            rest = match rest.strip_prefix(tags[0].as_str()) {
                Some(r) => r,
                None => return Some(format!("the completion must start with {}", tags[0])),
            };
        }
        if position(&tags[1]) > position(&tags[2]) {
            return Some(format!("{} must come before {}", tags[1], tags[2]));
        }
        let (reasoning, after) = rest.split_once(tags[1].as_str())?;
        if reasoning.trim().is_empty() {
            return Some("the reasoning is empty".into());
        }
        let after = after.trim_start();
        let Some(answer_block) = after.strip_prefix(tags[2].as_str()) else {
            return Some(format!(
                "only whitespace may separate {} and {}",
                tags[1], tags[2]
            ));
        };
        let (answer, tail) = answer_block.split_once(tags[3].as_str())?;
        if answer.trim().is_empty() {
            return Some("the answer is empty".into());
        }
        if !tail.trim().is_empty() {
            return Some(format!("text after {}", tags[3]));
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(c: &str) -> bool {
        FormatConfig::default().check(c).well_formed
    }

    #[test]
    fn the_r1_template_is_well_formed() {
        assert!(ok("<think>add 2 and 2</think> <answer>4</answer>"));
        assert!(ok("\n<think>\nadd\n</think>\n<answer>\n4\n</answer>\n"));
    }

    #[test]
    fn deviations_from_the_template_are_not() {
        for bad in [
            "<answer>4</answer>",
            "<think>x</think>",
            "<answer>4</answer><think>x</think>",
            "<think>x</think> so <answer>4</answer>",
            "<think>x</think><answer>4</answer> trailing",
            "<think>x</think><answer>4</answer><answer>5</answer>",
            "<think></think><answer>4</answer>",
            "<think>x</think><answer> </answer>",
            "<think>x<think>y</think><answer>4</answer>",
            "",
        ] {
            assert!(!ok(bad), "{bad:?}");
        }
    }

    #[test]
    fn a_prompt_that_opens_think_expects_no_opening_tag() {
        let config = FormatConfig {
            prompt_opens_think: true,
            ..FormatConfig::default()
        };
        assert!(config.check("add</think><answer>4</answer>").well_formed);
        assert!(
            !config
                .check("<think>add</think><answer>4</answer>")
                .well_formed
        );
        assert_eq!(
            config.reasoning("add</think><answer>4</answer>"),
            Some("add")
        );
    }
}
