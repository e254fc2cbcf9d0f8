//! Prompt jobs to token ids: raw text, the R1 template, or the chat template.

use r1_learner::template::{R1_PREAMBLE, r1_prompt};
use r1_learner::tokenizer::{Message, TextTokenizer};
use r1_proto::domain::{Prompt, PromptContent, PromptFormat};

/// The text the model continues for `prompt`.
pub fn render(tokenizer: &TextTokenizer, prompt: &Prompt) -> Result<String, String> {
    match (&prompt.content, prompt.format) {
        (PromptContent::Text(text), PromptFormat::Raw) => Ok(text.clone()),
        (PromptContent::Text(text), PromptFormat::R1) => Ok(r1_prompt(R1_PREAMBLE, text)),
        (PromptContent::Text(text), PromptFormat::Chat) => tokenizer
            .apply_chat_template(
                &[Message {
                    role: "user".into(),
                    content: text.clone(),
                }],
                true,
            )
            .map_err(|e| e.to_string()),
        (PromptContent::Chat(messages), PromptFormat::R1) => {
            let question = messages
                .iter()
                .rev()
                .find(|m| m.role == "user")
                .map(|m| m.content.clone())
                .ok_or("an R1 prompt needs a user message")?;
            Ok(r1_prompt(R1_PREAMBLE, &question))
        }
        (PromptContent::Chat(messages), _) => {
            let messages: Vec<Message> = messages
                .iter()
                .map(|m| Message {
                    role: m.role.clone(),
                    content: m.content.clone(),
                })
                .collect();
            tokenizer
                .apply_chat_template(&messages, true)
                .map_err(|e| e.to_string())
        }
    }
}

/// Token ids of the rendered prompt.
pub fn encode(tokenizer: &TextTokenizer, prompt: &Prompt) -> Result<Vec<u32>, String> {
    let text = render(tokenizer, prompt)?;
    tokenizer.encode(&text).map_err(|e| e.to_string())
}
