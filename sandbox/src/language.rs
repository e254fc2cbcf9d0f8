//! The languages the sandbox runs, and how QuickJS is invoked.

use std::fmt;

/// A language with an interpreter compiled to WebAssembly.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Language {
    /// CPython 3.14 for WASI (the `eryx-runtime` component), started from a
    /// pre-initialised snapshot.
    Python,
    /// QuickJS-ng for WASI, with `std`/`os` and a small Node.js shim.
    JavaScript,
}

/// Node.js names programs commonly use for stdin and stdout, mapped onto
/// QuickJS's `std` module: `require('fs').readFileSync(0)`, `readline`
/// line events, `process.stdout.write`, `process.exit`.
const JS_PRELUDE: &str = include_str!("prelude.js");

impl Language {
    pub const ALL: [Language; 2] = [Language::Python, Language::JavaScript];

    /// Accepts the names SandboxFusion and the task formats use.
    pub fn parse(name: &str) -> Option<Self> {
        match name.trim().to_ascii_lowercase().as_str() {
            "python" | "python3" | "py" => Some(Self::Python),
            "javascript" | "js" | "nodejs" | "node" => Some(Self::JavaScript),
            _ => None,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Self::Python => "python",
            Self::JavaScript => "javascript",
        }
    }
}

/// The argv that runs `source` in QuickJS, after the Node.js shim.
pub(crate) fn quickjs_argv(source: &str) -> Vec<String> {
    vec![
        "qjs".into(),
        "--std".into(),
        "-e".into(),
        format!("{JS_PRELUDE}\n{source}"),
    ]
}

impl fmt::Display for Language {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sandbox_fusion_language_names_are_understood() {
        assert_eq!(Language::parse("Python3"), Some(Language::Python));
        assert_eq!(Language::parse("nodejs"), Some(Language::JavaScript));
        assert_eq!(Language::parse("cpp"), None);
    }

    #[test]
    fn the_program_follows_the_shim_in_the_last_argument() {
        let argv = quickjs_argv("console.log(1)");
        let last = argv.last().unwrap();
        assert!(last.starts_with(JS_PRELUDE) && last.ends_with("console.log(1)"));
    }
}
