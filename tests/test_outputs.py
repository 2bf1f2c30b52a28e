"""Process-level faults and unusual destinations: stop signals, killed runs' temporary files, FIFOs, character
devices, symlinks; and the messages for inputs that are not what they seem."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

import vcodec
from vcodec.cli import main
from vcodec.errors import InputError, OutputError
from vcodec.io.files import atomic_output, remove_stale_temps
from vcodec.io.synthetic import write_clip
from vcodec.testing import save_tokenizer, tiny_tokenizer

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def model(tmp_path_factory) -> str:
    return save_tokenizer(tiny_tokenizer(window_frames=17), tmp_path_factory.mktemp("model") / "tiny17.pt")


@pytest.fixture(scope="module")
def clip(tmp_path_factory) -> Path:
    """Long enough that a run is still working a second after its temporary file appears."""
    p = tmp_path_factory.mktemp("clip") / "long.y4m"
    write_clip(p, width=320, height=240, num_frames=120, codec="rawvideo", pix_fmt="yuv420p")
    return p


@pytest.fixture(scope="module")
def vcb(model, clip, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("vcb") / "long.vcb"
    vcodec.encode_video(clip, out, model=model)
    return out


def run(*args):
    return CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=True)


def _env() -> dict:
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=str(ROOT))
    env.pop("VCODEC_DEBUG", None)
    return env


def _temps(d: Path, name: str) -> list[Path]:
    return sorted(d.glob(f".{name}.*.part*"))


def _start_and_wait_for_temp(args, d: Path, name: str) -> subprocess.Popen:
    p = subprocess.Popen([sys.executable, "-m", "vcodec.cli", *map(str, args)], env=_env(),
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 120
    while not _temps(d, name):
        assert p.poll() is None, p.communicate()[1].decode()
        assert time.monotonic() < deadline, "no temporary file appeared"
        time.sleep(0.01)
    time.sleep(0.3)  # well inside the work
    assert p.poll() is None, "finished before it could be stopped: make the clip longer"
    return p


# ----------------------------------------------------------------------------------------------
# signals and killed runs


@pytest.mark.parametrize("sig, command", [(signal.SIGTERM, "encode"), (signal.SIGTERM, "decode"),
                                          (signal.SIGHUP, "encode"), (signal.SIGINT, "decode")])
def test_stop_signal_leaves_no_output_and_no_temp(model, clip, vcb, tmp_path, sig, command):
    out = tmp_path / ("o.vcb" if command == "encode" else "o.mkv")
    src = clip if command == "encode" else vcb
    p = _start_and_wait_for_temp([command, src, "-o", out, "--model", model, "--json"], tmp_path, out.name)
    p.send_signal(sig)
    _, err = p.communicate(timeout=120)
    assert p.returncode == 128 + sig, err.decode()
    assert err.decode().splitlines()[-1] == f"vcodec: interrupted by {signal.Signals(sig).name}"
    assert sorted(os.listdir(tmp_path)) == []


def test_a_dropped_stop_request_still_stops_the_output(tmp_path):
    """A stop signal's exception raised inside a destructor is dropped by Python ("Exception ignored in ..."); the
    request stays pending, so the output is never made final and the next check point raises it again."""
    from vcodec import stopping

    class RequestsOnDelete:
        def __del__(self):
            stopping.request(signal.SIGTERM)

    out = tmp_path / "o.bin"
    try:
        with pytest.raises(stopping.Interrupted) as e, atomic_output(out, overwrite=False) as tmp:
            Path(tmp).write_bytes(b"data")
            RequestsOnDelete()  # deleted at once: its Interrupted is printed and dropped
        assert e.value.signum == signal.SIGTERM
        assert os.listdir(tmp_path) == []
        with pytest.raises(stopping.Interrupted):
            stopping.check()
    finally:
        stopping.clear()
    stopping.check()  # nothing pending: does nothing


def test_killed_run_temp_is_removed_by_the_next_run(model, clip, tmp_path):
    out = tmp_path / "o.vcb"
    p = _start_and_wait_for_temp(["encode", clip, "-o", out, "--model", model, "--json"], tmp_path, out.name)
    p.kill()
    p.communicate(timeout=60)
    stale = _temps(tmp_path, out.name)
    assert len(stale) == 1 and f".{p.pid}." in stale[0].name
    # a live writer's temp, another output's temp and a look-alike name are left alone
    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        keep = [tmp_path / f".o.vcb.{sleeper.pid}.abcdefgh.part.vcb", tmp_path / f".p.vcb.{p.pid}.abcdefgh.part.vcb",
                tmp_path / f".o.vcb.{p.pid}.abc.part.vcb"]
        for k in keep:
            k.write_bytes(b"x")
        r = run("encode", clip, "-o", out, "--model", model, "--json")
        assert r.exit_code == 0, r.output
        assert out.exists() and not stale[0].exists()
        assert all(k.exists() for k in keep)
    finally:
        sleeper.kill()
        sleeper.wait()
    assert remove_stale_temps(out) == [str(keep[0])]  # its writer is gone now


# ----------------------------------------------------------------------------------------------
# FIFOs, character devices, symlinks


def test_output_into_a_fifo_is_written_not_replaced(model, vcb, tmp_path):
    expected = tmp_path / "plain.y4m"
    assert run("decode", vcb, "-o", expected, "--model", model).exit_code == 0
    fifo = tmp_path / "pipe.y4m"
    os.mkfifo(fifo)
    got = bytearray()

    def drain():
        with open(fifo, "rb") as f:
            while chunk := f.read(1 << 16):
                got.extend(chunk)

    t = threading.Thread(target=drain)
    t.start()
    r = run("decode", vcb, "-o", fifo, "--model", model)  # no -y needed: nothing is replaced
    t.join(60)
    assert r.exit_code == 0, r.output
    assert bytes(got) == expected.read_bytes()
    assert fifo.is_fifo() and sorted(os.listdir(tmp_path)) == ["pipe.y4m", "plain.y4m"]


def test_output_into_dev_null(model, clip, tmp_path):
    res = vcodec.encode_video(clip, os.devnull, model=model, overwrite=True)
    assert res.bytes > 0 and Path(os.devnull).is_char_device()
    assert not list(Path(os.devnull).parent.glob(".null.*"))


def test_output_symlink_is_followed(model, clip, vcb, tmp_path):
    target = tmp_path / "real.vcb"
    target.write_bytes(b"old")
    link = tmp_path / "link.vcb"
    link.symlink_to(target)
    assert run("encode", clip, "-o", link, "--model", model).exit_code == 1  # it exists
    r = run("encode", clip, "-o", link, "--model", model, "-y")
    assert r.exit_code == 0, r.output
    assert link.is_symlink() and target.read_bytes() == vcb.read_bytes()
    dangling = tmp_path / "d.vcb"
    dangling.symlink_to(tmp_path / "new.vcb")
    assert run("encode", clip, "-o", dangling, "--model", model).exit_code == 0
    assert dangling.is_symlink() and (tmp_path / "new.vcb").read_bytes() == vcb.read_bytes()
    assert sorted(os.listdir(tmp_path)) == ["d.vcb", "link.vcb", "new.vcb", "real.vcb"]


def test_symlink_loops_are_named(tmp_path):
    a, b = tmp_path / "a.vcb", tmp_path / "b.vcb"
    a.symlink_to(b)
    b.symlink_to(a)
    with pytest.raises(OutputError, match="too many levels of symbolic links"):
        with atomic_output(a, overwrite=True):
            pass
    with pytest.raises(InputError, match="too many levels of symbolic links"):
        vcodec.info(a)
    r = run("encode", a, "-o", tmp_path / "o.vcb")
    assert r.exit_code == 1 and "too many levels of symbolic links" in r.stderr


def test_block_devices_and_sockets_are_refused(tmp_path):
    import socket

    sock_path = tmp_path / "s.vcb"
    s = socket.socket(socket.AF_UNIX)
    try:
        s.bind(str(sock_path))
        with pytest.raises(OutputError, match="not a regular file"):
            with atomic_output(sock_path, overwrite=True):
                pass
        assert sock_path.is_socket()
    finally:
        s.close()


# ----------------------------------------------------------------------------------------------
# messages


def test_salvage_is_suggested_only_where_it_can_help(model, vcb, tmp_path):
    empty = tmp_path / "empty.vcb"
    empty.write_bytes(b"")
    bad_header = tmp_path / "header.vcb"
    data = bytearray(vcb.read_bytes())
    data[20] ^= 1  # inside the header JSON
    bad_header.write_bytes(bytes(data))
    truncated = tmp_path / "truncated.vcb"
    truncated.write_bytes(vcb.read_bytes()[:-100])
    for path, salvage in [(empty, False), (bad_header, False), (truncated, True)]:
        r = run("decode", path, "-o", tmp_path / "o.y4m", "--model", model)
        assert r.exit_code == 1
        assert ("--salvage" in r.stderr) == salvage, r.stderr


@pytest.mark.parametrize("header, match", [
    (b"YUV4MPEG2 W16384 H16384 F25:1 C420jpeg\nFRAME\n" + bytes(100), "declares 16384x16384 frames, too large"),
    (b"YUV4MPEG2 W16 H16 F25:1 X" + b"a" * 5000 + b"\n", "header line longer than 4096 bytes"),
])
def test_unusable_y4m_headers_are_named(tmp_path, header, match):
    p = tmp_path / "bad.y4m"
    p.write_bytes(header)
    r = run("encode", p, "-o", tmp_path / "o.vcb")
    assert r.exit_code == 1 and match in r.stderr and "busy" not in r.stderr, r.stderr


def test_a_dropped_stop_request_is_not_printed_under_the_command_line(capsys):
    """Under the command line's signal handling, a stop request whose exception Python drops (raised in a destructor
    or a C callback, such as PyAV's read callback) prints no "Exception ignored" traceback: it stays pending and
    ends the command when the block is left."""
    import gc

    from vcodec import stopping
    from vcodec.cli import _stop_signals_interrupt

    class RequestsOnDelete:
        def __del__(self):
            stopping.request(signal.SIGINT)

    with pytest.raises(stopping.Interrupted), _stop_signals_interrupt():
        RequestsOnDelete()
        gc.collect()
    assert "Exception ignored" not in capsys.readouterr().err
    stopping.check()  # cleared when the block was left
