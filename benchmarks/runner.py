"""Run a suite: every clip x codec x rate point is one job -> encode, decode, measure.

Jobs run in a process pool (`--jobs N`), or one shard of them (`--shard i/n`, merged by `merge`); each finished job
is cached on disk under a key of the clip's content hash, the codec's exact settings and versions at that rate point
and the metric set, so an interrupted or extended run recomputes nothing it already has (`--force` recomputes).
"""

from __future__ import annotations

import concurrent.futures as cf
import datetime
import hashlib
import json
import multiprocessing
import os
import platform
import shutil
import sys
import tempfile
import time
import traceback
from dataclasses import dataclass, field

import numpy as np

from benchmarks import clips as clips_mod
from benchmarks import conditions as conditions_mod
from benchmarks import metrics
from benchmarks.codec_base import without_rate_points
from benchmarks.codecs import CodecUnavailable, canonical_name, ffmpeg_exe, ffmpeg_version, make_codec
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
    jobs: int | None = None  # worker processes; default: min(jobs to run, cores)
    keep_streams: bool = False
    force: bool = False  # recompute every job (ignore the cache) and overwrite results.json
    resume: bool = False  # reuse OUT/results.json's folder: cached jobs are read, the rest computed
    codec_options: dict = field(default_factory=dict)  # {codec: {kwarg: value}} overrides
    conditions: str = "default"  # benchmarks.conditions.PRESETS
    shard: object = None  # "i/n" or (i, n): run only jobs with index % n == i
    cache_dir: str | None = None  # default OUT/cache
    raw: tuple | None = None  # raw .yuv (size, fps, pix_fmt) overrides
    anchors: tuple[str, ...] | None = None  # BD-rate anchors; default report.BD_ANCHORS
    command_line: list | None = None  # the command that started the run (recorded in results.json)
    workers: int | None = None  # the former name of `jobs` (used when `jobs` is not given)
    plots: bool = True  # write rd_<metric>.png (python -m benchmarks.report draws them later)
    dask: str | None = None  # run the jobs on a Dask cluster: scheduler address or "local[:N]" ([dist] extra)
    seed_from: str | None = None  # a results.json whose rows of the same jobs fill the cache (see seed_cache)


def codec_kwargs(name: str, suite_name: str, config: BenchConfig, cond=None) -> dict:
    kwargs: dict = dict((cond or conditions_mod.get(config.conditions)).codec_kwargs(name))
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


def _planes_at(yuv, bit_depth: int):
    """8-bit planes -> `bit_depth` bits (left shift), for measuring vcodec's 8-bit output against a deeper source."""
    if bit_depth == 8 or yuv.y.dtype != np.uint8:
        return yuv
    return colour.Yuv420(*(colour.to_high_bit_depth(p, bit_depth) for p in yuv.planes()))


def evaluate(clip, decoded, want_lpips: bool, want_vmaf: bool, ffmpeg: str) -> dict:
    """All quality metrics of one decoded clip against the reference (PSNR and MS-SSIM: `vcodec.metrics`), at the
    clip's bit depth (PSNR peak 1023 for a 10-bit source). Adds `per_frame`: {metric: [value per frame]}."""
    bd = clip.bit_depth
    if decoded.yuv is None:  # vcodec: 8-bit RGB out
        dec_rgb8 = decoded.rgb
        dec_yuv = colour.rgb_to_yuv420(decoded.rgb, bd)
        dec_rgb = decoded.rgb if bd == 8 else colour.rgb_bit_depth(decoded.rgb, bd)
    else:  # classical: planes at the clip's bit depth
        dec_yuv = decoded.yuv
        dec_rgb = decoded.rgb if decoded.rgb is not None else colour.yuv420_to_rgb(decoded.yuv, bd)
        dec_rgb8 = dec_rgb if bd == 8 else colour.rgb_bit_depth(dec_rgb, bd)
    ref_rgb = clip.reference_rgb()
    frames = {k: v.tolist() for k, v in quality.psnr_yuv_frames(clip.yuv, dec_yuv, bd).items()}
    row = quality.psnr_yuv_611(clip.yuv, dec_yuv, bd)
    frames["psnr_yuv"] = [(6 * y + u + v) / 8 for y, u, v in zip(frames["psnr_y"], frames["psnr_u"], frames["psnr_v"])]
    frames["psnr_rgb"] = quality.psnr_frames(ref_rgb, dec_rgb, bd).tolist()
    row["psnr_rgb"] = quality.psnr_rgb(ref_rgb, dec_rgb, bit_depth=bd)
    per_frame_ssim, scales = quality.ms_ssim_rgb_frames(ref_rgb, dec_rgb, bit_depth=bd)
    value = float(per_frame_ssim.mean())
    frames["ms_ssim"] = per_frame_ssim.tolist()
    row.update(ms_ssim=value, ms_ssim_db=quality.ms_ssim_db(value), ms_ssim_scales=scales)
    if want_vmaf:
        row["vmaf"], frames["vmaf"], _ = metrics.vmaf_frames(clip.yuv, dec_yuv, ffmpeg, bit_depth=bd)
    else:
        row["vmaf"] = None
    row["lpips"] = metrics.lpips_video(clip.rgb, dec_rgb8) if want_lpips else None
    row["per_frame"] = frames
    return row


# ------------------------------------------------------------------ jobs: one (clip, codec, rate point) each
@dataclass(frozen=True)
class Job:
    index: int  # position in the full plan (clip-major, then codec, then rate point): the order of the rows
    clip: int  # index into the suite's clip specs
    codec: str
    point: object
    key: str  # cache key: sha256 of the clip content, the codec's settings at this point and the metric set


# Worker state, set once per process by `_init_worker` (pickled once, not per job).
_STATE: dict = {}


def _init_worker(specs, codec_kwargs_by_name, frames, want_lpips, want_vmaf, streams_dir) -> None:
    _worker_init()
    _STATE.clear()
    _STATE.update(specs=specs, kwargs=codec_kwargs_by_name, frames=frames, lpips=want_lpips, vmaf=want_vmaf,
                  streams=streams_dir, clips={}, codecs={})  # fmt: skip


def _clip(i: int):
    cache = _STATE["clips"]
    if i not in cache:
        if len(cache) >= 2:  # at most two clips in memory per process
            cache.pop(next(iter(cache)))
        cache[i] = clips_mod.get_clip(_STATE["specs"][i], _STATE["frames"])
    return cache[i]


def _codec(name: str):
    if name not in _STATE["codecs"]:
        codec = make_codec(name, **_STATE["kwargs"][name])
        codec.check()
        _STATE["codecs"][name] = codec
    return _STATE["codecs"][name]


def run_job(job: Job) -> dict:
    """Worker: encode, decode and measure one job. Returns {"row": ...} or {"error": ...}."""
    try:
        clip = _clip(job.clip)
        codec = _codec(job.codec)
    except Exception as e:  # a clip that cannot load, a codec unavailable in this worker: record, go on
        name = _STATE["specs"][job.clip].name
        return {"error": {"codec": job.codec, "clip": name, "point": None, "error": f"{type(e).__name__}: {e}"}}
    _set_torch_threads()
    label = codec.point_label(job.point)
    tmp = None
    where = _STATE["streams"]
    if not where:
        tmp = where = tempfile.mkdtemp(prefix=f"bench-{clip.name}-")
    os.makedirs(os.path.join(where, clip.name), exist_ok=True)
    path = os.path.join(where, clip.name, f"{job.codec}-{label}{codec.extension}")
    try:
        with measure() as enc_m:
            encoded = codec.encode(clip, job.point, path)
        with measure() as dec_m:
            decoded = codec.decode(encoded, clip)
        payload = codec.payload_bytes(encoded)
        measured = evaluate(clip, decoded, _STATE["lpips"], _STATE["vmaf"], ffmpeg_exe())
    except Exception as e:
        return {"error": {"codec": job.codec, "clip": clip.name, "point": label, "error": f"{type(e).__name__}: {e}",
                          "traceback": traceback.format_exc(limit=4)}}  # fmt: skip
    finally:
        if tmp:
            shutil.rmtree(tmp, ignore_errors=True)
    pixels = clip.num_frames * clip.width * clip.height
    n = clip.num_frames
    row = {
        "codec": job.codec,
        "clip": clip.name,
        "class": clip.klass,
        "point": job.point,
        "frames": n,
        "width": clip.width,
        "height": clip.height,
        "fps": clip.fps,
        "bit_depth": clip.bit_depth,
        "bytes": encoded.num_bytes,
        "payload_bytes": payload,
        "overhead_bytes": encoded.num_bytes - payload,
        "bpp": encoded.num_bytes * 8 / pixels,
        "bpp_payload": payload * 8 / pixels,
        "kbps": encoded.num_bytes * 8 * clip.fps / n / 1000,
        **measured,
        "encode_seconds": enc_m.seconds,
        "decode_seconds": dec_m.seconds,
        "encode_ms_per_frame": 1000 * enc_m.seconds / n,
        "decode_ms_per_frame": 1000 * dec_m.seconds / n,
        "encode_fps": n / enc_m.seconds if enc_m.seconds > 0 else None,
        "decode_fps": n / dec_m.seconds if dec_m.seconds > 0 else None,
        "encode_peak_mib": enc_m.peak_mib,
        "decode_peak_mib": dec_m.peak_mib,
        "encode_child_peak_mib": enc_m.child_peak_mib or None,
        "memory_method": enc_m.method,
        "info": encoded.info,
    }
    row["command"] = codec.command_line(job.point)
    return {"row": row}


def run_clip(spec, codec_specs, frames, want_lpips, want_vmaf, streams_dir) -> dict:
    """One clip through every codec and rate point in this process, uncached (the former per-clip worker, which
    benchmarks/diagnostics.py uses). `codec_specs`: [(codec name, constructor kwargs)]. Returns
    {"rows": [...], "errors": [...], "clip": {...}}."""
    _init_worker((spec,), dict(codec_specs), frames, want_lpips, want_vmaf, streams_dir)
    rows, errors = [], []
    for name, _ in codec_specs:
        try:
            points = _codec(name).rate_points()
        except Exception as e:
            errors.append({"codec": name, "clip": spec.name, "point": None, "error": f"{type(e).__name__}: {e}"})
            continue
        for point in points:
            out = run_job(Job(0, 0, name, point, ""))
            if "row" in out:
                rows.append(out["row"])
            else:
                errors.append(out["error"])
    clip = _clip(0)
    return {"rows": rows, "errors": errors, "clip": {"name": clip.name, **clip.source, "fps": clip.fps}}


# ------------------------------------------------------------------ the result cache
CACHE_FORMAT = "vcodec-bench-cache/1"
# fields that measure the machine, not the codec: they differ between runs of the same job
TIMING_FIELDS = (
    "encode_seconds", "decode_seconds", "encode_ms_per_frame", "decode_ms_per_frame", "encode_fps", "decode_fps",
    "encode_peak_mib", "decode_peak_mib", "encode_child_peak_mib", "memory_method",
)  # fmt: skip


def job_key(clip_sha: str, codec: str, settings: dict, metric_set: dict) -> str:
    material = {"format": CACHE_FORMAT, "clip": clip_sha, "codec": codec, "settings": settings, "metrics": metric_set}
    return hashlib.sha256(json.dumps(material, sort_keys=True, default=str).encode()).hexdigest()


def _cache_path(cache_dir: str, key: str) -> str:
    return os.path.join(cache_dir, key[:2], key + ".json")


def cache_load(cache_dir: str, key: str) -> dict | None:
    try:
        with open(_cache_path(cache_dir, key)) as f:
            entry = json.load(f)
    except (OSError, ValueError):
        return None
    return entry.get("row") if entry.get("key") == key else None


def cache_store(cache_dir: str, key: str, row: dict, material: dict) -> None:
    """Atomically (write + rename), so that concurrent shards sharing a cache never see half a file."""
    path = _cache_path(cache_dir, key)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=os.path.dirname(path), suffix=".part")
    with os.fdopen(fd, "w") as f:
        json.dump({"key": key, "material": material, "row": row}, f, sort_keys=True, default=_json_default)
    os.replace(tmp, path)


def _metric_definitions(info: dict) -> dict:
    """What a results file's "metrics" block says each metric is (availability and definition, not the reason)."""
    return {name: (m.get("available"), m.get("definition")) for name, m in info.items()}


def load_seed(path: str) -> dict:
    """An earlier results.json for :func:`seed_cache`, checked to be one (ValueError otherwise)."""
    try:
        with open(path) as f:
            seed = json.load(f)
    except ValueError as e:
        raise ValueError(f"--seed-from {path}: not JSON ({e})") from None
    if not isinstance(seed, dict) or seed.get("format") != RESULTS_FORMAT or not all(
            isinstance(seed.get(k), t) for k, t in (("codecs", list), ("clips", list), ("metrics", dict))):
        raise ValueError(f"--seed-from {path}: not a benchmark results.json ({RESULTS_FORMAT})")
    return seed


def _as_json(value):
    """``value`` as it reads back from a results file (tuples become lists)."""
    return json.loads(json.dumps(value, default=str))


def seed_cache(seed: dict, source: str, jobs: list, specs, clip_infos: list, codecs: dict, descriptions: dict,
               cache_dir: str) -> int:
    """Store in the cache, for each of ``jobs`` not cached yet, the row that an earlier run (``seed``, from
    :func:`load_seed`; ``source`` names it in the cache) holds for the same clip content (sha256), codec build and
    settings (its description, rate points aside; ``descriptions``: this run's, by codec) and rate point (the row's
    command line, where the codec gives one): e.g. a committed run's anchors, so that only a changed codec (a new
    vcodec model) is recomputed. The caller checks that both runs define the metrics alike. Returns the number of
    rows stored."""
    shas = {c.get("name"): c.get("sha256") for c in seed["clips"]}
    by_codec = {c.get("name"): c for c in seed["codecs"]
                if c.get("name") in descriptions and without_rate_points(c.get("description") or {})
                == _as_json(without_rate_points(descriptions[c.get("name")]))}   # the same build and settings
    stored = 0
    for job in jobs:
        name, sha, codec = specs[job.clip].name, clip_infos[job.clip].get("sha256"), codecs[job.codec]
        entry = by_codec.get(job.codec)
        if entry is None or shas.get(name) != sha or cache_load(cache_dir, job.key) is not None:
            continue
        point = _as_json(job.point)
        row = next((r for r in entry.get("results", []) if r.get("clip") == name and r.get("point") == point
                    and r.get("command") == codec.command_line(job.point)), None)
        if row is not None:
            material = {"clip": sha, "codec": job.codec, "point": job.point, "seeded_from": source}
            cache_store(cache_dir, job.key, row, material)
            stored += 1
    return stored


def _json_default(o):
    if isinstance(o, np.generic):
        return o.item()
    raise TypeError(f"not JSON-able: {type(o)}")


def comparable(results: dict) -> list[dict]:
    """The rows without their timing and memory fields: what two runs of the same plan must agree on exactly."""
    return [
        {k: v for k, v in r.items() if k not in TIMING_FIELDS}
        for c in results["codecs"]
        for r in c["results"]
    ]


# ------------------------------------------------------------------ planning and running
CODEC_COST = {"vvenc": 8, "svtav1": 4, "x265": 2, "vcodec": 2, "x264": 1}  # rough relative encode + decode time


def _pixels(info: dict) -> int:
    crop = info.get("crop") or [0, 0, 1, 1]
    return int(info.get("frames") or 1) * int(crop[2]) * int(crop[3])


def parse_shard(text: str | None) -> tuple[int, int] | None:
    """'i/n' (0 <= i < n) -> (i, n)."""
    if not text:
        return None
    try:
        i, n = (int(x) for x in text.split("/"))
    except ValueError:
        raise ValueError(f"--shard must be I/N (e.g. 0/4), got {text!r}") from None
    if not (n >= 1 and 0 <= i < n):
        raise ValueError(f"--shard {text}: need 0 <= I < N")
    return i, n


def _dask_job(token: str, init_args: tuple, job: Job) -> dict:
    """A job on a Dask worker: the worker state is set up once per run (token) in each worker process."""
    if _STATE.get("token") != token:
        _init_worker(*init_args)
        _STATE["token"] = token
    return run_job(job)


def _execute_dask(jobs: list[Job], init_args: tuple, scheduler: str, on_done) -> int:
    """Run the jobs on a Dask cluster: `scheduler` is an address (tcp://host:8786) or 'local[:N]' for a LocalCluster
    of N single-threaded worker processes. Returns the number of workers. Needs the `[dist]` extra."""
    import uuid

    try:
        from distributed import Client, LocalCluster, as_completed
    except ImportError as e:
        raise ValueError("--dask needs the [dist] extra: pip install -e '.[dist]' (dask[distributed])") from e
    cluster = None
    if scheduler == "local" or scheduler.startswith("local:"):
        n = int(scheduler.split(":", 1)[1]) if ":" in scheduler else (os.cpu_count() or 1)
        cluster = LocalCluster(n_workers=n, threads_per_worker=1, processes=True, dashboard_address=None)
        client = Client(cluster)
    else:
        client = Client(scheduler)
    try:
        workers = len(client.scheduler_info()["workers"])
        args = client.scatter(init_args, broadcast=True)
        token = uuid.uuid4().hex
        futures = {client.submit(_dask_job, token, args, job, pure=False): job for job in jobs}
        for fut in as_completed(list(futures)):
            job = futures[fut]
            try:
                out = fut.result()
            except Exception as e:
                out = {"error": {"codec": job.codec, "clip": None, "point": str(job.point),
                                 "error": f"{type(e).__name__}: {e}"}}  # fmt: skip
            on_done(job, out)
        return workers
    finally:
        client.close()
        if cluster is not None:
            cluster.close()


def _execute(jobs: list[Job], init_args: tuple, workers: int, on_done) -> None:
    if workers <= 1 or len(jobs) <= 1:
        _init_worker(*init_args)
        for job in jobs:
            on_done(job, run_job(job))
        return
    ctx = multiprocessing.get_context("spawn")
    with cf.ProcessPoolExecutor(max_workers=workers, mp_context=ctx, initializer=_init_worker,
                                initargs=init_args) as pool:  # fmt: skip
        futures = {pool.submit(run_job, job): job for job in jobs}
        for fut in cf.as_completed(futures):
            job = futures[fut]
            try:
                out = fut.result()
            except Exception as e:  # the worker died
                out = {"error": {"codec": job.codec, "clip": None, "point": str(job.point),
                                 "error": f"{type(e).__name__}: {e}"}}  # fmt: skip
            on_done(job, out)


def run(config: BenchConfig, progress=print) -> dict:
    """Run the benchmark described by `config` (or its shard), write every output into config.out_dir, return the
    results dict. Finished jobs come from the cache (config.cache_dir, default OUT/cache) unless config.force."""
    from benchmarks import report

    t_start = time.perf_counter()
    cond = conditions_mod.get(config.conditions)
    suite_name, specs = clips_mod.resolve_suite(config.suite, config.frames, config.raw)
    out = config.out_dir
    shard = parse_shard(config.shard) if isinstance(config.shard, str) else config.shard
    if os.path.exists(os.path.join(out, "results.json")) and not config.force and not config.resume:
        raise FileExistsError(f"{out}/results.json exists; pass --resume to extend it or --force to recompute it")
    seed = load_seed(config.seed_from) if config.seed_from and not config.force else None  # checked before any work
    os.makedirs(out, exist_ok=True)
    cache_dir = config.cache_dir or os.path.join(out, "cache")

    # which codecs can run here, with their descriptions (tool versions) -- skipped ones say why
    names = []
    for n in config.codecs:
        c = canonical_name(n)
        if c not in names:
            names.append(c)
    available, skipped, descriptions, codecs = [], [], {}, {}
    for name in names:
        kwargs = codec_kwargs(name, suite_name, config, cond)
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
        codecs[name] = codec

    ffmpeg = ffmpeg_exe()
    vmaf_reason = metrics.vmaf_status(ffmpeg)
    lpips_reason = metrics.lpips_status()
    if lpips_reason:
        progress(f"LPIPS unavailable: {lpips_reason}")
    if vmaf_reason:
        progress(f"VMAF unavailable: {vmaf_reason}")
    metric_set = {"vmaf": None if vmaf_reason else metrics.VMAF_MODEL, "lpips": lpips_reason is None}

    # the plan: every (clip, codec, point), keyed by the clip's content hash and the codec's settings at the point
    clip_infos, jobs = [], []
    for ci, spec in enumerate(specs):
        try:
            clip = clips_mod.get_clip(spec, config.frames)
        except Exception as e:
            if isinstance(e, clips_mod.TrainingOverlapError):
                raise
            clip_infos.append({"name": spec.name, "error": f"{type(e).__name__}: {e}"})
            continue
        sha = clips_mod.clip_hash(clip)
        clip_infos.append({"name": clip.name, **clip.source, "fps": clip.fps, "class": clip.klass,
                           "bit_depth": clip.bit_depth, "sha256": sha})  # fmt: skip
        del clip
        for name, _ in available:
            for point in codecs[name].rate_points():
                key = job_key(sha, name, codecs[name].settings(point), metric_set)
                jobs.append(Job(len(jobs), ci, name, point, key))
    plan = [[specs[j.clip].name, j.codec, codecs[j.codec].point_label(j.point)] for j in jobs]
    mine = [j for j in jobs if shard is None or j.index % shard[1] == shard[0]]

    if seed is not None:
        if _metric_definitions(seed["metrics"]) != _metric_definitions(metric_info(vmaf_reason, lpips_reason)):
            progress(f"not seeded from {config.seed_from}: it defines or measures the metrics otherwise")
        else:
            seeded = seed_cache(seed, config.seed_from, mine, specs, clip_infos, codecs, descriptions, cache_dir)
            progress(f"seeded the cache with {seeded} row(s) of {config.seed_from}")
    rows: dict[int, dict] = {}
    errors: list[tuple[int, dict]] = [
        (-1, {"codec": None, "clip": c["name"], "point": None, "error": c["error"]}) for c in clip_infos if "error" in c
    ]
    todo = []
    for j in mine:
        row = None if config.force else cache_load(cache_dir, j.key)
        if row is None:
            todo.append(j)
        else:
            rows[j.index] = {**row, "clip": specs[j.clip].name}
    workers = config.jobs or config.workers or max(1, min(len(todo), os.cpu_count() or 1))
    workers = max(1, min(workers, len(todo) or 1))
    progress(
        f"suite {suite_name}, conditions {cond.name}: {len(specs)} clips x {len(available)} codecs = {len(jobs)} jobs"
        + (f", shard {shard[0]}/{shard[1]}: {len(mine)}" if shard else "")
        + f"; {len(mine) - len(todo)} cached, {len(todo)} to run on {workers} worker(s)"
    )
    # longest first (pixels x a rough per-codec cost), so that no worker is left with one long job at the end; the
    # rows are ordered by the plan, not by completion
    todo.sort(key=lambda j: -_pixels(clip_infos[j.clip]) * CODEC_COST.get(j.codec, 1))
    streams_dir = os.path.join(out, "streams") if config.keep_streams else None
    init_args = (specs, dict(available), config.frames, lpips_reason is None, vmaf_reason is None, streams_dir)
    done = 0

    def on_done(job: Job, result: dict) -> None:
        nonlocal done
        done += 1
        if "row" in result:
            material = {"clip": clip_infos[job.clip].get("sha256"), "codec": job.codec, "point": job.point}
            cache_store(cache_dir, job.key, result["row"], material)
            rows[job.index] = result["row"]
        else:
            errors.append((job.index, result["error"]))
        progress(f"  [{done}/{len(todo)}] {plan[job.index][0]} {job.codec} {plan[job.index][2]}"
                 + ("" if "row" in result else ": error"))  # fmt: skip

    if config.dask and todo:
        workers = _execute_dask(todo, init_args, config.dask, on_done)
    else:
        _execute(todo, init_args, workers, on_done)

    codec_entries = []
    for name, _ in available:
        codec_rows = [rows[j.index] for j in jobs if j.codec == name and j.index in rows]
        codec_entries.append({"name": name, "description": descriptions[name], "results": codec_rows})
    errors.sort(key=lambda e: e[0])
    error_list = [e for _, e in errors]
    for e in error_list:
        progress(f"error: {e['codec']} {e['clip']} {e['point']}: {e['error']}")

    results = {
        "format": RESULTS_FORMAT,
        "suite": suite_name,
        "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "clips": clip_infos,
        "conditions": conditions(cond),
        "metrics": metric_info(vmaf_reason, lpips_reason),
        "environment": environment(workers),
        "command_line": config.command_line,
        "codecs": codec_entries,
        "skipped": skipped,
        "errors": error_list,
        "anchors": list(config.anchors) if config.anchors else list(report.BD_ANCHORS),
        "plan": plan,
        "run": {
            "jobs": len(mine),
            "cached": len(mine) - len(todo),
            "computed": len(todo),
            "workers": workers,
            "wall_seconds": time.perf_counter() - t_start,
            "cache_dir": os.path.abspath(cache_dir),
        },
    }
    if shard:
        results["shard"] = {"index": shard[0], "count": shard[1]}
        report.write_json(results, out)  # the merge writes the reports
    else:
        report.write_all(results, out, plots=config.plots)
    return results


def merge(shard_dirs: list[str], out_dir: str, force: bool = False, progress=print, plots: bool = True) -> dict:
    """Combine the results.json of the shards of one plan (`--shard i/n` runs) into one run, ordered as a serial run
    orders it, and write every report into out_dir."""
    from benchmarks import report

    parts = []
    for d in shard_dirs:
        with open(os.path.join(d, "results.json")) as f:
            parts.append(json.load(f))
    if os.path.exists(os.path.join(out_dir, "results.json")) and not force:
        raise FileExistsError(f"{out_dir}/results.json exists; pass --force to overwrite")
    first = parts[0]
    counts = {p.get("shard", {}).get("count") for p in parts}
    indices = sorted(p.get("shard", {}).get("index", -1) for p in parts)
    if len(counts) != 1 or None in counts or indices != list(range(next(iter(counts)))):
        raise ValueError(f"need every shard 0..N-1 of one run exactly once; got shards {indices} of {counts}")
    for p in parts[1:]:
        for field_ in ("suite", "plan", "conditions", "clips"):
            if p[field_] != first[field_]:
                raise ValueError(f"shards disagree on {field_!r}: not shards of the same run")
        if [c["name"] for c in p["codecs"]] != [c["name"] for c in first["codecs"]]:
            raise ValueError("shards ran different codecs")
        for ca, cb in zip(first["codecs"], p["codecs"]):
            if ca["description"] != cb["description"]:
                raise ValueError(f"shards ran different {ca['name']} builds or settings (its descriptions differ)")
    order = {tuple(map(str, k)): i for i, k in enumerate(first["plan"])}

    def rank(row):
        return order.get((row["clip"], row["codec"], str(row["point"])), len(order))

    codec_entries = []
    for ci, entry in enumerate(first["codecs"]):
        rows = [r for p in parts for r in p["codecs"][ci]["results"]]
        codec_entries.append({**entry, "results": sorted(rows, key=rank)})
    results = {**first, "codecs": codec_entries}
    results.pop("shard", None)
    results["errors"] = [e for p in parts for e in p["errors"]]
    results["run"] = {
        "merged_from": [os.path.abspath(d) for d in shard_dirs],
        "jobs": sum(p["run"]["jobs"] for p in parts),
        "cached": sum(p["run"]["cached"] for p in parts),
        "computed": sum(p["run"]["computed"] for p in parts),
        "shard_wall_seconds": [p["run"]["wall_seconds"] for p in parts],
    }
    results["environment"] = {**first["environment"], "shard_environments": [p["environment"] for p in parts]}
    report.write_all(results, out_dir, plots=plots)
    progress(f"merged {len(parts)} shards: {sum(len(c['results']) for c in codec_entries)} rows in {out_dir}")
    return results


def conditions(cond=None) -> dict:
    cond = cond or conditions_mod.get("default")
    return {
        "source": "uint8 RGB clip; classical codecs get its 8-bit YUV 4:2:0 (" + colour.MATRIX_NAME + "); a raw"
        " .yuv source: its own planes at its own bit depth (RGB for vcodec derived from them)",
        "classical_bit_depth": "coded at 10 bits (8-bit source << 2), decoded and returned to the source's depth",
        "intra_period_frames": cond.intra_period,
        "gop": cond.summary,
        "preset": cond.to_json(),
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
