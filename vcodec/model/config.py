"""Tokenizer configuration: one dataclass, stored inside every checkpoint."""
from __future__ import annotations

from dataclasses import asdict, dataclass, fields

SPATIAL_FACTOR = 8  # fixed by the architecture: 2-level Haar patching (4x) + one learned 2x downsampling


@dataclass(frozen=True)
class TokenizerConfig:
    """Geometry and width of the causal MAGVIT-v2-style tokenizer.

    Fixed geometry: 2-level Haar patching (4x spatial) + one learned 2x spatial
    downsampling = 8x spatial; the first frame alone, then every group of
    ``temporal_factor`` frames, becomes one latent frame.
    """

    name: str = "vcodec-default"
    hi_channels: int = 64        # channels at 1/4 resolution (after Haar patching)
    lo_channels: int = 128       # channels at 1/8 resolution (latent grid)
    enc_hi_blocks: int = 1       # residual blocks at 1/4 resolution in the encoder
    enc_lo_blocks: int = 2       # residual blocks at 1/8 resolution in the encoder
    dec_lo_blocks: int = 2       # residual blocks at 1/8 resolution in the decoder
    dec_hi_blocks: int = 2       # residual blocks at 1/4 resolution in the decoder
    temporal_kernel: int = 2     # causal temporal extent of the 1/8-resolution convolutions
    token_bits: int = 32         # bits per coded token (one token plane holds token_bits latent channels)
    max_levels: int = 4          # residual LFQ levels per latent channel
    latent_channels: int = 0     # LFQ channels, a multiple of token_bits (0 = token_bits, the v1 layout)
    entropy_group_bits: int = 8  # LFQ entropy penalty is computed jointly over groups of this many bits
    temporal_factor: int = 4     # frames per latent frame (after the first)
    window_frames: int = 17      # frames per independently coded window (1 + 4k)

    # Rate points, low to high: (bits, planes) = code the first `planes` token planes with the first `bits`
    # bits of each (nested prefixes; absent channels decode as 0). () = one point per plane with all bits.
    quality_points: tuple = ()

    def __post_init__(self) -> None:
        object.__setattr__(self, "quality_points", tuple(tuple(int(v) for v in qp) for qp in self.quality_points))
        if self.channels % self.token_bits:
            raise ValueError("latent_channels must be a multiple of token_bits")
        for bits, planes in self.quality_points:
            if not (1 <= bits <= self.token_bits and 1 <= planes <= self.planes):
                raise ValueError(f"quality point {(bits, planes)} outside 1..{self.token_bits} bits, "
                                 f"1..{self.planes} planes")
        if self.token_bits % self.entropy_group_bits:
            raise ValueError("token_bits must be a multiple of entropy_group_bits")
        if (self.window_frames - 1) % self.temporal_factor:
            raise ValueError("window_frames must be 1 + k * temporal_factor")
        if not 1 <= self.token_bits <= 32:
            raise ValueError("token_bits must be in 1..32")

    @property
    def channels(self) -> int:
        """LFQ latent channels."""
        return self.latent_channels or self.token_bits

    @property
    def planes(self) -> int:
        """Token planes of a full-rate latent frame: level-major, ``plane = level * groups + group`` where
        group ``g`` holds channels ``g*token_bits .. (g+1)*token_bits - 1`` (bit ``k`` = channel ``g*token_bits+k``)."""
        return self.channels // self.token_bits * self.max_levels

    @property
    def qualities(self) -> tuple[tuple[int, int], ...]:
        """(bits, planes) of each quality setting, quality 1 first."""
        return self.quality_points or tuple((self.token_bits, p) for p in range(1, self.planes + 1))

    # ---- geometry: the one place outside the network that knows it --------------------------------
    @property
    def spatial_factor(self) -> int:
        """Pixels per latent position along each axis: 2-level Haar patching (4x) then one learned 2x."""
        return SPATIAL_FACTOR

    def latent_frames(self, num_frames: int, continues: bool = False) -> int:
        """Latent frames of a window of ``num_frames`` >= 1 video frames: the first alone, then one per
        ``temporal_factor`` frames, i.e. ``1 + ceil((num_frames - 1) / temporal_factor)``; a window that
        ``continues`` a stream has no lone first frame: ``ceil(num_frames / temporal_factor)``."""
        tf = self.temporal_factor
        return -(-num_frames // tf) if continues else 1 + -(-(num_frames - 1) // tf)

    def padded_frames(self, num_frames: int, continues: bool = False) -> int:
        """Video frames the network sees for ``num_frames``: padded up to ``1 + k * temporal_factor`` (``k *
        temporal_factor`` when the window ``continues`` a stream)."""
        tf = self.temporal_factor
        return self.latent_frames(num_frames, True) * tf if continues else 1 + (self.latent_frames(num_frames) - 1) * tf

    def latent_size(self, height: int, width: int) -> tuple[int, int]:
        """Latent grid ``(rows, columns)`` of a ``height`` x ``width`` picture (padded up to a multiple of
        ``spatial_factor``)."""
        f = self.spatial_factor
        return -(-height // f), -(-width // f)

    # ---- storage -----------------------------------------------------------------------------------
    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "TokenizerConfig":
        """The config a checkpoint stores. Unknown keys are refused (ValueError naming them), except
        ``spatial_factor``, which older checkpoints carry: accepted when it is the fixed value, ignored."""
        d = dict(d)
        legacy = d.pop("spatial_factor", SPATIAL_FACTOR)
        if legacy != SPATIAL_FACTOR:
            raise ValueError(f"config spatial_factor={legacy!r}: this network's spatial factor is fixed at {SPATIAL_FACTOR}")
        unknown = sorted(set(d) - {f.name for f in fields(cls)})
        if unknown:
            raise ValueError(f"unknown TokenizerConfig field(s) {', '.join(map(repr, unknown))} "
                             "(a checkpoint from a newer vcodec?)")
        return cls(**{k: (tuple(v) if isinstance(v, list) else v) for k, v in d.items()})

    @classmethod
    def v2(cls) -> "TokenizerConfig":
        """The rate-distortion model: 64 LFQ channels (2 planes of 32 bits) x 2 residual levels; 8 nested
        rate points from 2 bits to 128 bits per latent position."""
        return cls(name="vcodec-v2", latent_channels=64, max_levels=2,
                   quality_points=((2, 1), (4, 1), (8, 1), (16, 1), (32, 1), (32, 2), (32, 3), (32, 4)))

    @classmethod
    def tiny(cls) -> "TokenizerConfig":
        """A few-thousand-parameter config for tests (random weights are fine there)."""
        return cls(name="tiny-test", hi_channels=8, lo_channels=16, enc_hi_blocks=1, enc_lo_blocks=1,
                   dec_lo_blocks=1, dec_hi_blocks=1, token_bits=8, max_levels=3, entropy_group_bits=4,
                   window_frames=9)
