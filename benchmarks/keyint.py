"""Keyframe periods: bytes and quality of one continuous causal stream against window-independent coding.

    python -m benchmarks.keyint [--keyints 17 65 129] [--qualities 1 3 5 7 8 9] [--model default]
                                [-o benchmarks/results/keyint.json] [--md benchmarks/results/keyint.md]

Each clip (held-out footage, none of it in the training corpus) is coded through the public array API
(``vcodec.compress`` / ``vcodec.decompress``) at every quality and keyframe period; bytes are the whole ``.vcb``.
Per clip and period: the RD points (bpp, PSNR-Y BT.709 limited range, mean over frames), the BD-rate against
``--keyint 17`` (window-independent coding, as format version 1; negative = fewer bytes at equal PSNR-Y), and the
window-start dip: mean PSNR-Y of the frames that start a 17-frame window in ``--keyint 17`` (16 + 16k, the first
frame of the clip excluded) minus the mean of the other frames (0 = no dip), the worst over qualities.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

from benchmarks.bdrate import bd_rate
from benchmarks.clips import ClipSpec, find_file, read_segment
from vcodec.metrics import psnr_y_bt709_limited

# the held-out clips with the most frames outside the training runs (see benchmarks/clips.py, LONG)
CLIPS = (
    ClipSpec("megamind", "Megamind.avi", start=0, frames=129, crop=(152, 144, 416, 240)),
    ClipSpec("carphone", "carphone_pristine.mp4", start=0, frames=120, crop=None),
    ClipSpec("vtest", "vtest.avi", start=68, frames=97, crop=(176, 168, 416, 240)),
    ClipSpec("box", "box.mp4", start=17, frames=97, crop=(112, 120, 416, 240)),
)
WINDOW = 17


def load(spec: ClipSpec) -> np.ndarray:
    rgb, _ = read_segment(find_file(spec.file), spec.start, spec.frames)
    if spec.crop is not None:
        x, y, w, h = spec.crop
        rgb = rgb[:, y:y + h, x:x + w]
    return np.ascontiguousarray(rgb)


def code(tok, frames: np.ndarray, quality: int, keyint: int) -> dict:
    import vcodec

    t0 = time.perf_counter()
    data = vcodec.compress(frames, quality=quality, tokenizer=tok, keyint=keyint)
    out = vcodec.decompress(data, tokenizer=tok)
    per_frame = np.array([psnr_y_bt709_limited(frames[i:i + 1], out[i:i + 1]) for i in range(len(frames))])
    starts = np.zeros(len(frames), bool)
    starts[WINDOW::WINDOW] = True
    return {"quality": quality, "keyint": keyint, "bytes": len(data), "bpp": len(data) * 8 / frames[..., 0].size,
            "psnr_y": float(per_frame.mean()),
            "window_start_dip_db": float(per_frame[starts].mean() - per_frame[~starts][1:].mean()),
            "seconds": time.perf_counter() - t0}


def summarise(rows: list[dict], keyints: list[int]) -> list[dict]:
    out = []
    for clip in dict.fromkeys(r["clip"] for r in rows):
        mine = [r for r in rows if r["clip"] == clip]
        anchor = sorted((r for r in mine if r["keyint"] == keyints[0]), key=lambda r: r["bpp"])
        for k in keyints:
            pts = sorted((r for r in mine if r["keyint"] == k), key=lambda r: r["bpp"])
            bd = bd_rate([r["bpp"] for r in anchor], [r["psnr_y"] for r in anchor],
                         [r["bpp"] for r in pts], [r["psnr_y"] for r in pts])
            out.append({"clip": clip, "keyint": k, "bd_rate_psnr_y": bd.value, "bd_status": bd.status,
                        "bytes_vs_anchor": [r["bytes"] / a["bytes"] - 1 for r, a in zip(pts, anchor)],
                        "worst_window_start_dip_db": float(min(r["window_start_dip_db"] for r in pts))})
    return out


def compare_models(old: dict, new: dict) -> None:
    """Print the BD-rate (PSNR-Y) of ``new``'s model against ``old``'s on the clips and keyints both measured."""
    print(f"BD-rate PSNR-Y of {new['model']} ({new['weights_hash'][:12]}) vs {old['model']} ({old['weights_hash'][:12]})")
    keys = sorted({(r["clip"], r["keyint"]) for r in new["rows"]} & {(r["clip"], r["keyint"]) for r in old["rows"]})
    by_keyint: dict[int, list[float]] = {}
    for clip, k in keys:
        a = sorted((r for r in old["rows"] if (r["clip"], r["keyint"]) == (clip, k)), key=lambda r: r["bpp"])
        b = sorted((r for r in new["rows"] if (r["clip"], r["keyint"]) == (clip, k)), key=lambda r: r["bpp"])
        bd = bd_rate([r["bpp"] for r in a], [r["psnr_y"] for r in a], [r["bpp"] for r in b], [r["psnr_y"] for r in b])
        print(f"  {clip} keyint {k}: {bd.text()}")
        if bd.status == "ok":
            by_keyint.setdefault(k, []).append(bd.value)
    for k, v in sorted(by_keyint.items()):
        print(f"  mean keyint {k}: {np.mean(v):+.1f}% ({len(v)} clips)")


def markdown(rows: list[dict], summary: list[dict], keyints: list[int], command: str) -> str:
    lines = ["# Keyframe periods: one causal stream vs window-independent coding", "",
             f"`{command}`", "", __doc__.split("\n\n", 2)[2].strip(), "",
             "| clip | keyint | BD-rate PSNR-Y vs keyint 17 | bytes vs keyint 17 per quality | worst window-start dip (dB) |",
             "|---|---:|---:|---|---:|"]
    for s in summary:
        bd = f"{s['bd_rate_psnr_y']:+.1f}%" if s["bd_status"] == "ok" else s["bd_status"]
        per_q = " ".join(f"{v:+.0%}" for v in s["bytes_vs_anchor"])
        lines.append(f"| {s['clip']} | {s['keyint']} | {bd} | {per_q} | {s['worst_window_start_dip_db']:+.2f} |")
    for k in keyints[1:]:
        vals = [s["bd_rate_psnr_y"] for s in summary if s["keyint"] == k and s["bd_status"] == "ok"]
        if vals:
            lines.append(f"| **mean** | {k} | **{np.mean(vals):+.1f}%** | | |")
    lines += ["", "RD points (bpp, PSNR-Y):", "", "| clip | quality | " + " | ".join(f"keyint {k}" for k in keyints) + " |",
              "|---|---:|" + "---|" * len(keyints)]
    for clip in dict.fromkeys(r["clip"] for r in rows):
        for q in sorted({r["quality"] for r in rows}):
            cells = []
            for k in keyints:
                r = next(r for r in rows if r["clip"] == clip and r["quality"] == q and r["keyint"] == k)
                cells.append(f"{r['bpp']:.4f} / {r['psnr_y']:.2f}")
            lines.append(f"| {clip} | {q} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def main(argv=None) -> None:
    import torch

    from vcodec.models import load_tokenizer

    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--keyints", type=int, nargs="+", default=[17, 65, 129])
    ap.add_argument("--qualities", type=int, nargs="+", default=[1, 3, 5, 7, 8, 9])
    ap.add_argument("--clips", nargs="+", default=[c.name for c in CLIPS])
    ap.add_argument("--model", default="default")
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("-o", "--output", default="bench-out/keyint.json")
    ap.add_argument("--md", default=None, help="also write the markdown table here")
    ap.add_argument("--report", default=None, metavar="JSON", help="only rewrite the tables from a results JSON")
    ap.add_argument("--compare", nargs=2, default=None, metavar=("OLD.json", "NEW.json"),
                    help="only print the BD-rate (PSNR-Y) of NEW's model against OLD's, per clip and keyint")
    args = ap.parse_args(argv)
    if args.compare:
        compare_models(*(json.loads(Path(p).read_text()) for p in args.compare))
        return
    if args.report:
        saved = json.loads(Path(args.report).read_text())
        keyints = sorted({r["keyint"] for r in saved["rows"]})
        summary = summarise(saved["rows"], keyints)
        saved["summary"] = summary
        Path(args.report).write_text(json.dumps(saved, indent=1) + "\n")
        md = markdown(saved["rows"], summary, keyints, saved["command"].strip())
        Path(args.md or args.report.replace(".json", ".md")).write_text(md)
        print(md)
        return
    if args.threads:
        torch.set_num_threads(args.threads)
    tok = load_tokenizer(args.model)
    rows = []
    for spec in (c for c in CLIPS if c.name in args.clips):
        frames = load(spec)
        for q in args.qualities:
            for k in args.keyints:
                r = {"clip": spec.name, "frames": len(frames), **code(tok, frames, q, k)}
                rows.append(r)
                print(f"{spec.name} q{q} keyint {k}: {r['bpp']:.4f} bpp {r['psnr_y']:.2f} dB "
                      f"(dip {r['window_start_dip_db']:+.2f} dB, {r['seconds']:.0f} s)", flush=True)
    summary = summarise(rows, args.keyints)
    command = "python -m benchmarks.keyint " + " ".join(argv if argv is not None else __import__("sys").argv[1:])
    Path(args.output).parent.mkdir(parents=True, exist_ok=True)
    Path(args.output).write_text(json.dumps({"model": tok.name, "weights_hash": tok.weights_hash, "command": command,
                                             "rows": rows, "summary": summary}, indent=1) + "\n")
    md = markdown(rows, summary, args.keyints, command.strip())
    print(md)
    if args.md:
        Path(args.md).write_text(md)


if __name__ == "__main__":
    main()
