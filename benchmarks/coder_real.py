"""Token coder on real video: coded vs raw bits per token at every rate point, and the coder's share of codec time.

    python -m benchmarks.coder_real [--model default] [--keyint 129] [--repeat 3] [--json out.json]

For every clip of the standard suite (frames never trained on), the shipped model tokenizes the clip as
`vcodec encode` does (keyframe periods of ``--keyint`` frames: a 17-frame keyframe chunk, then 16-frame chunks
that continue it), once with every token plane and bit; each rate point's grids are the prefix of planes and bits
that the quality setting codes. They are range-coded with the coder version and learned tables the stream uses
(version 2 where the model has its tables), the contexts carried across the chunks of a period ("carried", what a
.vcb holds), and, for comparison, restarted at every chunk ("per chunk", format version 1), with a uniform prior,
and with coder versions 1 and 2 and their tables. Reports bits per token against the raw
LFQ bits (``bits`` per token and plane), and at every rate point the coder's encode/decode throughput (tokens/s,
one thread, the least of ``--repeat`` passes) and its share of total encode / decode time (tokenizer + coder, timed
the same way; the tokenizer's time is that of all planes, the same at every point) for the same chunks, the mean
over clips; at the highest rate point also per clip and as a share of the whole suite's time (the small clip
weighs less there).
"""
from __future__ import annotations

import argparse
import json
import time

import numpy as np


def _code(grids: list[np.ndarray], continues: list[bool], bits: int, tables, carried: bool,
          version: int, repeat: int = 1) -> tuple[int, float, float]:
    """(coded bits, encode seconds, decode seconds) of a clip's grids, the times the least of ``repeat`` passes;
    decoding is checked to give them back."""
    import bitstream

    best_enc = best_dec = float("inf")
    for _ in range(repeat):
        enc, dec = bitstream.CoderContext(), bitstream.CoderContext()
        total, t_enc, t_dec = 0, 0.0, 0.0
        for g, c in zip(grids, continues):
            if not (c and carried):
                enc.reset()
                dec.reset()
            t = time.perf_counter()
            data = bitstream.encode_tokens(g, bits, tables, enc, version)
            t_enc += time.perf_counter() - t
            t = time.perf_counter()
            back = bitstream.decode_tokens(data, g.shape, bits, tables, dec, version)
            t_dec += time.perf_counter() - t
            assert np.array_equal(back, g)
            total += len(data) * 8
        best_enc, best_dec = min(best_enc, t_enc), min(best_dec, t_dec)
    return total, best_enc, best_dec


def _tokenize(tok, frames: np.ndarray, keyint: int, repeat: int) -> tuple[list, list, float, float]:
    """The clip's token grids as ``vcodec encode`` makes them (every plane and bit), whether each continues the
    one before, and the tokenizer's encode / decode seconds for the whole clip (the least of ``repeat`` passes)."""
    from vcodec.stream import StreamState, chunk_plan

    n, H, W, _ = frames.shape
    best_enc = best_dec = float("inf")
    for _ in range(repeat):
        grids, continues, t_enc, t_dec = [], [], 0.0, 0.0
        enc_state, dec_state = StreamState(), StreamState()
        plan, s = chunk_plan(tok.window_frames, tok.config.temporal_factor, keyint), 0
        while s < n:
            k, c = next(plan)
            win = frames[s:s + k]
            s += len(win)
            if not c:
                enc_state.reset()
                dec_state.reset()
            t = time.perf_counter()
            grids.append(tok.encode_window(win, tok.max_levels, stream=enc_state))
            t_enc += time.perf_counter() - t
            t = time.perf_counter()
            tok.decode_window(grids[-1], len(win), H, W, stream=dec_state)
            t_dec += time.perf_counter() - t
            continues.append(c)
        best_enc, best_dec = min(best_enc, t_enc), min(best_dec, t_dec)
    return grids, continues, best_enc, best_dec


def main(argv=None) -> None:
    import torch

    from vcodec.models import load_tokenizer
    from vcodec.stream import DEFAULT_KEYINT
    from vcodec.tokenizer import token_prefix

    from .clips import STANDARD, get_clip

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="default")
    ap.add_argument("--keyint", type=int, default=DEFAULT_KEYINT)
    ap.add_argument("--json", dest="json_out")
    ap.add_argument("--repeat", type=int, default=3,
                    help="timings are the least of this many passes, tokenizer and coder alike (default 3)")
    args = ap.parse_args(argv)
    torch.set_num_threads(1)
    tok = load_tokenizer(args.model, device="cpu")
    rows = []
    for spec in STANDARD:
        frames = get_clip(spec).rgb
        n, H, W, _ = frames.shape
        grids, continues, t_tok_enc, t_tok_dec = _tokenize(tok, frames, args.keyint, args.repeat)
        for rp in tok.rate_points:
            bits, planes = tok.quality_point(rp.quality)
            sub = [token_prefix(g, bits, planes) for g in grids]
            tokens = sum(g.size for g in sub)
            version = tok.coder_version(bits)
            tables = tok.tables_for(bits, version)
            carried, t_enc, t_dec = _code(sub, continues, bits, tables, True, version, args.repeat)
            per_chunk = _code(sub, continues, bits, tables, False, version)[0]
            uniform = _code(sub, continues, bits, None, True, version)[0]
            v1 = _code(sub, continues, bits, tok.tables_for(bits, 1), True, 1)[0] if version != 1 else carried
            v2_tables = tok.tables_for(bits, 2)  # None for a model fitted after version 3 came: nothing to compare
            if version != 3:
                v2 = carried
            else:
                v2 = None if v2_tables is None else _code(sub, continues, bits, v2_tables, True, 2)[0]
            row = {"clip": spec.name, "width": W, "height": H, "frames": n, "keyint": args.keyint,
                   "quality": rp.quality, "bits": bits, "planes": planes, "raw_bits_per_token": bits,
                   "coded_bits_per_token": carried / tokens, "per_chunk_bits_per_token": per_chunk / tokens,
                   "uniform_prior_bits_per_token": uniform / tokens, "saving_vs_raw": 1 - carried / (tokens * bits),
                   "coder_version": version, "v1_bits_per_token": v1 / tokens, "saving_vs_v1": 1 - carried / v1,
                   "v2_bits_per_token": None if v2 is None else v2 / tokens,
                   "saving_vs_v2": None if v2 is None else 1 - carried / v2,
                   "per_chunk_saving_vs_raw": 1 - per_chunk / (tokens * bits),
                   # the tokenizer's time is the same at every rate point: it codes every plane once
                   "coder_encode_tokens_per_s": tokens / t_enc, "coder_decode_tokens_per_s": tokens / t_dec,
                   "coder_share_of_encode": t_enc / (t_enc + t_tok_enc),
                   "coder_share_of_decode": t_dec / (t_dec + t_tok_dec),
                   "seconds": {"coder_encode": t_enc, "coder_decode": t_dec, "tokenizer_encode": t_tok_enc,
                               "tokenizer_decode": t_tok_dec}}
            rows.append(row)
        top = rows[-1]
        print(f"{spec.name:13s} saving vs raw by quality: "
              + " ".join(f"q{r['quality']} {100 * r['saving_vs_raw']:.0f}%" for r in rows if r["clip"] == spec.name)
              + f"; coder {top['coder_encode_tokens_per_s'] / 1e6:.2f}/{top['coder_decode_tokens_per_s'] / 1e6:.2f} "
              f"Mtok/s enc/dec = {100 * top['coder_share_of_encode']:.1f}% / {100 * top['coder_share_of_decode']:.1f}% "
              "of codec time", flush=True)
    by_quality = {}
    for q in sorted({r["quality"] for r in rows}):
        mine = [r for r in rows if r["quality"] == q]
        by_quality[q] = {k: None if any(r[k] is None for r in mine) else float(np.mean([r[k] for r in mine]))
                         for k in ("coded_bits_per_token", "per_chunk_bits_per_token", "uniform_prior_bits_per_token",
                                   "saving_vs_raw", "per_chunk_saving_vs_raw", "v1_bits_per_token", "saving_vs_v1",
                                   "v2_bits_per_token", "saving_vs_v2", "coder_share_of_encode",
                                   "coder_share_of_decode")}
        b = by_quality[q]
        v2_text = ("no version 2 tables" if b["v2_bits_per_token"] is None else
                   f"coder v2 {b['v2_bits_per_token']:.2f}: {100 * b['saving_vs_v2']:+.1f}%")
        print(f"quality {q} ({mine[0]['bits']} bits x {mine[0]['planes']} planes): saving vs raw {100 * b['saving_vs_raw']:.1f}% "
              f"(contexts restarted per chunk: {100 * b['per_chunk_saving_vs_raw']:.1f}%), "
              f"{b['coded_bits_per_token']:.2f} bits/token (uniform prior {b['uniform_prior_bits_per_token']:.2f}; "
              f"coder v1 {b['v1_bits_per_token']:.2f}: {100 * b['saving_vs_v1']:+.1f}% fewer bits; "
              f"{v2_text}); coder {100 * b['coder_share_of_encode']:.1f}% / {100 * b['coder_share_of_decode']:.1f}% of "
              "encode / decode time")
    tops = [r for r in rows if r["quality"] == tok.rate_points[-1].quality]
    timing = {k: float(np.mean([r[k] for r in tops])) for k in
              ("coder_encode_tokens_per_s", "coder_decode_tokens_per_s", "coder_share_of_encode", "coder_share_of_decode")}
    total = {k: sum(r["seconds"][k] for r in tops) for k in tops[0]["seconds"]}
    timing["coder_share_of_suite_encode"] = total["coder_encode"] / (total["coder_encode"] + total["tokenizer_encode"])
    timing["coder_share_of_suite_decode"] = total["coder_decode"] / (total["coder_decode"] + total["tokenizer_decode"])
    print("highest quality (shares: mean over clips, and of the whole suite's time): "
          + ", ".join(f"{k} {v:.3f}" for k, v in timing.items()))
    if args.json_out:
        with open(args.json_out, "w") as f:
            json.dump({"model": tok.name, "weights_hash": tok.weights_hash, "threads": 1, "keyint": args.keyint,
                       "rows": rows, "by_quality": by_quality, "timing_at_highest_quality": timing}, f, indent=1)


if __name__ == "__main__":
    main()
