"""vcodec.allocator: the glibc thresholds the CLI sets at start."""

import sys

import pytest

from vcodec.allocator import keep_freed_memory


def test_user_choices_win(monkeypatch):
    monkeypatch.setenv("VCODEC_MALLOC", "system")
    assert keep_freed_memory() is False
    monkeypatch.delenv("VCODEC_MALLOC")
    monkeypatch.setenv("MALLOC_TRIM_THRESHOLD_", "1000000")
    assert keep_freed_memory() is False


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's mallopt")
def test_sets_the_thresholds_on_glibc(monkeypatch):
    for k in ("VCODEC_MALLOC", "MALLOC_TRIM_THRESHOLD_", "MALLOC_MMAP_THRESHOLD_"):
        monkeypatch.delenv(k, raising=False)
    import platform

    if platform.libc_ver()[0] != "glibc":
        pytest.skip("not glibc")
    assert keep_freed_memory() is True
