//! Finds the program in a completion: the last fenced block tagged with the
//! task's language, else the last untagged block. Only the text after the
//! reasoning (`</think>`) is searched when the completion has one.

use r1_sandbox::Language;

/// Info strings that name each language in a fence.
fn tags(language: Language) -> &'static [&'static str] {
    match language {
        Language::Python => &["python", "python3", "py"],
        Language::JavaScript => &["javascript", "js", "node", "nodejs"],
    }
}

/// The program to run, if the completion holds one.
pub fn program(completion: &str, language: Language) -> Option<&str> {
    let answer = completion
        .rfind("</think>")
        .map_or(completion, |end| &completion[end + "</think>".len()..]);
    let blocks = fenced_blocks(answer);
    let tagged = blocks
        .iter()
        .rev()
        .find(|(info, _)| tags(language).contains(&info.to_ascii_lowercase().as_str()));
    let untagged = || blocks.iter().rev().find(|(info, _)| info.is_empty());
    tagged.or_else(untagged).map(|(_, body)| *body)
}

/// `(info string, body)` of every closed ``` fence, in order.
fn fenced_blocks(text: &str) -> Vec<(&str, &str)> {
    let mut blocks = Vec::new();
    let mut rest = text;
    while let Some(open) = rest.find("```") {
        let after_open = &rest[open + 3..];
        let Some(line_end) = after_open.find('\n') else {
            break;
        };
        let info = after_open[..line_end].trim();
        let body_start = &after_open[line_end + 1..];
        let Some(close) = closing_fence(body_start) else {
            break;
        };
        blocks.push((info, &body_start[..close]));
        rest = &body_start[close + 3..];
    }
    blocks
}

/// The closing fence: ``` at the start of a line (or right at the start).
fn closing_fence(body: &str) -> Option<usize> {
    let mut offset = 0;
    loop {
        let found = body[offset..].find("```")? + offset;
        if found == 0 || body[..found].ends_with('\n') {
            return Some(found);
        }
        offset = found + 3;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_last_block_of_the_language_wins_over_earlier_and_untagged_ones() {
        let completion = "<think>try ```python\nprint(0)\n```</think>\nFirst:\n```python\nprint(1)\n```\n\
                          ```\nplain\n```\n```py\nprint(2)\n```\n```js\nconsole.log(3)\n```";
        assert_eq!(program(completion, Language::Python), Some("print(2)\n"));
        assert_eq!(
            program(completion, Language::JavaScript),
            Some("console.log(3)\n")
        );
    }

    #[test]
    fn an_untagged_block_is_used_when_no_tagged_one_exists() {
        assert_eq!(
            program("```\nx = 1\n```", Language::Python),
            Some("x = 1\n")
        );
        assert_eq!(program("no code here", Language::Python), None);
        assert_eq!(program("```python\nunclosed", Language::Python), None);
    }

    #[test]
    fn backticks_inside_a_line_do_not_close_the_block() {
        let completion = "```python\ns = '```'\nprint(s)\n```";
        assert_eq!(
            program(completion, Language::Python),
            Some("s = '```'\nprint(s)\n")
        );
    }
}
