"""Rate-distortion benchmarks: vcodec against x264, x265, SVT-AV1 and VVenC (see benchmarks/README.md).

Importing this package is cheap (no PyAV, torch or matplotlib); the work happens in `benchmarks.runner.run`.
Entry points: `vcodec bench ...` and `python -m benchmarks ...` (the same click command, `benchmarks.cli.bench`).
"""

__all__ = ["run"]


def run(config):
    """Run a benchmark (`benchmarks.runner.BenchConfig`) and write its outputs; returns the results dict."""
    from benchmarks.runner import run as _run

    return _run(config)
