"""Reference measurement for `r1 bench math`: Math-Verify's parse + verify on
the same conformance cases, with the same extraction and comparison settings.

Prints one JSON object: {"cases": N, "checks": M, "seconds": S,
"cases_per_second": R, "processes": P, "agreement": A}.
"""

import argparse
import json
import multiprocessing
import time

from latex2sympy2_extended.latex2sympy2 import NormalizationConfig
from math_verify import (
    ExprExtractionConfig,
    LatexExtractionConfig,
    StringExtractionConfig,
    parse,
    verify,
)


def targets(configs):
    out = []
    for c in configs:
        kind = c["type"]
        anchor = c.get("try_extract_without_anchor", True)
        if kind == "LatexExtractionConfig":
            kwargs = {"try_extract_without_anchor": anchor}
            if "boxed_match_priority" in c:
                kwargs["boxed_match_priority"] = c["boxed_match_priority"]
            if "normalization_config" in c:
                kwargs["normalization_config"] = NormalizationConfig(**c["normalization_config"])
            out.append(LatexExtractionConfig(**kwargs))
        elif kind == "ExprExtractionConfig":
            out.append(ExprExtractionConfig(try_extract_without_anchor=anchor))
        elif kind == "StringExtractionConfig":
            out.append(
                StringExtractionConfig(
                    strings=tuple(c["strings"]),
                    try_extract_without_anchor=anchor,
                    lowercase=c.get("lowercase", True),
                )
            )
    return out


def prepare(case):
    p = case.get("parse", {})
    v = case.get("verify", {})
    return {
        "gold": case["gold"] or "",
        "pred": case["pred"] or "",
        "gold_cfg": targets(case["gold_extraction_config"]),
        "pred_cfg": targets(case["pred_extraction_config"]),
        "fallback_mode": p.get("fallback_mode", "first_match"),
        "extraction_mode": p.get("extraction_mode", "any_match"),
        "parsing_timeout": p.get("parsing_timeout", 5),
        "float_rounding": case.get("precision", 6),
        "strict": v.get("strict", True),
        "allow_set_relation_comp": v.get("allow_set_relation_comp", False),
        "timeout_seconds": v.get("timeout_seconds", 5),
        "expected": case["expected"] == 1,
    }


def run(c):
    gold = parse(c["gold"], c["gold_cfg"], fallback_mode=c["fallback_mode"],
                 extraction_mode=c["extraction_mode"], parsing_timeout=c["parsing_timeout"])
    pred = parse(c["pred"], c["pred_cfg"], fallback_mode=c["fallback_mode"],
                 extraction_mode=c["extraction_mode"], parsing_timeout=c["parsing_timeout"])
    try:
        return verify(gold, pred, float_rounding=c["float_rounding"], strict=c["strict"],
                      allow_set_relation_comp=c["allow_set_relation_comp"],
                      timeout_seconds=c["timeout_seconds"])
    except TypeError:
        return verify(gold, pred, float_rounding=c["float_rounding"], strict=c["strict"],
                      timeout_seconds=c["timeout_seconds"])


def load(path):
    cases = []
    with open(path) as f:
        for line in f:
            if line.strip():
                case = json.loads(line)
                if case.get("kind") == "verify":
                    cases.append(case)
    return cases


def worker(args):
    path, seconds = args
    cases = [prepare(c) for c in load(path)]
    checks = 0
    agree = 0
    start = time.perf_counter()
    while True:
        for c in cases:
            agree += run(c) == c["expected"]
            checks += 1
        if time.perf_counter() - start >= seconds:
            break
    return checks, agree, time.perf_counter() - start


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--cases", required=True)
    ap.add_argument("--seconds", type=float, default=5.0)
    ap.add_argument("--processes", type=int, default=1)
    a = ap.parse_args()
    n = len(load(a.cases))
    if a.processes == 1:
        results = [worker((a.cases, a.seconds))]
    else:
        with multiprocessing.Pool(a.processes) as pool:
            results = pool.map(worker, [(a.cases, a.seconds)] * a.processes)
    checks = sum(r[0] for r in results)
    agree = sum(r[1] for r in results)
    seconds = max(r[2] for r in results)
    print(json.dumps({
        "cases": n,
        "checks": checks,
        "seconds": seconds,
        "cases_per_second": checks / seconds,
        "processes": a.processes,
        "agreement": agree / checks,
    }))


if __name__ == "__main__":
    main()
