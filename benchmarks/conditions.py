"""Named test conditions (`--conditions NAME`): how the classical anchors are configured.

A preset fixes the coding structure (intra period, GOP), the rate points and the per-codec settings; everything else
(source conversion, constant QP, PSNR tuning, no adaptive quantisation, one thread, raw elementary streams) is common
to all presets and described in README.md. The codecs' `description()` and `settings()` record the exact options
each one ran with, so a results file names what a preset meant at the time.

Sources of the presets:
- JVET common test conditions for SDR video: JVET-T2010 (VVC CTC, the VTM reference configurations
  `encoder_randomaccess_vtm.cfg` / `encoder_lowdelay_vtm.cfg`) and its HEVC predecessor JCTVC-L1100 (HM CTC).
  Random access (RA): intra period about one second -- 32 pictures at 20-30 fps -- with a CRA picture at each intra
  period (the first picture IDR) and a dyadic hierarchical-B GOP of 32 pictures (VTM; GOP 16 in HM); low delay (LD):
  `IntraPeriod = -1` (only the first picture is intra), no picture reordering, GOP 8 with B-slices that reference
  past pictures only (low-delay B). QPs 22, 27, 32, 37.
- VVenC: the same structure through its own parameters (`intraperiod`, `gopsize`, `decodingrefreshtype=cra` with
  `poc0idr=1`; LD: `intraperiod=-1:gopsize=8:picreordering=0:decodingrefreshtype=none`, which libvvenc requires for
  low delay), preset medium. VVenC is a faster encoder than VTM, so these are VVC "anchor-like", not VTM numbers.
- x265 (documented options, x265.readthedocs.io "Command Line Options"): RA `--keyint 32 --min-keyint 32
  --open-gop --bframes 7 --b-adapt 0 --b-pyramid` (b-adapt 0 fixes the GOP from keyint and bframes; x265 has no
  32-picture dyadic hierarchy, so an 8-picture mini-GOP with a reference B-pyramid is the closest), LD
  `--keyint -1 --bframes 0` (`-1` = one key frame at the start; P-pictures only, i.e. low-delay P rather than the
  CTC's low-delay B), both with `--scenecut 0`.
- x264: the same as x265 in its own syntax (`keyint=infinite` for LD, `b-pyramid=normal` for RA).
- SVT-AV1 (Docs/Parameters.md): RA `--pred-struct 2 --hierarchical-levels 5` (mini-GOP 32) `--keyint 32
  --irefresh-type 1` (forward key frames, the AV1 counterpart of a CRA); LD `--pred-struct 1 --keyint -1`. AV1 has
  no JVET CTC; its QP scale (0-63) keeps the default seven-point ladder.
"""

from __future__ import annotations

from dataclasses import dataclass, field

CLASSICAL = ("x264", "x265", "svtav1", "vvenc")
JVET_QPS = (37, 32, 27, 22)


@dataclass(frozen=True)
class Conditions:
    name: str
    summary: str
    structure: str  # benchmarks.codecs.STRUCTURES
    intra_period: int  # pictures between intra pictures; -1 = only the first
    points: dict = field(default_factory=dict)  # {codec: rate points}; absent = the codec's default ladder
    source: str = ""

    def codec_kwargs(self, name: str) -> dict:
        """Constructor arguments of codec `name` under these conditions (vcodec keeps its own structure)."""
        if name not in CLASSICAL:
            return {}
        kwargs = {"structure": self.structure, "intra_period": self.intra_period}
        if name in self.points:
            kwargs["points"] = self.points[name]
        return kwargs

    def to_json(self) -> dict:
        return {
            "name": self.name,
            "summary": self.summary,
            "structure": self.structure,
            "intra_period": self.intra_period,
            "points": {k: list(v) for k, v in self.points.items()},
            "source": self.source,
        }


PRESETS = {
    c.name: c
    for c in (
        Conditions(
            "default",
            "vcodec's original conditions: closed GOPs every 16 pictures (IDR / key frames), random-access mini-GOPs"
            " (VVenC GOP 16, SVT-AV1 4 levels, x264/x265 adaptive B), 7 QPs 47..17",
            "default",
            16,
            source="benchmarks/README.md 'Test conditions'",
        ),
        Conditions(
            "jvet-ra",
            "random access: intra period 32 (CRA / open GOP, first picture IDR), hierarchical GOP 32 (VVenC,"
            " SVT-AV1), fixed 8-picture B-pyramid (x264/x265), QPs 22, 27, 32, 37",
            "ra",
            32,
            points={"x264": JVET_QPS, "x265": JVET_QPS, "vvenc": JVET_QPS},
            source="JVET-T2010 RA (encoder_randomaccess_vtm.cfg); JCTVC-L1100; x265 and SVT-AV1 documented options",
        ),
        Conditions(
            "jvet-ld",
            "low delay: intra period -1 (one intra picture), no reordering (VVenC low-delay B GOP 8, SVT-AV1"
            " low-delay, x264/x265 P-only), QPs 22, 27, 32, 37",
            "ld",
            -1,
            points={"x264": JVET_QPS, "x265": JVET_QPS, "vvenc": JVET_QPS},
            source="JVET-T2010 LD (encoder_lowdelay_vtm.cfg); JCTVC-L1100; x265 and SVT-AV1 documented options",
        ),
    )
}


def get(name: str) -> Conditions:
    try:
        return PRESETS[name]
    except KeyError:
        raise ValueError(f"unknown --conditions {name!r}; choose from {', '.join(PRESETS)}") from None
