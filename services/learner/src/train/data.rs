//! SFT datasets as JSON Lines: `{"prompt": …, "response": …}` or chat
//! `{"messages": [{"role": …, "content": …}, …]}` (the last message, from the
//! assistant, is the response; the others go through the chat template).

use std::path::Path;

use super::batch::Sequence;
use crate::tokenizer::{Message, TextTokenizer};

#[derive(Debug, thiserror::Error)]
#[error("{path}:{line}: {message}")]
pub struct DataError {
    pub path: String,
    /// 1-based line number (0 for the file as a whole).
    pub line: usize,
    pub message: String,
}

/// Reads and tokenises a dataset; every bad line is an error naming it.
pub fn load_sft_jsonl(
    path: &Path,
    tokenizer: &TextTokenizer,
    max_tokens: usize,
) -> Result<Vec<Sequence>, DataError> {
    let error = |line: usize, message: String| DataError {
        path: path.display().to_string(),
        line,
        message,
    };
    let text = std::fs::read_to_string(path).map_err(|e| error(0, e.to_string()))?;
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let n = i + 1;
        if line.trim().is_empty() {
            continue;
        }
        let value: serde_json::Value =
            serde_json::from_str(line).map_err(|e| error(n, format!("invalid JSON: {e}")))?;
        let (prompt, response) = if let Some(messages) = value.get("messages") {
            let messages: Vec<Message> = messages
                .as_array()
                .ok_or_else(|| error(n, "\"messages\" must be a list".into()))?
                .iter()
                .map(|m| {
                    let field = |k: &str| m.get(k).and_then(|v| v.as_str()).map(str::to_owned);
                    match (field("role"), field("content")) {
                        (Some(role), Some(content)) => Ok(Message { role, content }),
                        _ => Err(error(
                            n,
                            "every message needs \"role\" and \"content\" strings".into(),
                        )),
                    }
                })
                .collect::<Result<_, _>>()?;
            let (last, context) = messages
                .split_last()
                .ok_or_else(|| error(n, "\"messages\" is empty".into()))?;
            if last.role != "assistant" {
                return Err(error(n, "the last message must be the assistant's".into()));
            }
            let prompt = tokenizer
                .apply_chat_template(context, true)
                .map_err(|e| error(n, e.to_string()))?;
            (prompt, last.content.clone())
        } else {
            let field = |k: &str| {
                value
                    .get(k)
                    .and_then(|v| v.as_str())
                    .map(str::to_owned)
                    .ok_or_else(|| {
                        error(
                            n,
                            format!("\"{k}\" (a string) is required, or \"messages\""),
                        )
                    })
            };
            (field("prompt")?, field("response")?)
        };
        let prompt_ids = tokenizer
            .encode(&prompt)
            .map_err(|e| error(n, e.to_string()))?;
        let mut tokens = prompt_ids.clone();
        tokens.extend(
            tokenizer
                .encode(&response)
                .map_err(|e| error(n, e.to_string()))?,
        );
        tokens.push(tokenizer.eos());
        tokens.truncate(max_tokens);
        if tokens.len() <= prompt_ids.len() {
            return Err(error(
                n,
                format!("the prompt alone fills max_tokens ({max_tokens})"),
            ));
        }
        out.push(Sequence {
            prompt_len: prompt_ids.len(),
            tokens,
        });
    }
    if out.is_empty() {
        return Err(error(0, "no examples".into()));
    }
    Ok(out)
}
