"""PyTorch's training throughput on the learner's shapes: the reference of
`r1 bench learner`. Builds the model of an HF `config.json` with Transformers
(random weights: speed does not depend on them) on the CPU and, on the same
token batch shape as the learner, times the forward pass that yields per-token
log-probs plus the backward pass, then the full step (forward, backward,
gradient clipping, AdamW). Run with the Python of scripts/torch-venv.

One round (the default) prints one JSON object: fwd_bwd_seconds,
optimizer_seconds, step_seconds (each per step), tokens, parameters, threads.

    python scripts/bench_learner_torch.py CONFIG.json --batch 16 --seq-len 128 \
        --steps 5 --threads 2

With --serve it prints that object without timings once the model is built
and warmed up, then times one round per line read from stdin (the word
`round`) and prints one object per round, until stdin closes: the learner's
benchmark interleaves these rounds with its own, so both see the same
machine.
"""

import argparse
import json
import sys
import time

import torch
from transformers import AutoConfig, AutoModelForCausalLM


def token_logprobs(model, ids):
    logits = model(input_ids=ids).logits[:, :-1].float()
    return torch.log_softmax(logits, dim=-1).gather(-1, ids[:, 1:, None]).squeeze(-1)


class Bench:
    def __init__(self, args):
        torch.set_num_threads(args.threads)
        torch.manual_seed(0)
        config = AutoConfig.from_pretrained(args.config)
        self.model = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
        self.model.train()
        vocab = config.vocab_size
        self.ids = torch.tensor(
            [[(b * 31 + t * 7) % vocab for t in range(args.seq_len)] for b in range(args.batch)],
            dtype=torch.long,
        )
        self.optimizer = torch.optim.AdamW(self.model.parameters(), lr=1e-5, weight_decay=0.0)
        self.steps = args.steps
        self.full_step()  # warm-up, as the learner's benchmark does
        self.about = {
            "tokens": args.batch * args.seq_len,
            "parameters": sum(p.numel() for p in self.model.parameters()),
            "threads": torch.get_num_threads(),
        }

    def full_step(self):
        """One training step; returns the seconds spent clipping + in AdamW."""
        loss = -token_logprobs(self.model, self.ids).mean()
        loss.backward()
        started = time.perf_counter()
        torch.nn.utils.clip_grad_norm_(self.model.parameters(), 1.0)
        self.optimizer.step()
        optimizer_seconds = time.perf_counter() - started
        self.optimizer.zero_grad(set_to_none=True)
        return optimizer_seconds

    def round(self):
        """`steps` forward + backward passes, then `steps` full steps."""
        started = time.perf_counter()
        for _ in range(self.steps):
            token_logprobs(self.model, self.ids).mean().backward()
            self.model.zero_grad(set_to_none=True)
        fwd_bwd = (time.perf_counter() - started) / self.steps
        started = time.perf_counter()
        optimizer_seconds = sum(self.full_step() for _ in range(self.steps)) / self.steps
        step = (time.perf_counter() - started) / self.steps
        return {
            "fwd_bwd_seconds": fwd_bwd,
            "optimizer_seconds": optimizer_seconds,
            "step_seconds": step,
            **self.about,
        }


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("config")
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--seq-len", type=int, default=128)
    parser.add_argument("--steps", type=int, default=5)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--serve", action="store_true")
    args = parser.parse_args()

    bench = Bench(args)
    if not args.serve:
        print(json.dumps(bench.round()))
        return
    print(json.dumps(bench.about), flush=True)
    for line in sys.stdin:
        command = line.strip()
        if command != "round":
            print(json.dumps({"error": f"unknown command {command!r}"}), flush=True)
            continue
        print(json.dumps(bench.round()), flush=True)


if __name__ == "__main__":
    main()
