"""Video I/O: reading any FFmpeg-readable source as 8-bit RGB frames, writing y4m/mkv/mp4, audio passthrough and
atomic output files. :func:`resolve_input` / :func:`resolve_output` (in :mod:`vcodec.io.files`) are the one place
that tells a path, ``"-"`` and a file object apart. See :mod:`vcodec.io.source` and :mod:`vcodec.io.sink` for how unusual inputs and each
output container are handled."""

from vcodec.io.audio import AudioPacket, AudioTrack
from vcodec.io.files import Endpoint, atomic_output, check_output, resolve_input, resolve_output
from vcodec.io.sink import DEFAULT_Y4M_PIX_FMT, KINDS, Y4M_PIX_FMTS, VideoSink, describe_kind, output_kind, write_video
from vcodec.io.source import SourceInfo, VideoSource, open_source, read_video

__all__ = [
    "AudioPacket",
    "AudioTrack",
    "DEFAULT_Y4M_PIX_FMT",
    "Endpoint",
    "KINDS",
    "SourceInfo",
    "VideoSink",
    "VideoSource",
    "Y4M_PIX_FMTS",
    "atomic_output",
    "check_output",
    "describe_kind",
    "open_source",
    "output_kind",
    "read_video",
    "resolve_input",
    "resolve_output",
    "write_video",
]
