"""llama.cpp's sampling throughput on GRPO-shaped groups: the reference of
`r1 bench inference`. For each prompt, G completions of `--new-tokens` tokens
at temperature 1; prints one JSON object (tokens, seconds, tokens_per_second,
load_seconds). Run with the Python of scripts/llama-cpp-venv.

    python scripts/bench_llama_cpp.py MODEL.gguf --group-size 8 --new-tokens 128 \
        --groups 3 --threads 2 PROMPT...
"""

import argparse
import json
import time

from llama_cpp import Llama


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("gguf")
    parser.add_argument("prompts", nargs="+")
    parser.add_argument("--group-size", type=int, default=8)
    parser.add_argument("--new-tokens", type=int, default=128)
    parser.add_argument("--groups", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()

    started = time.perf_counter()
    llm = Llama(model_path=args.gguf, n_ctx=1024, n_threads=args.threads,
                n_batch=512, verbose=False, seed=7)
    load_seconds = time.perf_counter() - started

    def group(prompt, seed):
        tokens = 0
        for i in range(args.group_size):
            out = llm.create_completion(prompt, max_tokens=args.new_tokens,
                                        temperature=1.0, top_p=1.0, top_k=0,
                                        seed=seed + i)
            tokens += out["usage"]["completion_tokens"]
        return tokens

    group(args.prompts[0], 0)  # warm-up, like the Rust side
    started = time.perf_counter()
    tokens = sum(group(args.prompts[i % len(args.prompts)], 100 * i)
                 for i in range(args.groups))
    seconds = time.perf_counter() - started
    print(json.dumps({"tokens": tokens, "seconds": seconds,
                      "tokens_per_second": tokens / seconds,
                      "load_seconds": load_seconds}))


if __name__ == "__main__":
    main()
