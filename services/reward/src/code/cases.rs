//! Test cases in the shapes code datasets ship them, turned into
//! [`CodeTest`]s: APPS/TACO `{"inputs": [...], "outputs": [...], "fn_name"?}`
//! and LiveCodeBench `[{"input", "output", "testtype"}]`. Call-based tests
//! carry their arguments as a JSON array and the expected return value as
//! JSON.

use r1_proto::domain::CodeTest;
use serde_json::Value;

/// Tests of one problem and, for call-based problems, the function to call.
#[derive(Debug, Clone, PartialEq)]
pub struct TestSuite {
    pub tests: Vec<CodeTest>,
    pub fn_name: Option<String>,
}

/// Parses either shape; `fn_name` from outside the tests (LiveCodeBench keeps
/// it in the problem's metadata) applies when the tests do not name one.
pub fn parse(value: &Value, fn_name: Option<&str>) -> Result<TestSuite, String> {
    let suite = match value {
        Value::Object(object) if object.contains_key("inputs") => apps(object, fn_name)?,
        Value::Array(items) => live_code_bench(items, fn_name)?,
        _ => {
            return Err(
                "tests: expected {\"inputs\": [...], \"outputs\": [...]} or [{\"input\", \"output\", \"testtype\"}]"
                    .into(),
            );
        }
    };
    if suite.tests.is_empty() {
        return Err("tests: no test cases".into());
    }
    if let Some(name) = &suite.fn_name {
        check_identifier(name)?;
    }
    Ok(suite)
}

fn apps(
    object: &serde_json::Map<String, Value>,
    fn_name: Option<&str>,
) -> Result<TestSuite, String> {
    let list = |key: &str| -> Result<&Vec<Value>, String> {
        object
            .get(key)
            .and_then(Value::as_array)
            .ok_or_else(|| format!("tests.{key}: expected an array"))
    };
    let inputs = list("inputs")?;
    let outputs = list("outputs")?;
    if inputs.len() != outputs.len() {
        return Err(format!(
            "tests: {} inputs but {} outputs",
            inputs.len(),
            outputs.len()
        ));
    }
    let fn_name = match object.get("fn_name") {
        Some(Value::String(name)) if !name.is_empty() => Some(name.clone()),
        Some(Value::String(_) | Value::Null) | None => fn_name.map(str::to_owned),
        Some(_) => return Err("tests.fn_name: expected a string".into()),
    };
    let tests = inputs
        .iter()
        .zip(outputs)
        .enumerate()
        .map(|(i, (input, output))| {
            if fn_name.is_some() {
                let args = match input {
                    Value::Array(_) => input.to_string(),
                    other => Value::Array(vec![other.clone()]).to_string(),
                };
                Ok(CodeTest {
                    input: args,
                    expected_output: output.to_string(),
                })
            } else {
                Ok(CodeTest {
                    input: text(input).ok_or(format!("tests.inputs[{i}]: expected a string"))?,
                    expected_output: text(output)
                        .ok_or(format!("tests.outputs[{i}]: expected a string"))?,
                })
            }
        })
        .collect::<Result<_, String>>()?;
    Ok(TestSuite { tests, fn_name })
}

/// A stdin/stdout text; APPS sometimes lists the lines instead.
fn text(value: &Value) -> Option<String> {
    match value {
        Value::String(s) => Some(s.clone()),
        Value::Array(lines) => lines
            .iter()
            .map(|l| l.as_str().map(str::to_owned))
            .collect::<Option<Vec<_>>>()
            .map(|lines| lines.join("\n")),
        _ => None,
    }
}

fn live_code_bench(items: &[Value], fn_name: Option<&str>) -> Result<TestSuite, String> {
    let mut tests = Vec::with_capacity(items.len());
    let mut functional = None;
    for (i, item) in items.iter().enumerate() {
        let field = |key: &str| -> Result<&str, String> {
            item.get(key)
                .and_then(Value::as_str)
                .ok_or_else(|| format!("tests[{i}].{key}: expected a string"))
        };
        let input = field("input")?;
        let output = item
            .get("output")
            .or_else(|| item.get("expected_output"))
            .and_then(Value::as_str)
            .ok_or_else(|| format!("tests[{i}].output: expected a string"))?;
        let is_functional = match item.get("testtype").and_then(Value::as_str) {
            None | Some("stdin") => false,
            Some("functional") => true,
            Some(other) => {
                return Err(format!(
                    "tests[{i}].testtype: {other:?} is neither \"stdin\" nor \"functional\""
                ));
            }
        };
        if *functional.get_or_insert(is_functional) != is_functional {
            return Err(format!(
                "tests[{i}].testtype: a problem's tests are all stdin or all functional"
            ));
        }
        if is_functional {
            let args = input
                .lines()
                .filter(|l| !l.trim().is_empty())
                .map(|l| {
                    serde_json::from_str::<Value>(l)
                        .map_err(|e| format!("tests[{i}].input: argument {l:?} is not JSON: {e}"))
                })
                .collect::<Result<Vec<_>, _>>()?;
            tests.push(CodeTest {
                input: Value::Array(args).to_string(),
                expected_output: output.to_owned(),
            });
        } else {
            tests.push(CodeTest {
                input: input.to_owned(),
                expected_output: output.to_owned(),
            });
        }
    }
    let fn_name = match functional {
        Some(true) => Some(
            fn_name
                .ok_or("fn_name: functional tests need the name of the function to call")?
                .to_owned(),
        ),
        _ => None,
    };
    Ok(TestSuite { tests, fn_name })
}

/// Function names are spliced into the harness, so only identifiers pass.
pub fn check_identifier(name: &str) -> Result<(), String> {
    let mut chars = name.chars();
    let valid = chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_' || c == '$')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '$');
    if valid {
        Ok(())
    } else {
        Err(format!("fn_name: {name:?} is not an identifier"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn apps_stdin_tests_keep_their_text_and_join_listed_lines() {
        let suite = parse(
            &json!({"inputs": ["1 2\n", ["3", "4"]], "outputs": ["3\n", "7"]}),
            None,
        )
        .unwrap();
        assert_eq!(suite.fn_name, None);
        assert_eq!(suite.tests[1].input, "3\n4");
        assert_eq!(suite.tests[0].expected_output, "3\n");
    }

    #[test]
    fn apps_call_based_tests_carry_json_arguments() {
        let suite = parse(
            &json!({"inputs": [[1, [2, 3]]], "outputs": [[6]], "fn_name": "total"}),
            None,
        )
        .unwrap();
        assert_eq!(suite.fn_name.as_deref(), Some("total"));
        assert_eq!(suite.tests[0].input, "[1,[2,3]]");
        assert_eq!(suite.tests[0].expected_output, "[6]");
    }

    #[test]
    fn live_code_bench_functional_inputs_are_one_json_argument_per_line() {
        let suite = parse(
            &json!([{"input": "[1, 2]\n3", "output": "6", "testtype": "functional"}]),
            Some("f"),
        )
        .unwrap();
        assert_eq!(suite.tests[0].input, "[[1,2],3]");
        let missing = parse(
            &json!([{"input": "1", "output": "1", "testtype": "functional"}]),
            None,
        );
        assert!(missing.unwrap_err().contains("fn_name"));
    }

    #[test]
    fn malformed_tests_are_errors_naming_the_field() {
        let err = parse(&json!({"inputs": ["1"], "outputs": []}), None).unwrap_err();
        assert!(err.contains("1 inputs but 0 outputs"), "{err}");
        let err = parse(&json!([{"input": 1, "output": "1"}]), None).unwrap_err();
        assert!(err.contains("tests[0].input"), "{err}");
        let err = parse(
            &json!({"inputs": [[1]], "outputs": [1], "fn_name": "a b"}),
            None,
        )
        .unwrap_err();
        assert!(err.contains("not an identifier"), "{err}");
        assert!(
            parse(&json!([]), None)
                .unwrap_err()
                .contains("no test cases")
        );
    }
}
