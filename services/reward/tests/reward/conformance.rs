//! Agreement with other graders on their own test suites (shared conformance
//! data, read from `R1_CONFORMANCE_DIR` or `../shared/conformance`).

use std::path::PathBuf;

use r1_reward::math::MathConfig;
use r1_reward::math::suite::load_math_verify_cases;
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

#[test]
fn math_verify_suite_agreement_is_at_least_98_percent() {
    let Some(dir) = conformance_dir() else {
        return;
    };
    let cases = load_math_verify_cases(&dir.join("math_verify_cases.jsonl")).unwrap();
    assert_eq!(cases.len(), 270, "the suite has 270 verify cases");
    let debug = std::env::var("R1_DEBUG_CASE").ok();
    let mut disagreements = Vec::new();
    for case in &cases {
        let run = case.run();
        if debug.as_deref() == Some(case.id.as_str()) {
            eprintln!(
                "gold: {:?}\npred: {:?}\nverdict: {}",
                run.gold, run.pred, run.verdict
            );
        }
        if run.verdict != case.expected {
            disagreements.push(format!(
                "{} expected {}: gold {:?} pred {:?}",
                case.id, case.expected, case.gold, case.pred
            ));
        }
    }
    let agreement = 1.0 - disagreements.len() as f64 / cases.len() as f64;
    eprintln!(
        "Math-Verify verify cases: {}/{} agree ({:.1}%)",
        cases.len() - disagreements.len(),
        cases.len(),
        agreement * 100.0
    );
    for d in &disagreements {
        eprintln!("  {d}");
    }
    assert!(agreement >= 0.98, "{} disagreements", disagreements.len());
}

/// Our verdict for a grader case, or `None` when the case is about
/// something else (timeouts of another library).
fn grader_verdict(math: &MathConfig, case: &Value) -> Option<f64> {
    // Several ground truths: correct if any matches.
    let golds: Vec<String> = match &case["gold"] {
        Value::Array(items) => items.iter().map(value_text).collect(),
        other => vec![value_text(other)],
    };
    let pred = case["pred"].as_str().unwrap_or("");
    let kind = case["kind"].as_str()?;
    match kind {
        "format_reward" => {
            let format = r1_reward::format::FormatConfig::default();
            Some(f64::from(u8::from(format.check(pred).well_formed)))
        }
        "behaviour" => None,
        _ => Some(f64::from(u8::from(
            golds.iter().any(|g| math.check(g, pred).correct),
        ))),
    }
}

fn value_text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        other => other.to_string(),
    }
}

fn expected(case: &Value) -> Option<f64> {
    let value = if case["expected"].is_null() {
        &case["expected_inferred_from"]["expected"]
    } else {
        &case["expected"]
    };
    match value {
        Value::Bool(b) => Some(f64::from(u8::from(*b))),
        Value::Number(n) => n.as_f64().map(|x| if x > 0.0 { 1.0 } else { 0.0 }),
        _ => None,
    }
}

#[test]
fn grader_cases_agreement_is_reported_per_kind() {
    let Some(dir) = conformance_dir() else {
        return;
    };
    let text = std::fs::read_to_string(dir.join("grader_cases.jsonl")).unwrap();
    let math = MathConfig::default();
    let mut per_kind: std::collections::BTreeMap<String, (usize, usize)> = Default::default();
    let mut disagreements = Vec::new();
    for line in text.lines().filter(|l| !l.trim().is_empty()) {
        let case: Value = serde_json::from_str(line).unwrap();
        let (Some(ours), Some(want)) = (grader_verdict(&math, &case), expected(&case)) else {
            continue;
        };
        let kind = case["kind"].as_str().unwrap().to_owned();
        let entry = per_kind.entry(kind.clone()).or_default();
        entry.1 += 1;
        if ours == want {
            entry.0 += 1;
        } else {
            disagreements.push(format!(
                "{} ({kind}) expected {want}",
                case["id"].as_str().unwrap()
            ));
        }
    }
    let (agree, total) = per_kind
        .values()
        .fold((0, 0), |(a, t), (x, y)| (a + x, t + y));
    eprintln!("grader cases: {agree}/{total} agree");
    for (kind, (a, t)) in &per_kind {
        eprintln!("  {kind}: {a}/{t}");
    }
    for d in &disagreements {
        eprintln!("  disagree: {d}");
    }
    let math_kinds: (usize, usize) = per_kind
        .iter()
        .filter(|(k, _)| !k.contains("format"))
        .fold((0, 0), |(a, t), (_, (x, y))| (a + x, t + y));
    assert!(total > 100, "only {total} grader cases were comparable");
    assert!(
        math_kinds.0 as f64 >= 0.9 * math_kinds.1 as f64,
        "answer checking agrees on only {}/{} grader cases",
        math_kinds.0,
        math_kinds.1
    );
}
