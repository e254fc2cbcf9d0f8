//! The reward configuration file (TOML): how math answers are found, the
//! format template, and the weights of each reward profile.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use serde::Deserialize;

use crate::code::CodeSettings;
use crate::format::FormatConfig;
use crate::math::MathConfig;
use crate::math::compare::CompareOptions;

/// Names of the reward components a profile can weigh.
pub const COMPONENTS: &[&str] = &["accuracy", "format", "language"];

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RewardConfig {
    pub math: MathSettings,
    pub format: FormatConfig,
    pub code: CodeSettings,
    /// Weights per profile; a task picks its profile by name, or by its kind
    /// (`math`, `code`, `open`).
    pub profiles: BTreeMap<String, BTreeMap<String, f64>>,
}

impl Default for RewardConfig {
    fn default() -> Self {
        let math = BTreeMap::from([
            ("accuracy".to_owned(), 1.0),
            ("format".to_owned(), 0.1),
            ("language".to_owned(), 0.1),
        ]);
        let code = BTreeMap::from([("accuracy".to_owned(), 1.0), ("format".to_owned(), 0.1)]);
        Self {
            math: MathSettings::default(),
            format: FormatConfig::default(),
            code: CodeSettings::default(),
            profiles: BTreeMap::from([("math".to_owned(), math), ("code".to_owned(), code)]),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MathSettings {
    /// Only text after `</reasoning_tag>` holds the answer; "" disables.
    pub reasoning_tag: String,
    /// Search only the last `<answer_tag>…</answer_tag>` block; "" disables.
    pub answer_tag: String,
    pub gsm8k_marker: bool,
    pub boxed_first: bool,
    pub bare_latex: bool,
    pub last_number: bool,
    /// Decimals are compared after rounding to this many places.
    pub float_rounding: u32,
    /// Time budget of one check.
    pub budget_ms: u64,
}

impl Default for MathSettings {
    fn default() -> Self {
        let d = MathConfig::default();
        Self {
            reasoning_tag: d.reasoning_tag.unwrap_or_default(),
            answer_tag: d.answer_tag.unwrap_or_default(),
            gsm8k_marker: d.gsm8k_marker,
            boxed_first: d.boxed_first,
            bare_latex: d.bare_latex,
            last_number: d.last_number,
            float_rounding: d.compare.float_rounding,
            budget_ms: d.budget.as_millis() as u64,
        }
    }
}

impl MathSettings {
    pub fn to_config(&self) -> MathConfig {
        let tag = |t: &str| (!t.is_empty()).then(|| t.to_owned());
        MathConfig {
            reasoning_tag: tag(&self.reasoning_tag),
            answer_tag: tag(&self.answer_tag),
            gsm8k_marker: self.gsm8k_marker,
            boxed_first: self.boxed_first,
            bare_latex: self.bare_latex,
            last_number: self.last_number,
            compare: CompareOptions {
                float_rounding: self.float_rounding,
                ..CompareOptions::default()
            },
            budget: Duration::from_millis(self.budget_ms),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("{path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("{path}: {message}")]
    Parse { path: String, message: String },
    #[error("{path}: {message}")]
    Invalid { path: String, message: String },
}

impl RewardConfig {
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.display().to_string(),
            source,
        })?;
        Self::parse(&text, &path.display().to_string())
    }

    /// Parses and validates; `origin` names the source in errors.
    pub fn parse(text: &str, origin: &str) -> Result<Self, ConfigError> {
        let config: Self = toml::from_str(text).map_err(|e| ConfigError::Parse {
            path: origin.to_owned(),
            message: e.to_string().trim().to_owned(),
        })?;
        config.validate().map_err(|message| ConfigError::Invalid {
            path: origin.to_owned(),
            message,
        })?;
        Ok(config)
    }

    pub fn validate(&self) -> Result<(), String> {
        for (profile, weights) in &self.profiles {
            for (component, weight) in weights {
                if !COMPONENTS.contains(&component.as_str()) {
                    return Err(format!(
                        "profiles.{profile}.{component}: unknown component (known: {})",
                        COMPONENTS.join(", ")
                    ));
                }
                if !weight.is_finite() {
                    return Err(format!(
                        "profiles.{profile}.{component}: weight must be finite"
                    ));
                }
            }
        }
        if self.math.budget_ms == 0 {
            return Err("math.budget_ms: must be at least 1".into());
        }
        if self.math.float_rounding > 15 {
            return Err("math.float_rounding: at most 15 decimal places".into());
        }
        self.code.validate()?;
        if self.format.think_tag.is_empty() || self.format.answer_tag.is_empty() {
            return Err("format: think_tag and answer_tag must not be empty".into());
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_shipped_example_config_parses() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../configs/reward.toml");
        let config = RewardConfig::load(&path).unwrap();
        assert_eq!(config.profiles["math"]["accuracy"], 1.0);
        assert_eq!(config.math.budget_ms, 500);
    }

    #[test]
    fn errors_name_the_file_and_the_field() {
        let error = RewardConfig::parse("[math]\nbudget_ms = 0\n", "r.toml").unwrap_err();
        assert_eq!(
            error.to_string(),
            "r.toml: math.budget_ms: must be at least 1"
        );
        let error = RewardConfig::parse("[profiles.math]\nspeed = 1.0\n", "r.toml").unwrap_err();
        assert!(error.to_string().contains("profiles.math.speed"), "{error}");
        let error = RewardConfig::parse("[math]\nnope = 1\n", "r.toml").unwrap_err();
        assert!(
            error.to_string().starts_with("r.toml:") && error.to_string().contains("nope"),
            "{error}"
        );
        assert!(error.to_string().contains("line 2"), "{error}");
    }
}
