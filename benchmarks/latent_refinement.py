"""Encoder-side latent refinement (``--refine STEPS``): bytes, quality and encode time against no refinement.

    python -m benchmarks.latent_refinement [--steps 0 5 10] [--qualities 1 3 5 7 9] [--frames 33]
                                           [-o benchmarks/results/latent_refinement.json]
                                           [--md benchmarks/results/latent_refinement.md]

Clips: the held-out clips of :mod:`benchmarks.keyint` (none of it in the training corpus), their first
``--frames`` frames (33: a keyframe chunk and a continuing one, as a stream has them), coded through the public
array API (``vcodec.compress(..., refine=STEPS, colour=False)`` / ``vcodec.decompress``; bytes are the whole
``.vcb``) at every quality and step count: refinement alone, without the colour correction ``--refine`` also turns on
(:mod:`vcodec.correction`; the suites measure the two together). Per clip and step count: the RD points (bpp; PSNR-Y and PSNR-YUV 6:1:1, BT.709 limited
range, means over frames), the BD-rate against 0 steps (negative = fewer bytes at equal quality) and the encode
time (2 threads, wall clock, the machine otherwise idle).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

from benchmarks.bdrate import bd_rate
from benchmarks.keyint import CLIPS, load
from vcodec.colour import rgb_to_yuv420
from vcodec.metrics import psnr_yuv_611

METRICS = ("psnr_y", "psnr_yuv")


def code(tok, frames: np.ndarray, quality: int, steps: int) -> dict:
    import vcodec

    t0 = time.perf_counter()
    data = vcodec.compress(frames, quality=quality, tokenizer=tok, refine=steps, colour=False)
    seconds = time.perf_counter() - t0
    out = vcodec.decompress(data, tokenizer=tok)
    psnr = psnr_yuv_611(rgb_to_yuv420(frames), rgb_to_yuv420(out))
    return {"quality": quality, "steps": steps, "bytes": len(data), "bpp": len(data) * 8 / frames[..., 0].size,
            "psnr_y": psnr["psnr_y"], "psnr_yuv": psnr["psnr_yuv"], "encode_seconds": seconds}


def main(argv=None) -> None:
    import torch

    from vcodec.models import load_tokenizer

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, nargs="+", default=[0, 5, 10])
    ap.add_argument("--qualities", type=int, nargs="+", default=[1, 3, 5, 7, 9])
    ap.add_argument("--frames", type=int, default=33)
    ap.add_argument("--clips", nargs="+", default=[c.name for c in CLIPS])
    ap.add_argument("--model", default="default")
    ap.add_argument("-o", "--output", default="bench-out/latent_refinement.json")
    ap.add_argument("--md", default=None)
    args = ap.parse_args(argv)
    torch.set_num_threads(2)
    tok = load_tokenizer(args.model)
    base = min(args.steps)
    rows, summary = [], []
    for spec in (c for c in CLIPS if c.name in args.clips):
        frames = load(spec)[:args.frames]
        for steps in args.steps:
            for q in args.qualities:
                rows.append({"clip": spec.name, "frames": len(frames), **code(tok, frames, q, steps)})
                r = rows[-1]
                print(f"{spec.name} q{q} {steps} steps: {r['bpp']:.4f} bpp, PSNR-Y {r['psnr_y']:.2f}, "
                      f"PSNR-YUV {r['psnr_yuv']:.2f}, {r['encode_seconds']:.1f} s", flush=True)
        for steps in args.steps:
            if steps == base:
                continue
            a = [r for r in rows if r["clip"] == spec.name and r["steps"] == base]
            b = [r for r in rows if r["clip"] == spec.name and r["steps"] == steps]
            summary.append({"clip": spec.name, "steps": steps, **{
                m: bd_rate([r["bpp"] for r in a], [r[m] for r in a], [r["bpp"] for r in b], [r[m] for r in b]).value
                for m in METRICS}, "time_ratio": sum(r["encode_seconds"] for r in b) / sum(r["encode_seconds"] for r in a)})
    for steps in args.steps:
        if steps != base:
            own = [s for s in summary if s["steps"] == steps]
            summary.append({"clip": "mean", "steps": steps, **{
                m: float(np.mean([s[m] for s in own if s[m] is not None])) for m in METRICS},
                "time_ratio": float(np.mean([s["time_ratio"] for s in own]))})
    command = "python -m benchmarks.latent_refinement " + " ".join(argv if argv is not None else sys.argv[1:])
    Path(args.output).parent.mkdir(parents=True, exist_ok=True)
    Path(args.output).write_text(json.dumps({"model": tok.name, "weights_hash": tok.weights_hash, "command": command,
                                             "rows": rows, "summary": summary}, indent=1) + "\n")
    md = markdown(rows, summary, command.strip(), tok)
    print(md)
    if args.md:
        Path(args.md).write_text(md)


def markdown(rows: list[dict], summary: list[dict], command: str, tok) -> str:
    def pct(v):
        return "n/a" if v is None else f"{v:+.1f}%"

    lines = ["# Encoder-side latent refinement (`--refine STEPS`)", "", f"`{command}`", "",
             __doc__.split("\n\n", 2)[2].strip(), "", f"Model `{tok.name}` ({tok.weights_hash[:12]}).", "",
             "| clip | steps | BD-rate PSNR-Y | BD-rate PSNR-YUV | encode time vs 0 steps |", "|---|---:|---:|---:|---:|"]
    for s in summary:
        name = f"**{s['clip']}**" if s["clip"] == "mean" else s["clip"]
        lines.append(f"| {name} | {s['steps']} | {pct(s['psnr_y'])} | {pct(s['psnr_yuv'])} | {s['time_ratio']:.1f}x |")
    lines += ["", "RD points (bpp / PSNR-Y / PSNR-YUV, encode seconds):", "",
              "| clip | quality | " + " | ".join(f"{s} steps" for s in sorted({r['steps'] for r in rows})) + " |",
              "|---|---:|" + "---|" * len({r["steps"] for r in rows})]
    for clip in dict.fromkeys(r["clip"] for r in rows):
        for q in sorted({r["quality"] for r in rows if r["clip"] == clip}):
            cells = [f"{r['bpp']:.4f} / {r['psnr_y']:.2f} / {r['psnr_yuv']:.2f}, {r['encode_seconds']:.1f} s"
                     for r in sorted((r for r in rows if r["clip"] == clip and r["quality"] == q),
                                     key=lambda r: r["steps"])]
            lines.append(f"| {clip} | {q} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
