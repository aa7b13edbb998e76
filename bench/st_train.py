#!/usr/bin/env python3
"""Training-speed peer: sentence-transformers fine-tuning all-MiniLM-L6-v2 (CPU or CUDA).

Measures training throughput (forward + backward + AdamW step) of a plain torch
loop over the SentenceTransformer module with MultipleNegativesRankingLoss, on
the fixed batch shape the Rust trainer uses:

  16 (anchor, positive, hard negative) triplets per step,
  anchors padded/truncated to exactly 32 tokens,
  positives and negatives to exactly 192 tokens.

Texts are synthetic and long enough to fill every position (attention mask all
ones), so no row is shorter than its nominal length. They are tokenized once,
before timing: the timed region is the training step only. The loss embeds the
anchor column in its own forward (16 x 32) and, in sentence-transformers >= 6,
the two passage columns in one merged forward (32 x 192); older versions run
one forward per column. The compute is the same either way.

Warm-up steps are not timed; then --steps timed steps. Prints ONE JSON line:
  {"peer": "sentence-transformers", "version": ..., "torch": ..., "threads": ...,
   "batch": 16, "query_len": 32, "passage_len": 192, "steps": N,
   "seconds": ..., "samples_per_s": ...}
where samples = queries (batch per step). Errors go to stderr, exit status 2.

The model is loaded from a local folder (--model), never from a hub, e.g.
~/.cache/ernie-search/models/all-MiniLM-L6-v2 (model.safetensors, config.json,
tokenizer.json, modules.json, 1_Pooling/).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sys
import time
from pathlib import Path

DEFAULT_MODEL = Path.home() / ".cache" / "ernie-search" / "models" / "all-MiniLM-L6-v2"

# Plain lower-case words that the uncased BERT vocabulary keeps whole, so a
# passage of N words is close to N word pieces; the texts are made longer than
# needed anyway and truncated to the exact length.
WORDS = (
    "the of and to in is was for on that with as by at from his her they this "
    "which are were but not have had been one all their there more also after "
    "first new time year city state world river music film team game house "
    "school water power light early south north church war king party family "
    "history system life death day night number people group line market road "
    "small large great long high old young local public united national major"
).split()


class PeerError(Exception):
    """An error reported as one line on stderr, exit status 2."""


def _synthetic_texts(rng: random.Random, count: int, words: int) -> list[str]:
    return [" ".join(rng.choice(WORDS) for _ in range(words)) for _ in range(count)]


def _features(tokenizer, texts: list[str], length: int, device: str) -> dict:
    enc = tokenizer(
        texts,
        padding="max_length",
        truncation=True,
        max_length=length,
        return_tensors="pt",
    )
    feats = {k: v.to(device) for k, v in enc.items()}
    ids = feats["input_ids"]
    if tuple(ids.shape) != (len(texts), length):
        raise PeerError(f"tokenized shape {tuple(ids.shape)}, wanted {(len(texts), length)}")
    if int(feats["attention_mask"].sum()) != len(texts) * length:
        raise PeerError(f"synthetic texts do not fill {length} tokens; make them longer")
    return feats


def _resolve_model_dir(path: Path) -> Path:
    path = path.expanduser()
    needed = ("config.json", "modules.json", "tokenizer.json")
    if not path.is_dir():
        raise PeerError(f"model folder {path} does not exist")
    missing = [n for n in needed if not (path / n).is_file()]
    if not ((path / "model.safetensors").is_file() or (path / "pytorch_model.bin").is_file()):
        missing.append("model.safetensors")
    if missing:
        raise PeerError(f"model folder {path} lacks {', '.join(missing)}")
    return path


def run(args: argparse.Namespace) -> dict:
    # Never reach out to a hub: everything is local.
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

    model_dir = _resolve_model_dir(Path(args.model))
    try:
        import torch
        import sentence_transformers
        from sentence_transformers import SentenceTransformer
    except ImportError as e:
        raise PeerError(f"cannot import torch / sentence-transformers ({e})") from e
    try:  # sentence-transformers >= 6
        from sentence_transformers.sentence_transformer.losses import MultipleNegativesRankingLoss
    except ImportError:
        try:
            from sentence_transformers.losses import MultipleNegativesRankingLoss
        except ImportError as e:
            raise PeerError(f"cannot import MultipleNegativesRankingLoss ({e})") from e

    threads = args.threads or os.cpu_count() or 1
    torch.set_num_threads(threads)
    torch.manual_seed(args.seed)
    rng = random.Random(args.seed)

    if args.device == "cuda" and not torch.cuda.is_available():
        raise PeerError("--device cuda: torch sees no CUDA device")
    model = SentenceTransformer(str(model_dir), device=args.device)
    model.train()
    tokenizer = model.tokenizer
    loss_fn = MultipleNegativesRankingLoss(model)
    optimizer = torch.optim.AdamW(model.parameters(), lr=args.lr)

    # A few distinct pre-tokenized batches, cycled; all share the same shape.
    batches = []
    for _ in range(args.pool):
        anchors = _synthetic_texts(rng, args.batch, args.query_len * 2)
        positives = _synthetic_texts(rng, args.batch, args.passage_len * 2)
        negatives = _synthetic_texts(rng, args.batch, args.passage_len * 2)
        batches.append(
            (
                _features(tokenizer, anchors, args.query_len, args.device),
                _features(tokenizer, positives, args.passage_len, args.device),
                _features(tokenizer, negatives, args.passage_len, args.device),
            )
        )

    def step(i: int) -> float:
        # Fresh dicts each step: the modules write their outputs into the
        # feature dicts they are given.
        feats = [dict(f) for f in batches[i % len(batches)]]
        optimizer.zero_grad(set_to_none=True)
        loss = loss_fn(feats, None)
        loss.backward()
        optimizer.step()
        return float(loss.detach())  # waits for the device: steps are timed whole

    for i in range(args.warmup):
        loss = step(i)
        if args.verbose:
            print(f"warm-up step {i}: loss {loss:.4f}", file=sys.stderr)

    times = []
    start = time.perf_counter()
    for i in range(args.steps):
        t0 = time.perf_counter()
        loss = step(args.warmup + i)
        times.append(time.perf_counter() - t0)
        if args.verbose:
            print(f"step {i}: loss {loss:.4f}, {times[-1]:.3f} s", file=sys.stderr)
    seconds = time.perf_counter() - start

    return {
        "peer": "sentence-transformers",
        "version": sentence_transformers.__version__,
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        "device": torch.cuda.get_device_name() if args.device == "cuda" else "cpu",
        "batch": args.batch,
        "query_len": args.query_len,
        "passage_len": args.passage_len,
        "steps": args.steps,
        "seconds": round(seconds, 4),
        "samples_per_s": round(args.batch * args.steps / seconds, 3),
    }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--model", default=str(DEFAULT_MODEL), help="local all-MiniLM-L6-v2 folder")
    p.add_argument("--steps", type=int, default=20, help="timed steps (default 20)")
    p.add_argument("--warmup", type=int, default=3, help="untimed warm-up steps (default 3)")
    p.add_argument("--batch", type=int, default=16, help="triplets per step (default 16)")
    p.add_argument("--query-len", type=int, default=32, help="anchor tokens (default 32)")
    p.add_argument("--passage-len", type=int, default=192, help="passage tokens (default 192)")
    p.add_argument("--lr", type=float, default=5e-5, help="AdamW learning rate (default 5e-5)")
    p.add_argument("--threads", type=int, default=0, help="torch threads (default: os.cpu_count())")
    p.add_argument("--pool", type=int, default=4, help="distinct pre-tokenized batches cycled (default 4)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", choices=["cpu", "cuda"], default="cpu", help="where to train (default cpu)")
    p.add_argument("--verbose", action="store_true", help="per-step loss and time on stderr")
    args = p.parse_args(argv)
    if args.steps < 1 or args.warmup < 0 or args.batch < 1 or args.pool < 1:
        p.error("--steps, --batch and --pool must be >= 1, --warmup >= 0")
    if args.query_len < 3 or args.passage_len < 3:
        p.error("--query-len and --passage-len must be >= 3")
    try:
        result = run(args)
    except PeerError as e:
        print(f"st_train: {e}", file=sys.stderr)
        return 2
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
