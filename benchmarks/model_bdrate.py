"""BD-rate of one results file's codec against another's: e.g. a new vcodec model against the committed results of
the model it replaces, clip by clip, on the same suite.

    python -m benchmarks.model_bdrate OLD_RESULTS.json NEW_RESULTS.json [--codec vcodec] [-o OUT.md]

Both files come from ``python -m benchmarks`` on the same suite; rate = file bytes x 8 / pixels (the rows'
``bpp``), BD-rate as in :mod:`benchmarks.bdrate` (negative = the new one needs fewer bits for the same quality).
"""

from __future__ import annotations

import argparse
import json

import numpy as np

from .bdrate import bd_rate

METRICS = (("psnr_yuv", "PSNR-YUV"), ("psnr_y", "PSNR-Y"), ("ms_ssim_db", "MS-SSIM (dB)"), ("vmaf", "VMAF"))


def _rows(results: dict, codec: str) -> dict[str, list[dict]]:
    entry = next((c for c in results["codecs"] if c["name"] == codec), None)
    if entry is None:
        raise SystemExit(f"no codec {codec!r} in the results")
    out: dict[str, list[dict]] = {}
    for r in entry["results"]:
        out.setdefault(r["clip"], []).append(r)
    return out


def table(old: dict, new: dict, codec: str) -> tuple[str, dict]:
    a, b = _rows(old, codec), _rows(new, codec)
    clips = [c for c in a if c in b]
    summary: dict = {}
    lines = ["| metric | " + " | ".join(clips) + " | mean |", "|---|" + "---|" * (len(clips) + 1)]
    for key, label in METRICS:
        cells, values = [], []
        for clip in clips:
            if any(r.get(key) is None for r in a[clip] + b[clip]):
                cells.append("n/a")
                continue
            res = bd_rate([r["bpp"] for r in a[clip]], [r[key] for r in a[clip]],
                          [r["bpp"] for r in b[clip]], [r[key] for r in b[clip]])
            cells.append(res.text())
            if res.status == "ok":
                values.append(res.value)
        mean = float(np.mean(values)) if values else None
        summary[key] = {"mean": mean, "clips": len(values), "of": len(clips)}
        lines.append(f"| {label} | " + " | ".join(cells) + " | "
                     + (f"{mean:+.1f}% ({len(values)}/{len(clips)})" if mean is not None else "no overlap") + " |")
    return "\n".join(lines), summary


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("old")
    ap.add_argument("new")
    ap.add_argument("--codec", default="vcodec")
    ap.add_argument("-o", "--output", default=None, help="also write the table (markdown) here")
    args = ap.parse_args(argv)
    with open(args.old) as f:
        old = json.load(f)
    with open(args.new) as f:
        new = json.load(f)
    text, _ = table(old, new, args.codec)
    print(text)
    if args.output:
        with open(args.output, "w") as f:
            f.write(f"# BD-rate of `{args.codec}` in {args.new} against {args.old}\n\n"
                    "Negative = fewer bits for the same quality; mean over clips whose curves overlap.\n"
                    f"`python -m benchmarks.model_bdrate {args.old} {args.new} --codec {args.codec}`\n\n{text}\n")


if __name__ == "__main__":
    main()
