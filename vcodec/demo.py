"""``make demo``: encode and decode the shipped sample clip with the default model; print bpp, PSNR and fps.

    python -m vcodec.demo [--model default] [--quality N] [--device auto] [--input CLIP] [--keep DIR]

The clip (``vcodec/samples/bikes_17f.mp4``, 17 frames of 640x272 at 25 fps, see its README) goes through the
same path as ``vcodec encode`` / ``vcodec decode``: into a ``.vcb``, then back out to a lossless ``.mkv``,
which is compared with the source frames.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import warnings
from pathlib import Path

SAMPLE = Path(__file__).parent / "samples" / "bikes_17f.mp4"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m vcodec.demo", description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", default="default", help="shipped model name or .pt path (default: default)")
    ap.add_argument("--quality", type=int, default=None, help="rate point (default: the model's default quality)")
    ap.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
    ap.add_argument("--input", default=str(SAMPLE), help="clip to code (default: the shipped sample)")
    ap.add_argument("--keep", default=None, metavar="DIR", help="keep the .vcb and decoded .mkv in DIR")
    args = ap.parse_args(argv)

    import vcodec
    from vcodec.errors import VcodecError, VcodecWarning
    from vcodec.io import read_video
    from vcodec.metrics import psnr_rgb, psnr_y_bt709_limited

    warnings.simplefilter("ignore", VcodecWarning)
    out_dir = Path(args.keep) if args.keep else Path(tempfile.mkdtemp(prefix="vcodec-demo."))
    out_dir.mkdir(parents=True, exist_ok=True)
    vcb, mkv = out_dir / "sample.vcb", out_dir / "sample.mkv"
    try:
        enc = vcodec.encode_video(args.input, vcb, model=args.model, quality=args.quality, device=args.device,
                                  overwrite=True)
        dec = vcodec.decode_video(vcb, mkv, model=args.model, device=args.device, overwrite=True)
        src, _ = read_video(args.input)
        out, _ = read_video(mkv)
    except VcodecError as e:
        print(f"vcodec demo: {e}", file=sys.stderr)
        if isinstance(e, vcodec.ModelNotFoundError):
            print("vcodec demo: no trained model is shipped yet: train one (make train) and export it to "
                  "vcodec/weights/default.pt, or pass --model PATH", file=sys.stderr)
        return 1
    finally:
        if not args.keep:
            for p in (vcb, mkv):
                p.unlink(missing_ok=True)
            out_dir.rmdir()

    print(f"vcodec demo: {Path(args.input).name}, {enc.frames} frames {enc.width}x{enc.height} @ {enc.frame_rate} fps")
    print(f"  model    {enc.model} (weights {enc.weights_hash[:12]}), quality {enc.quality} "
          f"({enc.levels} token plane(s)), device {enc.device}")
    print(f"  size     {enc.bytes} bytes = {enc.bpp:.4f} bpp")
    print(f"  quality  PSNR-RGB {psnr_rgb(src, out):.2f} dB, PSNR-Y (BT.709 limited) "
          f"{psnr_y_bt709_limited(src, out):.2f} dB (per-frame means)")
    print(f"  speed    encode {enc.fps:.2f} frames/s, decode {dec.fps:.2f} frames/s "
          f"(model load {enc.load_seconds:.1f} s, not counted)")
    if args.keep:
        print(f"  files    {vcb}, {mkv}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
