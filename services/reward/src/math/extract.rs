//! Finding the answer in a completion: LaTeX environments, `\boxed{}`,
//! "the final answer is …", "answer: …", and bare numbers or expressions,
//! tried in order of priority, the rightmost match first. The patterns follow
//! Math-Verify's, so that answers graded by it and by us agree.

use std::collections::HashMap;
use std::sync::{Arc, LazyLock, Mutex};

use fancy_regex::{Captures, Regex};

use super::expr::{Expr, percent};
use super::latex::{self, ParseOptions};
use super::normalize::{self, Boxed};
use super::number::Number;

/// What to look for in a text.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Target {
    /// LaTeX in math environments or `\boxed{}`.
    Latex {
        /// Priority of `\boxed{}` matches (0 = before "final answer is";
        /// 50 = with it); `None` ignores boxes.
        boxed_priority: Option<u32>,
        /// Also accept LaTeX that no "answer" words point at.
        without_anchor: bool,
    },
    /// Plain numbers (`1,000.5`, `25%`, `$3`) and arithmetic (`1/2`).
    Expr { without_anchor: bool },
    /// One of given strings (multiple-choice letters).
    Strings {
        strings: Vec<String>,
        without_anchor: bool,
        lowercase: bool,
    },
}

impl Target {
    pub fn latex() -> Self {
        Self::Latex {
            boxed_priority: Some(50),
            without_anchor: true,
        }
    }

    pub fn expr() -> Self {
        Self::Expr {
            without_anchor: true,
        }
    }
}

/// One extracted answer.
#[derive(Debug, Clone, PartialEq)]
pub enum Candidate {
    Value(Expr),
    /// The text that was matched, kept for string comparison when parsing
    /// failed (or as the fallback).
    Text(String),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ExtractOptions {
    /// Append the first matched text as a [`Candidate::Text`].
    pub fallback_to_first_match: bool,
    /// Give up after the first match of the best priority, even if it does
    /// not parse.
    pub first_match_only: bool,
}

impl Default for ExtractOptions {
    fn default() -> Self {
        Self {
            fallback_to_first_match: true,
            first_match_only: false,
        }
    }
}

fn compile(pattern: &str) -> Regex {
    Regex::new(pattern).expect("extraction regex compiles")
}

fn latex_env_pattern(prefix: &str, boxed: bool) -> String {
    let percent = format!(r"(?P<{prefix}percent>(?:\\?%|[Pp]ercent|[Pp]ercentage|[Pp]ct))");
    let mut display_dollar = r"(?:[^$]|\$(?!\$))".to_owned();
    let mut display_bracket = r"(?:[^\\]|\\(?!\]))".to_owned();
    let mut inline_dollar = r"(?:\\[$]|[^\n$])".to_owned();
    let mut inline_paren = r"(?:[^\\\n]|\\(?!\)))".to_owned();
    let mut inline_bracket = r"[^\n\]\[]".to_owned();
    for content in [
        &mut display_dollar,
        &mut display_bracket,
        &mut inline_dollar,
        &mut inline_paren,
        &mut inline_bracket,
    ] {
        *content = if boxed {
            format!(r"{c}*?\\boxed\{{{c}+?\}}{c}*?", c = content)
        } else {
            format!("{content}+?")
        };
    }
    let mut patterns = vec![
        format!(r"(?<!\\)\$\$(?P<{prefix}latexDisplayDollar>{display_dollar})(?<!\\)\$\$"),
        format!(r"(?<!\\)\\\[(?P<{prefix}latexDisplayBracket>{display_bracket})(?<!\\)\\\]"),
        format!(r"(?<!\\|\d)\$(?P<{prefix}latexInlineDollar>{inline_dollar})(?<!\\)\$"),
        format!(r"(?<!\\)\\\((?P<{prefix}latexInlineParenthesis>{inline_paren})(?<!\\)\\\)"),
        format!(r"\s\[(?P<{prefix}latexInlineBracket>{inline_bracket})\]\s"),
    ];
    if !boxed {
        let number = r"-?\d+(?:[.,]\d+)?";
        patterns.push(format!(
            r"(?P<{prefix}latexFraction>-?\\frac\{{{number}\}}\{{{number}\}})"
        ));
    }
    format!(r"(?:(?:{})\s*{percent}?)", patterns.join("|"))
}

fn latex_chain(boxed: bool) -> String {
    let first = latex_env_pattern("first_", boxed);
    let next: String = (1..=5)
        .map(|i| {
            format!(
                r"(?:\s*(?:,?and|,?or|,)\s*{})?",
                latex_env_pattern(&format!("next{i}_"), boxed)
            )
        })
        .collect();
    format!("(?:{first}{next})")
}

struct LatexRegexes {
    anchored: Vec<(Regex, u32)>,
    plain: Regex,
    boxed_envs: Regex,
    boxed_plain: Regex,
}

static LATEX: LazyLock<LatexRegexes> = LazyLock::new(|| {
    let envs = latex_chain(false);
    LatexRegexes {
        anchored: vec![
            (
                compile(&format!(r"(?s)(?i:final answer is):?\s*{envs}\.?\s?I hope")),
                0,
            ),
            (
                compile(&format!(
                    r"(?s)(?i:final answer.{{0,100}}?)\s+is:?\s*{envs}"
                )),
                50,
            ),
            (compile(&format!(r"(?s)(?i:answer):.{{0,50}}?{envs}")), 100),
            (compile(&format!(r"(?s)(?i:answer).{{0,50}}?{envs}")), 200),
        ],
        plain: compile(&format!("(?s){envs}")),
        boxed_envs: compile(&format!("(?s){}", latex_chain(true))),
        boxed_plain: compile(r"(?s)(?P<first_latexBoxed>\\boxed\{.+\})"),
    }
});

const NUMBER: &str = r"(?<!\d)(?:(?P<integer1>-?[1-9]\d{0,2}(?:[ ,]\d{3})+)(?P<decimal1>\.\d+)?|(?P<integer2>-?\d+)(?P<decimal2>[.,]\d+)|(?P<decimal3>\.\d+)|(?P<integer3>-?\d+))(?P<percent>\s*(?:%|[Pp]ercent|\s*[Pp]ercentage|\s*[Pp]ct))?";
const CURRENCY: &str = "$€£¥₹₽₪₩₫฿₡₢₣₤₥₦₧₨₭₮₯₰₱₲₳₴₵₶₷₸₺₻₼₾₿";

struct ExprRegexes {
    anchored: Vec<(Regex, u32)>,
    plain_expr: Regex,
    plain_number: Regex,
}

static EXPR: LazyLock<ExprRegexes> = LazyLock::new(|| {
    let ops = r"\+\-\*×/\^\(\)÷";
    let all = format!(r"[\d\.\s{ops}]");
    let expr = format!(r"(?P<expr>-?\(?-?\d{all}*[{ops}]{all}+\)?)");
    let prefix = r"(?:^|\s|=)(?:\*\*)?";
    let suffix = r"(?:\*\*)?(?:\.|,|:|\s|\)|\$|$)";
    let currency = regex::escape(CURRENCY);
    let with_expr = format!("(?:{prefix}{expr}{suffix})");
    let with_number = format!("(?:{prefix}[{currency}]?{NUMBER})");
    let either = format!("(?:{with_expr}|{with_number})");
    ExprRegexes {
        anchored: vec![
            (
                compile(&format!(r"(?i:final answer is):?\s*{either}\.?\s?I hope")),
                0,
            ),
            (
                compile(&format!(r"(?i:final answer.{{0,100}}?)\s+is:?{either}")),
                50,
            ),
            (
                compile(&format!(
                    r"(?i:answer):(?:.{{0,100}}=\s*|.{{0,50}}?){either}(?!\s*=)"
                )),
                100,
            ),
            (
                compile(&format!(
                    r"(?i:answer)(?:.{{0,100}}=\s*|.{{0,50}}?){either}(?!\s*=)"
                )),
                200,
            ),
        ],
        plain_expr: compile(&with_expr),
        plain_number: compile(&with_number),
    }
});

type StringRegexes = Arc<Vec<(Regex, u32)>>;

static STRINGS: LazyLock<Mutex<HashMap<(Vec<String>, bool), StringRegexes>>> =
    LazyLock::new(|| Mutex::new(HashMap::new()));

fn string_regexes(strings: &[String], without_anchor: bool) -> StringRegexes {
    let key = (strings.to_vec(), without_anchor);
    let mut cache = STRINGS.lock().unwrap_or_else(|p| p.into_inner());
    if let Some(found) = cache.get(&key) {
        return found.clone();
    }
    let keys = strings
        .iter()
        .map(|s| fancy_regex::escape(s))
        .collect::<Vec<_>>()
        .join("|");
    let keys = format!("(?P<string_keys>{keys})");
    let suffix = r"(?:\*\*)?(?:\.|,|:|\s|$)";
    let answer = format!(r"(^|\s)(?:\*\*)?{keys}{suffix}");
    let mut regexes = vec![
        (
            compile(&format!(r"(?i:final answer is):?\s*{keys}\.?\s?I hope")),
            0,
        ),
        (
            compile(&format!(r"(?i:final answer.{{0,100}}?)\s+is:?\s*{keys}")),
            50,
        ),
        (compile(&format!(r"(?i:answer):.{{0,50}}?{answer}")), 100),
        (compile(&format!(r"(?i:answer).{{0,50}}?{answer}")), 200),
    ];
    if without_anchor {
        regexes.push((compile(&format!(r"^(?:\*\*)?{keys}{suffix}")), 250));
        regexes.push((compile(&answer), 300));
    }
    let regexes = Arc::new(regexes);
    if cache.len() < 64 {
        cache.insert(key, regexes.clone());
    }
    regexes
}

#[derive(Clone, Copy)]
enum Kind<'t> {
    Latex,
    Expr,
    Strings(&'t Target),
}

struct Found<'h, 't> {
    caps: Captures<'h>,
    start: usize,
    end: usize,
    kind: Kind<'t>,
}

const LATEX_GROUPS: [&str; 7] = [
    "latexDisplayDollar",
    "latexDisplayBracket",
    "latexInlineDollar",
    "latexInlineParenthesis",
    "latexInlineBracket",
    "latexFraction",
    "latexBoxed",
];

/// Reads `i` as the imaginary unit only where the text suggests complex numbers.
fn looks_complex(latex: &str) -> bool {
    static COMPLEX: LazyLock<Regex> = LazyLock::new(|| {
        compile(
            r"\\mathbb\{C\}|\\i\b|\bi\b|\\text\{i\}|\\mathrm\{i\}|\\imath\b|\\det|\\operatorname\{tr\}|\\operatorname\{rank\}|\\text\{rank\}|\\arg\{|\\Re\{|\\Im\{|\\operatorname\{Re\}|\\operatorname\{Im\}|\\text\{Re\}|\\text\{Im\}",
        )
    });
    COMPLEX.is_match(latex).unwrap_or(false)
}

/// Parses normalised LaTeX; when that fails and it is a chain `a = b = c`,
/// parses the last part.
pub fn parse_latex(latex: &str) -> Option<Expr> {
    let options = ParseOptions {
        complex: looks_complex(latex),
    };
    if let Some(e) = latex::parse(latex, options) {
        return Some(e);
    }
    if !latex.contains(',') && !latex.contains(';') {
        let parts = split_equals(latex);
        if parts.len() > 2 {
            return latex::parse(parts.last()?, options);
        }
    }
    None
}

fn split_equals(latex: &str) -> Vec<&str> {
    let mut parts = Vec::new();
    let mut last = 0;
    let bytes = latex.as_bytes();
    for (i, b) in bytes.iter().enumerate() {
        if *b == b'=' && (i == 0 || !matches!(bytes[i - 1], b'\\' | b'<' | b'!' | b'>')) {
            parts.push(&latex[last..i]);
            last = i + 1;
        }
    }
    parts.push(&latex[last..]);
    parts
}

fn extract_latex(caps: &Captures<'_>) -> (Option<Expr>, String, Vec<(usize, usize)>) {
    let mut values = Vec::new();
    let mut texts = Vec::new();
    let mut first_spans = Vec::new();
    for prefix in ["first", "next1", "next2", "next3", "next4", "next5"] {
        let Some((group, m)) = LATEX_GROUPS
            .iter()
            .find_map(|g| caps.name(&format!("{prefix}_{g}")).map(|m| (*g, m)))
        else {
            continue;
        };
        if prefix == "first" {
            first_spans.push((m.start(), m.end()));
        }
        let mode = if group == "latexBoxed" {
            Boxed::Last
        } else {
            Boxed::All
        };
        let normalized = normalize::normalize(m.as_str(), mode);
        let is_percent = caps.name(&format!("{prefix}_percent")).is_some();
        let parsed = parse_latex(&normalized).map(|e| if is_percent { percent(e) } else { e });
        texts.push(normalized);
        values.push(parsed);
    }
    if values.is_empty() {
        return (None, String::new(), first_spans);
    }
    if values.len() > 1 && values.iter().all(Option::is_some) {
        let mut elements = Vec::new();
        for value in values.into_iter().flatten() {
            match value {
                Expr::Set(items) => elements.extend(items),
                other => elements.push(other),
            }
        }
        return (Some(Expr::Set(elements)), texts.join(" and "), first_spans);
    }
    let first = values.into_iter().next().flatten();
    (first, texts.swap_remove(0), first_spans)
}

fn extract_expr(caps: &Captures<'_>) -> (Option<Expr>, String) {
    let group =
        |prefix: &str| (1..=3).find_map(|i| caps.name(&format!("{prefix}{i}")).map(|m| m.as_str()));
    let integer = group("integer").unwrap_or("");
    let decimal = group("decimal").unwrap_or("");
    if !integer.is_empty() || !decimal.is_empty() {
        let mut digits: String = integer.chars().filter(|c| *c != ',' && *c != ' ').collect();
        let negative = digits.starts_with('-');
        if negative {
            digits.remove(0);
        }
        let trimmed = digits.trim_start_matches('0');
        let mut number = if trimmed.is_empty() {
            "0".to_owned()
        } else {
            trimmed.to_owned()
        };
        if negative {
            number.insert(0, '-');
        }
        number.push_str(&decimal.replace(',', "."));
        let value = Number::parse(&number).map(Expr::Num);
        let value = if caps.name("percent").is_some() {
            value.map(percent)
        } else {
            value
        };
        return (value, number);
    }
    let expr = caps.name("expr").map(|m| m.as_str()).unwrap_or("");
    if expr.is_empty() {
        return (None, String::new());
    }
    let text = expr.replace('\n', " ");
    (
        latex::parse(&text, ParseOptions::default()),
        expr.to_owned(),
    )
}

fn value_spans(caps: &Captures<'_>) -> Vec<(usize, usize)> {
    let names = [
        "expr", "integer1", "integer2", "integer3", "decimal1", "decimal2", "decimal3",
    ];
    names
        .iter()
        .filter_map(|n| caps.name(n))
        .map(|m| (m.start(), m.end()))
        .collect()
}

/// Only the end of a long text is searched: final answers come last, and the
/// matching cost stays bounded whatever the input size.
pub const SEARCH_WINDOW_BYTES: usize = 16 * 1024;

/// Every answer found in `text`, best first, following the priorities of the
/// targets.
pub fn extract(text: &str, targets: &[Target], options: ExtractOptions) -> Vec<Candidate> {
    let mut start = text.len().saturating_sub(SEARCH_WINDOW_BYTES);
    while !text.is_char_boundary(start) {
        start += 1;
    }
    let text = &text[start..];
    // (priority, regex, kind) for every pattern of every target.
    let mut patterns: Vec<(u32, &Regex, Kind<'_>)> = Vec::new();
    let mut owned_strings = Vec::new();
    for target in targets {
        match target {
            Target::Latex {
                boxed_priority,
                without_anchor,
            } => {
                let r = &*LATEX;
                for (regex, p) in &r.anchored {
                    patterns.push((*p, regex, Kind::Latex));
                }
                if *without_anchor {
                    patterns.push((300, &r.plain, Kind::Latex));
                }
                if let Some(p) = boxed_priority {
                    patterns.push((*p, &r.boxed_envs, Kind::Latex));
                    patterns.push((*p, &r.boxed_plain, Kind::Latex));
                }
            }
            Target::Expr { without_anchor } => {
                let r = &*EXPR;
                for (regex, p) in &r.anchored {
                    patterns.push((*p, regex, Kind::Expr));
                }
                if *without_anchor {
                    patterns.push((300, &r.plain_expr, Kind::Expr));
                    patterns.push((300, &r.plain_number, Kind::Expr));
                }
            }
            Target::Strings {
                strings,
                without_anchor,
                ..
            } => owned_strings.push((string_regexes(strings, *without_anchor), target)),
        }
    }
    for (regexes, target) in &owned_strings {
        for (regex, p) in regexes.iter() {
            patterns.push((*p, regex, Kind::Strings(target)));
        }
    }
    patterns.sort_by_key(|(p, _, _)| *p);

    let mut extracted = Vec::new();
    let mut fallbacks: Vec<String> = Vec::new();
    let mut failed_latex: Vec<(usize, usize)> = Vec::new();
    let mut matched = false;
    let mut i = 0;
    while i < patterns.len() {
        let priority = patterns[i].0;
        let mut found: Vec<Found<'_, '_>> = Vec::new();
        while i < patterns.len() && patterns[i].0 == priority {
            let (_, regex, kind) = patterns[i];
            // A regex that exceeds its backtracking limit matches nothing.
            for caps in regex.captures_iter(text).map_while(Result::ok) {
                let Some(whole) = caps.get(0) else { continue };
                found.push(Found {
                    start: whole.start(),
                    end: whole.end(),
                    caps,
                    kind,
                });
            }
            i += 1;
        }
        found.sort_by(|a, b| b.end.cmp(&a.end).then(a.start.cmp(&b.start)));
        for f in &found {
            if !failed_latex.is_empty() && matches!(f.kind, Kind::Expr) {
                let overlaps = value_spans(&f.caps)
                    .iter()
                    .any(|(s, e)| failed_latex.iter().any(|(lo, hi)| *s < *hi && *e > *lo));
                if overlaps {
                    continue;
                }
            }
            let (value, fallback) = match f.kind {
                Kind::Latex => {
                    let (value, text, spans) = extract_latex(&f.caps);
                    if value.is_none() {
                        failed_latex.extend(spans);
                    }
                    (value.map(Candidate::Value), text)
                }
                Kind::Expr => {
                    let (value, text) = extract_expr(&f.caps);
                    (value.map(Candidate::Value), text)
                }
                Kind::Strings(Target::Strings { lowercase, .. }) => {
                    let s = f.caps.name("string_keys").map(|m| m.as_str()).unwrap_or("");
                    let parsed = if *lowercase {
                        s.to_lowercase()
                    } else {
                        s.to_owned()
                    };
                    (Some(Candidate::Text(parsed)), s.to_owned())
                }
                Kind::Strings(_) => (None, String::new()),
            };
            matched = true;
            if !fallback.is_empty() {
                fallbacks.push(fallback);
            }
            if let Some(value) = value {
                extracted.push(value);
                break;
            }
            if options.first_match_only {
                break;
            }
        }
        if !extracted.is_empty() || (matched && options.first_match_only) {
            break;
        }
    }
    if options.fallback_to_first_match
        && let Some(first) = fallbacks.into_iter().next()
    {
        extracted.push(Candidate::Text(first));
    }
    extracted
}
