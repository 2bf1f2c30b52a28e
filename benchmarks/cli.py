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


@click.command("bench")
@click.option("--suite", default="smoke", show_default=True, help="smoke, standard, or a folder of videos.")
@click.option(
    "--codecs", multiple=True, help=f"Codecs to run, comma-separated or repeated: {CODEC_CHOICES}. Default: all."
)
@click.option("--frames", type=click.IntRange(min=1), default=None, help="Cap on frames per clip.")
@click.option("--device", default="cpu", show_default=True, help="Torch device for vcodec (cpu, cuda, ...).")
@click.option("--model", default=None, help="vcodec model name or path (default: the first installed model).")
@click.option("--workers", type=click.IntRange(min=1), default=None, help="Processes (default: min(clips, cores)).")
@click.option("--keep-streams", is_flag=True, help="Keep the coded files under RESULTS_DIR/streams.")
@click.option("--force", is_flag=True, help="Overwrite an existing RESULTS_DIR/results.json.")
@click.option("-o", "--output", "out_dir", required=True, type=click.Path(file_okay=False), help="Results folder.")
def bench(suite, codecs, frames, device, model, workers, keep_streams, force, out_dir):
    """Rate-distortion benchmark: JSON + CSV results, RD plots and a BD-rate table in RESULTS_DIR."""
    from benchmarks.runner import DEFAULT_CODECS, BenchConfig, run

    names = _split_codecs(codecs) or DEFAULT_CODECS
    config = BenchConfig(
        out_dir=out_dir, suite=suite, codecs=names, frames=frames, device=device, model=model,
        workers=workers, keep_streams=keep_streams, force=force,
    )  # fmt: skip
    try:
        results = run(config, progress=lambda msg: click.echo(msg, err=True))
    except (ValueError, FileExistsError, FileNotFoundError) as e:
        raise click.ClickException(str(e)) from e
    n = sum(len(c["results"]) for c in results["codecs"])
    click.echo(
        f"{n} results from {len(results['codecs'])} codecs in {out_dir}"
        " (results.json, results.csv, rd_*.png, bdrate.md)"
    )
    if results["errors"]:
        raise click.ClickException(f"{len(results['errors'])} encode/decode errors; see results.json 'errors'")
