//! Prompt templates: R1's (reasoning in `<think>`, answer in `<answer>`) and
//! the model's chat template.

use crate::tokenizer::{Message, TextTokenizer, TokenizerError};

/// The instruction of DeepSeek-R1-Zero's template.
pub const R1_PREAMBLE: &str = "A conversation between User and Assistant. The user asks a question, and the Assistant solves it. The assistant first thinks about the reasoning process in the mind and then provides the user with the answer. The reasoning process and answer are enclosed within <think> </think> and <answer> </answer> tags, respectively, i.e., <think> reasoning process here </think> <answer> answer here </answer>.";

/// `{preamble}\nUser: {question}\nAssistant: <think>` — the completion
/// continues the reasoning, closes it and gives the answer.
pub fn r1_prompt(preamble: &str, question: &str) -> String {
    let mut out = String::new();
    if !preamble.is_empty() {
        out.push_str(preamble);
        out.push('\n');
    }
    out.push_str("User: ");
    out.push_str(question.trim());
    out.push_str("\nAssistant: <think>");
    out
}

/// Messages rendered with the model's chat template, ready for generation.
pub fn chat_prompt(
    tokenizer: &TextTokenizer,
    messages: &[Message],
) -> Result<String, TokenizerError> {
    tokenizer.apply_chat_template(messages, true)
}
