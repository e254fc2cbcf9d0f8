//! Agreement with other graders on their own test suites (shared conformance
//! data, read from `R1_CONFORMANCE_DIR` or `../shared/conformance`).

use std::path::PathBuf;
use std::time::{Duration, Instant};

use r1_reward::math::compare::{self, Budget, CompareOptions};
use r1_reward::math::extract::{self, ExtractOptions, Target};
use serde_json::Value;

pub fn conformance_dir() -> Option<PathBuf> {
    let dir = std::env::var_os("R1_CONFORMANCE_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/conformance")
        });
    if dir.join("math_verify_cases.jsonl").is_file() {
        Some(dir)
    } else {
        eprintln!(
            "\n*** CONFORMANCE DATA ABSENT: {} has no math_verify_cases.jsonl; set R1_CONFORMANCE_DIR. \
             The conformance tests did not run. ***\n",
            dir.display()
        );
        None
    }
}

fn targets(configs: &Value) -> Vec<Target> {
    configs
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            let without_anchor = c["try_extract_without_anchor"].as_bool().unwrap_or(true);
            match c["type"].as_str().unwrap() {
                "LatexExtractionConfig" => Target::Latex {
                    boxed_priority: match c["boxed_match_priority"].as_i64().unwrap_or(50) {
                        p if p < 0 => None,
                        p => Some(p as u32),
                    },
                    without_anchor,
                },
                "ExprExtractionConfig" => Target::Expr { without_anchor },
                "StringExtractionConfig" => Target::Strings {
                    strings: c["strings"]
                        .as_array()
                        .unwrap()
                        .iter()
                        .map(|s| s.as_str().unwrap().to_owned())
                        .collect(),
                    without_anchor,
                    lowercase: c["lowercase"].as_bool().unwrap_or(true),
                },
                other => panic!("unknown extraction config {other}"),
            }
        })
        .collect()
}

fn extract_options(case: &Value) -> ExtractOptions {
    ExtractOptions {
        fallback_to_first_match: case["parse"]["fallback_mode"].as_str() != Some("no_fallback"),
        first_match_only: case["parse"]["extraction_mode"].as_str() == Some("first_match"),
    }
}

/// Our verdict on one Math-Verify `verify` case.
fn verdict(case: &Value) -> bool {
    let options = extract_options(case);
    let text = |v: &Value| v.as_str().unwrap_or("").to_owned();
    let gold = extract::extract(
        &text(&case["gold"]),
        &targets(&case["gold_extraction_config"]),
        options,
    );
    let pred = extract::extract(
        &text(&case["pred"]),
        &targets(&case["pred_extraction_config"]),
        options,
    );
    let verify = &case["verify"];
    let compare_options = CompareOptions {
        float_rounding: case["precision"].as_u64().unwrap_or(6) as u32,
        strict: verify["strict"].as_bool().unwrap_or(true),
        allow_set_relation: verify["allow_set_relation_comp"].as_bool().unwrap_or(false),
    };
    let budget = Budget::until(Instant::now() + Duration::from_secs(5));
    let result = compare::verify(&gold, &pred, compare_options, &budget);
    // R1_DEBUG_CASE=mv-0063 shows what was extracted for one case.
    if std::env::var("R1_DEBUG_CASE").is_ok_and(|id| case["id"] == id.as_str()) {
        eprintln!("gold candidates: {gold:?}\npred candidates: {pred:?}\nresult: {result}");
    }
    result
}

fn cases(file: &str) -> Option<Vec<Value>> {
    let dir = conformance_dir()?;
    let text = std::fs::read_to_string(dir.join(file)).unwrap();
    Some(
        text.lines()
            .filter(|l| !l.trim().is_empty())
            .map(|l| serde_json::from_str(l).unwrap())
            .collect(),
    )
}

#[test]
fn math_verify_suite_agreement_is_at_least_98_percent() {
    let Some(cases) = cases("math_verify_cases.jsonl") else {
        return;
    };
    let verify_cases: Vec<&Value> = cases.iter().filter(|c| c["kind"] == "verify").collect();
    let mut disagreements = Vec::new();
    for case in &verify_cases {
        let expected = case["expected"].as_i64().unwrap() == 1;
        if verdict(case) != expected {
            disagreements.push(format!(
                "{} expected {expected}: gold {:?} pred {:?}",
                case["id"].as_str().unwrap(),
                case["gold"].as_str().unwrap_or(""),
                case["pred"]
                    .as_str()
                    .unwrap_or("")
                    .chars()
                    .rev()
                    .take(120)
                    .collect::<String>()
                    .chars()
                    .rev()
                    .collect::<String>()
            ));
        }
    }
    let agreement = 1.0 - disagreements.len() as f64 / verify_cases.len() as f64;
    eprintln!(
        "Math-Verify verify cases: {}/{} agree ({:.1}%)",
        verify_cases.len() - disagreements.len(),
        verify_cases.len(),
        agreement * 100.0
    );
    for d in &disagreements {
        eprintln!("  {d}");
    }
    assert!(agreement >= 0.98, "{} disagreements", disagreements.len());
}
