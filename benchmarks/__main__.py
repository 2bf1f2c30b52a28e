"""`python -m benchmarks [--suite smoke|standard|DIR] [--codecs ...] [--frames N] [--device ...] -o RESULTS_DIR`."""

from benchmarks.cli import bench

if __name__ == "__main__":
    bench(prog_name="python -m benchmarks")
