//! Wraps a program for call-based tests: the test's JSON arguments arrive on
//! stdin, the named function (top level, or a method of `Solution`) is
//! called, and its return value is printed as JSON.

use r1_sandbox::Language;

/// The program with a harness calling `fn_name`; `fn_name` must be an
/// identifier (checked by [`super::cases::check_identifier`]).
pub fn call_based(language: Language, program: &str, fn_name: &str) -> String {
    match language {
        Language::Python => format!(
            r#"{program}

def __r1_call():
    import json, sys
    arguments = json.loads(sys.stdin.read())
    function = globals().get("{fn_name}")
    if function is None and "Solution" in globals():
        function = getattr(globals()["Solution"](), "{fn_name}", None)
    if function is None:
        raise NameError("function {fn_name} is not defined")
    result = function(*arguments)
    sys.stdout.write(json.dumps(result) + "\n")

__r1_call()
"#
        ),
        Language::JavaScript => format!(
            r#"{program}
;(() => {{
  const args = JSON.parse(std.in.readAsString());
  let f;
  try {{ f = eval("{fn_name}"); }} catch (e) {{}}
  if (typeof f !== "function" && typeof Solution === "function") {{
    const s = new Solution();
    if (typeof s["{fn_name}"] === "function") f = s["{fn_name}"].bind(s);
  }}
  if (typeof f !== "function") throw new Error("function {fn_name} is not defined");
  const result = f(...args);
  std.out.puts(JSON.stringify(result === undefined ? null : result) + "\n");
}})();
"#
        ),
    }
}
