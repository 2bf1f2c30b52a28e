"""`python -m benchmarks [--suite ...] [--codecs ...] [--conditions ...] [--jobs N] [--shard I/N] -o RESULTS_DIR`,
and `python -m benchmarks merge SHARD_DIR... -o RESULTS_DIR`."""

from benchmarks.cli import main

if __name__ == "__main__":
    main()
