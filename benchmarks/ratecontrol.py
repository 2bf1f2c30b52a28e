"""Rate control: how close ``--bitrate`` lands to its target, and what mixing rate points costs in quality.

    python -m benchmarks.ratecontrol [--lengths 0 50] [--targets 5] [--model default] [--refine STEPS]
                                     [-o benchmarks/results/ratecontrol.json] [--md benchmarks/results/ratecontrol.md]

Clips: the held-out clips of ``benchmarks.keyint`` (97-129 frames, 416x240 or 176x144, none of it in the training
corpus), whole (length 0) and cut to their first ``L`` frames, coded at 25 frames/s through the public array API
(``vcodec.compress`` / ``decompress``; bytes are the whole ``.vcb``, all of it video). For each clip the fixed
rate points (every ``--quality``) give the ladder; ``--targets`` bitrates are spread evenly in log-rate strictly
between its lowest and highest point, and each is coded with ``bitrate=``. Reported per target: the achieved
bitrate and its error against the target, PSNR-Y (BT.709 limited range, mean over frames), two references from the
fixed ladder's two points around that rate: PSNR-Y interpolated linearly in rate (what splitting the frames between
the two points in the right proportion gives, if switching were free) and in log-rate (the BD-rate convention,
higher: the curve between two points is not reachable by mixing them), the chunks per quality, and encode time
against the fixed point just above. ``--refine STEPS`` codes the targets with ``refine=STEPS`` (and so with colour
correction) while the ladder stays the plain encoder's: the PSNR-Y columns then show what refinement adds.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

from benchmarks.keyint import CLIPS, load
from vcodec.metrics import psnr_y_bt709_limited

FPS = 25


def psnr_y(frames: np.ndarray, out: np.ndarray) -> float:
    return float(np.mean([psnr_y_bt709_limited(frames[i:i + 1], out[i:i + 1]) for i in range(len(frames))]))


def code(tok, frames: np.ndarray, **how) -> dict:
    import vcodec

    t0 = time.perf_counter()
    data = vcodec.compress(frames, tokenizer=tok, frame_rate=FPS, **how)
    seconds = time.perf_counter() - t0
    info = vcodec.info(data)
    out = vcodec.decompress(data, tokenizer=tok)
    return {"kbps": info["video_kbps"], "bpp": info["video_bpp"], "psnr_y": psnr_y(frames, out),
            "encode_seconds": seconds, "chunk_rates": info["chunk_rates"]}


def ladder_psnr(ladder: list[dict], kbps: float, log: bool) -> float | None:
    """PSNR-Y of the fixed ladder at ``kbps``, linear in rate (``log`` False) or log-rate between the two points
    around it; None outside the ladder."""
    pts = sorted(ladder, key=lambda r: r["kbps"])
    f = np.log if log else (lambda v: v)
    for a, b in zip(pts, pts[1:]):
        if a["kbps"] <= kbps <= b["kbps"]:
            w = (f(kbps) - f(a["kbps"])) / (f(b["kbps"]) - f(a["kbps"]))
            return float(a["psnr_y"] + w * (b["psnr_y"] - a["psnr_y"]))
    return None


def markdown(rows: list[dict], command: str) -> str:
    errs = [abs(r["error"]) for r in rows]
    lines = ["# Rate control (`--bitrate`): achieved vs target", "", f"`{command}`", "",
             __doc__.split("\n\n", 2)[2].strip(), "",
             f"**{len(rows)} targets: |error| median {np.median(errs):.1%}, max {max(errs):.1%}; "
             f"{sum(e <= 0.05 for e in errs)}/{len(rows)} within 5%.**", "",
             "| clip | frames | target kbit/s | achieved | error | PSNR-Y | ladder, linear in rate (log-rate) "
             "| chunks per quality | encode s (fixed point above) |",
             "|---|---:|---:|---:|---:|---:|---:|---|---:|"]
    for r in rows:
        lad = "-" if r["ladder_psnr_y"] is None else f"{r['ladder_psnr_y']:.2f} ({r['ladder_log_psnr_y']:.2f})"
        q = " ".join(f"q{k}x{v}" for k, v in r["chunk_qualities"].items())
        lines.append(f"| {r['clip']} | {r['frames']} | {r['target_kbps']:.1f} | {r['kbps']:.1f} | {r['error']:+.1%} "
                     f"| {r['psnr_y']:.2f} | {lad} | {q} | {r['encode_seconds']:.1f} ({r['fixed_encode_seconds']:.1f}) |")
    gaps = [r["psnr_y"] - r["ladder_psnr_y"] for r in rows if r["ladder_psnr_y"] is not None]
    if gaps:
        lines += ["", f"PSNR-Y against the ladder linear in rate: mean {np.mean(gaps):+.2f} dB "
                      f"(min {min(gaps):+.2f}, max {max(gaps):+.2f})."]
    return "\n".join(lines) + "\n"


def main(argv=None) -> None:
    from vcodec.models import load_tokenizer
    from vcodec.ratecontrol import ladder

    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--lengths", type=int, nargs="+", default=[0, 50], help="frames per clip (0: the whole clip)")
    ap.add_argument("--targets", type=int, default=5, help="targets per clip, between its lowest and highest point")
    ap.add_argument("--clips", nargs="+", default=[c.name for c in CLIPS])
    ap.add_argument("--model", default="default")
    ap.add_argument("-o", "--output", default="bench-out/ratecontrol.json")
    ap.add_argument("--md", default=None, help="also write the markdown table here")
    ap.add_argument("--refine", type=int, default=0, metavar="STEPS", help="refinement steps for the targets' streams")
    ap.add_argument("--ladders-from", default=None, metavar="JSON",
                    help="take the fixed-quality ladders from an earlier run's results (same model: checked)")
    args = ap.parse_args(argv)
    tok = load_tokenizer(args.model)
    points = sorted(tok.rate_points, key=lambda p: p.quality)  # the fixed ladder: every --quality
    rungs = ladder(tok)  # what rate control chooses from (also widths between the rate points')
    order = {r.label: k for k, r in enumerate(rungs)}
    rows, ladders, earlier = [], {}, {}
    if args.ladders_from:
        saved = json.loads(Path(args.ladders_from).read_text())
        if saved["weights_hash"] != tok.weights_hash:
            raise SystemExit(f"{args.ladders_from} was measured with other weights")
        earlier = saved["ladders"]
    for spec in (c for c in CLIPS if c.name in args.clips):
        whole = load(spec)
        for length in args.lengths:
            frames = whole[:length] if length else whole
            key = f"{spec.name}/{len(frames)}"
            fixed = earlier.get(key) or [{"quality": p.quality, **code(tok, frames, quality=p.quality)} for p in points]
            ladders[key] = fixed
            lo, hi = fixed[0]["kbps"], fixed[-1]["kbps"]
            for t in np.exp(np.linspace(np.log(lo), np.log(hi), args.targets + 2)[1:-1]):
                r = code(tok, frames, bitrate=float(t) * 1000, refine=args.refine)
                above = min((f for f in fixed if f["kbps"] >= r["kbps"]), key=lambda f: f["kbps"], default=fixed[-1])
                qualities = {}
                for rate, n in r.pop("chunk_rates").items():
                    levels, bits = map(int, rate.split("x"))
                    q = next(r.label for r in rungs if (r.levels, r.bits) == (levels, bits))
                    qualities[q] = qualities.get(q, 0) + n
                row = {"clip": spec.name, "frames": len(frames), "target_kbps": float(t), **r,
                       "error": r["kbps"] / float(t) - 1, "ladder_psnr_y": ladder_psnr(fixed, r["kbps"], log=False),
                       "ladder_log_psnr_y": ladder_psnr(fixed, r["kbps"], log=True),
                       "chunk_qualities": dict(sorted(qualities.items(), key=lambda kv: order[kv[0]])),
                       "fixed_encode_seconds": above["encode_seconds"]}
                rows.append(row)
                print(f"{spec.name} {len(frames)} frames: target {t:.1f} kbit/s -> {r['kbps']:.1f} ({row['error']:+.1%}), "
                      f"{r['psnr_y']:.2f} dB (ladder {row['ladder_psnr_y']}), {qualities}", flush=True)
    command = "python -m benchmarks.ratecontrol " + " ".join(argv if argv is not None else sys.argv[1:])
    if args.ladders_from:
        command += f"  (ladders from: {saved['command']})"
    Path(args.output).parent.mkdir(parents=True, exist_ok=True)
    Path(args.output).write_text(json.dumps({"model": tok.name, "weights_hash": tok.weights_hash, "command": command,
                                             "fps": FPS, "rows": rows, "ladders": ladders}, indent=1) + "\n")
    md = markdown(rows, command.strip())
    print(md)
    if args.md:
        Path(args.md).write_text(md)


if __name__ == "__main__":
    main()
