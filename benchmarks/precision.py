"""The decoder network in bfloat16 against float32: held-out PSNR-Y per quality, and the networks' decode time.

    python -m benchmarks.precision [--model default] [--data data] [-o benchmarks/results/precision_bf16.json]

Every held-out segment of ``data/manifest.json`` (17 frames, native size) is encoded once per quality (the encoder
is float32 either way, so both decoders get the same tokens) and decoded by the model's decoder in float32 and in
bfloat16 (``vcodec decode --precision bf16``), one after the other, segment by segment. Reported per quality: the
mean PSNR-Y of each (``vcodec.metrics.psnr_y_bt709_limited``), their difference, and the float32 / bfloat16 ratio of
the summed decode times (paired: both decoders run on the same segments in turn). Needs a CPU with native bf16 (or
a GPU: ``--device cuda``).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

from vcodec.metrics import psnr_y_bt709_limited
from vcodec.models import load_tokenizer


def compare(model: str, data: Path, device: str) -> list[dict]:
    from vcodec.train.export import heldout_segments

    exact, fast = load_tokenizer(model, device, "fp32"), load_tokenizer(model, device, "bf16")
    segments = heldout_segments(data)
    rows = []
    for q in range(1, len(exact.rate_points) + 1):
        bits, planes = exact.quality_point(q)
        psnr, seconds = {"fp32": [], "bf16": []}, {"fp32": 0.0, "bf16": 0.0}
        for _, frames in segments:
            tokens = exact.encode_window(frames, planes, bits)
            n, h, w, _ = frames.shape
            for name, tok in (("fp32", exact), ("bf16", fast)):
                t0 = time.perf_counter()
                out = tok.decode_window(tokens, n, h, w, bits)
                seconds[name] += time.perf_counter() - t0
                psnr[name].append(psnr_y_bt709_limited(frames, out))
        row = {"quality": q, "psnr_y_fp32": float(np.mean(psnr["fp32"])), "psnr_y_bf16": float(np.mean(psnr["bf16"])),
               "decode_speedup": seconds["fp32"] / seconds["bf16"]}
        row["delta_db"] = row["psnr_y_bf16"] - row["psnr_y_fp32"]
        print(f"quality {q}: PSNR-Y fp32 {row['psnr_y_fp32']:.3f} dB, bf16 {row['psnr_y_bf16']:.3f} dB "
              f"({row['delta_db']:+.3f}); bf16 decodes {row['decode_speedup']:.2f}x as fast", flush=True)
        rows.append(row)
    return rows


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(prog="python -m benchmarks.precision", description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", default="default")
    ap.add_argument("--data", type=Path, default=Path("data"))
    ap.add_argument("--device", default="cpu")
    ap.add_argument("-o", "--output", default="bench-out/precision_bf16.json")
    args = ap.parse_args(argv)
    command = "python -m benchmarks.precision " + " ".join(argv if argv is not None else sys.argv[1:])
    rows = compare(args.model, args.data, args.device)
    tok = load_tokenizer(args.model, args.device)
    out = Path(args.output)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"command": command, "model": tok.name, "weights_hash": tok.weights_hash,
                               "device": args.device, "rows": rows}, indent=1) + "\n")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
