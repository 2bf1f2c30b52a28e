"""Tokenizer speed: encode and decode frames/s and peak memory at 640x360 and 1280x720.

    python -m benchmarks.tokenizer_speed [--model default] [--device cpu] [--threads N] [--frames 17] [--clip F]
                                         [--stream [--colour-correct | --no-colour-correct]]
                                         [--precision fp32|bf16]

Default: the networks alone on one keyframe window (``--frames`` frames, the first a latent frame of its own).
``--stream``: the whole codec as ``vcodec encode`` / ``decode`` run it, :func:`vcodec.compress` /
:func:`vcodec.decompress` of one default keyframe period (129 frames: a keyframe window, then windows that continue
it), at the top rate point: networks, token coder and container, no file I/O. ``--precision bf16`` times decoding
with the decoder network in bfloat16 (the encoder is float32 either way, so only decoding is timed).
With ``--stream`` the encoder fits colour corrections as ``vcodec encode`` does by default (each keyframe period's
first chunk, carried on); ``--colour-correct`` fits every chunk (``colour=True``), ``--no-colour-correct`` none.

Each (size, direction) runs in a fresh subprocess so that its peak RSS (ru_maxrss) is its own.
Speed is the median of ``--repeats`` timed runs after one warm-up run; input is real footage
(the shipped sample clip, resized) — content does not change the cost of a CNN, but it is honest.
"""
from __future__ import annotations

import argparse
import json
import platform
import resource
import subprocess
import sys
import time

from vcodec.models import PRECISIONS

SIZES = [(640, 360), (1280, 720)]


def _source_clip(clip: str | None):
    """(T, H, W, 3) uint8: the shipped sample clip (PyAV), or the first held-out segment of a corpus .npz
    (raw or JPEG-packed; for machines without PyAV)."""
    from pathlib import Path

    import numpy as np

    import vcodec
    if clip and clip.endswith(".npz"):
        from vcodec.train.packed import INDEX_PREFIX, PACKED_PREFIX, unpack_array
        with np.load(clip) as z:
            raw = sorted(k for k in z.files if k.startswith("heldout/"))
            if raw:
                return z[raw[0]]
            key = sorted(k for k in z.files if k.startswith(PACKED_PREFIX + "heldout/"))[0][len(PACKED_PREFIX):]
            return unpack_array(z[PACKED_PREFIX + key], z[INDEX_PREFIX + key])
    from vcodec.data.decode import decode_frames
    return decode_frames(Path(clip) if clip else Path(vcodec.__file__).parent / "samples" / "bikes_17f.mp4")[0]


def _frames(width: int, height: int, n: int, clip: str | None = None):
    import numpy as np
    import torch
    import torch.nn.functional as F

    clip = _source_clip(clip)[:n]
    x = torch.from_numpy(clip).permute(0, 3, 1, 2).float()
    x = F.interpolate(x, size=(height, width), mode="bilinear", align_corners=False)
    clip = x.round().clamp(0, 255).to(torch.uint8).permute(0, 2, 3, 1).contiguous().numpy()
    return np.concatenate([clip] * (n // len(clip) + 1))[:n]   # the clip again and again (resized once)


def _worker(args) -> dict:
    import numpy as np
    import torch

    from vcodec.allocator import keep_freed_memory
    from vcodec.models import load_tokenizer
    keep_freed_memory()   # as the vcodec command does at start
    if args.threads:
        torch.set_num_threads(args.threads)
    tok = load_tokenizer(args.model, device=args.device, precision=args.precision)
    frames = _frames(args.width, args.height, args.frames, args.clip)
    # the networks alone: the top rate point's planes; the codec: the quality a stream gets by default
    quality = tok.default_quality if args.stream else tok.rate_points[-1].quality
    levels = tok.quality_point(quality)[1]
    if args.stream:
        import vcodec
        data = vcodec.compress(frames, tokenizer=tok, quality=quality, colour=args.colour)
        run = {"encode": lambda: vcodec.compress(frames, tokenizer=tok, quality=quality, colour=args.colour),
               "decode": lambda: vcodec.decompress(data, tokenizer=tok)}[args.direction]
    else:
        tokens = tok.encode_window(frames, levels)
        run = {"encode": lambda: tok.encode_window(frames, levels),
               "decode": lambda: tok.decode_window(tokens, args.frames, args.height, args.width)}[args.direction]

    def sync():
        if args.device.startswith("cuda"):
            torch.cuda.synchronize()

    times = []
    for _ in range(args.repeats + 1):
        sync()
        t = time.perf_counter()
        run()
        sync()
        times.append(time.perf_counter() - t)
    med = float(np.median(times[1:]))
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    out = {"direction": args.direction, "width": args.width, "height": args.height, "frames": args.frames,
           "fps": args.frames / med, "seconds_median": med, "peak_rss_mb": peak_mb, "levels": levels,
           "quality": quality,
           "threads": torch.get_num_threads(), "device": args.device, "model": tok.name, "precision": args.precision,
           "parameters": tok.parameters, "what": "codec, one keyframe period" if args.stream else "networks, one window",
           **({"colour": _COLOUR_LABELS[args.colour]} if args.stream else {})}
    if args.device.startswith("cuda"):
        out["peak_cuda_mb"] = torch.cuda.max_memory_allocated() / 2 ** 20
    return out


# --stream's colour corrections by the encoder's colour argument (vcodec.correction.fits_colour)
_COLOUR_LABELS = {None: "keyframe chunks (default)", True: "every chunk", False: "none"}


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description="tokenizer encode/decode speed and peak memory")
    ap.add_argument("--model", default="default")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--threads", type=int, default=0)
    ap.add_argument("--frames", type=int, default=None, help="frames per run (default: 17, or the default "
                    "keyframe period with --stream)")
    ap.add_argument("--stream", action="store_true", help="time vcodec.compress/decompress of a keyframe period "
                    "(networks, coder and container) instead of the networks on one window")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--precision", choices=PRECISIONS, default="fp32",
                    help="the decoder network's number format (bf16: decoding only)")
    ap.add_argument("--clip", default=None, help="video file, or corpus .npz (its first held-out segment), to time "
                    "on (default: the shipped sample clip)")
    ap.add_argument("--colour-correct", dest="colour", action="store_const", const=True, default=None,
                    help="with --stream: fit every chunk a colour correction (vcodec encode --colour-correct)")
    ap.add_argument("--no-colour-correct", dest="colour", action="store_const", const=False,
                    help="with --stream: no colour corrections (vcodec encode --no-colour-correct)")
    ap.add_argument("--json", dest="json_out", default=None, help="also write the rows to this file")
    ap.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--width", type=int, default=0, help=argparse.SUPPRESS)
    ap.add_argument("--height", type=int, default=0, help=argparse.SUPPRESS)
    ap.add_argument("--direction", default="encode", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.colour is not None and not args.stream:
        ap.error("--colour-correct / --no-colour-correct time the codec: use them with --stream")
    if args.frames is None:
        from vcodec.stream import DEFAULT_KEYINT
        args.frames = DEFAULT_KEYINT if args.stream else 17
    if args.worker:
        print(json.dumps(_worker(args)))
        return
    rows = []
    for w, h in SIZES:
        for direction in ("decode",) if args.precision == "bf16" else ("encode", "decode"):
            cmd = [sys.executable, "-m", "benchmarks.tokenizer_speed", "--worker", "--model", args.model,
                   "--device", args.device, "--threads", str(args.threads), "--frames", str(args.frames),
                   "--precision", args.precision,
                   "--repeats", str(args.repeats), *(["--clip", args.clip] if args.clip else []),
                   *(["--stream"] if args.stream else []), *({True: ["--colour-correct"], False: ["--no-colour-correct"]}.get(args.colour, [])), "--width", str(w), "--height", str(h), "--direction", direction]
            res = subprocess.run(cmd, capture_output=True, text=True, check=True)
            row = json.loads(res.stdout.strip().splitlines()[-1])
            rows.append(row)
            print(f"{direction:6s} {w}x{h}: {row['fps']:6.1f} frames/s  peak RSS {row['peak_rss_mb']:7.0f} MB  "
                  f"({row['threads']} threads, {row['device']} {row['precision']}, quality {row['quality']}, "
                  f"{row['levels']} planes; {row['what']}, "
                  f"{row['frames']} frames{', colour: ' + row['colour'] if 'colour' in row else ''})", flush=True)
    meta = {"machine": platform.processor() or platform.machine(), "python": platform.python_version()}
    if args.json_out:
        with open(args.json_out, "w") as f:
            json.dump({"meta": meta, "rows": rows}, f, indent=1)


if __name__ == "__main__":
    main()
