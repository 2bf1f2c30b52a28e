"""The rate range of one model on 720p natural footage: every quality point's bits and quality.

    python -m benchmarks.rate_range [--model default] [--threads 2] [-o benchmarks/results/rate_range_720p.json]
                                    [--md benchmarks/results/rate_range_720p.md]

The clip is bigbuckbunny's segment reserved for the benchmarks (frames 20-52 at its native 1280x720: never in the
training corpus, see data/manifest.json). Each quality is coded through the public array API (``vcodec.compress`` /
``vcodec.decompress``, the default encoder); bpp is the whole ``.vcb`` (video only: no audio) x 8 / pixels; PSNR-Y,
PSNR-YUV (6:1:1) and VMAF as the benchmarks define them (``vcodec.metrics``, ``benchmarks.metrics.vmaf``). The model
issue asks for a lowest point <= 0.01 bpp and a highest >= 0.3 bpp there, each better than the one below in PSNR and
VMAF: the report says whether each holds.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import time

import torch

import vcodec
from benchmarks.clips import ClipSpec, find_file, read_segment
from benchmarks.codecs import ffmpeg_exe
from benchmarks.metrics import vmaf, vmaf_status
from vcodec.colour import rgb_to_yuv420
from vcodec.metrics import psnr_yuv_611
from vcodec.models import load_tokenizer

CLIP = ClipSpec("bigbuckbunny", "bigbuckbunny.mp4", start=20, frames=33, crop=None)
LOWEST_BPP, HIGHEST_BPP = 0.01, 0.3     # the model issue's range


def measure(model: str = "default") -> dict:
    """Per quality of ``model``: {"quality", "bpp", "psnr_y", "psnr_yuv", "vmaf", "encode_s", "decode_s"}, and the
    checks of the issue's range (``lowest_ok``, ``highest_ok``, ``monotone``)."""
    ffmpeg = ffmpeg_exe()
    why = vmaf_status(ffmpeg)                 # before any encoding: the report needs VMAF at every point
    if why is not None:
        raise SystemExit(f"rate_range: VMAF unavailable ({why})")
    tok = load_tokenizer(model)
    frames, _ = read_segment(find_file(CLIP.file), CLIP.start, CLIP.frames)
    ref = rgb_to_yuv420(frames)
    rows = []
    for rp in sorted(tok.rate_points, key=lambda rp: rp.quality):
        t0 = time.perf_counter()
        data = vcodec.compress(frames, quality=rp.quality, tokenizer=tok, frame_rate=25)
        t1 = time.perf_counter()
        decoded = vcodec.decompress(data, tokenizer=tok)
        t2 = time.perf_counter()
        dist = rgb_to_yuv420(decoded)
        psnr = psnr_yuv_611(ref, dist)
        rows.append({"quality": rp.quality, "bpp": len(data) * 8 / frames[..., 0].size, "psnr_y": psnr["psnr_y"],
                     "psnr_yuv": psnr["psnr_yuv"], "vmaf": vmaf(ref, dist, ffmpeg)[0],
                     "encode_s": t1 - t0, "decode_s": t2 - t1})
        print(" ".join(f"{k} {v:.4g}" for k, v in rows[-1].items()), flush=True)
    return {"model": tok.name, "weights_hash": tok.weights_hash, "clip": dataclasses.asdict(CLIP), "width": frames.shape[2],
            "height": frames.shape[1], "rows": rows, **range_checks(rows)}


def range_checks(rows: list[dict]) -> dict:
    """The model issue's range checks on rows ordered by quality: ``lowest_ok`` (first bpp <= 0.01), ``highest_ok``
    (last bpp >= 0.3) and ``monotone`` (every point above the one below in PSNR-Y, PSNR-YUV and VMAF)."""
    monotone = all(b[k] > a[k] for a, b in zip(rows, rows[1:]) for k in ("psnr_y", "psnr_yuv", "vmaf"))
    return {"lowest_ok": rows[0]["bpp"] <= LOWEST_BPP, "highest_ok": rows[-1]["bpp"] >= HIGHEST_BPP,
            "monotone": monotone}


def markdown(report: dict, command: str) -> str:
    lines = [f"# Rate range on 720p natural footage: model `{report['model']}` ({report['weights_hash'][:12]})", "",
             f"{report['clip']['name']} frames {report['clip']['start']}-{report['clip']['start'] + report['clip']['frames'] - 1} "
             f"at {report['width']}x{report['height']} (reserved for the benchmarks, never trained on), every quality "
             "through `vcodec.compress` (the default encoder); bpp = whole `.vcb` x 8 / pixels. Made by:", "",
             f"    {command}", "",
             "| quality | bpp | PSNR-Y (dB) | PSNR-YUV (dB) | VMAF |", "|---:|---:|---:|---:|---:|"]
    lines += [f"| {r['quality']} | {r['bpp']:.4f} | {r['psnr_y']:.2f} | {r['psnr_yuv']:.2f} | {r['vmaf']:.2f} |"
              for r in report["rows"]]
    rows = report["rows"]
    lines += ["", f"Lowest point {rows[0]['bpp']:.4f} bpp (<= {LOWEST_BPP}: {'yes' if report['lowest_ok'] else 'no'}), "
              f"highest {rows[-1]['bpp']:.4f} bpp (>= {HIGHEST_BPP}: {'yes' if report['highest_ok'] else 'no'}); "
              f"each point above the one below in PSNR-Y, PSNR-YUV and VMAF: {'yes' if report['monotone'] else 'no'}.", ""]
    return "\n".join(lines)


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="default")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("-o", "--output", default=None, help="write the report (JSON) here")
    ap.add_argument("--md", default=None, help="write the table (markdown) here")
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    report = measure(args.model)
    command = "python -m benchmarks.rate_range " + " ".join(argv if argv is not None else sys.argv[1:])
    if args.output:
        with open(args.output, "w") as fh:
            json.dump(report, fh, indent=1)
    if args.md:
        with open(args.md, "w") as fh:
            fh.write(markdown(report, command))


if __name__ == "__main__":
    main()
