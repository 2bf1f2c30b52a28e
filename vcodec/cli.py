"""The ``vcodec`` command line: ``encode``, ``decode``, ``info``, ``models`` (and ``train``, ``bench``).

The CLI only parses arguments and prints; the work is in :mod:`vcodec.api`. Every failure the user can cause
(bad input, damaged ``.vcb``, missing weights, existing or unwritable output) ends as one line
``vcodec: error: ...`` on stderr and exit status 1 (2 for usage errors and values an option does not take),
without a traceback unless ``VCODEC_DEBUG=1``. Warnings (alpha dropped, audio not written, ...) print as
``vcodec: warning: ...``. SIGINT (Ctrl-C), SIGTERM and SIGHUP stop a run the same way: the temporary output is
removed and the exit status is 128 + the signal number (130 for Ctrl-C).

Adding a subcommand: write it as a ``click.Command`` in its own module and add its import path and one-line help
to :data:`LAZY_COMMANDS`; it is imported only when used (``vcodec --help`` stays fast), and it gets the same
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
import stat
import subprocess
import sys
import threading
import warnings
from fractions import Fraction

import click

from vcodec import __version__, stopping
from vcodec.allocator import keep_freed_memory
from vcodec.errors import ArgumentError, OutputExistsError, VcodecError, VcodecWarning
from vcodec.models import DEFAULT_MODEL, PRECISIONS
from vcodec.stream import DEFAULT_KEYINT

# name -> ("module:attribute" of a click.Command, its one-line help). Imported on first use, so that
# `vcodec --help` lists them without importing them (train needs torch: seconds).
LAZY_COMMANDS: dict[str, tuple[str, str]] = {
    "train": ("vcodec.train.command:train_command",
              "Train the tokenizer on DATA (a pre-decoded corpus .npz, or video files)."),
}

EXIT_ERROR, EXIT_USAGE, EXIT_INTERRUPTED = 1, 2, 130


class CliError(click.ClickException):
    """A user-facing failure: printed as ``vcodec: error: MESSAGE``, exit status 1 (2 for a bad argument)."""

    exit_code = EXIT_ERROR

    def __init__(self, message: str, exit_code: int = EXIT_ERROR):
        super().__init__(message)
        self.exit_code = exit_code

    def show(self, file=None) -> None:
        click.echo(f"vcodec: error: {self.message}", err=True)


def _debug() -> bool:
    return os.environ.get("VCODEC_DEBUG", "") not in ("", "0")


def _one_line(e: BaseException) -> str:
    """A single-line description of an exception for the user."""
    from bitstream import BitstreamError

    if isinstance(e, OutputExistsError):
        msg = e.cli_message()
    elif isinstance(e, (VcodecError, BitstreamError)):
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


STOP_SIGNALS = tuple(getattr(signal, n) for n in ("SIGINT", "SIGTERM", "SIGHUP") if hasattr(signal, n))


@contextlib.contextmanager
def _stop_signals_interrupt():
    """Turn the first stop signal into :class:`~vcodec.stopping.Interrupted` (kept pending, see
    :mod:`vcodec.stopping`); later ones are ignored so cleanup can finish."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def stop(signum, frame):
        for s in STOP_SIGNALS:
            signal.signal(s, signal.SIG_IGN)
        stopping.request(signum)

    old_hook = sys.unraisablehook

    def unraisable(info):
        if not (isinstance(info.exc_type, type) and issubclass(info.exc_type, stopping.Interrupted)):
            old_hook(info)  # a dropped stop request is not printed: it stays pending and is raised again

    old = {s: signal.signal(s, stop) for s in STOP_SIGNALS}
    sys.unraisablehook = unraisable
    try:
        yield
        stopping.check()  # a request whose exception was dropped (raised in a destructor) still ends the command
    finally:
        for s, h in old.items():
            signal.signal(s, h)
        sys.unraisablehook = old_hook
        stopping.clear()


class VcodecGroup(click.Group):
    """A click group with lazily imported subcommands and one error boundary for all of them."""

    def list_commands(self, ctx) -> list[str]:
        return sorted({*super().list_commands(ctx), *LAZY_COMMANDS})

    def get_command(self, ctx, name):
        cmd = super().get_command(ctx, name)
        if cmd is not None or name not in LAZY_COMMANDS:
            return cmd
        module, _, attr = LAZY_COMMANDS[name][0].partition(":")
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

    def format_commands(self, ctx, formatter) -> None:
        """The command list, with the lazy commands' help from :data:`LAZY_COMMANDS` (nothing imported)."""
        rows = []
        for name in self.list_commands(ctx):
            if name in LAZY_COMMANDS and name not in self.commands:
                rows.append((name, LAZY_COMMANDS[name][1]))
                continue
            cmd = self.get_command(ctx, name)
            if cmd is not None and not cmd.hidden:
                rows.append((name, cmd.get_short_help_str(formatter.width - 6 - max(map(len, self.commands)))))
        if rows:
            with formatter.section("Commands"):
                formatter.write_dl(rows)

    def invoke(self, ctx):
        try:
            with _warnings_to_stderr(), _stop_signals_interrupt():
                return super().invoke(ctx)
        except (click.ClickException, click.exceptions.Exit, click.Abort):
            raise
        except KeyboardInterrupt as e:
            signum = getattr(e, "signum", None)   # set when a stop signal (not a plain KeyboardInterrupt) arrived
            click.echo("vcodec: interrupted" + (f" by {signal.Signals(signum).name}" if signum else ""), err=True)
            raise click.exceptions.Exit(128 + (signum or signal.SIGINT)) from None
        except Exception as e:
            if _debug():
                raise
            if isinstance(e, BrokenPipeError):
                _silence_stdout()
            code = EXIT_USAGE if isinstance(e, ArgumentError) else EXIT_ERROR
            raise CliError(_one_line(e), exit_code=code) from e

    def main(self, args=None, prog_name=None, complete_var=None, standalone_mode=True, **extra):
        """Click's main, with one message style for every way out: ``vcodec: error: ...`` and status 2 for usage
        errors, status 1 for other errors, ``vcodec: interrupted`` and status 130 for Ctrl-C."""
        if not standalone_mode:
            return super().main(args, prog_name, complete_var, standalone_mode=False, **extra)
        try:
            rv = super().main(args, prog_name, complete_var, standalone_mode=False, **extra)
        except click.UsageError as e:
            where = f" (see `{e.ctx.command_path} --help`)" if e.ctx is not None else ""
            click.echo(f"vcodec: error: {' '.join(e.format_message().split())}{where}", err=True)
            sys.exit(EXIT_USAGE)
        except CliError as e:
            e.show()
            sys.exit(e.exit_code)
        except click.ClickException as e:
            click.echo(f"vcodec: error: {' '.join(e.format_message().split())}", err=True)
            sys.exit(e.exit_code)
        except (click.Abort, KeyboardInterrupt, EOFError):
            click.echo("vcodec: interrupted", err=True)
            sys.exit(EXIT_INTERRUPTED)
        sys.exit(rv if isinstance(rv, int) else 0)


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
      vcodec decode clip.vcb -o out.mkv       decode (.y4m .mkv .mp4 .webm f_%05d.png -)
      vcodec compare ref.mp4 out.mkv          PSNR / MS-SSIM of one video against another
      vcodec info clip.vcb                    what a .vcb holds
      vcodec models                           shipped models and their rate points

    Set VCODEC_DEBUG=1 for tracebacks.
    """
    keep_freed_memory()


def _emit_json(obj, to_stderr: bool) -> None:
    click.echo(json.dumps(obj, sort_keys=False), err=to_stderr)


def _with_context(name: str, salvage_hint: bool, verify_hint: bool = False):
    """Turn a bitstream error into one line that names the file (and suggests --salvage or info --verify when
    they can help: not when the file header itself is unreadable, which ``_open_vcb`` marks unsalvageable)."""
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
            elif verify_hint and getattr(e, "salvageable", True) and isinstance(
                    e, (ChecksumError, CorruptDataError, TruncatedError)):
                hint = " (use `vcodec info --verify` to see what is intact)"
            raise CliError(f"{name}: {_one_line(e)}{hint}") from e

    return ctx()


def _refuse_tty(path: str, what: str) -> None:
    """Refuse binary output to a terminal: ``-`` on one, or a path naming one (``/dev/stdout``, ``/dev/tty``)."""
    if (path == "-" and sys.stdout.isatty()) or (path != "-" and _is_terminal(path)):
        raise CliError(f"refusing to write {what} to a terminal; redirect standard output or use -o FILE")


def _is_terminal(path: str) -> bool:
    """Whether ``path`` (links followed) is a terminal device; opened without becoming one's controlling terminal."""
    try:
        if not stat.S_ISCHR(os.stat(path).st_mode):
            return False
        fd = os.open(path, os.O_WRONLY | os.O_NOCTTY | os.O_NONBLOCK)
    except OSError:
        return False
    try:
        return os.isatty(fd)
    finally:
        os.close(fd)


def _time(value: str) -> Fraction:
    """Seconds as ``12.5``, ``1:02.5`` or ``1:00:02.5``."""
    try:
        parts = [Fraction(p) for p in value.split(":")]
    except (ValueError, ZeroDivisionError):
        raise click.BadParameter(f"{value!r} is not a time (seconds, or [[hh:]mm:]ss)") from None
    if len(parts) > 3 or any(p < 0 for p in parts):
        raise click.BadParameter(f"{value!r} is not a time (seconds, or [[hh:]mm:]ss)")
    t = Fraction(0)
    for p in parts:
        t = t * 60 + p
    return t


class TimeType(click.ParamType):
    name = "time"

    def convert(self, value, param, ctx):
        return value if isinstance(value, Fraction) else _time(str(value))


TIME = TimeType()


def _range_options(f):
    f = click.option("--duration", type=TIME, default=None, metavar="T", help="only this long (seconds)")(f)
    f = click.option("--frames", "num_frames", type=click.IntRange(min=1), default=None, metavar="N",
                     help="only N frames")(f)
    f = click.option("--start", type=TIME, default=None, metavar="T",
                     help="start at T (seconds, or [[hh:]mm:]ss)")(f)
    return f


def _threads_option(f):
    return click.option("--threads", type=click.IntRange(min=1), default=None, metavar="N",
                        help="CPU threads for the model (default: torch's choice)")(f)


def _default_output(input: str, ext: str) -> str:
    """``in.mp4`` -> ``in.vcb``, ``in.vcb`` -> ``in.mkv`` (beside the input), an image sequence
    ``shots/img_%04d.png`` -> ``shots/img.vcb`` (``shots/frames.vcb`` for a bare ``%04d.png``); none for standard
    input."""
    if input == "-":
        raise click.UsageError("-o is required when the input is standard input")
    from vcodec.io.files import is_pattern, pattern_stem

    if is_pattern(input) and not os.path.exists(input):  # an image sequence, not a file of that name
        return pattern_stem(input) + ext
    stem = os.path.splitext(input)[0]
    return stem + ext


@main.command()
@click.argument("input", metavar="INPUT")
@click.option("-o", "--output", default=None, metavar="OUT.vcb",
              help="the .vcb to write (- for stdout; default: INPUT with .vcb for its extension)")
@click.option("--quality", type=int, default=None, metavar="N",
              help="rate point of the model (see `vcodec models`); default: its default quality (marked there)")
@click.option("--bitrate", default=None, metavar="RATE",
              help="instead of --quality: target video bitrate in bits per second (500k, 1.5M); each chunk gets "
                   "the rate point that keeps the stream on target")
@click.option("--keyint", type=click.IntRange(1, 10**7), default=DEFAULT_KEYINT, show_default=True, metavar="N",
              help="frames per keyframe period: seeking and --salvage restart at keyframes; up to 17 codes every "
                   "17-frame window on its own")
@click.option("--scenecut/--no-scenecut", default=True, show_default=True,
              help="also start a keyframe period where a new shot begins")
@click.option("--refine", type=click.IntRange(0, 1000), default=0, show_default=True, metavar="STEPS",
              help="encoder-side latent refinement: STEPS optimisation steps per latent frame against the decoder; "
                   "better pictures for a few more bytes, encoding many times slower (e.g. 10; up to 1920x1080)")
@click.option("--colour-correct/--no-colour-correct", "colour", default=None,
              help="colour corrections where they pay (28 or 64 bytes; truer colours, higher PSNR-YUV): fit every "
                   "chunk (the encoder decodes all it codes: about 2x the encoding time), or none; default: each "
                   "keyframe period's first chunk, carried on through the period (every chunk with --refine)")
@click.option("--model", default=DEFAULT_MODEL, show_default=True, metavar="NAME|PATH",
              help="shipped model name or a .pt checkpoint")
@click.option("--device", type=click.Choice(["auto", "cpu", "cuda"]), default="auto", show_default=True)
@_range_options
@_threads_option
@click.option("--psnr", is_flag=True, help="also measure the quality of what was encoded (PSNR-Y/YUV, MS-SSIM)")
@click.option("-y", "--overwrite", is_flag=True, help="replace OUT.vcb if it exists")
@click.option("--json", "as_json", is_flag=True, help="print one JSON summary (no progress bar)")
@click.option("--size", default=None, metavar="WxH", help="raw .yuv input: frame size (default: from its name)")
@click.option("--fps", default=None, metavar="RATE", help="raw .yuv input: frame rate (default: from its name)")
@click.option("--pix-fmt", default=None, metavar="FMT", help="raw .yuv input: yuv420p, yuv420p10le, ... (default: name)")
def encode(input, output, quality, bitrate, keyint, scenecut, refine, colour, model, device, start, num_frames, duration,
           threads, psnr, overwrite, as_json, size, fps, pix_fmt):
    """Encode INPUT (any video FFmpeg opens, .y4m included; - for stdin) into a .vcb.

    Frames are read, encoded and written one window at a time, so memory stays flat however long the video.
    Size, frame count and exact frame rate are kept; audio tracks are copied in. Alpha is dropped and sources
    deeper than 8 bits are rounded to 8 bits (with a warning); rotation metadata is applied.
    """
    from vcodec import api

    if bitrate is not None:
        from vcodec.ratecontrol import parse_bitrate

        if quality is not None:
            raise click.UsageError("--quality and --bitrate exclude each other")
        try:
            bitrate = parse_bitrate(bitrate)
        except ValueError as e:
            raise click.BadParameter(str(e), param_hint="--bitrate") from None
    output = output or _default_output(input, ".vcb")
    _refuse_tty(output, "a .vcb")
    if size or fps or pix_fmt or input.lower().endswith(".yuv"):  # raw YUV: format from the name and options
        from vcodec.io.rawyuv import raw_yuv

        input = raw_yuv(input, size=size, fps=fps, pix_fmt=pix_fmt)
    res = api.encode_video(input, output, quality=quality, model=model, device=device, overwrite=overwrite,
                           progress=not as_json, start=start, frames=num_frames, duration=duration, psnr=psnr,
                           threads=threads, keyint=keyint, bitrate=bitrate, scenecut=scenecut, refine=refine,
                           colour=colour)
    if as_json:
        _emit_json(res.to_json(), to_stderr=output == "-")
        return
    audio = f", audio {human_bytes(res.audio_bytes)}" if res.audio_tracks else ""
    if res.bitrate_target is None:
        rate = f"quality {res.quality}"
    else:
        from vcodec.ratecontrol import bitrate_text
        rate = f"--bitrate {bitrate_text(res.bitrate_target)}: {_qualities_text(res.chunk_qualities)}"
    rate += f", refined ({_n(res.refine, 'step')} a latent frame)" if res.refine else ""
    rate += f", colour-corrected ({_n(res.colour_chunks, 'chunk')})" if res.colour else ""
    click.echo(
        f"{_summary_head(res)}, {human_bytes(res.bytes)} ({_video_rate(res.to_json())}, {res.video_bpp:.4f} bpp{audio}), "
        f"{res.seconds:.2f} s ({res.fps:.1f} frames/s), model {res.model} {rate}"
        + (f", keyframes at {_n(res.scene_cut_keyframes, 'scene cut')}" if res.scene_cut_keyframes else ""),
        err=True,
    )
    if res.quality_metrics is not None:
        from vcodec.compare import describe

        click.echo(f"quality: {describe(res.quality_metrics)}", err=True)


@main.command()
@click.argument("input", metavar="IN.vcb")
@click.option("-o", "--output", default=None, metavar="OUTPUT",
              help="video to write (.y4m .mkv .mp4 .webm NAME_%05d.png or -; default: IN with .mkv for its extension)")
@click.option("-y", "--overwrite", is_flag=True, help="replace OUTPUT if it exists")
@click.option("--salvage", is_flag=True, help="skip damaged chunks and decode the intact ones")
@click.option("--model", default=None, metavar="NAME|PATH",
              help="weights to decode with, when the ones the header names are not shipped (same hash required)")
@click.option("--device", type=click.Choice(["auto", "cpu", "cuda"]), default="auto", show_default=True)
@click.option("--pix-fmt", type=click.Choice(["yuv444p16le", "yuv444p", "yuv420p"]), default=None,
              help="y4m pixel format (default yuv444p16le, exact); .mp4: yuv420p (default) or yuv444p")
@click.option("--precision", type=click.Choice(PRECISIONS), default="fp32", show_default=True,
              help="the decoder network's number format: bf16 is faster on GPUs and on CPUs with native bfloat16 "
                   "(which it needs), its pixels a little further from the source (docs/CLI.md)")
@_range_options
@_threads_option
@click.option("--json", "as_json", is_flag=True, help="print one JSON summary (no progress bar)")
def decode(input, output, overwrite, salvage, model, device, pix_fmt, precision, start, num_frames, duration,
           threads, as_json):
    """Decode IN.vcb (- for stdin) to OUTPUT.

    The output has the stream's frame count, size and exact frame rate; audio tracks are muxed back into
    containers that take them.

    \b
    OUTPUT's container follows its extension:
      .y4m  raw YUV4MPEG2, exact (C444p16: converts back to the decoded RGB
            bit for bit; --pix-fmt yuv444p or yuv420p: 8-bit, not exact)
      .mkv  FFV1 RGB, lossless; audio tracks copied
      .mp4  H.264 yuv420p (x264 crf 12), faststart: a lossy re-encode that
            browsers play (odd sizes padded by one edge row/column, or
            --pix-fmt yuv444p); audio copied (AAC, MP3, Opus, FLAC), else AAC
      .webm VP9 (crf 24) + Opus: lossy, for the web
      NAME_%05d.png  one lossless PNG a frame, numbered from 1 (NAME.png: a one-frame stream)
      -     y4m on standard output
    """
    from vcodec import api

    output = output or _default_output(input, ".mkv")
    _refuse_tty(output, "video")
    with _with_context(input if input != "-" else "<stdin>", salvage_hint=not salvage):
        res = api.decode_video(input, output, overwrite=overwrite, salvage=salvage, model=model, device=device,
                               pix_fmt=pix_fmt, progress=not as_json, start=start, frames=num_frames,
                               duration=duration, threads=threads, precision=precision)
    if as_json:
        _emit_json(res.to_json(), to_stderr=output == "-")
    else:
        lossy = "lossy re-encode" if res.lossy else res.note
        skipped = f", skipped {_n(len(res.skipped), 'damaged part')}" if res.skipped else ""
        precision = f", decoder in {res.precision}" if res.precision != "fp32" else ""
        click.echo(
            f"{_summary_head(res)}, {res.container} {res.codec} {res.pix_fmt} ({lossy}), {res.seconds:.2f} s "
            f"({res.fps:.1f} frames/s{precision}){skipped}",
            err=True,
        )


def _summary_head(res) -> str:
    """The start of the one-line summary of an encode or decode: output, frames, size, rate."""
    return f"{res.output}: {_n(res.frames, 'frame')} {res.width}x{res.height} @ {human_rate(res.frame_rate)} fps"


@main.command()
@click.argument("input", metavar="IN.vcb")
@click.option("--verify", is_flag=True,
              help="read every record and check its CRC; report what is damaged and how many frames it costs")
@click.option("--json", "as_json", is_flag=True, help="print JSON")
def info(input, verify, as_json):
    """Show what IN.vcb holds (without decoding it; no model needed, --verify included).

    With --verify, exit status 1 when anything is damaged."""
    from vcodec import api

    with _with_context(input if input != "-" else "<stdin>", salvage_hint=False, verify_hint=not verify):
        d = api.info(input, verify=verify)
    if as_json:
        _emit_json(d, to_stderr=False)
    else:
        click.echo(_info_text(d))
    if verify and not d["verify"]["ok"]:
        sys.exit(EXIT_ERROR)


def _keyint_text(d: dict) -> str:
    """How the stream placed its keyframes: its header's period and the periods that started early, at scene cuts
    ("" where the header does not say)."""
    if not d.get("keyint"):
        return ""
    cuts = d.get("scene_cut_keyframes")
    at_cuts = f"; {cuts} of them at scene cuts" if cuts and cuts > 1 else "; 1 of them at a scene cut" if cuts else ""
    return f" (every {_n(d['keyint'], 'frame')}{at_cuts})"


def _info_text(d: dict) -> str:
    bpp = f"{d['bpp']:.4f} bpp" if d["bpp"] is not None else "? bpp"
    with_audio = ""
    if d.get("tracks") and d.get("video_bpp") is not None:   # the video's own, as encode reports it, then the file's
        bpp, with_audio = f"{d['video_bpp']:.4f} bpp video", f", {bpp} with the audio"
    lines = [
        f"file:        {d['file']} ({human_bytes(d['bytes']) if d['bytes'] is not None else 'size unknown'})",
        f"video:       {d['width']}x{d['height']} @ {human_rate(d['frame_rate'])} fps, {_n(d['frames'], 'frame')} "
        f"({d['duration']:.3f} s) in {_n(d['chunks'], 'chunk')}, {_video_rate(d)}",
        f"keyframes:   {_n(d['keyframe_chunks'], 'keyframe chunk')}"
        + _keyint_text(d) + f", format version {d['format_version']}",
        f"rate:        {bpp} ({_rate_text(d)}){with_audio}"
        + (f", {_n(d['colour_chunks'], 'chunk')} colour-corrected" if d.get("colour_chunks") else ""),
        f"model:       {d['model']} (weights sha256 {d['weights_hash'][:16]}...)",
        f"coder:       {d['coder']}",
    ]
    for t in d["tracks"]:
        extra = " ".join(f"{t[k]} Hz" if k == "sample_rate" else str(t[k]) for k in ("sample_rate", "layout")
                         if t.get(k))
        lines.append(f"track {t['id']}:     {t['kind']} {t['codec']} {extra}".rstrip())
    if d["tracks"]:
        lines.append(f"audio:       {human_bitrate(d.get('audio_bytes'), d['duration'])} (all tracks)")
    src = d.get("source")
    if isinstance(src, dict):
        lines.append("source:      " + ", ".join(f"{k}={v}" for k, v in src.items()))
    v = d.get("verify")
    if v is not None:
        lines.append(_verify_text(v))
    return "\n".join(lines)


def _rate_text(d: dict) -> str:
    """``quality 3, 1/6 token planes, 8-bit tokens``, or for a rate-controlled stream the target and the chunks'
    rates (a header's "levels" are token planes: one level of the residual quantizer's channels each)."""
    from vcodec.ratecontrol import bitrate_text

    if d.get("bitrate_target") is None:
        return f"quality {d['quality']}, {d['levels']}/{d['max_levels']} token planes, {d['token_bits']}-bit tokens"
    if d.get("chunk_qualities") is not None:
        return f"--bitrate {bitrate_text(d['bitrate_target'])}; {_qualities_text(d['chunk_qualities'])}"
    rates = ", ".join(f"{n} at {r.replace('x', ' plane(s) x ')} bits" for r, n in d["chunk_rates"].items())
    return f"--bitrate {bitrate_text(d['bitrate_target'])}; chunks: {rates}"


def _qualities_text(counts: dict[str, int]) -> str:
    """A rate-controlled stream's chunks by quality: ``qualities 5 x3, 6 x1 (chunks)``."""
    return "qualities " + ", ".join(f"{q} x{n}" for q, n in counts.items()) + " (chunks)"


def _verify_text(v: dict) -> str:
    """``info --verify``'s verdict, a few lines."""
    intact = f"{_n(v['intact_chunks'], 'chunk')} ({_n(v['intact_frames'], 'frame')}) intact"
    if v["ok"]:
        extra = v.get("trailing_bytes")
        extra = f"; {_n(extra, 'byte')} after the end-of-stream record, ignored" if extra else ""
        return f"verify:      OK: every record's CRC checks; {intact}{extra}"
    if v["lost_frames"] is not None:
        lost = f"{_n(v['lost_frames'], 'frame')} of {v['expected_frames']} lost"
    else:
        lost = "the total frame count is unknown (the end record is missing)"
    lines = [f"verify:      DAMAGED: {intact}; {_n(v['damaged_chunks'], 'chunk')} damaged; {lost}"]
    if v["truncated"]:
        lines.append("             truncated: the stream ends early")
    for first, n in v["gaps"]:
        lines.append(f"             frames {first}-{first + n - 1} lost ({_n(n, 'frame')})")
    lines += [f"             {m}" for m in v["damage"]]
    if v["intact_chunks"]:
        lines.append("             `vcodec decode --salvage` decodes the intact chunks, filling the gaps")
    else:
        lines.append("             no video chunk is intact: nothing can be salvaged")
    return "\n".join(lines)


def _n(k: int, noun: str) -> str:
    """``1 frame``, ``2 frames``."""
    return f"{k} {noun}" if k == 1 else f"{k} {noun}s"


@main.command()
@click.option("--json", "as_json", is_flag=True, help="print JSON")
def models(as_json):
    """List the shipped models, their rate points (quality -> bits x token planes) and measured bpp."""
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
            star = " (default)" if rp["quality"] == m["default_quality"] else ""
            click.echo(f"  quality {rp['quality']}: {rp['bits']} bits x {rp['levels']} plane(s), {bpp}{star}")


@main.command(
    context_settings={"ignore_unknown_options": True, "allow_interspersed_args": False, "help_option_names": []},
    add_help_option=False,
)
@click.argument("args", nargs=-1, type=click.UNPROCESSED)
def bench(args):
    """Rate-distortion benchmark against x264/x265/SVT-AV1/VVenC (runs `python -m benchmarks`; see its --help).

    `--threads N` sets the CPU threads of its processes."""
    if importlib.util.find_spec("benchmarks") is None:
        raise CliError("the benchmarks are not installed here (a source checkout with the [bench] extra has them)")
    args, env = list(args), dict(os.environ)
    for i, a in enumerate(args):  # --threads N / --threads=N: CPU threads of every process (torch and FFmpeg)
        if a == "--threads" or a.startswith("--threads="):
            value = a.partition("=")[2] or (args[i + 1] if i + 1 < len(args) else "")
            if not value.isdigit() or int(value) < 1:
                raise click.BadParameter(f"{value!r} is not a positive integer", param_hint="'--threads'")
            del args[i:i + (1 if "=" in a else 2)]
            env.update(OMP_NUM_THREADS=value, MKL_NUM_THREADS=value)
            break
    rc = subprocess.call([sys.executable, "-m", "benchmarks", *args], env=env)
    if rc:
        sys.exit(rc)


@main.command()
@click.argument("ref", metavar="REF")
@click.argument("dist", metavar="DIST")
@click.option("--json", "as_json", is_flag=True, help="print JSON: means and per-frame values")
@click.option("--csv", "csv_path", default=None, metavar="FILE.csv", help="write the per-frame values to FILE.csv")
@click.option("--vmaf", is_flag=True, help="also VMAF (needs an FFmpeg with libvmaf: the [bench] extra's)")
@click.option("-y", "--overwrite", is_flag=True, help="replace FILE.csv if it exists")
@_range_options
def compare(ref, dist, as_json, csv_path, vmaf, overwrite, start, num_frames, duration):
    """Quality of DIST against REF: PSNR-Y, PSNR-YUV (6:1:1, 4:2:0 chroma) and MS-SSIM, per frame and overall.

    Any two videos FFmpeg opens, with the same size and frame count (a .vcb: decode it first). PSNR is
    reported as the per-frame mean (mean of each frame's PSNR) and, for PSNR-Y, also global (from the MSE over
    all frames). --start/--frames/--duration pick the part of REF that DIST holds (e.g. a range decoded with the
    same options): REF from --start against DIST from its first frame."""
    from vcodec.compare import compare_videos, describe, write_csv
    from vcodec.io.files import check_output

    if csv_path:  # before any work: an existing file (or one of the inputs) is refused
        for src in (ref, dist):
            check_output(csv_path, overwrite=overwrite, src=src)
    r = compare_videos(ref, dist, vmaf=vmaf, start=start, frames=num_frames, duration=duration)
    if csv_path:
        write_csv(csv_path, r, overwrite=overwrite)
    if as_json:
        _emit_json(r, to_stderr=False)
        return
    click.echo(f"{r['dist']} vs {r['ref']}: {_n(r['frames'], 'frame')} {r['width']}x{r['height']}")
    click.echo(f"  {describe(r['mean'])}")
    if vmaf:
        v = r["vmaf"]
        click.echo(f"  VMAF {v['mean']:.2f} (mean)" if v["available"] else f"  VMAF unavailable: {v['reason']}")


def _video_rate(d: dict) -> str:
    """The video bitrate of an ``info`` or encode summary (:func:`vcodec.results.video_rate`)."""
    kbps = d.get("video_kbps")
    return "video bitrate unknown" if kbps is None else f"video {_kbps_text(kbps)}"


def human_bytes(n: int | None) -> str:
    """``812 B``, ``12.3 kB``, ``4.56 MB`` (SI units, as ffmpeg prints sizes)."""
    if n is None:
        return "?"
    for unit, size in (("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if n >= size:
            return f"{n / size:.3g} {unit}" if n / size < 100 else f"{n / size:.0f} {unit}"
    return f"{n} B"


def human_rate(rate: str) -> str:
    """``30000/1001 (29.97)``; whole rates as ``25``."""
    f = Fraction(rate)
    return str(f.numerator) if f.denominator == 1 else f"{rate} ({float(f):.3f}".rstrip("0").rstrip(".") + ")"


def human_bitrate(nbytes: int | None, seconds) -> str:
    """Bits per second of ``nbytes`` over ``seconds``: ``812 kbit/s``."""
    if nbytes is None or not seconds:
        return "bitrate unknown"
    return _kbps_text(nbytes * 8 / float(seconds) / 1000)


def _kbps_text(kbps: float) -> str:
    """``81.2 kbit/s``, ``812 kbit/s``."""
    return f"{kbps:.1f} kbit/s" if kbps < 100 else f"{kbps:.0f} kbit/s"


if __name__ == "__main__":  # python -m vcodec.cli
    main()
