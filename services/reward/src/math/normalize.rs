//! LaTeX clean-up before parsing: `\boxed` extraction, presentation
//! commands, units, and small notational fixes (the normalisation graders
//! such as Math-Verify apply, re-implemented).

use std::sync::LazyLock;

use fancy_regex::Regex as FancyRegex;
use regex::Regex;

/// Which `\boxed{…}` contents to keep.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Boxed {
    /// Every boxed expression, joined by commas.
    All,
    /// The last one (and boxes right before it, separated by "and" or a comma).
    Last,
}

fn re(pattern: &str) -> Regex {
    Regex::new(pattern).expect("static regex compiles")
}

fn fancy(pattern: &str) -> FancyRegex {
    FancyRegex::new(pattern).expect("static regex compiles")
}

static LEFT_RIGHT: LazyLock<Regex> = LazyLock::new(|| {
    re(
        r"\\m?(?:left|right)(\\\{|\{|\\\||\||\[|\(|\\\}|\}|\]|\)|\\lbrace|\\rbrace|\\lbrack|\\rbrack|\\vert|\\lvert|\\rvert|\\lceil|\\rceil|\\lfloor|\\rfloor|\\langle|\\rangle|\.)",
    )
});
static TO_REMOVE: LazyLock<FancyRegex> = LazyLock::new(|| {
    fancy(r#"\\mathrm\{th\}|\\!\s*|\\text\s*\{\s*\}|\\\$|\$|(?<!\\)["']|\\displaystyle"#)
});
static MATH_STYLE: LazyLock<Regex> =
    LazyLock::new(|| re(r"\\math(?:rm|it|bf)\b|\\text(?:normal|bf|it|rm)\b"));
static FRAC_STYLE: LazyLock<Regex> = LazyLock::new(|| re(r"\\[dtc]frac"));
static DECIMAL_SPACE: LazyLock<Regex> = LazyLock::new(|| re(r"(\s|\{)\.(\d)"));
static BRACED_COMMA: LazyLock<Regex> = LazyLock::new(|| re(r"\s*\{\s*,\s*\}"));
static AND_OR: LazyLock<FancyRegex> =
    LazyLock::new(|| fancy(r"(?<![a-zA-Z])(,?\s*(?:and|or))(?![a-zA-Z])"));
static AND_OR_TEXT: LazyLock<Regex> = LazyLock::new(|| re(r",?\s*\\text\{\s*(?:and|or)\s*\}"));
static BACKSLASH_SPACE: LazyLock<FancyRegex> = LazyLock::new(|| fancy(r"(?<!\\)\\\s"));
static DOTS: LazyLock<Regex> = LazyLock::new(|| re(r",?\\[lc]?dots"));
static PERCENT_WORDS: LazyLock<Regex> = LazyLock::new(|| {
    re(r"\\text\{\s*(?:percentage|percent|pct)\s*\}|\s*\b(?:percentage|percent|pct)\b")
});
static INF: LazyLock<FancyRegex> = LazyLock::new(|| fancy(r"(?<!\\)\binf(?:inity)?\b"));
static COMMAND_SLASH: LazyLock<Regex> = LazyLock::new(|| re(r"\\\\([a-zA-Z])"));
static UNIT_SUPERSCRIPT: LazyLock<Regex> =
    LazyLock::new(|| re(r"(\\(?:text|mbox)\{[^{}]*\})(\^\d|\^\{\d\}|\{\^\d\})?\s*$"));
static UNITS: LazyLock<Regex> = LazyLock::new(|| {
    let units = [
        "integer",
        "point",
        "feet",
        "foot",
        "sue",
        "digit",
        "pound",
        "meal",
        "edge",
        "student",
        "children ticket",
        "multiple",
        "east",
        "degree",
        "mph",
        "kmph",
        "ft",
        "m square",
        "m east",
        "sq m",
        "deg",
        "mile",
        "monkey",
        "prime",
        "ratio",
        "profit of rs",
        "rd",
        "gm",
        "lb",
        "tile",
        "per",
        "dm",
        "lt",
        "gain",
        "way",
        "west",
        "no change",
        "men",
        "soldier",
        "pie",
        "excess",
        "st",
        "inches",
        "noon",
        "cent",
        "gal",
        "kmh",
        "acre",
        "rise",
        "th",
        "sq",
        "mark",
        "toy",
        "coin",
        "gallon",
        "profit",
        "minw",
        "yr",
        "women",
        "am",
        "pm",
        "hr",
        "cu cm",
        "square",
        "rupee",
        "rounds",
        "cubic",
        "cc",
        "mtr",
        "ohm",
        "number",
        "day",
        "hour",
        "minute",
        "min",
        "second",
        "man",
        "woman",
        "sec",
        "cube",
        "mt",
        "sq inch",
        "mp",
        "hectare",
        "more",
        "unit",
        "cm 2",
        "rs",
        "kg",
        "g",
        "month",
        "km",
        "m",
        "cm",
        "mm",
        "apple",
        "liter",
        "loss",
        "yard",
        "pure",
        "year",
        "increase",
        "decrease",
        "less",
        "Surface",
        "litre",
        "pi sq m",
        "metre",
        "meter",
        "inch",
        "dollar",
        "cents",
        "miles",
        "yuan",
        "units",
        "people",
        "ways",
        "times",
        "seconds",
        "hours",
        "minutes",
        "days",
        "weeks",
        "week",
        "years",
        "meters",
        "centimeters",
        "kilometers",
        "grams",
        "kilograms",
    ];
    let mut sorted = units.to_vec();
    sorted.sort_by_key(|u| std::cmp::Reverse(u.len()));
    re(&format!(
        r"(\d|\}}|\s)\s*(?:{})(?:s|es)?\s*$",
        sorted.join("|")
    ))
});
static MALFORMED_POWER: LazyLock<Regex> = LazyLock::new(|| re(r"\^\s?\(([^()]*)\)"));
static BARE_SQRT: LazyLock<FancyRegex> = LazyLock::new(|| fancy(r"(?<!\\)\bsqrt\s?\(([^()]*)\)"));
static SQRT_PAREN: LazyLock<Regex> = LazyLock::new(|| re(r"\\sqrt\s?\(([^()]*)\)"));
static DEGREES: LazyLock<Regex> =
    LazyLock::new(|| re(r"\^\s*\{\s*\\circ\s*\}|\^\s*\\circ|\\circ|°|\\degree"));

/// Returns the contents of `\boxed{…}`/`\fbox{…}` in `text`, or `text` itself
/// when there is none.
pub fn extract_boxed(text: &str, mode: Boxed) -> String {
    let bytes = text.as_bytes();
    let mut results: Vec<String> = Vec::new();
    let mut search_end = text.len();
    let mut max_pos = text.len();
    let mut last_boxed_start: Option<usize> = None;
    loop {
        let boxed = text[..search_end].rfind("\\boxed");
        let fbox = text[..search_end].rfind("\\fbox");
        let (start, command_len) = match (boxed, fbox) {
            (None, None) => break,
            (Some(b), None) => (b, 6),
            (None, Some(f)) => (f, 5),
            (Some(b), Some(f)) => {
                if b > f {
                    (b, 6)
                } else {
                    (f, 5)
                }
            }
        };
        let mut brace = start + command_len;
        while brace < max_pos && bytes[brace].is_ascii_whitespace() {
            brace += 1;
        }
        if brace >= max_pos {
            break;
        }
        if bytes[brace] != b'{' {
            if results.is_empty() {
                results.push(text[brace..max_pos.max(brace)].to_owned());
            }
            break;
        }
        let Some(close) = matching_brace(bytes, brace, max_pos) else {
            if results.is_empty() {
                results.push(text[brace..].to_owned());
            }
            break;
        };
        let content = text[brace + 1..close].trim().to_owned();
        if mode == Boxed::Last
            && let Some(next_start) = last_boxed_start
        {
            let between = &text[(close + 1).min(next_start)..next_start];
            let previous = results.last().map(String::as_str).unwrap_or("");
            let separated = between.contains(',')
                || between.contains(';')
                || between
                    .split(|c: char| !c.is_alphanumeric())
                    .any(|w| w == "and" || w == "or");
            let near = between.chars().count() < 10;
            let related = content != previous && between.chars().count() < 70 && separated;
            if !(near || related) {
                break;
            }
        }
        if results.last() != Some(&content) {
            results.push(content);
        }
        last_boxed_start = Some(start);
        max_pos = start;
        search_end = start;
    }
    if results.is_empty() {
        return text.to_owned();
    }
    results.reverse();
    results.join(",")
}

/// Index of the `}` closing the `{` at `open`, before `limit`.
fn matching_brace(bytes: &[u8], open: usize, limit: usize) -> Option<usize> {
    let mut depth = 0usize;
    for (i, b) in bytes.iter().enumerate().take(limit).skip(open) {
        match b {
            b'{' => depth += 1,
            b'}' => {
                depth -= 1;
                if depth == 0 {
                    return Some(i);
                }
            }
            _ => {}
        }
    }
    None
}

fn fancy_replace(regex: &FancyRegex, text: &str, with: &str) -> String {
    regex.replace_all(text, with).into_owned()
}

/// Normalises LaTeX before parsing.
pub fn normalize(text: &str, boxed: Boxed) -> String {
    let mut text = extract_boxed(text, boxed);
    // Escaped once too often: `\\frac` for `\frac`.
    if !text.contains("matrix") && !text.contains("array") {
        text = COMMAND_SLASH.replace_all(&text, "\\$1").into_owned();
    }

    // Presentation.
    text = text
        .replace("\\mathrm{T}", "T")
        .replace("\\mathrm{d}", "d")
        .replace("{\\rm d}", "d")
        .replace("\\left[\\begin{matrix}", "\\begin{bmatrix}")
        .replace("\\end{matrix}\\right]", "\\end{bmatrix}");
    text = LEFT_RIGHT
        .replace_all(&text, |c: &regex::Captures<'_>| {
            if &c[1] == "." {
                String::new()
            } else {
                c[1].to_owned()
            }
        })
        .into_owned();
    text = fancy_replace(&TO_REMOVE, &text, "");
    text = MATH_STYLE.replace_all(&text, "\\text").into_owned();
    text = FRAC_STYLE.replace_all(&text, "\\frac").into_owned();
    text = DECIMAL_SPACE.replace_all(&text, "${1}0.$2").into_owned();
    text = text.replace("~=", "\\approx");
    text = BRACED_COMMA.replace_all(&text, ",").into_owned();
    text = AND_OR_TEXT.replace_all(&text, ",").into_owned();
    text = fancy_replace(&AND_OR, &text, ",");
    text = fancy_replace(&BACKSLASH_SPACE, &text, " ");
    text = DOTS.replace_all(&text, " ").into_owned();
    text = PERCENT_WORDS.replace_all(&text, "%").into_owned();
    text = fancy_replace(&INF, &text, "\\infty");
    text = text.replace(['\n', '\t'], " ");
    text = DEGREES.replace_all(&text, "").into_owned();

    // Units.
    let stripped = UNIT_SUPERSCRIPT.replace(&text, "").trim().to_owned();
    if !stripped.is_empty() && stripped != text {
        text = stripped;
    }
    for _ in 0..2 {
        let stripped = UNITS.replace(&text, "$1").into_owned();
        if !stripped.trim().is_empty() && stripped != text {
            text = stripped;
        }
    }

    // Small fixes.
    let mut text = text.trim().to_owned();
    if text.starts_with('.') {
        text.insert(0, '0');
    }
    text = MALFORMED_POWER.replace_all(&text, "^{$1}").into_owned();
    text = SQRT_PAREN.replace_all(&text, "\\sqrt{$1}").into_owned();
    text = fancy_replace(&BARE_SQRT, &text, "\\sqrt{$1}");
    text.trim().to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn boxed_contents_are_extracted() {
        assert_eq!(
            extract_boxed("so \\boxed{\\frac{1}{2}}.", Boxed::Last),
            "\\frac{1}{2}"
        );
        assert_eq!(
            extract_boxed("\\boxed{1} and \\boxed{2}", Boxed::Last),
            "1,2"
        );
        assert_eq!(
            extract_boxed("\\boxed{1} no no no no no \\boxed{2}", Boxed::Last),
            "2"
        );
        assert_eq!(
            extract_boxed("\\boxed{1} no no no no no \\boxed{2}", Boxed::All),
            "1,2"
        );
        assert_eq!(extract_boxed("\\boxed{12", Boxed::Last), "{12");
        assert_eq!(extract_boxed("plain", Boxed::Last), "plain");
    }

    #[test]
    fn presentation_and_units_are_removed() {
        assert_eq!(
            normalize("\\left( \\frac{1}{3} \\right)", Boxed::All),
            "( \\frac{1}{3} )"
        );
        assert_eq!(
            normalize("\\frac{1}{3} \\textbf{meters}", Boxed::All),
            "\\frac{1}{3}"
        );
        assert_eq!(normalize("15\\mbox{ cm}^2", Boxed::All), "15");
        assert_eq!(normalize("125\\textnormal{ miles}", Boxed::All), "125");
        assert_eq!(normalize("28 percent", Boxed::All), "28%");
        assert_eq!(normalize("90^\\circ", Boxed::All), "90");
        assert_eq!(normalize("\\text{Evelyn}", Boxed::All), "\\text{Evelyn}");
    }
}
