"""Big frames: peak memory and speed of encoding and decoding 3840x2160 video with the shipped model.

    python -m benchmarks.big_frames [--width 3840 --height 2160] [--frames 5] [--model default]
                                    [-o benchmarks/results/big_frames.json]
    python -m benchmarks.big_frames --tiny --width 1920 --height 1080      # a quick run with a random tiny model

Frames above ``Tokenizer.TILE_ABOVE`` pixels are coded in overlapping spatial tiles (vcodec/tokenizer.py), so the
memory the network needs is bounded by the tile size; what still grows with resolution is the window of frames
itself (uint8). Goal: peak RSS <= 3 GiB for each of encode and decode at 3840x2160; the command exits 1 when it
is missed.

Method: as :mod:`benchmarks.stream_memory` (whose child mode runs each step): a synthetic clip (x264 .mp4) is
made, then encode (.mp4 -> .vcb) and decode (.vcb -> .mkv, FFV1) each run in a fresh subprocess through the
public API and report their own peak RSS (``ru_maxrss``: Python, torch and the model included) and coding time.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
from pathlib import Path

from benchmarks.stream_memory import _child, _make_clip

GOAL_PEAK_BYTES = 3 * 1024**3


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m benchmarks.big_frames", description=__doc__.split("\n\n")[0])
    ap.add_argument("--frames", type=int, default=5)
    ap.add_argument("--width", type=int, default=3840)
    ap.add_argument("--height", type=int, default=2160)
    ap.add_argument("--model", default="default")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--tiny", action="store_true", help="use a random tiny model (checks the script, not vcodec)")
    ap.add_argument("-o", "--output", default="bench-out/big_frames.json")
    args = ap.parse_args(argv)

    import av
    import torch

    from vcodec.tokenizer import Tokenizer

    results = []
    with tempfile.TemporaryDirectory(prefix="big_frames.") as work:
        clip, vcb, out = (Path(work) / f"clip.{e}" for e in ("mp4", "vcb", "mkv"))
        _make_clip(clip, args.frames, args.width, args.height)
        model = "-" if args.tiny else args.model
        extra = ["--device", args.device, *(["--tiny"] if args.tiny else [])]
        results.append(_child(["encode", str(clip), str(vcb), model, *extra]))
        results.append(_child(["decode", str(vcb), str(out), model, *extra]))
    worst = max(r["peak_rss_bytes"] for r in results)
    ok = worst <= GOAL_PEAK_BYTES
    for r in results:
        print(f"{r['op']:7} {r['frames']} x {r['width']}x{r['height']}: {r['seconds']:.1f} s, "
              f"peak RSS {r['peak_rss_bytes'] / 2**20:.0f} MiB")
    print(f"max peak {worst / 2**20:.0f} MiB (goal <= {GOAL_PEAK_BYTES / 2**20:.0f}): {'PASS' if ok else 'FAIL'}")
    doc = {
        "name": "big_frames",
        "description": {
            "what": "peak RSS and time of encode and decode of one window of big frames (spatial tiling)",
            "width": args.width, "height": args.height, "frames": args.frames,
            "model": "tiny random (vcodec.testing)" if args.tiny else args.model, "device": args.device,
            "tile_above_pixels": Tokenizer.TILE_ABOVE, "tile_core_latents": Tokenizer.TILE_CORE,
            "python": platform.python_version(), "torch": torch.__version__, "pyav": av.__version__,
            "threads": os.environ.get("OMP_NUM_THREADS"), "cpus": os.cpu_count(), "machine": platform.machine(),
            "memory_method": "resource.getrusage(RUSAGE_SELF).ru_maxrss in a fresh subprocess per run",
        },
        "results": results,
        "checks": {"max_peak_bytes": worst, "goal_bytes": GOAL_PEAK_BYTES, "ok": ok},
    }
    path = Path(args.output)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(doc, indent=2) + "\n")
    print(f"wrote {path}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
