"""Run a suite: every clip x codec x rate point -> encode, decode, measure; clips in a process pool."""

from __future__ import annotations

import concurrent.futures as cf
import datetime
import multiprocessing
import os
import platform
import shutil
import sys
import tempfile
import traceback
from dataclasses import dataclass, field

import numpy as np

from benchmarks import clips as clips_mod
from benchmarks import metrics
from benchmarks.codecs import INTRA_PERIOD, CodecUnavailable, canonical_name, ffmpeg_exe, ffmpeg_version, make_codec
from benchmarks.measure import measure
from vcodec import colour
from vcodec import metrics as quality

RESULTS_FORMAT = "vcodec-bench/1"
DEFAULT_CODECS = ("vcodec", "x264", "x265", "svtav1", "vvenc")

# The smoke suite only proves the pipeline: three rate points per classical codec and the fastest vvenc preset.
SMOKE_SETTINGS = {
    "x264": {"points": (42, 32, 22)},
    "x265": {"points": (42, 32, 22)},
    "svtav1": {"points": (55, 39, 23)},
    "vvenc": {"points": (42, 32, 22), "preset": "faster"},
}


@dataclass
class BenchConfig:
    out_dir: str
    suite: str = "smoke"
    codecs: tuple[str, ...] = DEFAULT_CODECS
    frames: int | None = None  # cap on frames per clip
    device: str = "cpu"
    model: object = None  # vcodec model name / path / Tokenizer
    workers: int | None = None  # default: min(clips, cores)
    keep_streams: bool = False
    force: bool = False
    codec_options: dict = field(default_factory=dict)  # {codec: {kwarg: value}} overrides


def codec_kwargs(name: str, suite_name: str, config: BenchConfig) -> dict:
    kwargs: dict = {}
    if suite_name == "smoke":
        kwargs.update(SMOKE_SETTINGS.get(name, {}))
    if name == "vcodec":
        kwargs.update(model=config.model, device=config.device)
    kwargs.update(config.codec_options.get(name, {}))
    return kwargs


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def environment(workers: int) -> dict:
    import av
    import bjontegaard

    env = {
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "cpu": _cpu_model(),
        "cores": os.cpu_count(),
        "workers": workers,
        "threads_per_codec": 1,
        "numpy": np.__version__,
        "pyav": av.__version__,
        "ffmpeg_binary": ffmpeg_version(ffmpeg_exe()),
        "bjontegaard": bjontegaard.__version__,
    }
    try:
        import torch

        env["torch"] = torch.__version__
    except ImportError:
        pass
    return env


def _worker_init() -> None:
    # one thread per codec run: clips are parallel across processes, and speed figures are single-thread figures
    for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        os.environ[var] = "1"


def _set_torch_threads() -> None:
    if "torch" in sys.modules:
        sys.modules["torch"].set_num_threads(1)


def evaluate(clip, decoded, want_lpips: bool, want_vmaf: bool, ffmpeg: str) -> dict:
    """All quality metrics of one decoded clip against the reference (PSNR and MS-SSIM: `vcodec.metrics`)."""
    if decoded.yuv is None:
        dec_yuv = colour.rgb_to_yuv420(decoded.rgb)
        dec_rgb = decoded.rgb
    else:
        dec_yuv = decoded.yuv
        dec_rgb = decoded.rgb if decoded.rgb is not None else colour.yuv420_to_rgb(decoded.yuv)
    row = quality.psnr_yuv_611(clip.yuv, dec_yuv)
    row["psnr_rgb"] = quality.psnr_rgb(clip.rgb, dec_rgb)
    value, scales = quality.ms_ssim_rgb(clip.rgb, dec_rgb)
    row.update(ms_ssim=value, ms_ssim_db=quality.ms_ssim_db(value), ms_ssim_scales=scales)
    row["vmaf"] = metrics.vmaf(clip.yuv, dec_yuv, ffmpeg)[0] if want_vmaf else None
    row["lpips"] = metrics.lpips_video(clip.rgb, dec_rgb) if want_lpips else None
    return row


def run_clip(spec, codec_specs, frames, want_lpips, want_vmaf, streams_dir) -> dict:
    """Worker: one clip through every codec and rate point. Returns {"rows": [...], "errors": [...], "clip": {...}}."""
    _worker_init()
    clip = clips_mod.get_clip(spec, frames)
    ffmpeg = ffmpeg_exe()
    rows, errors = [], []
    tmp = tempfile.mkdtemp(prefix=f"bench-{spec.name}-")
    try:
        for name, kwargs in codec_specs:
            codec = make_codec(name, **kwargs)
            try:
                codec.check()
                points = codec.rate_points()
            except Exception as e:  # unavailable in this worker although the parent saw it: record, go on
                errors.append({"codec": name, "clip": clip.name, "point": None, "error": f"{type(e).__name__}: {e}"})
                continue
            _set_torch_threads()
            for point in points:
                label = codec.point_label(point)
                where = streams_dir or tmp
                os.makedirs(os.path.join(where, clip.name), exist_ok=True)
                path = os.path.join(where, clip.name, f"{name}-{label}{codec.extension}")
                try:
                    with measure() as enc_m:
                        encoded = codec.encode(clip, point, path)
                    with measure() as dec_m:
                        decoded = codec.decode(encoded, clip)
                    payload = codec.payload_bytes(encoded)
                    quality = evaluate(clip, decoded, want_lpips, want_vmaf, ffmpeg)
                except Exception as e:
                    errors.append(
                        {"codec": name, "clip": clip.name, "point": label, "error": f"{type(e).__name__}: {e}",
                         "traceback": traceback.format_exc(limit=4)}
                    )  # fmt: skip
                    continue
                finally:
                    if not streams_dir and os.path.exists(path):
                        os.remove(path)
                pixels = clip.num_frames * clip.width * clip.height
                rows.append(
                    {
                        "codec": name,
                        "clip": clip.name,
                        "point": point,
                        "frames": clip.num_frames,
                        "width": clip.width,
                        "height": clip.height,
                        "fps": clip.fps,
                        "bytes": encoded.num_bytes,
                        "payload_bytes": payload,
                        "overhead_bytes": encoded.num_bytes - payload,
                        "bpp": encoded.num_bytes * 8 / pixels,
                        "bpp_payload": payload * 8 / pixels,
                        **quality,
                        "encode_seconds": enc_m.seconds,
                        "decode_seconds": dec_m.seconds,
                        "encode_fps": clip.num_frames / enc_m.seconds if enc_m.seconds > 0 else None,
                        "decode_fps": clip.num_frames / dec_m.seconds if dec_m.seconds > 0 else None,
                        "encode_peak_mib": enc_m.peak_mib,
                        "decode_peak_mib": dec_m.peak_mib,
                        "encode_child_peak_mib": enc_m.child_peak_mib or None,
                        "memory_method": enc_m.method,
                        "info": encoded.info,
                    }
                )
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return {"rows": rows, "errors": errors, "clip": {"name": clip.name, **clip.source, "fps": clip.fps}}


def run(config: BenchConfig, progress=print) -> dict:
    """Run the benchmark described by `config`, write every output into config.out_dir, return the results dict."""
    from benchmarks import report

    suite_name, specs = clips_mod.resolve_suite(config.suite)
    out = config.out_dir
    if os.path.exists(os.path.join(out, "results.json")) and not config.force:
        raise FileExistsError(f"{out}/results.json exists; pass --force to overwrite")
    os.makedirs(out, exist_ok=True)

    # which codecs can run here, with their descriptions (tool versions) -- skipped ones say why
    names = []
    for n in config.codecs:
        c = canonical_name(n)
        if c not in names:
            names.append(c)
    available, skipped, descriptions = [], [], {}
    for name in names:
        kwargs = codec_kwargs(name, suite_name, config)
        codec = make_codec(name, **kwargs)
        try:
            codec.check()
            descriptions[name] = codec.description()
        except CodecUnavailable as e:
            skipped.append({"codec": name, "reason": str(e)})
            progress(f"skipping {name}: {e}")
            continue
        if name == "vcodec" and not isinstance(kwargs.get("model"), (str, os.PathLike, type(None))):
            kwargs["model"] = codec.tokenizer  # pass the loaded tokenizer object to the workers
        available.append((name, kwargs))

    ffmpeg = ffmpeg_exe()
    vmaf_reason = metrics.vmaf_status(ffmpeg)
    lpips_reason = metrics.lpips_status()
    if lpips_reason:
        progress(f"LPIPS unavailable: {lpips_reason}")
    if vmaf_reason:
        progress(f"VMAF unavailable: {vmaf_reason}")

    workers = config.workers or max(1, min(len(specs), os.cpu_count() or 1))
    streams_dir = os.path.join(out, "streams") if config.keep_streams else None
    args = [(spec, available, config.frames, lpips_reason is None, vmaf_reason is None, streams_dir) for spec in specs]
    progress(f"suite {suite_name}: {len(specs)} clips x {len(available)} codecs on {workers} worker(s)")
    results_by_clip = {}
    if workers == 1:
        for spec, a in zip(specs, args):
            results_by_clip[spec.name] = run_clip(*a)
            progress(f"  {spec.name}: done")
    else:
        ctx = multiprocessing.get_context("spawn")
        with cf.ProcessPoolExecutor(max_workers=workers, mp_context=ctx, initializer=_worker_init) as pool:
            futures = {pool.submit(run_clip, *a): spec.name for spec, a in zip(specs, args)}
            for fut in cf.as_completed(futures):
                name = futures[fut]
                try:
                    results_by_clip[name] = fut.result()
                except Exception as e:  # a clip that cannot load: say so, keep the others
                    results_by_clip[name] = {
                        "rows": [],
                        "errors": [{"codec": None, "clip": name, "point": None, "error": f"{type(e).__name__}: {e}"}],
                        "clip": {"name": name},
                    }
                progress(f"  {name}: done")

    clip_order = [s.name for s in specs]
    codec_entries = []
    for name, _ in available:
        rows = [r for c in clip_order for r in results_by_clip[c]["rows"] if r["codec"] == name]
        codec_entries.append({"name": name, "description": descriptions[name], "results": rows})
    errors = [e for c in clip_order for e in results_by_clip[c]["errors"]]
    for e in errors:
        progress(f"error: {e['codec']} {e['clip']} {e['point']}: {e['error']}")

    results = {
        "format": RESULTS_FORMAT,
        "suite": suite_name,
        "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "clips": [results_by_clip[c]["clip"] for c in clip_order],
        "conditions": conditions(),
        "metrics": metric_info(vmaf_reason, lpips_reason),
        "environment": environment(workers),
        "codecs": codec_entries,
        "skipped": skipped,
        "errors": errors,
    }
    report.write_all(results, out)
    return results


def conditions() -> dict:
    return {
        "source": "uint8 RGB clip; classical codecs get its 8-bit YUV 4:2:0 (" + colour.MATRIX_NAME + ")",
        "classical_bit_depth": "coded at 10 bits (8-bit source << 2), decoded and rounded back to 8 bits",
        "intra_period_frames": INTRA_PERIOD,
        "gop": "closed GOPs (IDR/key frame every intra period), no scene-cut detection, random-access mini-GOPs",
        "rate_control": "constant QP, PSNR tuning, no adaptive quantisation (vvenc qpa=0, SVT-AV1 aq-mode=0)",
        "threads": 1,
        "rate": "bpp = file bytes * 8 / (frames * width * height); overhead_bytes = file bytes - coded payload",
        "streams": "raw elementary streams (Annex B / AV1 OBU); vcodec: its .vcb bytes",
    }


def metric_info(vmaf_reason, lpips_reason) -> dict:
    return {
        "psnr_y": {
            "available": True,
            "definition": "per-frame PSNR of 8-bit BT.709 limited-range Y (peak 255, cap 100 dB), mean over frames"
            " (vcodec.metrics.psnr_y_bt709_limited / psnr_yuv_611)",
        },
        "psnr_yuv": {"available": True, "definition": "(6 PSNR-Y + PSNR-U + PSNR-V) / 8 of per-frame means"},
        "psnr_rgb": {"available": True, "definition": "per-frame PSNR over R, G, B, mean over frames"},
        "ms_ssim": {
            "available": True,
            "definition": "RGB MS-SSIM (channels averaged), 5 scales or fewer on small frames;"
            " ms_ssim_db = -10 log10(1 - MS-SSIM) (vcodec.metrics.ms_ssim_rgb)",
        },
        "vmaf": {
            "available": vmaf_reason is None,
            "reason": vmaf_reason,
            "definition": f"libvmaf {metrics.VMAF_MODEL}, mean over frames",
        },
        "lpips": {
            "available": lpips_reason is None,
            "reason": lpips_reason,
            "definition": "LPIPS v0.1 AlexNet, mean over frames",
        },
    }
