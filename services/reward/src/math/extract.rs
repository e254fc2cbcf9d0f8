//! Finding the answer in a completion: LaTeX environments, `\boxed{}`,
//! "the final answer is …", "answer: …", and bare numbers or expressions,
//! tried in order of priority, the rightmost match first. The patterns follow
//! Math-Verify's, so that answers graded by it and by us agree.

use std::collections::HashMap;
use std::sync::{Arc, LazyLock, Mutex};

use fancy_regex::{Captures, Regex};

use super::envs::{self, Anchor, Chain};
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

/// A text property without which a pattern cannot match; checked once per
/// text so that most patterns never run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Needs {
    /// The word "answer", in any case.
    Answer,
    /// A digit.
    Digit,
}

struct Present {
    answer: bool,
    digit: bool,
}

impl Present {
    fn of(text: &str) -> Self {
        let bytes = text.as_bytes();
        Self {
            answer: bytes.windows(6).any(|w| w.eq_ignore_ascii_case(b"answer")),
            digit: bytes.iter().any(u8::is_ascii_digit),
        }
    }

    fn has(&self, needs: &[Needs]) -> bool {
        needs.iter().all(|n| match n {
            Needs::Answer => self.answer,
            Needs::Digit => self.digit,
        })
    }
}

/// Capture-group indices of a pattern, looked up once when it is compiled.
#[derive(Debug, Default)]
struct Groups {
    integer: [Option<usize>; 3],
    decimal: [Option<usize>; 3],
    percent: Option<usize>,
    expr: Option<usize>,
    string_keys: Option<usize>,
}

impl Groups {
    fn of(regex: &Regex) -> Self {
        let mut g = Self::default();
        for (index, name) in regex.capture_names().enumerate() {
            let Some(name) = name else { continue };
            let digit =
                |n: &str, stem: &str| n.strip_prefix(stem).and_then(|d| d.parse::<usize>().ok());
            match name {
                "percent" => g.percent = Some(index),
                "expr" => g.expr = Some(index),
                "string_keys" => g.string_keys = Some(index),
                _ => {
                    if let Some(i) = digit(name, "integer").filter(|i| (1..=3).contains(i)) {
                        g.integer[i - 1] = Some(index);
                    } else if let Some(i) = digit(name, "decimal").filter(|i| (1..=3).contains(i)) {
                        g.decimal[i - 1] = Some(index);
                    }
                }
            }
        }
        g
    }
}

struct Pattern {
    regex: Regex,
    priority: u32,
    needs: &'static [Needs],
    groups: Groups,
}

impl Pattern {
    fn new(pattern: &str, priority: u32, needs: &'static [Needs]) -> Self {
        let regex = compile(pattern);
        let groups = Groups::of(&regex);
        Self {
            regex,
            priority,
            needs,
            groups,
        }
    }
}

const NUMBER: &str = r"(?:(?P<integer1>-?[1-9]\d{0,2}(?:[ ,]\d{3})+)(?P<decimal1>\.\d+)?|(?P<integer2>-?\d+)(?P<decimal2>[.,]\d+)|(?P<decimal3>\.\d+)|(?P<integer3>-?\d+))(?P<percent>\s*(?:%|[Pp]ercent|\s*[Pp]ercentage|\s*[Pp]ct))?";
const CURRENCY: &str = "$€£¥₹₽₪₩₫฿₡₢₣₤₥₦₧₨₭₮₯₰₱₲₳₴₵₶₷₸₺₻₼₾₿";

struct ExprRegexes {
    anchored: Vec<Pattern>,
    plain_expr: Pattern,
    plain_number: Pattern,
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
    const ANCHORED: &[Needs] = &[Needs::Answer, Needs::Digit];
    ExprRegexes {
        anchored: vec![
            Pattern::new(
                &format!(r"(?i:final answer is):?\s*{either}\.?\s?I hope"),
                0,
                ANCHORED,
            ),
            Pattern::new(
                &format!(r"(?i:final answer.{{0,100}}?)\s+is:?{either}"),
                50,
                ANCHORED,
            ),
            Pattern::new(
                &format!(r"(?i:answer):(?:.{{0,100}}=\s*|.{{0,50}}?){either}(?!\s*=)"),
                100,
                ANCHORED,
            ),
            Pattern::new(
                &format!(r"(?i:answer)(?:.{{0,100}}=\s*|.{{0,50}}?){either}(?!\s*=)"),
                200,
                ANCHORED,
            ),
        ],
        plain_expr: Pattern::new(&with_expr, 300, &[Needs::Digit]),
        plain_number: Pattern::new(&with_number, 300, &[Needs::Digit]),
    }
});

type StringRegexes = Arc<Vec<Pattern>>;

type StringCache = Mutex<HashMap<(Vec<String>, bool), StringRegexes>>;

static STRINGS: LazyLock<StringCache> = LazyLock::new(|| Mutex::new(HashMap::new()));

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
        Pattern::new(
            &format!(r"(?i:final answer is):?\s*{keys}\.?\s?I hope"),
            0,
            &[Needs::Answer],
        ),
        Pattern::new(
            &format!(r"(?i:final answer.{{0,100}}?)\s+is:?\s*{keys}"),
            50,
            &[Needs::Answer],
        ),
        Pattern::new(
            &format!(r"(?i:answer):.{{0,50}}?{answer}"),
            100,
            &[Needs::Answer],
        ),
        Pattern::new(
            &format!(r"(?i:answer).{{0,50}}?{answer}"),
            200,
            &[Needs::Answer],
        ),
    ];
    if without_anchor {
        regexes.push(Pattern::new(
            &format!(r"^(?:\*\*)?{keys}{suffix}"),
            250,
            &[],
        ));
        regexes.push(Pattern::new(&answer, 300, &[]));
    }
    let regexes = Arc::new(regexes);
    if cache.len() < 64 {
        cache.insert(key, regexes.clone());
    }
    regexes
}

/// Where the matches of one pattern come from.
#[derive(Clone, Copy)]
enum Source<'t> {
    Regex(&'t Pattern, Kind<'t>),
    /// Plain environment chains (boxed: only those holding a `\boxed{}`).
    Envs {
        boxed: bool,
    },
    Anchored(Anchor),
    /// `\boxed{` to the last `}`.
    BoxedSpan,
}

#[derive(Clone, Copy)]
enum Kind<'t> {
    Expr,
    Strings(&'t Target),
}

enum Data<'h, 't> {
    Regex(Captures<'h>, &'t Groups, Kind<'t>),
    Latex(Chain),
    Boxed(std::ops::Range<usize>),
}

struct Found<'h, 't> {
    start: usize,
    end: usize,
    data: Data<'h, 't>,
}

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

/// Parses the environments of a LaTeX match; several that all parse make a
/// set. Also returns the normalised text and the span of the first one.
fn extract_latex(
    text: &str,
    pieces: &[(std::ops::Range<usize>, bool, Boxed)],
) -> (Option<Expr>, String, Vec<(usize, usize)>) {
    let mut values = Vec::new();
    let mut texts = Vec::new();
    let first_spans = pieces
        .first()
        .map(|(r, _, _)| (r.start, r.end))
        .into_iter()
        .collect();
    for (range, is_percent, mode) in pieces {
        let normalized = normalize::normalize(&text[range.clone()], *mode);
        let parsed = parse_latex(&normalized).map(|e| if *is_percent { percent(e) } else { e });
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

fn extract_expr(caps: &Captures<'_>, groups: &Groups) -> (Option<Expr>, String) {
    let first = |slots: &[Option<usize>; 3]| {
        slots
            .iter()
            .find_map(|s| s.and_then(|i| caps.get(i)).map(|m| m.as_str()))
    };
    let integer = first(&groups.integer).unwrap_or("");
    let decimal = first(&groups.decimal).unwrap_or("");
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
        let is_percent = groups.percent.and_then(|i| caps.get(i)).is_some();
        let value = if is_percent {
            value.map(percent)
        } else {
            value
        };
        return (value, number);
    }
    let expr = groups
        .expr
        .and_then(|i| caps.get(i))
        .map(|m| m.as_str())
        .unwrap_or("");
    if expr.is_empty() {
        return (None, String::new());
    }
    let text = expr.replace('\n', " ");
    (
        latex::parse(&text, ParseOptions::default()),
        expr.to_owned(),
    )
}

fn value_spans(caps: &Captures<'_>, groups: &Groups) -> Vec<(usize, usize)> {
    std::iter::once(groups.expr)
        .chain(groups.integer)
        .chain(groups.decimal)
        .flatten()
        .filter_map(|i| caps.get(i))
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
    let present = Present::of(text);
    // (priority, source) for every pattern of every target that can match.
    let mut patterns: Vec<(u32, Source<'_>)> = Vec::new();
    let mut owned_strings = Vec::new();
    for target in targets {
        match target {
            Target::Latex {
                boxed_priority,
                without_anchor,
            } => {
                if present.answer {
                    patterns.push((0, Source::Anchored(Anchor::FinalAnswerHope)));
                    patterns.push((50, Source::Anchored(Anchor::FinalAnswerIs)));
                    patterns.push((100, Source::Anchored(Anchor::AnswerColon)));
                    patterns.push((200, Source::Anchored(Anchor::Answer)));
                }
                if *without_anchor {
                    patterns.push((300, Source::Envs { boxed: false }));
                }
                if let Some(p) = boxed_priority {
                    patterns.push((*p, Source::Envs { boxed: true }));
                    patterns.push((*p, Source::BoxedSpan));
                }
            }
            Target::Expr { without_anchor } => {
                let r = &*EXPR;
                for pattern in &r.anchored {
                    patterns.push((pattern.priority, Source::Regex(pattern, Kind::Expr)));
                }
                if *without_anchor {
                    patterns.push((300, Source::Regex(&r.plain_expr, Kind::Expr)));
                    patterns.push((300, Source::Regex(&r.plain_number, Kind::Expr)));
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
        for pattern in regexes.iter() {
            patterns.push((
                pattern.priority,
                Source::Regex(pattern, Kind::Strings(target)),
            ));
        }
    }
    patterns.retain(|(_, source)| match source {
        Source::Regex(pattern, _) => present.has(pattern.needs),
        _ => true,
    });
    patterns.sort_by_key(|(p, _)| *p);

    let mut extracted = Vec::new();
    let mut fallbacks: Vec<String> = Vec::new();
    let mut failed_latex: Vec<(usize, usize)> = Vec::new();
    let mut matched = false;
    let mut i = 0;
    while i < patterns.len() {
        let priority = patterns[i].0;
        let mut found: Vec<Found<'_, '_>> = Vec::new();
        while i < patterns.len() && patterns[i].0 == priority {
            match patterns[i].1 {
                Source::Regex(pattern, kind) => {
                    // A regex that exceeds its backtracking limit matches nothing.
                    for caps in pattern.regex.captures_iter(text).map_while(Result::ok) {
                        let Some(whole) = caps.get(0) else { continue };
                        found.push(Found {
                            start: whole.start(),
                            end: whole.end(),
                            data: Data::Regex(caps, &pattern.groups, kind),
                        });
                    }
                }
                Source::Envs { boxed } => {
                    found.extend(envs::chains(text, boxed).into_iter().map(|c| Found {
                        start: c.start,
                        end: c.end,
                        data: Data::Latex(c),
                    }))
                }
                Source::Anchored(anchor) => {
                    found.extend(envs::anchored(text, anchor).into_iter().map(|c| Found {
                        start: c.start,
                        end: c.end,
                        data: Data::Latex(c),
                    }))
                }
                Source::BoxedSpan => found.extend(envs::boxed_span(text).map(|r| Found {
                    start: r.start,
                    end: r.end,
                    data: Data::Boxed(r),
                })),
            }
            i += 1;
        }
        found.sort_by(|a, b| b.end.cmp(&a.end).then(a.start.cmp(&b.start)));
        for f in &found {
            if !failed_latex.is_empty()
                && let Data::Regex(caps, groups, Kind::Expr) = &f.data
            {
                let overlaps = value_spans(caps, groups)
                    .iter()
                    .any(|(s, e)| failed_latex.iter().any(|(lo, hi)| *s < *hi && *e > *lo));
                if overlaps {
                    continue;
                }
            }
            let latex = |pieces: Vec<(std::ops::Range<usize>, bool, Boxed)>,
                         failed: &mut Vec<(usize, usize)>| {
                let (value, normalized, spans) = extract_latex(text, &pieces);
                if value.is_none() {
                    failed.extend(spans);
                }
                (value.map(Candidate::Value), normalized)
            };
            let (value, fallback) = match &f.data {
                Data::Latex(chain) => {
                    let pieces = chain
                        .envs
                        .iter()
                        .map(|e| (e.content.clone(), e.percent, Boxed::All))
                        .collect();
                    latex(pieces, &mut failed_latex)
                }
                Data::Boxed(range) => {
                    latex(vec![(range.clone(), false, Boxed::Last)], &mut failed_latex)
                }
                Data::Regex(caps, groups, Kind::Expr) => {
                    let (value, text) = extract_expr(caps, groups);
                    (value.map(Candidate::Value), text)
                }
                Data::Regex(caps, groups, Kind::Strings(target)) => {
                    let lowercase = matches!(
                        target,
                        Target::Strings {
                            lowercase: true,
                            ..
                        }
                    );
                    let s = groups
                        .string_keys
                        .and_then(|i| caps.get(i))
                        .map(|m| m.as_str())
                        .unwrap_or("");
                    let parsed = if lowercase {
                        s.to_lowercase()
                    } else {
                        s.to_owned()
                    };
                    (Some(Candidate::Text(parsed)), s.to_owned())
                }
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
