"""Scene cuts: what starting a keyframe period at a new shot does to bytes and quality.

    python -m benchmarks.scenecut [--qualities 1 2 3 4 5 6 7 8 9] [--model default]
                                  [-o benchmarks/results/scenecut.json] [--md benchmarks/results/scenecut.md]

Every clip of the standard suite and of :mod:`benchmarks.keyint`, and the diagnostics' held-out segments (held-out
footage, none of it trained on), is searched for cuts with :mod:`vcodec.scenecut` (the encoder's own detector). Clips with a cut are coded through the
public array API (``vcodec.compress`` / ``vcodec.decompress``, the default keyframe period) at every quality with
``scenecut=True`` (the default) and ``scenecut=False``; bytes are the whole ``.vcb``. Per clip: the RD points
(bpp; PSNR-Y and PSNR-YUV 6:1:1, BT.709 limited range, means over frames), the BD-rate of scene cuts against
none (negative = fewer bytes at equal quality), and PSNR-Y around each cut. Clips without a cut code to the same
chunks either way (checked at the lowest quality).
"""

from __future__ import annotations

import argparse
import hashlib
import io
import json
import sys
import time
from pathlib import Path

import numpy as np

import bitstream
from benchmarks.bdrate import bd_rate
from vcodec.colour import rgb_to_yuv420
from vcodec.metrics import psnr_yuv_611, psnr_yuv_frames
from vcodec.scenecut import scene_cuts

AROUND = 4  # frames shown on either side of a cut


def clips(data: str) -> list[tuple[str, np.ndarray]]:
    """The standard suite's clips, :mod:`benchmarks.keyint`'s, and the held-out segments of ``data`` (those of the
    diagnostics, 17 frames at native size) when ``make data`` has made them."""
    from benchmarks.clips import STANDARD, get_clip
    from benchmarks.keyint import CLIPS, load
    from vcodec.train.export import heldout_segments

    found = ([(f"{s.name} (standard, {s.frames} frames)", get_clip(s).rgb) for s in STANDARD]
             + [(f"{c.name} (keyint, {c.frames} frames)", load(c)) for c in CLIPS])
    if (Path(data) / "manifest.json").exists():
        found += [(f"{name} (held-out segment, {len(f)} frames)", f) for name, f in heldout_segments(Path(data))]
    return found


def code(tok, frames: np.ndarray, quality: int, scenecut: bool) -> dict:
    import vcodec

    data = vcodec.compress(frames, quality=quality, tokenizer=tok, scenecut=scenecut)
    out = vcodec.decompress(data, tokenizer=tok)
    ref, dist = rgb_to_yuv420(frames), rgb_to_yuv420(out)
    with bitstream.VcbReader(io.BytesIO(data)) as reader:
        chunks = [c.data for c in reader.coded_chunks()]
    return {"quality": quality, "scenecut": scenecut, "bytes": len(data), "bpp": len(data) * 8 / frames[..., 0].size,
            "chunks_sha256": hashlib.sha256(b"".join(chunks)).hexdigest(), "chunks": len(chunks),
            **psnr_yuv_611(ref, dist),
            "psnr_y_per_frame": [round(float(v), 3) for v in psnr_yuv_frames(ref, dist)["psnr_y"]]}


def markdown(report: dict) -> str:
    out = ["# Scene cuts: a keyframe period at each new shot", "",
           f"`{report['command']}` ({report['date']}, model {report['model']} {report['weights_hash'][:12]}, "
           "default keyframe period; bytes are whole `.vcb` files; BD-rate of `scenecut=True` against `False`, "
           "negative = fewer bytes at equal quality).", "",
           "| clip | cuts found | BD-rate PSNR-Y | BD-rate PSNR-YUV | bytes, PSNR-Y at each quality (no cuts -> cuts) |",
           "|---|---|---:|---:|---|"]
    for c in report["clips"]:
        if not c["cuts"]:
            out.append(f"| {c['clip']} | none | — | — | same chunks either way: {c['same_chunks']} |")
            continue
        pts = ", ".join(f"q{a['quality']} {a['bytes']} B {a['psnr_y']:.2f} -> {b['bytes']} B {b['psnr_y']:.2f} dB"
                        for a, b in zip(c["without"], c["with"]))
        out.append(f"| {c['clip']} | {', '.join(map(str, c['cuts']))} | {c['bd_rate_psnr_y']} | "
                   f"{c['bd_rate_psnr_yuv']} | {pts} |")
    out += ["", "PSNR-Y (dB) of the frames around each cut, at the middle quality, "
            "without -> with scene cuts:", ""]
    for c in report["clips"]:
        for cut, (lo, a, b) in c.get("around", {}).items():
            out.append(f"- {c['clip']}, cut at frame {cut} (frames {lo}..): "
                       + " ".join(f"{x:.1f}->{y:.1f}" for x, y in zip(a, b)))
    return "\n".join(out) + "\n"


def main(argv=None) -> None:
    import torch

    from vcodec.models import load_tokenizer

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="default")
    ap.add_argument("--qualities", type=int, nargs="+", default=None, help="default: every rate point")
    ap.add_argument("-o", "--out", default="benchmarks/results/scenecut.json")
    ap.add_argument("--md", default=None)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--data", default="data", help="where `make data` put the corpus (its held-out segments)")
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    tok = load_tokenizer(args.model, device="cpu")
    qualities = args.qualities or [rp.quality for rp in tok.rate_points]
    given = sys.argv[1:] if argv is None else argv
    report = {"command": " ".join(["python -m benchmarks.scenecut", *given]),
              "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), "model": tok.name,
              "weights_hash": tok.weights_hash, "qualities": qualities, "clips": []}
    for name, frames in clips(args.data):
        cuts = scene_cuts(frames)
        row = {"clip": name, "frames": len(frames), "cuts": cuts}
        if not cuts:
            same = {code(tok, frames, qualities[0], s)["chunks_sha256"] for s in (True, False)}
            row["same_chunks"] = len(same) == 1
        else:
            row["with"] = [code(tok, frames, q, True) for q in qualities]
            row["without"] = [code(tok, frames, q, False) for q in qualities]
            for metric in ("psnr_y", "psnr_yuv"):
                r = bd_rate([p["bpp"] for p in row["without"]], [p[metric] for p in row["without"]],
                            [p["bpp"] for p in row["with"]], [p[metric] for p in row["with"]])
                row[f"bd_rate_{metric}"] = r.text()
            mid = len(qualities) // 2
            row["around"] = {}
            for cut in cuts:
                lo = max(0, cut - AROUND)
                a = row["without"][mid]["psnr_y_per_frame"][lo:cut + AROUND + 1]
                b = row["with"][mid]["psnr_y_per_frame"][lo:cut + AROUND + 1]
                row["around"][cut] = (lo, a, b)
        report["clips"].append(row)
        print(name, "cuts", cuts, {k: row[k] for k in row if k.startswith("bd_rate") or k == "same_chunks"}, flush=True)
    Path(args.out).write_text(json.dumps(report, indent=1))
    if args.md:
        Path(args.md).write_text(markdown(report))


if __name__ == "__main__":
    main()
