"""PyTorch's training throughput on the learner's shapes: the reference of
`r1 bench learner`. Builds the model of an HF `config.json` with Transformers
(random weights: speed does not depend on them) on the CPU and, on the same
token batch shape as the learner, times the forward pass that yields per-token
log-probs plus the backward pass, then the full step (forward, backward,
gradient clipping, AdamW). Prints one JSON object (fwd_bwd_seconds,
optimizer_seconds, step_seconds, tokens, parameters, threads). Run with the Python of
scripts/torch-venv.

    python scripts/bench_learner_torch.py CONFIG.json --batch 16 --seq-len 128 \
        --steps 5 --threads 2
"""

import argparse
import json
import time

import torch
from transformers import AutoConfig, AutoModelForCausalLM


def token_logprobs(model, ids):
    logits = model(input_ids=ids).logits[:, :-1].float()
    return torch.log_softmax(logits, dim=-1).gather(-1, ids[:, 1:, None]).squeeze(-1)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("config")
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--seq-len", type=int, default=128)
    parser.add_argument("--steps", type=int, default=5)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()

    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    config = AutoConfig.from_pretrained(args.config)
    model = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
    model.train()
    vocab = config.vocab_size
    ids = torch.tensor(
        [[(b * 31 + t * 7) % vocab for t in range(args.seq_len)] for b in range(args.batch)],
        dtype=torch.long,
    )
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-5, weight_decay=0.0)

    def full_step():
        """One training step; returns the seconds spent clipping + in AdamW."""
        loss = -token_logprobs(model, ids).mean()
        loss.backward()
        started = time.perf_counter()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        optimizer_seconds = time.perf_counter() - started
        optimizer.zero_grad(set_to_none=True)
        return optimizer_seconds

    full_step()  # warm-up, as the learner's benchmark does
    started = time.perf_counter()
    for _ in range(args.steps):
        token_logprobs(model, ids).mean().backward()
        model.zero_grad(set_to_none=True)
    fwd_bwd = (time.perf_counter() - started) / args.steps
    started = time.perf_counter()
    optimizer_seconds = sum(full_step() for _ in range(args.steps)) / args.steps
    step = (time.perf_counter() - started) / args.steps
    print(json.dumps({
        "fwd_bwd_seconds": fwd_bwd,
        "optimizer_seconds": optimizer_seconds,
        "step_seconds": step,
        "tokens": args.batch * args.seq_len,
        "parameters": sum(p.numel() for p in model.parameters()),
        "threads": torch.get_num_threads(),
    }))


if __name__ == "__main__":
    main()
