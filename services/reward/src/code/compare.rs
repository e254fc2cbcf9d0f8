//! Compares a program's output with the expected output.

use r1_proto::domain::OutputComparison;

/// Relative and absolute tolerance of the numeric comparison.
const TOLERANCE: f64 = 1e-6;

/// Whether stdout matches the expected output under `mode`.
pub fn outputs_match(actual: &str, expected: &str, mode: OutputComparison) -> bool {
    match mode {
        OutputComparison::Exact => strip_newlines(actual) == strip_newlines(expected),
        OutputComparison::Lines => lines(actual) == lines(expected),
        OutputComparison::Numeric => {
            let a: Vec<&str> = actual.split_whitespace().collect();
            let e: Vec<&str> = expected.split_whitespace().collect();
            a.len() == e.len() && a.iter().zip(&e).all(|(a, e)| tokens_match(a, e))
        }
    }
}

/// Whether a call-based test's return value (JSON) matches the expected
/// value. APPS wraps expected return values in a list; both forms count.
pub fn values_match(actual_json: &str, expected_json: &str) -> bool {
    let Ok(actual) = serde_json::from_str::<serde_json::Value>(actual_json.trim()) else {
        return false;
    };
    let Ok(expected) = serde_json::from_str::<serde_json::Value>(expected_json.trim()) else {
        return strip_newlines(actual_json) == strip_newlines(expected_json);
    };
    if json_equal(&actual, &expected) {
        return true;
    }
    matches!(&expected, serde_json::Value::Array(items) if items.len() == 1 && json_equal(&actual, &items[0]))
}

fn json_equal(a: &serde_json::Value, b: &serde_json::Value) -> bool {
    use serde_json::Value;
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => match (x.as_f64(), y.as_f64()) {
            (Some(x), Some(y)) => close(x, y),
            _ => x == y,
        },
        (Value::Array(x), Value::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(a, b)| json_equal(a, b))
        }
        (Value::Object(x), Value::Object(y)) => {
            x.len() == y.len()
                && x.iter()
                    .all(|(k, v)| y.get(k).is_some_and(|w| json_equal(v, w)))
        }
        _ => a == b,
    }
}

fn strip_newlines(text: &str) -> &str {
    text.trim_end_matches(['\n', '\r'])
}

fn lines(text: &str) -> Vec<&str> {
    let mut lines: Vec<&str> = text.lines().map(str::trim).collect();
    while lines.last() == Some(&"") {
        lines.pop();
    }
    lines
}

fn tokens_match(actual: &str, expected: &str) -> bool {
    if actual == expected {
        return true;
    }
    match (actual.parse::<f64>(), expected.parse::<f64>()) {
        (Ok(a), Ok(e)) => close(a, e),
        _ => false,
    }
}

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() <= TOLERANCE * b.abs().max(1.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exact_ignores_only_trailing_newlines() {
        assert!(outputs_match("3\n", "3", OutputComparison::Exact));
        assert!(!outputs_match("3 \n", "3", OutputComparison::Exact));
        assert!(!outputs_match("1\n2", "1 2", OutputComparison::Exact));
    }

    #[test]
    fn lines_strips_each_line_and_trailing_blank_lines() {
        assert!(outputs_match(
            "a  \n b\n\n",
            "a\nb",
            OutputComparison::Lines
        ));
        assert!(!outputs_match("a\nc", "a\nb", OutputComparison::Lines));
    }

    #[test]
    fn numeric_allows_a_small_relative_error() {
        assert!(outputs_match(
            "0.3333333 x\n",
            "0.33333333 x",
            OutputComparison::Numeric
        ));
        assert!(!outputs_match("0.34", "0.33", OutputComparison::Numeric));
        assert!(!outputs_match("1 2", "1 2 3", OutputComparison::Numeric));
    }

    #[test]
    fn return_values_compare_as_json_and_may_be_wrapped_in_a_list() {
        assert!(values_match("[1, 2]", "[1,2]"));
        assert!(values_match("7", "[7]"));
        assert!(values_match("0.30000000000000004", "0.3"));
        assert!(!values_match("[2, 1]", "[1, 2]"));
        assert!(!values_match("not json", "1"));
    }
}
