# The runner baked into the Python snapshot. Every run is a fresh instance of
# the snapshot whose host calls `_r1_run(source)` once. The program sees the
# streams of a native `python3 -c` run: sys.stdin, sys.stdout and sys.stderr
# are file descriptors 0, 1 and 2, which the host connects to the run's stdin
# and to its capped output pipes, so every byte meets the host's limits.
# The exit status reaches the host through `_eryx._eryx_report_output` on
# EXIT_STATUS_STREAM (see python_host.rs), also when the program calls
# os._exit.
import builtins as _r1_builtins
import io as _r1_io
import os as _r1_os
import random as _r1_random
import sys as _r1_sys
import traceback as _r1_traceback

import _eryx

_R1_EXIT_STATUS_STREAM = 100


def _r1_stream(fd, writing):
    raw = _r1_io.FileIO(fd, "w" if writing else "r", closefd=False)
    buffered = _r1_io.BufferedWriter(raw) if writing else _r1_io.BufferedReader(raw)
    return _r1_io.TextIOWrapper(
        buffered,
        encoding="utf-8",
        errors="backslashreplace" if fd == 2 else "surrogateescape",
        newline="\n",
        line_buffering=fd == 2,
    )


def _r1_exit_status(exit):
    # What CPython's own SystemExit handling makes of `sys.exit(code)`.
    code = exit.code
    if code is None:
        return 0
    if isinstance(code, int):
        return code & 0xFF
    print(code, file=_r1_sys.stderr)
    return 1


def _r1_run(
    source,
    _report=_eryx._eryx_report_output,
    _real_exit=_r1_os._exit,
    _print_exception=_r1_traceback.print_exception,
):
    stdin, stdout, stderr = _r1_stream(0, False), _r1_stream(1, True), _r1_stream(2, True)
    _r1_sys.stdin = _r1_sys.__stdin__ = stdin
    _r1_sys.stdout = _r1_sys.__stdout__ = stdout
    _r1_sys.stderr = _r1_sys.__stderr__ = stderr
    _r1_sys.argv = ["-c"]
    # The snapshot froze the generator's state: every run draws its own.
    _r1_random.seed()

    def flush():
        for stream in (stdout, stderr):
            try:
                stream.flush()
            except Exception:
                pass

    def report(status):
        flush()
        _report(_R1_EXIT_STATUS_STREAM, str(status).encode())

    def exit_now(status):
        report(int(status) & 0xFF)
        _real_exit(status)

    _r1_os._exit = exit_now
    status = 0
    try:
        code = compile(source, "<string>", "exec")
        exec(code, {"__name__": "__main__", "__builtins__": _r1_builtins})
    except SystemExit as exit:
        status = _r1_exit_status(exit)
    except BaseException as error:
        # The traceback starts at the program, not at this runner.
        tb = error.__traceback__
        _print_exception(type(error), error, tb.tb_next if tb is not None else None)
        status = 1
    report(status)
