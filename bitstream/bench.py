"""Bits per token and speed of the token coder.

    python -m bitstream.bench TOKENS.npz [TOKENS.npz ...] [--json out.json]
    python -m bitstream.bench --synthetic            # a correlated synthetic grid instead
    python -m bitstream.bench ... --coder-version 1  # the older coder

An ``.npz`` holds ``tokens``: uint32 ``(L, T, H, W)`` (one chunk) or ``(N, L, T, H, W)``
(N chunks of one video), and optionally ``token_bits`` (else the smallest width that fits).
For every input it reports raw bits per token (= token_bits), coded bits per token with the
uniform prior and with tables fitted by ``fit_tables`` (fitted on the *other* inputs when
there are several, else on the first half of the chunks, else in-sample -- the report says
which), and encode/decode throughput in tokens/s (single thread, best of ``--repeat``).
"""

from __future__ import annotations

import argparse
import json
import sys
import time

import numpy as np

from .coder import CODER_VERSION, CODER_VERSIONS, decode_tokens, encode_tokens, fit_tables, pad_tables


def synthetic_tokens(
    chunks: int = 4, levels: int = 4, frames: int = 5, height: int = 45, width: int = 80,
    token_bits: int = 18, seed: int = 0, change: float = 0.05,
) -> np.ndarray:
    """Correlated stand-in for real LFQ tokens: ``uint32 (chunks, L, T, H, W)``.

    Each channel is a spatially smooth Gaussian field drifting slowly over time; level ``l``
    takes the signs of the residual left by the coarser levels (like residual LFQ).
    """
    rng = np.random.default_rng(seed)

    def smooth(a):
        for ax in (0, 1):
            for _ in range(3):
                a = (a + np.roll(a, 1, ax) + np.roll(a, -1, ax)) / 3
        return a / a.std()

    shifts = np.arange(token_bits, dtype=np.uint64)
    z = smooth(rng.standard_normal((height, width, token_bits)))
    out = np.zeros((chunks, levels, frames, height, width), np.uint32)
    for c in range(chunks):
        for t in range(frames):
            z = np.sqrt(1 - change) * z + np.sqrt(change) * smooth(rng.standard_normal(z.shape))
            r, step = z.copy(), 0.8
            for lv in range(levels):
                b = r > 0
                out[c, lv, t] = (b.astype(np.uint64) << shifts).sum(-1).astype(np.uint32)
                r -= np.where(b, step, -step)
                step /= 2
    return out


def _load(path: str) -> tuple[np.ndarray, int]:
    with np.load(path) as z:
        if "tokens" not in z:
            raise SystemExit(f"{path}: no 'tokens' array")
        tokens = np.asarray(z["tokens"])
        bits = int(z["token_bits"]) if "token_bits" in z else max(1, int(tokens.max()).bit_length())
    if tokens.ndim == 4:
        tokens = tokens[None]
    if tokens.ndim != 5:
        raise SystemExit(f"{path}: tokens must be (L,T,H,W) or (N,L,T,H,W), got {tokens.shape}")
    return tokens.astype(np.uint32), bits


def _measure(chunks: np.ndarray, bits: int, tables, repeat: int, version: int) -> dict:
    n_tokens = int(sum(c.size for c in chunks))
    coded, enc_t, dec_t = 0, float("inf"), float("inf")
    for _ in range(repeat):
        t0 = time.perf_counter()
        blobs = [encode_tokens(c, bits, tables, version=version) for c in chunks]
        enc_t = min(enc_t, time.perf_counter() - t0)
        t0 = time.perf_counter()
        for b, c in zip(blobs, chunks):
            out = decode_tokens(b, c.shape, bits, tables, version=version)
            if not np.array_equal(out, c):
                raise SystemExit("round trip failed: decoded tokens differ")
        dec_t = min(dec_t, time.perf_counter() - t0)
        coded = sum(len(b) for b in blobs)
    return {
        "bits_per_token": 8 * coded / n_tokens,
        "ratio_vs_raw": 8 * coded / n_tokens / bits,
        "encode_tokens_per_s": n_tokens / enc_t,
        "decode_tokens_per_s": n_tokens / dec_t,
    }


def bench(inputs: dict[str, tuple[np.ndarray, int]], repeat: int = 3, version: int = CODER_VERSION) -> list[dict]:
    results = []
    names = list(inputs)
    for name in names:
        chunks, bits = inputs[name]
        others = [c for o in names if o != name and inputs[o][1] == bits for c in inputs[o][0]]
        if others:
            fit_on, test, how = others, chunks, "fitted on the other inputs"
        elif len(chunks) >= 2:
            half = len(chunks) // 2
            fit_on, test, how = chunks[:half], chunks[half:], f"fitted on chunks 0..{half - 1}, tested on the rest"
        else:
            fit_on, test, how = chunks, chunks, "fitted in-sample (optimistic)"
        tables = pad_tables(fit_tables(list(fit_on), bits, version=version), max(c.shape[0] for c in test))
        res = {
            "coder_version": version,
            "input": name,
            "shape": list(chunks.shape),
            "token_bits": bits,
            "raw_bits_per_token": bits,
            "uniform_prior": _measure(test, bits, None, repeat, version),
            "fitted_tables": dict(_measure(test, bits, tables, repeat, version), how=how),
        }
        results.append(res)
    return results


def _print(results: list[dict]) -> None:
    for r in results:
        print(f"{r['input']}: shape {tuple(r['shape'])}, raw {r['raw_bits_per_token']} bits/token")
        for key in ("uniform_prior", "fitted_tables"):
            m = r[key]
            extra = f" ({m['how']})" if "how" in m else ""
            print(
                f"  {key:14s} {m['bits_per_token']:7.3f} bits/token = {100 * m['ratio_vs_raw']:5.1f}% of raw, "
                f"encode {m['encode_tokens_per_s'] / 1e6:6.2f} Mtok/s, decode {m['decode_tokens_per_s'] / 1e6:6.2f} Mtok/s{extra}"
            )


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description="Bits per token and speed of the bitstream token coder.")
    ap.add_argument("inputs", nargs="*", help=".npz files with a 'tokens' array")
    ap.add_argument("--synthetic", action="store_true", help="add a correlated synthetic grid (default without inputs)")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--json", help="also write the results as JSON here")
    ap.add_argument("--coder-version", type=int, choices=CODER_VERSIONS, default=CODER_VERSION)
    args = ap.parse_args(argv)
    inputs = {p: _load(p) for p in args.inputs}
    if args.synthetic or not inputs:
        inputs["synthetic (4 chunks, 4 levels, 5x45x80, 18 bits)"] = (synthetic_tokens(), 18)
    results = bench(inputs, repeat=args.repeat, version=args.coder_version)
    _print(results)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
