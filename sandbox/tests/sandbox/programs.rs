//! Ordinary programs: stdin, stdout, exit codes and what a run reports.

use r1_sandbox::{Language, Limits, RunStatus};

use crate::{javascript, python, run_with};

#[test]
fn a_python_program_reads_stdin_and_writes_stdout() {
    let outcome = python("print(int(input()) * 2)", "21\n");
    assert_eq!(outcome.status, RunStatus::Finished);
    assert_eq!(outcome.exit_code, Some(0));
    assert_eq!(outcome.stdout_text(), "42\n");
    assert!(outcome.stderr.is_empty(), "{}", outcome.stderr_text());
    assert!(outcome.fuel_used > 0);
    assert!(outcome.peak_memory_bytes > 0);
}

#[test]
fn a_python_exception_is_a_finished_run_with_exit_code_one_and_a_traceback() {
    let outcome = python("raise ValueError('bad input')", "");
    assert_eq!(outcome.status, RunStatus::Finished);
    assert_eq!(outcome.exit_code, Some(1));
    assert!(outcome.stderr_text().contains("ValueError: bad input"));
}

#[test]
fn exit_codes_from_sys_exit_and_os_exit_are_reported() {
    let outcome = python("import sys\nprint('before')\nsys.exit(3)", "");
    assert_eq!(
        (outcome.status, outcome.exit_code),
        (RunStatus::Finished, Some(3))
    );
    assert_eq!(outcome.stdout_text(), "before\n");
    let outcome = python("import os\nos._exit(5)", "");
    assert_eq!(
        (outcome.status, outcome.exit_code),
        (RunStatus::Finished, Some(5))
    );
}

#[test]
fn the_standard_library_modules_programs_use_import() {
    let source = "import math, itertools, collections, heapq, bisect, functools, re, json, fractions\n\
                  print(math.comb(10, 3), json.dumps(sorted(collections.Counter('abca').items())))";
    let outcome = python(source, "");
    assert!(outcome.succeeded(), "{}", outcome.stderr_text());
    assert_eq!(
        outcome.stdout_text(),
        "120 [[\"a\", 2], [\"b\", 1], [\"c\", 1]]\n"
    );
}

#[test]
fn python_output_is_exact_bytes_on_every_path_to_file_descriptor_one() {
    let source = "import os, sys\n\
                  print('a\\n')\n\
                  sys.stdout.flush()\n\
                  os.write(1, b'raw ')\n\
                  sys.stdout.buffer.write(b'\\xff\\x00')\n\
                  sys.stderr.write('err')";
    let outcome = python(source, "");
    assert!(outcome.succeeded(), "{outcome:?}");
    assert_eq!(outcome.stdout, b"a\n\nraw \xff\x00");
    assert_eq!(outcome.stderr_text(), "err");
}

#[test]
fn a_module_the_snapshot_did_not_import_loads_from_the_standard_library() {
    let outcome = python(
        "import textwrap, calendar\nprint(textwrap.shorten('alpha beta gamma', 12), calendar.isleap(2024))",
        "",
    );
    assert!(outcome.succeeded(), "{outcome:?}");
    assert_eq!(outcome.stdout_text(), "alpha [...] True\n");
}

#[test]
fn every_python_run_draws_its_own_random_numbers() {
    let source = "import random\nprint(random.random())";
    let first = python(source, "");
    let second = python(source, "");
    assert!(first.succeeded() && second.succeeded(), "{first:?}");
    assert_ne!(first.stdout_text(), second.stdout_text());
}

#[test]
fn sys_exit_with_a_message_and_syntax_errors_behave_as_in_native_python() {
    let outcome = python("import sys\nsys.exit('bad')", "");
    assert_eq!(outcome.exit_code, Some(1));
    assert_eq!(outcome.stderr_text(), "bad\n");
    let outcome = python("print(1\n", "");
    assert_eq!(outcome.exit_code, Some(1));
    assert!(outcome.stderr_text().contains("SyntaxError"), "{outcome:?}");
    assert!(!outcome.stderr_text().contains("_r1_run"), "{outcome:?}");
    let outcome = python("def f():\n    raise KeyError(7)\nf()", "");
    let stderr = outcome.stderr_text();
    assert!(stderr.starts_with("Traceback"), "{stderr}");
    assert!(
        stderr.contains("line 2, in f") && !stderr.contains("runner"),
        "{stderr}"
    );
}

#[test]
fn a_javascript_program_reads_stdin_the_node_way() {
    let outcome = javascript(
        "const n = parseInt(require('fs').readFileSync(0, 'utf8'));\nconsole.log(n * 2);",
        "21\n",
    );
    assert!(outcome.succeeded(), "{outcome:?}");
    assert_eq!(outcome.stdout_text(), "42\n");
    let outcome = javascript(
        "const rl = require('readline').createInterface({ input: process.stdin });\n\
         let sum = 0;\n\
         rl.on('line', (l) => { sum += Number(l); });\n\
         rl.on('close', () => { process.stdout.write(String(sum) + '\\n'); });",
        "1\n2\n3\n",
    );
    assert!(outcome.succeeded(), "{outcome:?}");
    assert_eq!(outcome.stdout_text(), "6\n");
}

#[test]
fn a_javascript_error_and_exit_code_are_reported() {
    let outcome = javascript("throw new Error('boom')", "");
    assert_eq!(outcome.status, RunStatus::Finished);
    assert_ne!(outcome.exit_code, Some(0));
    assert!(outcome.stderr_text().contains("boom"), "{outcome:?}");
    let outcome = javascript("process.exit(4)", "");
    assert_eq!(outcome.exit_code, Some(4), "{outcome:?}");
}

#[test]
fn an_instruction_budget_stops_a_run_deterministically() {
    let limits = Limits {
        fuel: Some(2_000_000),
        ..Limits::default()
    };
    let outcome = run_with(Language::Python, "while True: pass", "", limits);
    assert_eq!(outcome.status, RunStatus::TimeLimitExceeded);
    assert!(
        outcome
            .message
            .as_deref()
            .unwrap()
            .contains("instruction budget"),
        "{outcome:?}"
    );
    assert_eq!(outcome.fuel_used, 2_000_000);
}

#[test]
fn limits_that_make_no_sense_are_a_clear_error() {
    let limits = Limits {
        memory_bytes: 1,
        ..Limits::default()
    };
    let err = crate::sandbox()
        .run(r1_sandbox::Program {
            language: Language::Python,
            source: "print(1)".into(),
            stdin: Vec::new(),
            limits,
        })
        .unwrap_err();
    assert!(err.to_string().contains("memory_bytes"), "{err}");
}
