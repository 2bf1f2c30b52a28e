"""The `bench` click command, shared by `vcodec bench` and `python -m benchmarks`.

This module imports only click; the benchmark machinery is imported when the command runs.
"""

from __future__ import annotations

import click

CODEC_CHOICES = "vcodec, x264, x265, svtav1, vvenc (aliases avc, hevc, av1, vvc)"


def _split_codecs(values: tuple[str, ...]) -> tuple[str, ...]:
    out: list[str] = []
    for v in values:
        out += [x for x in v.replace(",", " ").split() if x]
    return tuple(out)


def _vcodec_options(refine: int, colour: bool | None) -> dict:
    """The codec options of vcodec's settings that differ from its defaults (so the cache keys stay as they were)."""
    options = {**({"refine": refine} if refine else {}), **({"colour": colour} if colour is not None else {})}
    return {"vcodec": options} if options else {}


@click.command("bench")
@click.option("--suite", default="smoke", show_default=True,
              help="smoke, standard, long, a folder of videos / raw .yuv, or one such file.")
@click.option(
    "--codecs", multiple=True, help=f"Codecs to run, comma-separated or repeated: {CODEC_CHOICES}. Default: all."
)
@click.option("--conditions", default="default", show_default=True,
              help="Test-condition preset: default, jvet-ra, jvet-ld (see benchmarks/conditions.py).")
@click.option("--frames", type=click.IntRange(min=1), default=None,
              help="Frames per sequence (a folder: frames 0..N-1, default 33; named suites: a cap).")
@click.option("--size", default=None, metavar="WxH", help="Raw .yuv: frame size (default: from the file name).")
@click.option("--fps", default=None, metavar="RATE", help="Raw .yuv: frame rate (default: from the file name).")
@click.option("--pix-fmt", default=None, metavar="FMT", help="Raw .yuv: yuv420p, yuv420p10le, ... (default: name).")
@click.option("--anchor", "anchors", multiple=True, help="BD-rate anchor codec(s) (default: x265 and vvenc).")
@click.option("--device", default="cpu", show_default=True, help="Torch device for vcodec (cpu, cuda, ...).")
@click.option("--model", default=None, help="vcodec model name or path (default: the first installed model).")
@click.option("--refine", type=click.IntRange(0, 1000), default=0, show_default=True, metavar="STEPS",
              help="vcodec's encoder-side latent refinement steps (`vcodec encode --refine`).")
@click.option("--colour-correct/--no-colour-correct", "colour", default=None,
              help="vcodec's colour corrections: fitted to every chunk (`vcodec encode --colour-correct`), or none; default: "
                   "the encoder's (every chunk with --refine, else the keyframe chunks').")
@click.option("--jobs", "-j", type=click.IntRange(min=1), default=None,
              help="Parallel jobs (processes); one job = one (sequence, codec, rate point). Default: cores.")
@click.option("--workers", type=click.IntRange(min=1), default=None, hidden=True, help="Old name of --jobs.")
@click.option("--shard", default=None, metavar="I/N",
              help="Run only jobs I, I+N, I+2N, ... (0 <= I < N); combine the shards with `merge`.")
@click.option("--dask", default=None, metavar="ADDRESS|local[:N]",
              help="Run the jobs on a Dask cluster (scheduler address, or a local cluster of N workers); [dist] extra.")
@click.option("--cache", "cache_dir", default=None, type=click.Path(file_okay=False),
              help="Result cache folder (default RESULTS_DIR/cache); shards may share one.")
@click.option("--keep-streams", is_flag=True, help="Keep the coded files under RESULTS_DIR/streams.")
@click.option("--no-plots", is_flag=True, help="Skip the rd_*.png plots (`python -m benchmarks.report` draws them).")
@click.option("--resume", is_flag=True, help="Write into an existing RESULTS_DIR: reuse cached jobs, run the rest.")
@click.option("--seed-from", type=click.Path(exists=True, dir_okay=False), default=None,
              help="An earlier results.json (e.g. the committed one): its rows of jobs with the same clip content, "
                   "codec build and settings fill the cache, so that only changed codecs run.")
@click.option("--force", is_flag=True, help="Recompute every job (ignore the cache) and overwrite RESULTS_DIR.")
@click.option("-o", "--output", "out_dir", required=True, type=click.Path(file_okay=False), help="Results folder.")
def bench(suite, codecs, conditions, frames, size, fps, pix_fmt, anchors, device, model, refine, colour, jobs, workers, shard,
          dask, cache_dir, keep_streams, no_plots, resume, seed_from, force, out_dir):  # fmt: skip
    """Rate-distortion benchmark: JSON + CSV results, RD plots and BD-rate tables in RESULTS_DIR.

    `merge SHARD_DIR... -o RESULTS_DIR` (as the first argument) combines `--shard` runs.
    """
    import sys

    from benchmarks.codecs import canonical_name
    from benchmarks.runner import DEFAULT_CODECS, BenchConfig, run

    names = _split_codecs(codecs) or DEFAULT_CODECS
    try:
        anchor_names = tuple(canonical_name(a) for a in _split_codecs(anchors)) or None
    except ValueError as e:
        raise click.ClickException(str(e)) from e
    raw = (size, fps, pix_fmt) if (size or fps or pix_fmt) else None
    config = BenchConfig(
        out_dir=out_dir, suite=suite, codecs=names, frames=frames, device=device, model=model,
        jobs=jobs or workers, keep_streams=keep_streams, force=force, resume=resume, conditions=conditions,
        shard=shard, dask=dask, cache_dir=cache_dir, plots=not no_plots, raw=raw, anchors=anchor_names, command_line=_command_line(sys.argv),
        seed_from=seed_from, codec_options=_vcodec_options(refine, colour),
    )  # fmt: skip
    try:
        results = run(config, progress=lambda msg: click.echo(msg, err=True))
    except (ValueError, FileExistsError, FileNotFoundError) as e:
        raise click.ClickException(str(e)) from e
    n = sum(len(c["results"]) for c in results["codecs"])
    what = "results.json (merge the shards)" if results.get("shard") else "results.json, results.csv, rd_*.png, bdrate.md"
    click.echo(
        f"{n} results from {len(results['codecs'])} codecs in {out_dir} ({what}); "
        f"{results['run']['cached']} cached, {results['run']['computed']} computed"
    )
    if results["errors"]:
        raise click.ClickException(f"{len(results['errors'])} encode/decode errors; see results.json 'errors'")


def _command_line(argv: list[str]) -> list[str]:
    """The command as typed: `python -m benchmarks ...` rather than the path of __main__.py."""
    if argv and argv[0].endswith("__main__.py"):
        return ["python", "-m", "benchmarks", *argv[1:]]
    return list(argv)


@click.command("merge")
@click.argument("shard_dirs", nargs=-1, required=True, type=click.Path(exists=True, file_okay=False))
@click.option("-o", "--output", "out_dir", required=True, type=click.Path(file_okay=False), help="Results folder.")
@click.option("--force", is_flag=True, help="Overwrite RESULTS_DIR/results.json.")
@click.option("--no-plots", is_flag=True, help="Skip the rd_*.png plots.")
def merge(shard_dirs, out_dir, force, no_plots):
    """Combine the results of `--shard i/n` runs (every shard of one run) into one results folder with all reports."""
    from benchmarks.runner import merge as merge_runs

    try:
        results = merge_runs(list(shard_dirs), out_dir, force=force, progress=lambda m: click.echo(m, err=True),
                             plots=not no_plots)  # fmt: skip
    except (ValueError, FileExistsError, FileNotFoundError, KeyError) as e:
        raise click.ClickException(str(e)) from e
    if results["errors"]:
        raise click.ClickException(f"{len(results['errors'])} encode/decode errors; see results.json 'errors'")


def main(argv=None, prog_name: str = "python -m benchmarks") -> None:
    """`python -m benchmarks [bench options]`, `python -m benchmarks merge SHARD_DIR... -o RESULTS_DIR`, or
    `python -m benchmarks compare RUN_A RUN_B` (benchmarks/compare.py)."""
    import sys

    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["compare"]:
        from benchmarks.compare import main as compare_main

        sys.exit(compare_main(argv[1:]))
    if argv[:1] == ["merge"]:
        merge(argv[1:], prog_name=f"{prog_name} merge")
    else:
        bench(argv, prog_name=prog_name)
