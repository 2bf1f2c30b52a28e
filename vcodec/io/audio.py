"""Audio passthrough: audio tracks are carried as their original compressed packets, never re-encoded on the way
into a ``.vcb``.

A track's codec parameters (codec, sample rate, channel layout, codec extradata, time base) are kept as FFmpeg
serialises them: a tiny NUT container holding the stream header and one 1-byte placeholder packet (about 250
bytes, :func:`track_template`). On decode that header rebuilds an identical stream with
``add_stream_from_template`` and the packets are muxed back unchanged. Only when the output container cannot hold
the codec (e.g. PCM into ``.mp4``) is the track re-encoded, to AAC, with a warning.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from fractions import Fraction

import av

_TEMPLATE_FORMAT = "nut"


@dataclass(frozen=True)
class AudioTrack:
    """One carried audio track. ``template`` holds FFmpeg's codec parameters (see the module docstring)."""

    codec: str
    sample_rate: int
    channels: int
    layout: str
    time_base: Fraction
    template: bytes
    language: str | None = None
    extradata: bytes = b""  # the codec's private data (also inside ``template``), for readers of the format

    def describe(self) -> str:
        return f"{self.codec} {self.sample_rate} Hz {self.layout}"


@dataclass(frozen=True)
class AudioPacket:
    """One compressed audio packet; times in the track's ``time_base``, relative to the first video frame."""

    track: int
    data: bytes
    pts: int | None
    dts: int | None
    duration: int
    keyframe: bool


def track_from_stream(stream: av.audio.stream.AudioStream) -> AudioTrack:
    """Describe an input audio stream, including its serialised codec parameters."""
    buf = io.BytesIO()
    with av.open(buf, "w", format=_TEMPLATE_FORMAT) as out:
        s = out.add_stream_from_template(stream)
        # A header alone does not open again (FFmpeg probes packets), so add one placeholder byte.
        pkt = av.Packet(b"\0")
        pkt.pts = pkt.dts = 0
        pkt.time_base = stream.time_base
        pkt.stream = s
        out.mux(pkt)
    cc = stream.codec_context
    return AudioTrack(
        codec=cc.name,
        sample_rate=int(cc.sample_rate or 0),
        channels=int(cc.channels or 0),
        layout=cc.layout.name if cc.layout is not None else "",
        time_base=Fraction(stream.time_base),
        template=buf.getvalue(),
        language=stream.language,
        extradata=bytes(cc.extradata or b""),
    )


class TemplateStream:
    """Opens a track's template; ``.stream`` can be passed to ``add_stream_from_template``. Keep it open while
    the output stream is used."""

    def __init__(self, track: AudioTrack):
        self._container = av.open(io.BytesIO(track.template), "r", format=_TEMPLATE_FORMAT)
        self.stream = self._container.streams.audio[0]

    def close(self) -> None:
        self._container.close()


def to_av_packet(p: AudioPacket, time_base: Fraction) -> av.Packet:
    pkt = av.Packet(p.data)
    pkt.pts = p.pts
    pkt.dts = p.dts
    pkt.duration = p.duration
    pkt.time_base = time_base
    pkt.is_keyframe = p.keyframe
    return pkt


def trim_audio(packets: list[AudioPacket], tracks, t0: Fraction, t1: Fraction | None) -> list[AudioPacket]:
    """The packets that sound between ``t0`` and ``t1`` seconds (``t1`` None: to the end), times moved so that
    ``t0`` becomes 0. Compressed audio is cut at packet boundaries (a packet overlapping either end is kept)."""
    if not t0 and t1 is None:
        return packets
    out = []
    for p in packets:
        tb = tracks[p.track].time_base
        if p.pts is None:
            continue
        start, end = p.pts * tb, (p.pts + max(p.duration, 0)) * tb
        before = end <= t0 if p.duration > 0 else start < t0
        if before or (t1 is not None and start >= t1):
            continue
        shift = round(t0 / tb)
        out.append(AudioPacket(track=p.track, data=p.data, pts=p.pts - shift,
                               dts=None if p.dts is None else p.dts - shift, duration=p.duration,
                               keyframe=p.keyframe))
    return out
