//! Hostile and random input: the checker returns a verdict in bounded time
//! and never panics.

use proptest::prelude::*;
use r1_reward::math::MathConfig;

fn check(gold: &str, pred: &str) -> bool {
    MathConfig::default().check(gold, pred).correct
}

#[test]
fn megabyte_and_deeply_nested_inputs_get_a_verdict() {
    let cases: Vec<(&str, String)> = vec![
        ("1", "x".repeat(1 << 20)),
        ("1", "$".repeat(1 << 20)),
        ("1", "\\boxed{".repeat(100_000)),
        (
            "1",
            format!("{}1{}", "{".repeat(10_000), "}".repeat(10_000)),
        ),
        (
            "1",
            format!(
                "The answer is {}1{}",
                "(1+".repeat(5_000),
                ")".repeat(5_000)
            ),
        ),
        ("1", "1".repeat(1 << 20)),
        ("1", "\\left(".repeat(20_000)),
        ("1", "\\frac{1}{".repeat(50_000)),
        ("1", "\\begin{pmatrix}".repeat(10_000)),
    ];
    for (gold, pred) in &cases {
        assert!(!check(gold, pred), "{}…", &pred[..40]);
    }
    // Unbalanced or unterminated LaTeX in the gold answer.
    for gold in [
        "\\frac{",
        "\\boxed{",
        "\\sqrt[",
        "}{",
        "\\left(",
        "$",
        "\\begin{pmatrix}1",
    ] {
        assert!(!check(gold, "1"), "{gold}");
    }
    // Still correct when the answer is in there.
    assert!(check(
        "1",
        &format!("{} so the answer is $1$.", "word ".repeat(200_000))
    ));
}

#[test]
fn invalid_utf8_cannot_reach_the_checker_but_replacement_text_is_checked() {
    let text = String::from_utf8_lossy(b"\xff\xfe the answer is 4 \xc3");
    assert!(check("4", &text));
}

const LATEX_TOKENS: &[&str] = &[
    "\\frac",
    "{",
    "}",
    "\\boxed{",
    "$",
    "$$",
    "\\sqrt",
    "^",
    "_",
    "(",
    ")",
    "[",
    "]",
    "\\left",
    "\\right",
    "1",
    "2",
    "0.5",
    "x",
    "y",
    "=",
    ",",
    ";",
    "\\text{",
    "\\begin{pmatrix}",
    "&",
    "\\\\",
    "\\end{pmatrix}",
    "\\pm",
    "%",
    "\\cup",
    "\\in",
    "\\le",
    "<",
    "-",
    "+",
    "\\cdot",
    "\\pi",
    "e",
    "i",
    "\\infty",
    "!",
    "\\sin",
    "\\log_",
    "|",
    " ",
    "answer",
    "final answer is",
    "\\(",
    "\\)",
    "\\[",
    "\\]",
    "#### ",
    "<answer>",
    "</answer>",
    "<think>",
    "</think>",
    "\\sum_{k=1}^{n}",
    "\\{",
    "\\}",
    "\\approx",
];

fn latex_soup() -> impl Strategy<Value = String> {
    prop::collection::vec(prop::sample::select(LATEX_TOKENS), 0..60).prop_map(|t| t.concat())
}

fn mutate(seed: &str, edits: Vec<(usize, u8, char)>) -> String {
    let mut chars: Vec<char> = seed.chars().collect();
    for (at, op, c) in edits {
        if chars.is_empty() {
            chars.push(c);
            continue;
        }
        let at = at % chars.len();
        match op % 3 {
            0 => chars.insert(at, c),
            1 => {
                chars.remove(at);
            }
            _ => chars[at] = c,
        }
    }
    chars.into_iter().collect()
}

const SEEDS: &[&str] = &[
    "The answer is $\\boxed{\\frac{1}{2}}$.",
    "$x \\in [-2,7]$",
    "\\begin{pmatrix}1 & 2 \\\\ 3 & 4\\end{pmatrix}",
    "Final Answer: The final answer is $(3, \\frac{\\pi}{2})$. I hope it is correct.",
    "<think>2+2</think><answer>4</answer>",
    "$\\{1\\pm\\sqrt{5},-2\\}$",
];

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, .. ProptestConfig::default() })]

    #[test]
    fn random_text_never_panics(gold in ".{0,200}", pred in ".{0,400}") {
        let verdict = MathConfig::default().check(&gold, &pred);
        prop_assert!(!verdict.correct || verdict.decided);
    }

    #[test]
    fn random_latex_never_panics(gold in latex_soup(), pred in latex_soup()) {
        let verdict = MathConfig::default().check(&gold, &pred);
        prop_assert!(!verdict.correct || verdict.decided);
    }

    #[test]
    fn mutated_answers_never_panic(
        seed in prop::sample::select(SEEDS),
        edits in prop::collection::vec((any::<usize>(), any::<u8>(), prop::sample::select(vec!['{', '}', '$', '\\', '(', ']', '^', '_', '1', 'x', ',', '='])), 1..12),
    ) {
        let pred = mutate(seed, edits);
        let verdict = MathConfig::default().check(seed, &pred);
        prop_assert!(!verdict.correct || verdict.decided);
    }

    #[test]
    fn numbers_equal_themselves_and_differ_from_their_successor(n in -1_000_000_000i64..1_000_000_000, d in 1i64..1000) {
        let fraction = format!("\\frac{{{n}}}{{{d}}}");
        let same = format!("the answer is ${fraction}$");
        let next_fraction = format!("$\\frac{{{}}}{{{d}}}$", n + 1);
        let integer = n.to_string();
        let marked = format!("#### {n}");
        let successor = format!("#### {}", n + 1);
        prop_assert!(check(&fraction, &same));
        prop_assert!(check(&integer, &marked));
        prop_assert!(!check(&integer, &successor));
        prop_assert!(!check(&fraction, &next_fraction));
    }
}
