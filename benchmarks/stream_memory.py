"""Streaming memory: encode/decode speed and peak memory for a short and a long video at the same size.

    python -m benchmarks.stream_memory [--frames 30 300] [--width 1280 --height 720] [--model default]
                                       [--quality Q] [--device auto] [-o bench-out/stream_memory.json]
    python -m benchmarks.stream_memory --tiny --width 320 --height 180      # a quick run with a random tiny model

vcodec reads, codes and writes one temporal window at a time, so peak memory should not grow with the length
of the video. Goal: peak(longest) <= 1.25 x peak(shortest), and every peak <= 2 GiB; the command exits 1 when
it is missed.

Method: a synthetic clip (smooth moving gradients, x264 ultrafast CRF 18 in .mp4, so the input file stays small)
is made per length; then each (length, direction) runs in a fresh subprocess through the public API
(``vcodec.encode_video`` from the .mp4 to a .vcb; ``vcodec.decode_video`` from the .vcb to .mkv, FFV1) and
reports its own peak RSS (``resource.getrusage(RUSAGE_SELF).ru_maxrss``: the resident high-water mark of the
whole process, Python, torch and model weights included) and its coding time (model loading excluded).
Results are printed as a table and written as JSON ``{name, description, results, checks}``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

GOAL_RATIO = 1.25
GOAL_PEAK_BYTES = 2 * 1024**3


def peak_rss_bytes() -> int:
    """This process's resident-set high-water mark (ru_maxrss is KiB on Linux, bytes on macOS)."""
    r = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return int(r if sys.platform == "darwin" else r * 1024)


def measure(op: str, src: str, dst: str, *, model: str | None, device: str, tiny: bool,
            quality: int | None = None) -> dict:
    """Run one encode (at ``quality``, None: the model's default) or decode in this process and report its numbers
    (call in a fresh process)."""
    import vcodec

    tok = None
    if tiny:
        from vcodec.testing import tiny_tokenizer

        tok = tiny_tokenizer(window_frames=17)
    t0 = time.perf_counter()
    if op == "encode":
        res = vcodec.encode_video(src, dst, model=model, device=device, tokenizer=tok, overwrite=True, quality=quality)
    elif op == "decode":
        res = vcodec.decode_video(src, dst, model=model, device=device, tokenizer=tok, overwrite=True)
    else:
        raise ValueError(f"unknown op {op!r}")
    wall = time.perf_counter() - t0
    return {
        "op": op,
        "frames": res.frames,
        "width": res.width,
        "height": res.height,
        "seconds": round(res.seconds, 4),
        "fps": round(res.fps, 3),
        "wall_seconds": round(wall, 4),
        "peak_rss_bytes": peak_rss_bytes(),
        "model": res.model,
        "device": res.device,
        "vcb_bytes": res.bytes,
        **({"quality": res.quality} if op == "encode" else {}),
    }


def _make_clip(path: Path, frames: int, width: int, height: int) -> None:
    from vcodec.io.synthetic import write_clip

    write_clip(path, width=width, height=height, num_frames=frames, rate=25)


def _child(args: list[str]) -> dict:
    cmd = [sys.executable, "-m", "benchmarks.stream_memory", "--child", *args]
    p = subprocess.run(cmd, capture_output=True, text=True)
    if p.returncode != 0:
        raise SystemExit(f"child failed ({' '.join(cmd)}):\n{p.stderr}")
    return json.loads(p.stdout.strip().splitlines()[-1])


def _description(args) -> dict:
    import av
    import torch

    return {
        "what": "peak RSS and fps of streaming encode/decode vs video length",
        "width": args.width,
        "height": args.height,
        "frames": args.frames,
        "model": "tiny random (vcodec.testing)" if args.tiny else args.model,
        "quality": args.quality,  # None: the model's default
        "device": args.device,
        "python": platform.python_version(),
        "torch": torch.__version__,
        "pyav": av.__version__,
        "threads": os.environ.get("OMP_NUM_THREADS"),
        "machine": platform.machine(),
        "memory_method": "resource.getrusage(RUSAGE_SELF).ru_maxrss in a fresh subprocess per run",
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m benchmarks.stream_memory", description=__doc__.split("\n\n")[0])
    ap.add_argument("--frames", type=int, nargs="+", default=[30, 300])
    ap.add_argument("--width", type=int, default=1280)
    ap.add_argument("--height", type=int, default=720)
    ap.add_argument("--model", default="default")
    ap.add_argument("--quality", type=int, default=None, help="encode at this quality (default: the model's)")
    ap.add_argument("--device", default="auto")
    ap.add_argument("--tiny", action="store_true", help="use a random tiny model (checks the script, not vcodec)")
    ap.add_argument("-o", "--output", default="bench-out/stream_memory.json")
    ap.add_argument("--keep", default=None, help="keep the clips and coded files in this folder")
    ap.add_argument("--child", nargs=4, metavar=("OP", "SRC", "DST", "MODEL"), help=argparse.SUPPRESS)
    args = ap.parse_args(argv)

    if args.child:
        op, src, dst, model = args.child
        print(json.dumps(measure(op, src, dst, model=None if model == "-" else model, device=args.device,
                                 tiny=args.tiny, quality=args.quality)))
        return 0

    work = Path(args.keep) if args.keep else Path(tempfile.mkdtemp(prefix="stream_memory."))
    work.mkdir(parents=True, exist_ok=True)
    model = "-" if args.tiny else args.model
    results = []
    for n in sorted(args.frames):
        clip = work / f"clip_{n}.mp4"
        _make_clip(clip, n, args.width, args.height)
        vcb, out = work / f"clip_{n}.vcb", work / f"clip_{n}.mkv"
        extra = (["--tiny"] if args.tiny else []) + ([] if args.quality is None else ["--quality", str(args.quality)])
        results.append(_child(["encode", str(clip), str(vcb), model, "--device", args.device, *extra]))
        results.append(_child(["decode", str(vcb), str(out), model, "--device", args.device, *extra]))
        if not args.keep:
            for p in (clip, vcb, out):
                p.unlink(missing_ok=True)
    if not args.keep:
        work.rmdir()

    checks = {}
    ok = True
    for op in ("encode", "decode"):
        rows = sorted((r for r in results if r["op"] == op), key=lambda r: r["frames"])
        ratio = rows[-1]["peak_rss_bytes"] / rows[0]["peak_rss_bytes"]
        worst = max(r["peak_rss_bytes"] for r in rows)
        good = ratio <= GOAL_RATIO and worst <= GOAL_PEAK_BYTES
        ok &= good
        checks[op] = {"peak_ratio_long_vs_short": round(ratio, 4), "max_peak_bytes": worst, "ok": good}

    print(f"{'op':7} {'frames':>6} {'size':>10} {'fps':>8} {'seconds':>8} {'peak MiB':>9}")
    for r in results:
        print(f"{r['op']:7} {r['frames']:6d} {r['width']:>5}x{r['height']:<4} {r['fps']:8.2f} {r['seconds']:8.2f} "
              f"{r['peak_rss_bytes'] / 2**20:9.1f}")
    for op, c in checks.items():
        print(f"{op}: peak ratio {c['peak_ratio_long_vs_short']:.3f} (goal <= {GOAL_RATIO}), "
              f"max peak {c['max_peak_bytes'] / 2**20:.0f} MiB (goal <= 2048): {'PASS' if c['ok'] else 'FAIL'}")

    out = Path(args.output)
    out.parent.mkdir(parents=True, exist_ok=True)
    doc = {"name": "stream_memory", "description": _description(args), "results": results, "checks": checks}
    out.write_text(json.dumps(doc, indent=2) + "\n")
    print(f"wrote {out}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
