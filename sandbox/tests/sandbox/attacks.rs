//! The attack suite: every hostile program ends within its limit (plus
//! slack) with the right outcome, and the sandbox stays healthy.

use std::time::Duration;

use r1_sandbox::{Language, Limits, RunOutcome, RunStatus};

use crate::{assert_healthy, limits, python, run_with};

/// Slack over a limit for start-up and the epoch tick.
const SLACK: Duration = Duration::from_millis(1500);

fn ended_within(outcome: &RunOutcome, limits: &Limits) {
    assert!(
        outcome.wall_time <= limits.wall_time + SLACK,
        "took {:?} with a limit of {:?}",
        outcome.wall_time,
        limits.wall_time
    );
}

#[test]
fn an_infinite_loop_hits_the_time_limit() {
    for (language, source) in [
        (Language::Python, "while True:\n    pass"),
        (Language::JavaScript, "for (;;) {}"),
    ] {
        let limits = limits(1000);
        let outcome = run_with(language, source, "", limits);
        assert_eq!(outcome.status, RunStatus::TimeLimitExceeded, "{language}");
        ended_within(&outcome, &limits);
    }
    assert_healthy();
}

#[test]
fn sleeping_past_the_limit_is_stopped_at_the_limit() {
    let limits = limits(1000);
    let outcome = run_with(
        Language::Python,
        "import time\ntime.sleep(1000)",
        "",
        limits,
    );
    assert_eq!(outcome.status, RunStatus::TimeLimitExceeded);
    ended_within(&outcome, &limits);
    assert_healthy();
}

#[test]
fn reading_stdin_forever_ends() {
    let limits = limits(1000);
    let source = "import sys\nwhile True:\n    sys.stdin.read()";
    let outcome = run_with(Language::Python, source, "some input", limits);
    assert_eq!(outcome.status, RunStatus::TimeLimitExceeded);
    ended_within(&outcome, &limits);
    let outcome = python("while True:\n    input()", "one line\n");
    assert_eq!(outcome.exit_code, Some(1), "EOF ends input(): {outcome:?}");
    assert!(outcome.stderr_text().contains("EOFError"));
    assert_healthy();
}

#[test]
fn deep_recursion_ends_in_an_error_not_a_crash() {
    let plain = python("def f(n):\n    return f(n + 1)\nf(0)", "");
    assert_eq!(plain.exit_code, Some(1), "{plain:?}");
    assert!(plain.stderr_text().contains("RecursionError"));
    // Without Python's own limit, frames grow until a limit of ours ends it.
    let limits = limits(2000);
    let unbounded = run_with(
        Language::Python,
        "import sys\nsys.setrecursionlimit(10**7)\ndef f(n):\n    return f(n + 1)\nf(0)",
        "",
        limits,
    );
    assert!(!unbounded.succeeded(), "{unbounded:?}");
    ended_within(&unbounded, &limits);
    assert_healthy();
}

#[test]
fn a_memory_bomb_hits_the_memory_limit() {
    let limits = Limits {
        memory_bytes: 64 << 20,
        ..limits(5000)
    };
    for source in [
        "x = bytearray(1 << 30)",
        "blocks = []\nwhile True:\n    blocks.append(' ' * 10**6)",
    ] {
        let outcome = run_with(Language::Python, source, "", limits);
        assert_eq!(
            outcome.status,
            RunStatus::MemoryLimitExceeded,
            "{outcome:?}"
        );
        assert!(outcome.peak_memory_bytes <= 64 << 20);
        ended_within(&outcome, &limits);
    }
    let outcome = run_with(
        Language::JavaScript,
        "const a = [];\nfor (;;) a.push(new Array(1e6).fill(1));",
        "",
        limits,
    );
    assert_eq!(
        outcome.status,
        RunStatus::MemoryLimitExceeded,
        "{outcome:?}"
    );
    assert_healthy();
}

#[test]
fn an_output_bomb_hits_the_output_limit_and_keeps_the_first_bytes() {
    let limits = Limits {
        stdout_bytes: 64 << 10,
        ..limits(5000)
    };
    let outcome = run_with(
        Language::Python,
        "while True:\n    print('x' * 1000)",
        "",
        limits,
    );
    assert_eq!(
        outcome.status,
        RunStatus::OutputLimitExceeded,
        "{outcome:?}"
    );
    assert_eq!(outcome.stdout.len(), 64 << 10);
    assert!(outcome.stdout.iter().all(|&b| b == b'x' || b == b'\n'));
    ended_within(&outcome, &limits);
    let outcome = run_with(
        Language::JavaScript,
        "for (;;) console.log('y'.repeat(1000));",
        "",
        limits,
    );
    assert_eq!(
        outcome.status,
        RunStatus::OutputLimitExceeded,
        "{outcome:?}"
    );
    assert_healthy();
}

#[test]
fn host_files_and_environment_are_out_of_reach() {
    let source = r#"
import os
for path in ["/etc/passwd", "/proc/self/environ", os.path.expanduser("~/.ssh/id_rsa"), "/root/.ssh/authorized_keys", "../../etc/passwd"]:
    try:
        with open(path) as f:
            print("READ", path, f.read()[:20])
    except Exception as e:
        print("blocked", type(e).__name__)
try:
    print("LISTED", os.listdir("/"))
except Exception as e:
    print("blocked", type(e).__name__)
print("env", sorted(k for k in os.environ if not k.startswith("PYTHON")))
"#;
    let outcome = python(source, "");
    let out = outcome.stdout_text();
    assert!(outcome.succeeded(), "{outcome:?}");
    assert!(!out.contains("READ"), "{out}");
    assert!(!out.contains("root:"), "{out}");
    assert!(out.contains("env []"), "{out}");
    assert!(!out.contains("LISTED ['bin'"), "{out}");
    let js = crate::javascript(
        "const f = std.open('/etc/passwd', 'r');\nconsole.log(f === null ? 'blocked' : 'READ ' + f.readAsString());",
        "",
    );
    assert_eq!(js.stdout_text(), "blocked\n", "{js:?}");
    assert_healthy();
}

#[test]
fn a_file_written_in_one_run_is_gone_in_the_next() {
    let write = python(
        "for path in ['/tmp/r1-secret', 'r1-secret', '/r1-secret']:\n    try:\n        open(path, 'w').write('secret')\n        print('wrote', path)\n    except Exception as e:\n        print('blocked', type(e).__name__)",
        "",
    );
    assert!(!write.stdout_text().contains("wrote"), "{write:?}");
    let read = python(
        "for path in ['/tmp/r1-secret', 'r1-secret', '/r1-secret']:\n    try:\n        print(open(path).read())\n    except Exception as e:\n        print('blocked', type(e).__name__)",
        "",
    );
    assert!(!read.stdout_text().contains("secret"), "{read:?}");
    assert_healthy();
}

#[test]
fn sockets_and_url_requests_fail() {
    let source = r#"
import socket
try:
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.connect(("127.0.0.1", 6379))
    print("CONNECTED")
except Exception as e:
    print("blocked", type(e).__name__)
try:
    import urllib.request
    urllib.request.urlopen("http://127.0.0.1:6379/", timeout=1)
    print("FETCHED")
except Exception as e:
    print("blocked", type(e).__name__)
"#;
    let outcome = python(source, "");
    let out = outcome.stdout_text();
    assert!(
        !out.contains("CONNECTED") && !out.contains("FETCHED"),
        "{outcome:?}"
    );
    assert_eq!(out.matches("blocked").count(), 2, "{outcome:?}");
    assert_healthy();
}

#[test]
fn processes_and_native_code_cannot_be_reached() {
    let source = r#"
import os
attempts = {
    "fork": lambda: os.fork(),
    "subprocess": lambda: __import__("subprocess").run(["ls"]),
    "system": lambda: os.system("ls"),
    "ctypes": lambda: __import__("ctypes").CDLL(None),
    "thread": lambda: __import__("threading").Thread(target=print).start(),
}
for name, attempt in attempts.items():
    try:
        result = attempt()
        print("RAN", name, result)
    except BaseException as e:
        print("blocked", name, type(e).__name__)
"#;
    let outcome = python(source, "");
    let out = outcome.stdout_text();
    assert!(outcome.succeeded(), "{outcome:?}");
    assert_eq!(out.matches("blocked").count(), 5, "{out}");
    assert_healthy();
}

#[test]
fn a_one_megabyte_program_runs() {
    let mut source = String::from("a = 0\n");
    while source.len() < 1 << 20 {
        source.push_str("a += 1\n");
    }
    let lines = source.lines().count() - 1;
    source.push_str("print(a)\n");
    let limits = limits(30_000);
    let outcome = run_with(Language::Python, &source, "", limits);
    assert!(outcome.succeeded(), "{outcome:?}");
    assert_eq!(outcome.stdout_text(), format!("{lines}\n"));
}

#[test]
fn binary_garbage_as_source_is_an_error_result() {
    let mut state = 0x2545_f491_4f6c_dd1du64;
    let garbage: Vec<u8> = (0..4096)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state >> 24) as u8
        })
        .collect();
    let source = String::from_utf8_lossy(&garbage).into_owned();
    for language in Language::ALL {
        let outcome = run_with(language, &source, "", Limits::default());
        assert!(!outcome.succeeded(), "{language}: {outcome:?}");
        let clean = source.replace('\0', "");
        let outcome = run_with(language, &clean, "", Limits::default());
        assert_eq!(
            outcome.status,
            RunStatus::Finished,
            "{language}: {outcome:?}"
        );
        assert_ne!(outcome.exit_code, Some(0), "{language}");
    }
    assert_healthy();
}

#[test]
fn sixteen_concurrent_runs_do_not_see_each_other() {
    let source = r#"
import sys, builtins, os
secret = sys.stdin.read()
seen = getattr(builtins, "r1_secret", None)
builtins.r1_secret = secret
os.environ["R1_SECRET"] = secret
print(secret, seen)
"#;
    let outputs: Vec<(String, RunOutcome)> = std::thread::scope(|scope| {
        let runs: Vec<_> = (0..16)
            .map(|i| {
                scope.spawn(move || {
                    let secret = format!("secret-{i}");
                    let outcome = python(source, &secret);
                    (secret, outcome)
                })
            })
            .collect();
        runs.into_iter().map(|r| r.join().unwrap()).collect()
    });
    for (secret, outcome) in outputs {
        assert!(outcome.succeeded(), "{outcome:?}");
        assert_eq!(outcome.stdout_text(), format!("{secret} None\n"));
    }
    let after = python("import os\nprint(os.environ.get('R1_SECRET'))", "");
    assert_eq!(after.stdout_text(), "None\n");
}
