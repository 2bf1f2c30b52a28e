"""The ``vcodec`` command line: ``encode``, ``decode``, ``info``, ``models`` (and ``train``, ``bench``).

The CLI only parses arguments and prints; the work is in :mod:`vcodec.api`. Every failure the user can cause
(bad input, damaged ``.vcb``, missing weights, existing or unwritable output) ends as one line
``vcodec: error: ...`` on stderr and exit status 1 (2 for usage errors), without a traceback unless
``VCODEC_DEBUG=1``. Warnings (alpha dropped, audio not written, ...) print as ``vcodec: warning: ...``.
SIGINT (Ctrl-C), SIGTERM and SIGHUP stop a run the same way: the temporary output is removed and the exit status
is 128 + the signal number.

Adding a subcommand: write it as a ``click.Command`` in its own module and add one line to
:data:`LAZY_COMMANDS`; it is imported only when used (``vcodec --help`` stays fast), and it gets the same
error handling. ``vcodec bench`` is not one of them: the benchmarks depend on vcodec, never the reverse, so it
runs ``python -m benchmarks`` in a child process (installed with the ``[bench]`` extra).
"""

from __future__ import annotations

import contextlib
import importlib
import importlib.util
import json
import os
import signal
import subprocess
import sys
import threading
import warnings

import click

from vcodec import __version__
from vcodec.errors import VcodecError, VcodecWarning
from vcodec.models import DEFAULT_MODEL

# name -> "module:attribute" of a click.Command, imported on first use.
LAZY_COMMANDS: dict[str, str] = {
    "train": "vcodec.train.command:train_command",
}


class CliError(click.ClickException):
    """A user-facing failure: printed as ``vcodec: error: MESSAGE``, exit status 1."""

    exit_code = 1

    def show(self, file=None) -> None:
        click.echo(f"vcodec: error: {self.message}", err=True)


def _debug() -> bool:
    return os.environ.get("VCODEC_DEBUG", "") not in ("", "0")


def _one_line(e: BaseException) -> str:
    """A single-line description of an exception for the user."""
    from bitstream import BitstreamError

    if isinstance(e, (VcodecError, BitstreamError)):
        msg = str(e)
    elif isinstance(e, BrokenPipeError):
        msg = "output pipe closed before the end"
    elif isinstance(e, OSError):
        where = f"{e.filename}: " if e.filename else ""
        msg = f"{where}{e.strerror or e}"
    else:
        msg = f"internal error: {type(e).__name__}: {e} (set VCODEC_DEBUG=1 for a traceback)"
    return " ".join(msg.split()) or type(e).__name__


@contextlib.contextmanager
def _warnings_to_stderr():
    """Show vcodec's warnings as ``vcodec: warning: ...``; hide other libraries' unless debugging."""
    debug = _debug()

    def show(message, category, filename, lineno, file=None, line=None):
        if issubclass(category, VcodecWarning):
            click.echo(f"vcodec: warning: {message}", err=True)
        elif debug:
            click.echo(warnings.formatwarning(message, category, filename, lineno, line), err=True, nl=False)

    with warnings.catch_warnings():
        warnings.simplefilter("default")
        warnings.showwarning = show
        yield


class Interrupted(KeyboardInterrupt):
    """A stop signal (SIGINT, SIGTERM, SIGHUP) raised where the program was, so that cleanup runs as for Ctrl-C."""

    def __init__(self, signum: int):
        super().__init__(signum)
        self.signum = signum


STOP_SIGNALS = tuple(getattr(signal, n) for n in ("SIGINT", "SIGTERM", "SIGHUP") if hasattr(signal, n))


@contextlib.contextmanager
def _stop_signals_interrupt():
    """Turn the first stop signal into :class:`Interrupted`; later ones are ignored so cleanup can finish."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def stop(signum, frame):
        for s in STOP_SIGNALS:
            signal.signal(s, signal.SIG_IGN)
        raise Interrupted(signum)

    old = {s: signal.signal(s, stop) for s in STOP_SIGNALS}
    try:
        yield
    finally:
        for s, h in old.items():
            signal.signal(s, h)


class VcodecGroup(click.Group):
    """A click group with lazily imported subcommands and one error boundary for all of them."""

    def list_commands(self, ctx) -> list[str]:
        return sorted({*super().list_commands(ctx), *LAZY_COMMANDS})

    def get_command(self, ctx, name):
        cmd = super().get_command(ctx, name)
        if cmd is not None or name not in LAZY_COMMANDS:
            return cmd
        module, _, attr = LAZY_COMMANDS[name].partition(":")
        try:
            cmd = getattr(importlib.import_module(module), attr)
        except (ImportError, AttributeError) as e:
            if _debug():
                raise

            @click.command(name, help=f"(unavailable: {e})", context_settings={"ignore_unknown_options": True})
            @click.argument("args", nargs=-1, type=click.UNPROCESSED)
            def unavailable(args, _e=e):
                raise CliError(f"command {name!r} is unavailable here ({type(_e).__name__}: {_e})")

            return unavailable
        return cmd

    def invoke(self, ctx):
        try:
            with _warnings_to_stderr(), _stop_signals_interrupt():
                return super().invoke(ctx)
        except (click.ClickException, click.exceptions.Exit, click.Abort):
            raise
        except KeyboardInterrupt as e:
            signum = getattr(e, "signum", signal.SIGINT)
            click.echo(f"vcodec: interrupted by {signal.Signals(signum).name}", err=True)
            raise click.exceptions.Exit(128 + signum) from None
        except Exception as e:
            if _debug():
                raise
            if isinstance(e, BrokenPipeError):
                _silence_stdout()
            raise CliError(_one_line(e)) from e


def _silence_stdout() -> None:
    """After a closed pipe, point stdout at /dev/null so that the interpreter's final flush stays quiet."""
    with contextlib.suppress(OSError, ValueError, AttributeError):
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())


@click.group(cls=VcodecGroup, context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(version=__version__, prog_name="vcodec")
def main() -> None:
    """vcodec: a neural video codec (MAGVIT-v2-style tokenizer + range-coded tokens).

    \b
      vcodec encode in.mp4 -o clip.vcb        encode any video FFmpeg reads
      vcodec decode clip.vcb -o out.mkv       decode (.y4m, .mkv, .mp4, or - )
      vcodec info clip.vcb                    what a .vcb holds
      vcodec models                           shipped models and their rate points

    Set VCODEC_DEBUG=1 for tracebacks.
    """


def _emit_json(obj, to_stderr: bool) -> None:
    click.echo(json.dumps(obj, sort_keys=False), err=to_stderr)


def _with_context(name: str, salvage_hint: bool):
    """Turn a bitstream error into one line that names the file (and suggests --salvage when it can help)."""
    from bitstream import BitstreamError, ChecksumError, CorruptDataError, TruncatedError

    @contextlib.contextmanager
    def ctx():
        try:
            yield
        except BitstreamError as e:
            hint = ""
            if salvage_hint and getattr(e, "salvageable", True) and isinstance(
                    e, (ChecksumError, CorruptDataError, TruncatedError)):
                hint = " (use --salvage to decode the intact chunks)"
            raise CliError(f"{name}: {_one_line(e)}{hint}") from e

    return ctx()


def _refuse_tty(path: str, what: str) -> None:
    if path == "-" and sys.stdout.isatty():
        raise CliError(f"refusing to write {what} to a terminal; redirect standard output or use -o FILE")


@main.command()
@click.argument("input", metavar="INPUT")
@click.option("-o", "--output", required=True, metavar="OUT.vcb", help="the .vcb to write (- for stdout)")
@click.option("--quality", type=int, default=None, metavar="N",
              help="rate point of the model (see `vcodec models`); default: its highest")
@click.option("--model", default=DEFAULT_MODEL, show_default=True, metavar="NAME|PATH",
              help="shipped model name or a .pt checkpoint")
@click.option("--device", type=click.Choice(["auto", "cpu", "cuda"]), default="auto", show_default=True)
@click.option("-y", "--overwrite", is_flag=True, help="replace OUT.vcb if it exists")
@click.option("--json", "as_json", is_flag=True, help="print one JSON summary (no progress bar)")
def encode(input, output, quality, model, device, overwrite, as_json):
    """Encode INPUT (any video FFmpeg opens, .y4m included; - for stdin) into a .vcb.

    Frames are read, encoded and written one window at a time, so memory stays flat however long the video.
    Size, frame count and exact frame rate are kept; audio tracks are copied in. Alpha is dropped and sources
    deeper than 8 bits are rounded to 8 bits (with a warning); rotation metadata is applied.
    """
    from vcodec import api

    _refuse_tty(output, "a .vcb")
    res = api.encode_video(input, output, quality=quality, model=model, device=device, overwrite=overwrite,
                           progress=not as_json)
    if as_json:
        _emit_json(res.to_json(), to_stderr=output == "-")
    else:
        click.echo(
            f"{res.output}: {res.frames} frames {res.width}x{res.height} @ {res.frame_rate} fps, "
            f"{res.bytes} bytes, {res.bpp:.4f} bpp, {res.seconds:.2f} s ({res.fps:.1f} frames/s), "
            f"model {res.model} quality {res.quality}",
            err=True,
        )


@main.command()
@click.argument("input", metavar="IN.vcb")
@click.option("-o", "--output", required=True, metavar="OUTPUT", help="video to write (.y4m, .mkv, .mp4, or -)")
@click.option("-y", "--overwrite", is_flag=True, help="replace OUTPUT if it exists")
@click.option("--salvage", is_flag=True, help="skip damaged chunks and decode the intact ones")
@click.option("--model", default=None, metavar="NAME|PATH",
              help="weights to decode with, when the ones the header names are not shipped (same hash required)")
@click.option("--device", type=click.Choice(["auto", "cpu", "cuda"]), default="auto", show_default=True)
@click.option("--pix-fmt", type=click.Choice(["yuv444p16le", "yuv444p", "yuv420p"]), default=None,
              help="y4m pixel format (default yuv444p16le, exact)")
@click.option("--json", "as_json", is_flag=True, help="print one JSON summary (no progress bar)")
def decode(input, output, overwrite, salvage, model, device, pix_fmt, as_json):
    """Decode IN.vcb (- for stdin) to OUTPUT.

    The output has the stream's frame count, size and exact frame rate; audio tracks are muxed back into
    containers that take them.

    \b
    OUTPUT's container follows its extension:
      .y4m  raw YUV4MPEG2, exact (C444p16: converts back to the decoded RGB
            bit for bit; --pix-fmt yuv444p or yuv420p: 8-bit, not exact)
      .mkv  FFV1 RGB, lossless; audio tracks copied
      .mp4  H.264 (x264 crf 12): a lossy re-encode for playback; audio copied
      -     y4m on standard output
    """
    from vcodec import api

    _refuse_tty(output, "video")
    with _with_context(input if input != "-" else "<stdin>", salvage_hint=not salvage):
        res = api.decode_video(input, output, overwrite=overwrite, salvage=salvage, model=model, device=device,
                               pix_fmt=pix_fmt, progress=not as_json)
    if as_json:
        _emit_json(res.to_json(), to_stderr=output == "-")
    else:
        lossy = "lossy re-encode" if res.lossy else res.note
        skipped = f", skipped {len(res.skipped)} damaged part(s)" if res.skipped else ""
        click.echo(
            f"{res.output}: {res.frames} frames {res.width}x{res.height} @ {res.frame_rate} fps, "
            f"{res.container} {res.codec} {res.pix_fmt} ({lossy}), {res.seconds:.2f} s "
            f"({res.fps:.1f} frames/s){skipped}",
            err=True,
        )


@main.command()
@click.argument("input", metavar="IN.vcb")
@click.option("--json", "as_json", is_flag=True, help="print JSON")
def info(input, as_json):
    """Show what IN.vcb holds (without decoding it)."""
    from vcodec import api

    with _with_context(input if input != "-" else "<stdin>", salvage_hint=False):
        d = api.info(input)
    if as_json:
        _emit_json(d, to_stderr=False)
        return
    bpp = f"{d['bpp']:.4f}" if d["bpp"] is not None else "?"
    lines = [
        f"file:        {d['file']} ({d['bytes'] if d['bytes'] is not None else '?'} bytes)",
        f"video:       {d['width']}x{d['height']} @ {d['frame_rate']} fps, {d['frames']} frames "
        f"({d['duration']:.3f} s) in {d['chunks']} chunks",
        f"rate:        {bpp} bpp (quality {d['quality']}, {d['levels']}/{d['max_levels']} levels, "
        f"{d['token_bits']}-bit tokens)",
        f"model:       {d['model']} (weights sha256 {d['weights_hash'][:16]}...)",
        f"coder:       {d['coder']}",
    ]
    for t in d["tracks"]:
        extra = " ".join(str(t[k]) for k in ("sample_rate", "layout") if t.get(k))
        lines.append(f"track {t['id']}:     {t['kind']} {t['codec']} {extra}".rstrip())
    src = d.get("source")
    if isinstance(src, dict):
        lines.append("source:      " + ", ".join(f"{k}={v}" for k, v in src.items()))
    click.echo("\n".join(lines))


@main.command()
@click.option("--json", "as_json", is_flag=True, help="print JSON")
def models(as_json):
    """List the shipped models, their rate points (quality -> levels) and measured bpp."""
    from vcodec import api

    ms = api.list_models()
    if as_json:
        _emit_json(ms, to_stderr=False)
        return
    if not ms:
        click.echo("no models shipped (vcodec/weights/*.pt); train one with `make train`, or pass --model PATH")
        return
    for m in ms:
        star = " (default)" if m["default"] else ""
        click.echo(f"{m['name']}{star}: {m['parameters']:,} parameters, weights sha256 {m['weights_hash'][:16]}...")
        for rp in m["rate_points"]:
            bpp = f"{rp['bpp']:.4f} bpp" if rp["bpp"] is not None else "bpp not measured"
            click.echo(f"  quality {rp['quality']}: {rp['levels']} level(s), {bpp}")


@main.command(
    context_settings={"ignore_unknown_options": True, "allow_interspersed_args": False, "help_option_names": []},
    add_help_option=False,
)
@click.argument("args", nargs=-1, type=click.UNPROCESSED)
def bench(args):
    """Rate-distortion benchmark against x264/x265/SVT-AV1/VVenC (runs `python -m benchmarks`; see its --help)."""
    if importlib.util.find_spec("benchmarks") is None:
        raise CliError("the benchmarks are not installed here (a source checkout with the [bench] extra has them)")
    rc = subprocess.call([sys.executable, "-m", "benchmarks", *args])
    if rc:
        sys.exit(rc)


if __name__ == "__main__":  # python -m vcodec.cli
    main()
