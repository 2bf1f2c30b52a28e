"""vcodec as a benchmarked codec, through its public API (`vcodec.compress` / `vcodec.decompress`)."""

from __future__ import annotations

import functools
import os

import numpy as np

from benchmarks.codec_base import Clip, Codec, CodecUnavailable, Decoded, Encoded


class VCodec(Codec):
    """vcodec at each of its model's rate points, through the public API (`vcodec.compress` / `vcodec.decompress`).

    `model` is a name, a path or a loaded `vcodec.tokenizer.Tokenizer`.
    """

    name = "vcodec"
    extension = ".vcb"

    def __init__(self, model=None, device: str = "cpu", points=None, keyint: int | None = None, refine: int = 0,
                 colour: bool | None = None):
        from vcodec.correction import fits_colour
        from vcodec.stream import DEFAULT_KEYINT

        self.model_arg = model
        self.device = device
        self.keyint = DEFAULT_KEYINT if keyint is None else keyint  # frames per keyframe period, as `vcodec encode`
        self.refine = refine  # encoder-side latent refinement steps (`vcodec encode --refine`; 0: none)
        self.colour_arg = colour  # vcodec.compress's colour: True --colour-correct, False --no-colour-correct
        self.colour = fits_colour(colour, refine)  # how chunks get colour corrections (vcodec.correction)
        self._points = list(points) if points is not None else None

    @functools.cached_property
    def tokenizer(self):
        try:
            from vcodec.models import DEFAULT_MODEL, load_tokenizer
        except Exception as e:  # broken import
            raise CodecUnavailable(f"vcodec.models not importable ({type(e).__name__}: {e})") from e
        if self.model_arg is not None and not isinstance(self.model_arg, (str, os.PathLike)):
            return self.model_arg
        name = DEFAULT_MODEL if self.model_arg is None else self.model_arg
        try:
            return load_tokenizer(str(name), device=self.device)
        except Exception as e:
            raise CodecUnavailable(f"cannot load vcodec model {name!r} ({type(e).__name__}: {e})") from e

    def check(self) -> None:
        try:
            import vcodec

            vcodec.compress, vcodec.decompress  # noqa: B018
        except Exception as e:
            raise CodecUnavailable(f"vcodec API not importable ({type(e).__name__}: {e})") from e
        self.tokenizer  # noqa: B018  (raises CodecUnavailable)

    def rate_points(self) -> list:
        if self._points is not None:
            return list(self._points)
        return [rp.quality for rp in self.tokenizer.rate_points]

    def description(self) -> dict:
        import torch

        import bitstream
        import vcodec
        from vcodec.correction import EVERY_CHUNK, NO_CORRECTION

        tok = self.tokenizer
        return {
            "name": self.name,
            "tool": "vcodec.compress / vcodec.decompress",
            "version": getattr(vcodec, "__version__", "unknown"),
            "model": getattr(tok, "name", "unknown"),
            "weights_sha256": getattr(tok, "weights_hash", None),
            "parameters": getattr(tok, "parameters", None),
            "rate_points": [
                {"quality": rp.quality, "levels": rp.levels, "model_bpp": rp.bpp}
                for rp in getattr(tok, "rate_points", [])
            ],
            "window_frames": getattr(tok, "window_frames", None),
            "keyint": self.keyint,
            "scenecut": True,  # keyframe periods also start at scene cuts (vcodec.scenecut; the encoder's default)
            "format_version": bitstream.FORMAT_VERSION if self.colour == NO_CORRECTION else bitstream.REPEAT_VERSION,
            "coder": self._coder(),
            "device": self.device,
            "torch": torch.__version__,
            "input": "RGB uint8, full range",
            # only when used: the settings (and so the cache keys) of unrefined runs stay as they were
            **({"refine": self.refine, "refine_passes": self._refine_precision()} if self.refine else {}),
            # every chunk fitted: True, as the runs before keyframe-chunk fits (session 21) were recorded
            **({"colour": True if self.colour == EVERY_CHUNK else self.colour} if self.colour != NO_CORRECTION else {}),
        }

    def _refine_precision(self) -> str:
        """The number format of the refinement's decoder passes on this device (vcodec.refine)."""
        from vcodec.models import bf16_is_fast

        return "bf16" if bf16_is_fast(self.device) else "fp32"

    def _coder(self) -> dict:
        """Per token width the rate points code: the entropy coder version and tables (hash prefix) it uses."""
        import bitstream

        tok = self.tokenizer
        widths = sorted({tok.quality_point(rp.quality)[0] for rp in tok.rate_points})
        return {str(b): f"{bitstream.CODER_ID} v{tok.coder_version(b)} "
                        f"{(bitstream.tables_hash(tok.tables_for(b)) or 'uniform prior')[:16]}" for b in widths}

    def command_line(self, point) -> str:
        from vcodec.correction import EVERY_CHUNK, NO_CORRECTION

        model = self.model_arg if isinstance(self.model_arg, (str, os.PathLike)) else getattr(self.tokenizer, "name", "?")
        return (f"vcodec encode IN -o OUT.vcb --model {model or 'default'} --quality {point} --keyint {self.keyint} "
                f"--device {self.device}" + (f" --refine {self.refine}" if self.refine else "")
                + (" --no-colour-correct" if self.colour == NO_CORRECTION else "")
                + (" --colour-correct" if self.colour == EVERY_CHUNK and not self.refine else ""))

    def encode(self, clip: Clip, point, path: str) -> Encoded:
        import vcodec

        data = vcodec.compress(
            clip.rgb, quality=point, tokenizer=self.tokenizer, device=self.device, frame_rate=clip.fps, keyint=self.keyint,
            refine=self.refine, colour=self.colour_arg,
        )
        with open(path, "wb") as f:
            f.write(data)
        return Encoded(path, len(data))

    def payload_bytes(self, encoded: Encoded) -> int:
        """Range-coded token bytes and colour corrections; the .vcb header, record/chunk headers, index and trailer
        are the overhead."""
        import bitstream

        with bitstream.VcbReader(encoded.path) as reader:  # counts the coded bytes; decodes nothing
            return sum(len(c.data) + c.colour_bytes for c in reader.coded_chunks())

    def decode(self, encoded: Encoded, clip: Clip) -> Decoded:
        import vcodec

        with open(encoded.path, "rb") as f:
            data = f.read()
        rgb = vcodec.decompress(data, tokenizer=self.tokenizer, device=self.device)
        rgb = np.asarray(rgb)
        if rgb.shape != clip.rgb.shape or rgb.dtype != np.uint8:
            raise RuntimeError(f"vcodec.decompress returned {rgb.dtype} {rgb.shape}, expected uint8 {clip.rgb.shape}")
        return Decoded(rgb=rgb)
