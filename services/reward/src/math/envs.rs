//! Hand-written matchers for LaTeX math environments and the "answer"
//! phrases around them, equivalent to Math-Verify's regular expressions
//! (`$…$`, `$$…$$`, `\[…\]`, `\(…\)`, ` […] `, `\frac{n}{m}`, joined by
//! "and"/"or"/","), in linear time and without a backtracking engine.

use std::ops::Range;

/// Which delimiters an environment had.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EnvKind {
    DisplayDollar,
    DisplayBracket,
    InlineDollar,
    InlineParenthesis,
    InlineBracket,
    Fraction,
}

/// One environment: the byte range of its content (for a fraction, the
/// whole `\frac{…}{…}`), and whether a percent sign followed it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Env {
    pub kind: EnvKind,
    pub content: Range<usize>,
    pub percent: bool,
}

/// Up to six environments joined by "and", "or" or commas.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Chain {
    pub start: usize,
    pub end: usize,
    pub envs: Vec<Env>,
    /// Where each environment (with its percent sign) ends.
    pub env_ends: Vec<usize>,
}

/// The anchored phrases, in priority order of Math-Verify's LaTeX patterns.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Anchor {
    /// `final answer is ENVS. I hope` (priority 0).
    FinalAnswerHope,
    /// `final answer … is ENVS` (priority 50).
    FinalAnswerIs,
    /// `answer: … ENVS` (priority 100).
    AnswerColon,
    /// `answer … ENVS` (priority 200).
    Answer,
}

fn byte(text: &str, i: usize) -> Option<u8> {
    text.as_bytes().get(i).copied()
}

fn prev_is(text: &str, i: usize, f: impl Fn(u8) -> bool) -> bool {
    i > 0 && f(text.as_bytes()[i - 1])
}

fn char_at(text: &str, i: usize) -> Option<char> {
    text.get(i..)?.chars().next()
}

fn skip_whitespace(text: &str, mut i: usize) -> usize {
    while let Some(c) = char_at(text, i) {
        if !c.is_whitespace() {
            break;
        }
        i += c.len_utf8();
    }
    i
}

/// `-?\d+(?:[.,]\d+)?` at `i`; returns its end.
fn simple_number(text: &str, mut i: usize) -> Option<usize> {
    if byte(text, i) == Some(b'-') {
        i += 1;
    }
    let digits = |mut j: usize| {
        let start = j;
        while byte(text, j).is_some_and(|b| b.is_ascii_digit()) {
            j += 1;
        }
        (j > start).then_some(j)
    };
    i = digits(i)?;
    if matches!(byte(text, i), Some(b'.' | b','))
        && let Some(j) = digits(i + 1)
    {
        i = j;
    }
    Some(i)
}

/// `-?\frac{n}{m}` with simple numbers; returns its end.
fn fraction(text: &str, mut i: usize) -> Option<usize> {
    if byte(text, i) == Some(b'-') {
        i += 1;
    }
    let rest = text.get(i..)?;
    i += "\\frac{".len();
    if !rest.starts_with("\\frac{") {
        return None;
    }
    i = simple_number(text, i)?;
    if text.get(i..i + 2)? != "}{" {
        return None;
    }
    i = simple_number(text, i + 2)?;
    (byte(text, i) == Some(b'}')).then_some(i + 1)
}

/// `\boxed{` followed by at least one character and a later `}` in `content`.
fn has_boxed(content: &str) -> bool {
    content.find("\\boxed{").is_some_and(|i| {
        content[i + 7..]
            .char_indices()
            .any(|(j, c)| j > 0 && c == '}')
    })
}

/// One environment starting exactly at `i` (the first alternative that
/// matches, as a regex alternation would); returns it and its end.
fn env_at(text: &str, i: usize, boxed: bool) -> Option<(Env, usize)> {
    let b = text.as_bytes();
    let (kind, content, end) = if b.get(i..i + 2) == Some(b"$$")
        && !prev_is(text, i, |c| c == b'\\')
    {
        // Content may hold single dollars; it ends at the first `$$`.
        let start = i + 2;
        let close = text.get(start + 1..)?.find("$$")? + start + 1;
        if b[close - 1] == b'\\' {
            return None;
        }
        (EnvKind::DisplayDollar, start..close, close + 2)
    } else if b.get(i..i + 2) == Some(b"\\[") && !prev_is(text, i, |c| c == b'\\') {
        let start = i + 2;
        let close = text.get(start + 1..)?.find("\\]")? + start + 1;
        if b[close - 1] == b'\\' {
            return None;
        }
        (EnvKind::DisplayBracket, start..close, close + 2)
    } else if b.get(i) == Some(&b'$') && !prev_is(text, i, |c| c == b'\\' || c.is_ascii_digit()) {
        // Escaped dollars are content; a newline ends the search.
        let start = i + 1;
        let mut k = start;
        loop {
            if k > start && b.get(k) == Some(&b'$') && b[k - 1] != b'\\' {
                break;
            }
            match b.get(k)? {
                b'\\' if b.get(k + 1) == Some(&b'$') => k += 2,
                b'\n' | b'$' => return None,
                _ => k += 1,
            }
        }
        (EnvKind::InlineDollar, start..k, k + 1)
    } else if b.get(i..i + 2) == Some(b"\\(") && !prev_is(text, i, |c| c == b'\\') {
        let start = i + 2;
        let close = text.get(start + 1..)?.find("\\)")? + start + 1;
        if text[start..close].contains('\n') || b[close - 1] == b'\\' {
            return None;
        }
        (EnvKind::InlineParenthesis, start..close, close + 2)
    } else if char_at(text, i).is_some_and(char::is_whitespace)
        && byte(text, i + char_at(text, i)?.len_utf8()) == Some(b'[')
    {
        let start = i + char_at(text, i)?.len_utf8() + 1;
        let close = start + text.get(start..)?.find([']', '[', '\n'])?;
        if b.get(close) != Some(&b']')
            || close == start
            || !char_at(text, close + 1).is_some_and(char::is_whitespace)
        {
            return None;
        }
        let after = close + 1 + char_at(text, close + 1)?.len_utf8();
        (EnvKind::InlineBracket, start..close, after)
    } else if !boxed && let Some(end) = fraction(text, i) {
        (EnvKind::Fraction, i..end, end)
    } else {
        return None;
    };
    if boxed && !has_boxed(&text[content.clone()]) {
        return None;
    }
    // `\s*` and a percent sign or word.
    let mut after = end;
    let mut percent = false;
    let j = skip_whitespace(text, end);
    let rest = &text[j..];
    for word in [
        "\\%",
        "%",
        "Percent",
        "percent",
        "Percentage",
        "percentage",
        "Pct",
        "pct",
    ] {
        if rest.starts_with(word) {
            percent = true;
            after = j + word.len();
            break;
        }
    }
    Some((
        Env {
            kind,
            content,
            percent,
        },
        after,
    ))
}

/// An environment chain starting exactly at `i`.
pub fn chain_at(text: &str, i: usize, boxed: bool) -> Option<Chain> {
    let (first, mut end) = env_at(text, i, boxed)?;
    let mut envs = vec![first];
    let mut env_ends = vec![end];
    'next: while envs.len() < 6 {
        let j = skip_whitespace(text, end);
        for separator in [",and", "and", ",or", "or", ","] {
            if text[j..].starts_with(separator) {
                let k = skip_whitespace(text, j + separator.len());
                // ` [x] ` needs the whitespace before its bracket.
                let candidates = [k, k.saturating_sub(1)];
                for start in candidates.into_iter().filter(|s| *s >= j + separator.len()) {
                    if let Some((env, after)) = env_at(text, start, boxed) {
                        envs.push(env);
                        env_ends.push(after);
                        end = after;
                        continue 'next;
                    }
                }
            }
        }
        break;
    }
    Some(Chain {
        start: i,
        end,
        envs,
        env_ends,
    })
}

/// Every chain in `text`, left to right, not overlapping.
pub fn chains(text: &str, boxed: bool) -> Vec<Chain> {
    let b = text.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        let c = b[i];
        let could_start = c == b'$'
            || c == b'\\'
            || (c == b'-' && !boxed)
            || (b.get(i + 1) == Some(&b'[') && char_at(text, i).is_some_and(char::is_whitespace));
        if could_start && let Some(chain) = chain_at(text, i, boxed) {
            i = chain.end.max(i + 1);
            out.push(chain);
            continue;
        }
        i += char_at(text, i).map_or(1, char::len_utf8);
    }
    out
}

fn find_ignore_case(text: &str, needle: &str, from: usize) -> Option<usize> {
    let hay = text.as_bytes();
    let n = needle.as_bytes();
    (from..=hay.len().checked_sub(n.len())?).find(|&i| hay[i..i + n.len()].eq_ignore_ascii_case(n))
}

/// Positions `start..` reachable by a lazy `.{0,max}?` (any characters).
fn gap_positions(text: &str, start: usize, max: usize) -> impl Iterator<Item = usize> + '_ {
    let mut pos = Some(start);
    (0..=max).map_while(move |_| {
        let p = pos?;
        pos = char_at(text, p).map(|c| p + c.len_utf8());
        Some(p)
    })
}

/// A chain right at `i`, also accepting one whitespace given back to a ` [x] `.
fn chain_near(text: &str, i: usize, floor: usize, boxed: bool) -> Option<Chain> {
    chain_at(text, i, boxed).or_else(|| {
        let back = i.checked_sub(1).filter(|b| *b >= floor)?;
        chain_at(text, back, boxed)
    })
}

fn anchored_at(text: &str, a: usize, anchor: Anchor) -> Option<Chain> {
    match anchor {
        Anchor::Answer | Anchor::AnswerColon => {
            let mut i = a + "answer".len();
            if anchor == Anchor::AnswerColon {
                if byte(text, i) != Some(b':') {
                    return None;
                }
                i += 1;
            }
            gap_positions(text, i, 50).find_map(|p| chain_at(text, p, false))
        }
        Anchor::FinalAnswerIs => {
            let i = a + "final answer".len();
            gap_positions(text, i, 100).find_map(|p| {
                let ws = skip_whitespace(text, p);
                if ws == p || !text[ws..].starts_with("is") {
                    return None;
                }
                let mut k = ws + 2;
                if byte(text, k) == Some(b':') {
                    k += 1;
                }
                let floor = k;
                chain_near(text, skip_whitespace(text, k), floor, false)
            })
        }
        Anchor::FinalAnswerHope => {
            let mut k = a + "final answer is".len();
            if byte(text, k) == Some(b':') {
                k += 1;
            }
            let floor = k;
            let chain = chain_near(text, skip_whitespace(text, k), floor, false)?;
            // `\.?\s?I hope`, giving back trailing environments if needed.
            for n in (1..=chain.envs.len()).rev() {
                let mut j = chain.env_ends[n - 1];
                if byte(text, j) == Some(b'.') {
                    j += 1;
                }
                if let Some(c) = char_at(text, j).filter(|c| c.is_whitespace())
                    && text[j + c.len_utf8()..].starts_with("I hope")
                {
                    return Some(truncate(chain, n, j + c.len_utf8() + 6));
                }
                if text[j..].starts_with("I hope") {
                    return Some(truncate(chain, n, j + 6));
                }
            }
            None
        }
    }
}

fn truncate(mut chain: Chain, n: usize, end: usize) -> Chain {
    chain.envs.truncate(n);
    chain.env_ends.truncate(n);
    chain.end = end;
    chain
}

/// `\boxed{…}` from the first `\boxed{` to the last `}` of the text (the
/// greedy fallback; the box is cut out during normalisation).
pub fn boxed_span(text: &str) -> Option<Range<usize>> {
    let start = text.find("\\boxed{")?;
    let end = text.rfind('}')?;
    (end > start + 7).then_some(start..end + 1)
}

/// Every match of an anchored pattern, left to right, not overlapping;
/// `start` is where the anchor phrase begins.
pub fn anchored(text: &str, anchor: Anchor) -> Vec<Chain> {
    let phrase = match anchor {
        Anchor::FinalAnswerHope => "final answer is",
        Anchor::FinalAnswerIs => "final answer",
        Anchor::Answer | Anchor::AnswerColon => "answer",
    };
    let mut out = Vec::new();
    let mut from = 0;
    while let Some(a) = find_ignore_case(text, phrase, from) {
        match anchored_at(text, a, anchor) {
            Some(mut chain) => {
                from = chain.end.max(a + 1);
                chain.start = a;
                out.push(chain);
            }
            None => from = a + 1,
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn contents(text: &str, boxed: bool) -> Vec<Vec<&str>> {
        chains(text, boxed)
            .into_iter()
            .map(|c| c.envs.iter().map(|e| &text[e.content.clone()]).collect())
            .collect()
    }

    #[test]
    fn finds_each_kind_of_environment() {
        assert_eq!(
            contents("so $x$ and $$y$$ then \\[z\\] or \\(w\\) v [u] t", false),
            vec![vec!["x", "y"], vec!["z", "w"], vec!["u"],]
        );
        assert_eq!(contents("cost 5$ and $3$", false), vec![vec!["3"]]);
        assert_eq!(contents("a \\$5 and $\\$6$", false), vec![vec!["\\$6"]]);
        assert_eq!(
            contents("-\\frac{1}{2} and \\frac{3}{4}", false),
            vec![vec!["-\\frac{1}{2}", "\\frac{3}{4}"]]
        );
        assert_eq!(contents("$a\nb$", false), Vec::<Vec<&str>>::new());
    }

    #[test]
    fn boxed_context_requires_a_box() {
        assert_eq!(
            contents("$a$ then $\\boxed{1}$", true),
            vec![vec!["\\boxed{1}"]]
        );
    }

    #[test]
    fn percent_signs_after_an_environment_are_kept() {
        let c = chains("$28$ %", false);
        assert!(c[0].envs[0].percent);
    }

    #[test]
    fn anchors_find_the_environment_after_the_phrase() {
        let text = "Final Answer: The final answer is $12$. I hope it is correct.";
        let hope = anchored(text, Anchor::FinalAnswerHope);
        assert_eq!(&text[hope[0].envs[0].content.clone()], "12");
        let answer = anchored("The answer is \\(3\\)", Anchor::Answer);
        assert_eq!(answer.len(), 1);
        assert!(anchored("The answer is 3", Anchor::Answer).is_empty());
    }
}
