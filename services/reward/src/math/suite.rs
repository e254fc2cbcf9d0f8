//! Cases of graders' test suites (Math-Verify's `verify` cases, as stored in
//! the shared conformance data), runnable with our checker. Used by the
//! conformance tests and by `r1 bench math`.

use std::path::Path;
use std::time::Instant;

use serde_json::Value;

use super::compare::{self, Budget, CompareOptions};
use super::extract::{self, Candidate, ExtractOptions, Target};

/// One `verify` case: both texts, how each is extracted, how they are compared.
#[derive(Debug, Clone)]
pub struct SuiteCase {
    pub id: String,
    pub gold: String,
    pub pred: String,
    pub gold_targets: Vec<Target>,
    pub pred_targets: Vec<Target>,
    pub extract: ExtractOptions,
    pub compare: CompareOptions,
    pub expected: bool,
}

/// What extraction found for both sides, for diagnostics.
#[derive(Debug, Clone)]
pub struct SuiteRun {
    pub verdict: bool,
    pub gold: Vec<Candidate>,
    pub pred: Vec<Candidate>,
}

fn targets(configs: &Value) -> Result<Vec<Target>, String> {
    let list = configs
        .as_array()
        .ok_or("extraction config is not a list")?;
    list.iter()
        .map(|c| {
            let without_anchor = c["try_extract_without_anchor"].as_bool().unwrap_or(true);
            Ok(match c["type"].as_str() {
                Some("LatexExtractionConfig") => Target::Latex {
                    boxed_priority: match c["boxed_match_priority"].as_i64().unwrap_or(50) {
                        p if p < 0 => None,
                        p => Some(p as u32),
                    },
                    without_anchor,
                },
                Some("ExprExtractionConfig") => Target::Expr { without_anchor },
                Some("StringExtractionConfig") => Target::Strings {
                    strings: c["strings"]
                        .as_array()
                        .ok_or("strings missing")?
                        .iter()
                        .filter_map(|s| s.as_str().map(str::to_owned))
                        .collect(),
                    without_anchor,
                    lowercase: c["lowercase"].as_bool().unwrap_or(true),
                },
                other => return Err(format!("unknown extraction config {other:?}")),
            })
        })
        .collect()
}

impl SuiteCase {
    /// Reads a Math-Verify `verify` case; `None` for other kinds.
    pub fn from_json(case: &Value) -> Result<Option<Self>, String> {
        if case["kind"] != "verify" {
            return Ok(None);
        }
        let text = |v: &Value| v.as_str().unwrap_or("").to_owned();
        let verify = &case["verify"];
        Ok(Some(Self {
            id: text(&case["id"]),
            gold: text(&case["gold"]),
            pred: text(&case["pred"]),
            gold_targets: targets(&case["gold_extraction_config"])?,
            pred_targets: targets(&case["pred_extraction_config"])?,
            extract: ExtractOptions {
                fallback_to_first_match: case["parse"]["fallback_mode"].as_str()
                    != Some("no_fallback"),
                first_match_only: case["parse"]["extraction_mode"].as_str() == Some("first_match"),
            },
            compare: CompareOptions {
                float_rounding: case["precision"].as_u64().unwrap_or(6) as u32,
                strict: verify["strict"].as_bool().unwrap_or(true),
                allow_set_relation: verify["allow_set_relation_comp"].as_bool().unwrap_or(false),
                ..CompareOptions::default()
            },
            expected: case["expected"].as_i64() == Some(1),
        }))
    }

    pub fn run(&self) -> SuiteRun {
        let gold = extract::extract(&self.gold, &self.gold_targets, self.extract);
        let pred = extract::extract(&self.pred, &self.pred_targets, self.extract);
        let budget = Budget::until(Instant::now() + std::time::Duration::from_secs(5));
        let verdict = compare::verify(&gold, &pred, self.compare, &budget);
        SuiteRun {
            verdict,
            gold,
            pred,
        }
    }
}

/// Every `verify` case of a Math-Verify conformance file (JSON Lines).
pub fn load_math_verify_cases(path: &Path) -> Result<Vec<SuiteCase>, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let mut cases = Vec::new();
    for (i, line) in text
        .lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
    {
        let json: Value =
            serde_json::from_str(line).map_err(|e| format!("{}:{}: {e}", path.display(), i + 1))?;
        if let Some(case) =
            SuiteCase::from_json(&json).map_err(|e| format!("{}:{}: {e}", path.display(), i + 1))?
        {
            cases.push(case);
        }
    }
    Ok(cases)
}
