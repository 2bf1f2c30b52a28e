"""Token coder on real video: coded vs raw bits per token, and the coder's share of codec time.

    python -m benchmarks.coder_real [--model default] [--json out.json]

For every clip of the standard suite (frames never trained on), each 17-frame window is tokenized at the
highest rate point with the shipped model; the token grids are range-coded with the model's learned
context tables (what `vcodec encode` does) and with a uniform prior. Reports bits per token, the saving
against raw LFQ bits, coder encode/decode throughput (tokens/s, one thread) and the coder's share of
total encode / decode time (tokenizer + coder) for the same windows.
"""
from __future__ import annotations

import argparse
import json
import time

import numpy as np


def main(argv=None) -> None:
    import torch

    import bitstream
    from vcodec.models import load_tokenizer

    from .clips import STANDARD, get_clip

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="default")
    ap.add_argument("--json", dest="json_out")
    args = ap.parse_args(argv)
    torch.set_num_threads(1)
    tok = load_tokenizer(args.model, device="cpu")
    rows = []
    for spec in STANDARD:
        clip = get_clip(spec)
        frames = clip.rgb
        n, H, W, _ = frames.shape
        agg = {"tokens": 0, "raw_bits": 0, "coded_bits": 0, "uniform_bits": 0,
               "t_tok_enc": 0.0, "t_tok_dec": 0.0, "t_enc": 0.0, "t_dec": 0.0}
        for s in range(0, n, tok.window_frames):
            win = frames[s:s + tok.window_frames]
            t = time.perf_counter()
            grid = tok.encode_window(win, tok.max_levels)
            agg["t_tok_enc"] += time.perf_counter() - t
            t = time.perf_counter()
            tok.decode_window(grid, len(win), H, W)
            agg["t_tok_dec"] += time.perf_counter() - t
            t = time.perf_counter()
            data = bitstream.encode_tokens(grid, tok.token_bits, tok.coder_tables)
            agg["t_enc"] += time.perf_counter() - t
            t = time.perf_counter()
            back = bitstream.decode_tokens(data, grid.shape, tok.token_bits, tok.coder_tables)
            agg["t_dec"] += time.perf_counter() - t
            assert np.array_equal(back, grid)
            agg["tokens"] += grid.size
            agg["raw_bits"] += grid.size * tok.token_bits
            agg["coded_bits"] += len(data) * 8
            agg["uniform_bits"] += len(bitstream.encode_tokens(grid, tok.token_bits, None)) * 8
        row = {"clip": spec.name, "width": W, "height": H, "frames": n, "levels": tok.max_levels,
               "raw_bits_per_token": tok.token_bits,
               "coded_bits_per_token": agg["coded_bits"] / agg["tokens"],
               "uniform_prior_bits_per_token": agg["uniform_bits"] / agg["tokens"],
               "saving_vs_raw": 1 - agg["coded_bits"] / agg["raw_bits"],
               "coder_encode_tokens_per_s": agg["tokens"] / agg["t_enc"],
               "coder_decode_tokens_per_s": agg["tokens"] / agg["t_dec"],
               "coder_share_of_encode": agg["t_enc"] / (agg["t_enc"] + agg["t_tok_enc"]),
               "coder_share_of_decode": agg["t_dec"] / (agg["t_dec"] + agg["t_tok_dec"])}
        rows.append(row)
        print(f"{spec.name:13s} {row['coded_bits_per_token']:6.2f} bits/token of {tok.token_bits} raw "
              f"(saving {100 * row['saving_vs_raw']:4.1f}%, uniform prior {row['uniform_prior_bits_per_token']:.2f}); "
              f"coder {row['coder_encode_tokens_per_s'] / 1e6:.2f}/{row['coder_decode_tokens_per_s'] / 1e6:.2f} "
              f"Mtok/s enc/dec = {100 * row['coder_share_of_encode']:.1f}% / {100 * row['coder_share_of_decode']:.1f}% "
              f"of codec time", flush=True)
    mean = {k: float(np.mean([r[k] for r in rows])) for k in rows[0] if isinstance(rows[0][k], float)}
    print("mean: " + ", ".join(f"{k} {v:.3f}" for k, v in mean.items()))
    if args.json_out:
        with open(args.json_out, "w") as f:
            json.dump({"model": tok.name, "weights_hash": tok.weights_hash, "threads": 1, "rows": rows,
                       "mean": mean}, f, indent=1)


if __name__ == "__main__":
    main()
