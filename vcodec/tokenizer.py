"""Inference wrapper around the trained tokenizer: numpy uint8 frames in, uint32 token grids out.

At this boundary video is ``uint8`` (T, H, W, 3) RGB; inside, the network sees float
(1, 3, T, H, W) in [-1, 1]. Any size and any frame count >= 1 is accepted: frames are padded by edge
replication to a multiple of ``config.spatial_factor`` pixels and to ``config.padded_frames(n)`` frames, and
cropped back on decode. Which file a name means, and the cache of loaded models, are :mod:`vcodec.models` (above this module).
"""
from __future__ import annotations

import contextlib
import copy
import os
import queue
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import torch

import bitstream

from .errors import ModelError, QualityError, ResourceError
from .model.autoencoder import VideoTokenizer
from .model.checkpoint import (
    RatePoint,
    build_from_checkpoint,
    default_rate_points,
    load_checkpoint,
    rate_points,
    resolve_default_quality,
    stored_mix_tables,
    weights_hash,
)
from .model.config import TokenizerConfig
from .model.layers import CausalConv3d, as_strips, streaming
from .model.pixels import frames_to_model, model_to_frames
from .stream import StreamState


class Tokenizer:
    def __init__(self, model: VideoTokenizer, *, name: str, rate_points: tuple[RatePoint, ...] | None = None, coder_tables=None,
                 mix_tables: dict | None = None, card: dict | None = None, device: str = "cpu", path: Path | None = None,
                 default_quality: int | None = None, precision: str = "fp32"):
        self.model = model.to(device).eval()
        self.config: TokenizerConfig = model.cfg
        self.name = name
        self.path = path
        self.device = torch.device(device)
        state = {k: v.to(torch.float16) for k, v in model.state_dict().items()}
        self.weights_hash = weights_hash(state)
        # the decoder network's number format: "bf16" runs it in bfloat16 (faster where bf16 is native; the same
        # tokens, pixels within a fraction of a dB); the encoder stays float32, so streams do not depend on it
        self.precision = precision
        if precision == "bf16":
            self.model.decoder.to(torch.bfloat16)
        elif precision != "fp32":
            raise ValueError(f"unknown precision {precision!r}")
        self.rate_points = rate_points or default_rate_points(self.config)
        # the quality of a stream that asks for none (see vcodec.model.checkpoint.resolve_default_quality)
        self.default_quality = resolve_default_quality(default_quality, self.rate_points)
        self.coder_tables = None if coder_tables is None else np.asarray(coder_tables)  # coder version 1
        # the learned coder's (versions 2, 3), per version and token width: {version: {bits: MixTables}}
        self.mix_tables = {int(v): {int(b): bitstream.MixTables.of(t) for b, t in by_bits.items()}
                           for v, by_bits in (mix_tables or {}).items()}
        self.card = card or {}

    # ---- construction ----------------------------------------------------------------------------
    @classmethod
    def from_config(cls, cfg: TokenizerConfig, *, seed: int = 0, device: str = "cpu") -> "Tokenizer":
        """A randomly initialised tokenizer (tests only; never shipped)."""
        torch.manual_seed(seed)
        model = VideoTokenizer(cfg)
        with torch.no_grad():   # random (not zero) last layers so the decoder output depends on tokens
            for p in model.parameters():
                if p.dim() > 1 and p.abs().sum() == 0:
                    p.normal_(0, 0.02)
        model = _round_to_fp16(model)
        return cls(model, name=cfg.name, device=device)

    @classmethod
    def load(cls, path: str | Path, device: str = "cpu", precision: str = "fp32") -> "Tokenizer":
        """The tokenizer stored in checkpoint file ``path``, named by its file stem, its decoder in ``precision``.
        (Shipped names, the cache and devices are :func:`vcodec.models.load_tokenizer`.)"""
        path = Path(path)
        try:
            ckpt = load_checkpoint(path)
            model = build_from_checkpoint(ckpt)
        except Exception as e:  # noqa: BLE001 — any unreadable file is reported the same way
            raise ModelError(f"cannot load model {path}: {e}") from None
        model = _round_to_fp16(model)
        name = path.stem   # the header names the model by file stem (never a full path: bytes stay reproducible)
        points = rate_points(ckpt, model.cfg)
        return cls(model, name=name, rate_points=points, default_quality=ckpt.get("default_quality"),
                   coder_tables=ckpt.get("coder_tables"), mix_tables=stored_mix_tables(ckpt), card=ckpt.get("card"),
                   device=device, path=path, precision=precision)

    # ---- properties ------------------------------------------------------------------------------
    @property
    def token_bits(self) -> int:
        return self.config.token_bits

    @property
    def max_levels(self) -> int:
        """Token planes of a full-rate latent frame (the container's ``max_levels``)."""
        return self.config.planes

    @property
    def window_frames(self) -> int:
        return self.config.window_frames

    @property
    def parameters(self) -> int:
        return sum(p.numel() for p in self.model.parameters())

    def quality_point(self, quality: int) -> tuple[int, int]:
        """(bits per token, token planes) that ``quality`` (an int) codes."""
        if isinstance(quality, (bool, np.bool_)) or not isinstance(quality, (int, np.integer)):
            raise QualityError(f"quality must be a whole number, got {type(quality).__name__} {quality!r}")
        for rp in self.rate_points:
            if rp.quality == quality:
                return (rp.bits or self.token_bits), rp.levels
        qs = ", ".join(str(rp.quality) for rp in self.rate_points)
        raise QualityError(f"quality {quality} is not offered by model {self.name} (choose one of {qs})")

    def coder_version(self, bits: int) -> int:
        """The entropy coder version a new stream of ``bits``-bit tokens uses: the newest learned coder version the
        model has tables for at that width, else at a wider one; else 1 with its version 1 tables; else
        CODER_VERSION (uniform prior)."""
        for fits in (lambda b: b == bits, lambda b: b > bits):  # a width's own tables before a wider width's
            learned = [v for v, by_bits in self.mix_tables.items() if any(fits(b) for b in by_bits)]
            if learned:
                return max(learned)
        return 1 if self.coder_tables is not None else bitstream.CODER_VERSION

    def tables_for(self, bits: int, version: int | None = None):
        """The coder tables for a stream of ``bits``-bit tokens coded with coder ``version`` (default
        :meth:`coder_version`): the learned coder's fitted for that width, else those of the next wider width it
        has, narrowed (:func:`bitstream.narrow_tables`; rate control's widths between the rate points'), else None
        (the uniform prior); version 1's count tables of a token's low bits (a stream that codes fewer bits per
        token uses the first ``bits`` rows of each plane's table), or None."""
        version = self.coder_version(bits) if version is None else version
        if version != 1:
            by_bits = self.mix_tables.get(version, {})
            if bits in by_bits:
                return by_bits[bits]
            wider = [b for b in by_bits if b > bits]
            return bitstream.narrow_tables(by_bits[min(wider)], bits) if wider else None
        return bitstream.narrow_tables(self.coder_tables, bits)

    # ---- coding ----------------------------------------------------------------------------------
    #
    # Frames larger than TILE_ABOVE pixels run in spatial tiles, so that memory does not grow with resolution
    # beyond the frames themselves. The network is convolutional (per-position norms, no attention, no global
    # pooling), so a tile extended by the layers' receptive field on every side gives its interior exactly the
    # values of the whole frame; only the interior of each tile is kept (see :meth:`margins`). Tiles are aligned
    # to the latent grid, so the patching steps (Haar, space-to-depth) see the same pixel groups as untiled.
    #
    # On a CPU the decoder runs every convolution with one intra-op thread and parallelises over pieces of the
    # frame instead: oneDNN splits its sums differently for different thread counts, which moved some decoded
    # pixels by 1 between OMP_NUM_THREADS=1 and 2. With one thread per operation the pixels depend on the machine's
    # instruction set only (see docs/CLI.md for the measured bound), not on the thread count. The pieces are the
    # tiles of a big frame, or two side-by-side strips of a smaller one that run in lock step and swap their edge
    # columns before each convolution (:class:`~vcodec.model.layers.HaloExchange`): no overlap is computed twice.
    # The encoder runs untiled frames whole, every operation on all threads (its tokens are what the file holds).

    TILE_ABOVE = 1280 * 768  # frames with more pixels than this are coded in tiles
    # frames with at least this many pixels run the networks one latent frame at a time (as tiles do): at 1280x720
    # that costs no measurable time on a CPU and moves the progress every 4 frames; at 960x540 it costs ~1.7x
    STREAM_FROM = 1280 * 720
    TILE_CORE = 64  # latent positions per tile side, before the overlap (512 pixels at spatial factor 8)
    # on a CPU, untiled frames at least this many latent positions wide run as two strips side by side, one thread
    # each (the layout depends on the frame size only, so the pixels do not depend on the thread count)
    STRIPS_FROM = 40

    def margins(self) -> tuple[int, int]:
        """(encoder, decoder) tile overlap in latent positions: each network's spatial receptive field, from its
        layers (every convolution's reach times the pixels one of its input positions spans), rounded up."""
        if getattr(self, "_margins", None) is None:
            sf = self.config.spatial_factor
            probe = 4 * sf
            enc = _conv_reach(self.model.encoder, torch.zeros(1, 3, 1, probe, probe, device=self.device), probe)
            lat = torch.zeros(1, self.config.channels, 1, probe // sf, probe // sf, device=self.device,
                              dtype=next(self.model.decoder.parameters()).dtype)
            dec = _conv_reach(self.model.decoder, lat, probe)
            self._margins = (-(-enc // sf) + 1, -(-dec // sf) + 1)
        return self._margins

    def _tiles(self, lh: int, lw: int, margin: int):
        """((y0, y1, x0, x1) tile core, (a0, a1, b0, b1) the core plus ``margin``) in latent positions."""
        c = self.TILE_CORE
        for y0 in range(0, lh, c):
            for x0 in range(0, lw, c):
                y1, x1 = min(lh, y0 + c), min(lw, x0 + c)
                yield (y0, y1, x0, x1), (max(0, y0 - margin), min(lh, y1 + margin), max(0, x0 - margin),
                                         min(lw, x1 + margin))

    def _layout(self, height: int, width: int, h: int, w: int, margin: int, strips: bool = True) -> tuple[list, bool]:
        """How a ``height`` x ``width`` frame (``h`` x ``w`` latent) is cut for a network whose tiles overlap by
        ``margin``: (pieces as :meth:`_tiles`, whether they are lock-step strips). The tile grid above
        :attr:`TILE_ABOVE` pixels; else on a CPU, if ``strips``, two strips from :attr:`STRIPS_FROM` latent columns
        (no overlap: they swap edges); else the whole frame (a GPU runs it whole, faster)."""
        if self._tiled(height, width):
            return list(self._tiles(h, w, margin)), False
        if strips and w >= self.STRIPS_FROM and self.device.type == "cpu":
            c = -(-w // 2)
            return [((0, h, 0, c),) * 2, ((0, h, c, w),) * 2], True
        return [((0, h, 0, w),) * 2], False

    def _tiled(self, height: int, width: int) -> bool:
        return height * width > self.TILE_ABOVE

    def _streamed(self, height: int, width: int) -> bool:
        return self._tiled(height, width) or height * width >= self.STREAM_FROM

    def _time_pieces(self, n: int, stream: bool, continues: bool = False) -> list[tuple[int, int, int, int]]:
        """``(l0, l1, f0, f1)``: latent frames ``[l0, l1)`` and the frames ``[f0, f1)`` of the window (``n`` frames,
        padded to ``config.padded_frames(n, continues)``) that make them, in the order the networks run.
        ``stream``: one latent frame at a time (the first frame, then groups of ``temporal_factor``); else the
        whole window at once. A window that ``continues`` a stream has no lone first frame."""
        cfg = self.config
        tf, T, Tl = cfg.temporal_factor, cfg.padded_frames(n, continues), cfg.latent_frames(n, continues)
        if not stream:
            return [(0, Tl, 0, T)]
        if continues:
            return [(k, k + 1, tf * k, tf * (k + 1)) for k in range(Tl)]
        return [(0, 1, 0, 1)] + [(k, k + 1, 1 + tf * (k - 1), 1 + tf * k) for k in range(1, Tl)]

    @torch.inference_mode()
    def encode_window(self, frames: np.ndarray, levels: int, bits: int | None = None,
                      progress: Callable[[int], None] | None = None, stream: StreamState | None = None,
                      latent: np.ndarray | None = None) -> np.ndarray:
        """frames uint8 (n, H, W, 3) -> tokens uint32 (levels, config.latent_frames(n, continues),
        *config.latent_size(H, W)): the first ``levels`` token planes, each holding the low ``bits`` bits (default
        all). ``stream``: the causal state of the stream the window belongs to; when it holds the state of the
        window before (``stream.started``), this window continues it (no lone first frame: the tokens are those of
        the two windows encoded as one), and it is left holding this window's state for the next.

        Frames of more than :attr:`TILE_ABOVE` pixels are encoded in overlapping spatial tiles, and from
        :attr:`STREAM_FROM` pixels (1280x720) the causal encoder runs as a stream, one latent frame at a time (the
        first frame, then groups of ``temporal_factor``), each tile its own stream: the same tokens, with memory
        for one latent frame of one tile. Smaller frames run as one piece (streaming small pieces costs ~1.5-2x
        the time on a CPU).
        ``progress(k)`` is called after each piece with the number of the window's frames it took. ``latent``: a
        float32 array ``(config.channels, T', *config.latent_size(H, W))`` to fill with the encoder's latent (in
        (-1, 1), before quantization), e.g. for :mod:`vcodec.refine`."""
        if frames.dtype != np.uint8 or frames.ndim != 4 or frames.shape[-1] != 3 or len(frames) == 0:
            raise ValueError(f"expected uint8 frames (T, H, W, 3) with T >= 1, got {frames.dtype} {frames.shape}")
        if not 1 <= levels <= self.max_levels:
            raise ValueError(f"levels must be in 1..{self.max_levels}")
        n, H, W, _ = frames.shape
        self.check_encode_memory(n, H, W)
        cfg = self.config
        sf = cfg.spatial_factor
        lh, lw = cfg.latent_size(H, W)
        # the whole frame on every thread: as fast as strips at 640x360 and 1280x720 on 2 cores (measured 4-8%
        # faster), and the encoder's floats need not be independent of the thread count (the decoder's pixels must)
        tiles, strips = self._layout(H, W, lh, lw, self.margins()[0], strips=False)
        continues = stream is not None and stream.started
        states = stream.take(len(tiles), (H, W)) if continues else [None] * len(tiles)  # each piece's stream state
        out = np.empty((levels, cfg.latent_frames(n, continues), lh, lw), np.uint32)

        def run(net: torch.nn.Module, i: int, piece: np.ndarray, first: bool, l0: int, l1: int) -> None:
            (y0, y1, x0, x1), (a0, a1, b0, b1) = tiles[i]
            rows = np.minimum(np.arange(a0 * sf, a1 * sf), H - 1)    # edge replication to the latent grid
            cols = np.minimum(np.arange(b0 * sf, b1 * sf), W - 1)
            x = frames_to_model(torch.from_numpy(piece[:, rows][:, :, cols]).to(self.device).unsqueeze(0))
            with torch.inference_mode(), streaming(net) as run_stream:
                run_stream.load(states[i])
                z = net(x, first=first)
                states[i] = run_stream.state()
            core = (0, slice(None), slice(None), slice(y0 - a0, y1 - a0), slice(x0 - b0, x1 - b0))
            out[:, l0:l1, y0:y1, x0:x1] = self.model.latent_indices(z, levels, bits)[core].cpu().numpy()
            if latent is not None:
                latent[:, l0:l1, y0:y1, x0:x1] = z[core].float().cpu().numpy()

        # big frames' tiles one after another (memory for one tile), with every thread on each operation
        with _PieceRunner(self.model.encoder, len(tiles), strips, self.device, deterministic=False) as runner:
            for l0, l1, f0, f1 in self._time_pieces(n, stream=self._streamed(H, W), continues=continues):
                piece = frames[np.minimum(np.arange(f0, f1), n - 1)]          # padded by repeating the last frame
                runner.run(run, piece, l0 == 0 and not continues, l0, l1)
                if progress is not None:
                    progress(max(0, min(f1, n) - f0))
        if stream is not None:
            stream.keep(states, (H, W), cfg.padded_frames(n, continues) == n)
        return out

    @torch.inference_mode()
    def decode_pieces(self, tokens: np.ndarray, num_frames: int, height: int, width: int,
                      bits: int | None = None, stream: StreamState | None = None,
                      post: Callable[[torch.Tensor], torch.Tensor] | None = None) -> Iterator[np.ndarray]:
        """tokens uint32 (L, T', h, w) with ``bits`` coded bits each -> the window's frames uint8 (k, height,
        width, 3), in pieces that together make ``num_frames``. Frames of more than :attr:`TILE_ABOVE` pixels are
        decoded in overlapping tiles, several at a time, and from :attr:`STREAM_FROM` pixels the causal decoder runs
        as a stream (each tile its own): one latent frame per piece (the first frame, then ``temporal_factor``
        frames), with memory for one latent frame. Smaller frames come as one piece (see :meth:`encode_window`). ``stream`` as for
        :meth:`encode_window`: a started one makes this window continue the one before. ``post``: a map of the
        decoder's float video ``(1, 3, k, h, w)`` on its [-1, 1] scale before rounding (a chunk's colour correction,
        :func:`vcodec.correction.colour_map`); it does not enter the stream's state."""
        L, Tl, h, w = tokens.shape
        if not 1 <= L <= self.max_levels:
            raise ValueError(f"token grid has {L} levels; model {self.name} has at most {self.max_levels}")
        sf = self.config.spatial_factor
        tiles, strips = self._layout(height, width, h, w, self.margins()[1])
        continues = stream is not None and stream.started
        if Tl != self.config.latent_frames(num_frames, continues):
            raise ValueError(f"token grid has {Tl} latent frames; a {num_frames}-frame window "
                             f"{'continuing a stream ' * continues}has {self.config.latent_frames(num_frames, continues)}")
        runner = _PieceRunner(self.model.decoder, len(tiles), strips, self.device, deterministic=True)
        core_px = max((a1 - a0) * (b1 - b0) for _, (a0, a1, b0, b1) in tiles)
        pieces = self._time_pieces(num_frames, stream=self._streamed(height, width), continues=continues)
        piece_latents = max(l1 - l0 for l0, l1, _, _ in pieces)
        check_memory(piece_latents * self.config.temporal_factor * height * width * 3
                     + runner.workers * self.decode_bytes(core_px * sf * sf, piece_latents),
                     f"decoding a {num_frames}-frame window of {width}x{height}")
        states = stream.take(len(tiles), (height, width)) if continues else [None] * len(tiles)  # per piece

        def run(net: torch.nn.Module, i: int, l0: int, l1: int, f0: int, f1: int, out: np.ndarray) -> None:
            (y0, y1, x0, x1), (a0, a1, b0, b1) = tiles[i]
            idx = torch.from_numpy(tokens[:, l0:l1, a0:a1, b0:b1].astype(np.int64)).unsqueeze(0).to(self.device)
            with torch.inference_mode(), streaming(net) as run_stream:
                run_stream.load(states[i])
                video = self.model.decode_indices(idx, bits, first=l0 == 0 and not continues, decoder=net)
                states[i] = run_stream.state()                                           # (1, 3, k, f*th, f*tw)
            py1, px1 = min(y1 * sf, height), min(x1 * sf, width)
            oy, ox = (y0 - a0) * sf, (x0 - b0) * sf
            part = video[:, :, :f1 - f0, oy:oy + py1 - y0 * sf, ox:ox + px1 - x0 * sf]
            if post is not None:
                part = post(part)
            out[:, y0 * sf:py1, x0 * sf:px1] = model_to_frames(part)[0].cpu().numpy()

        with runner:
            for l0, l1, f0, f1 in pieces:
                l1, f1 = min(l1, Tl), min(f1, num_frames)
                if f1 <= f0 or l1 <= l0:       # a latent frame made only of padding
                    continue
                out = np.empty((f1 - f0, height, width, 3), np.uint8)
                runner.run(run, l0, l1, f0, f1, out)     # not across the yield: the caller keeps its threads
                yield out
        if stream is not None:
            stream.keep(states, (height, width), self.config.padded_frames(num_frames, continues) == num_frames)

    def decode_window(self, tokens: np.ndarray, num_frames: int, height: int, width: int,
                      bits: int | None = None, stream: StreamState | None = None,
                      post: Callable[[torch.Tensor], torch.Tensor] | None = None) -> np.ndarray:
        """tokens uint32 (L, T', h, w) with ``bits`` coded bits each -> frames uint8 (num_frames, height, width, 3)
        (:meth:`decode_pieces`, joined)."""
        return np.concatenate(list(self.decode_pieces(tokens, num_frames, height, width, bits, stream, post)))

    def check_encode_memory(self, num_frames: int, height: int, width: int, frames_held: bool = True) -> None:
        """Refuse (:class:`ResourceError`) to encode a window that would not fit in the memory available; with
        ``frames_held=False`` the window's frames themselves (not read yet) are counted too."""
        cfg = self.config
        lh, lw = cfg.latent_size(height, width)
        side = self.TILE_CORE + 2 * self.margins()[0]
        px = (min(lh, side) * min(lw, side) if self._tiled(height, width) else lh * lw) * cfg.spatial_factor ** 2
        need = self.encode_bytes(px, cfg.temporal_factor if self._streamed(height, width) else cfg.padded_frames(num_frames))
        if not frames_held:
            need += 2 * num_frames * height * width * 3
        check_memory(need, f"encoding a {num_frames}-frame window of {width}x{height}")

    def encode_bytes(self, pixels: int, frames: int) -> int:
        """About the most memory the encoder network holds for ``pixels`` input pixels of ``frames`` frames."""
        cfg = self.config
        per_pixel = max(3.0, cfg.hi_channels / 16 / cfg.temporal_factor, cfg.lo_channels / 64 / cfg.temporal_factor)
        return int(4 * 4 * per_pixel * pixels * frames)

    def decode_bytes(self, pixels: int, latent_frames: int) -> int:
        """About the most memory the decoder network holds for ``pixels`` output pixels of ``latent_frames``
        latent frames (a few of its widest activations at once)."""
        cfg = self.config
        per_pixel = max(cfg.hi_channels / 4, cfg.lo_channels / 16, 3 * 16 * cfg.temporal_factor / 16,
                        3 * cfg.temporal_factor)
        return int(4 * 4 * per_pixel * pixels * latent_frames)


def token_prefix(tokens: np.ndarray, bits: int, planes: int) -> np.ndarray:
    """What a rate point codes of full token grids ``uint32 (L, ...)``: the first ``planes`` planes, each token's
    low ``bits`` bits (contiguous uint32)."""
    return np.ascontiguousarray(tokens[:planes] & np.uint32((1 << bits) - 1))


def _conv_reach(net: torch.nn.Module, probe: torch.Tensor, out_px: int) -> int:
    """How far, in full-resolution pixels, ``net``'s convolutions reach sideways: the sum over every convolution
    of its one-sided kernel reach times the pixels one position of its input spans (``out_px`` pixels across the
    probe's full-resolution width). Assumes spatial mixing happens in convolutions only (tested: tiled == untiled)."""
    reach = 0.0

    def hook(mod, inp, _out):
        nonlocal reach
        reach += (mod.kw // 2) * out_px / inp[0].shape[-1]

    handles = [m.register_forward_hook(hook) for m in net.modules() if isinstance(m, CausalConv3d)]
    try:
        with torch.inference_mode():
            net(probe)
    finally:
        for h in handles:
            h.remove()
    return int(np.ceil(reach))


class _PieceRunner:
    """Runs one network over the pieces of a frame (:meth:`Tokenizer._layout`), each piece through a network of its
    own and its own stream state. Lock-step strips run all at once, one thread each, on copies of the network that
    swap edges (:func:`~vcodec.model.layers.as_strips`). Tiles run, when ``deterministic``, on as many threads as
    torch has (one copy each), else one after another with every thread on each operation (memory for one tile).
    On a CPU, strips and ``deterministic`` runs use one thread per operation (:class:`one_thread_per_op`), so that
    their results do not depend on the thread count. Use as a context manager (its thread pool)."""

    def __init__(self, net: torch.nn.Module, count: int, strips: bool, device: torch.device, *, deterministic: bool):
        self.device = device
        self.single_threaded_ops = device.type == "cpu" and (strips or deterministic)
        self.exchange = None
        if strips:
            self.workers = count
            self.nets = [net] + [copy.deepcopy(net) for _ in range(count - 1)]
            self.exchange = as_strips(self.nets)
        else:
            self.workers = max(1, min(count, torch.get_num_threads())) if self.single_threaded_ops else 1
            self.free: queue.Queue = queue.Queue()   # a tile's state moves between the copies
            for k in range(self.workers):
                self.free.put(net if k == 0 else copy.deepcopy(net))
        self.count = count
        self.pool: ThreadPoolExecutor | None = None

    def __enter__(self) -> "_PieceRunner":
        if self.workers > 1:
            self.pool = ThreadPoolExecutor(self.workers)
        return self

    def __exit__(self, *exc) -> None:
        if self.pool is not None:
            self.pool.shutdown()
        if self.exchange is not None:
            as_strips(self.nets[:1], detach=True)   # the model's own network runs whole again

    def run(self, work: Callable, *args) -> None:
        """``work(net, i, *args)`` for every piece ``i``."""
        def one(i: int) -> None:
            if self.exchange is not None:
                try:
                    work(self.nets[i], i, *args)
                except BaseException:
                    self.exchange.barrier.abort()   # the other strips wait for this one: let them fail too
                    raise
                return
            net = self.free.get()
            try:
                work(net, i, *args)
            finally:
                self.free.put(net)

        with one_thread_per_op(self.device) if self.single_threaded_ops else contextlib.nullcontext():
            if self.pool is None:
                for i in range(self.count):
                    one(i)
            else:
                for f in [self.pool.submit(one, i) for i in range(self.count)]:
                    f.result()


class one_thread_per_op:  # noqa: N801 -- used as a context manager
    """Run torch's CPU operations single-threaded inside (restoring the thread count after), so that results do
    not depend on the thread count; callers parallelise over independent pieces instead."""

    def __init__(self, device):
        self.cpu = torch.device(device).type == "cpu"

    def __enter__(self):
        if self.cpu:
            self.threads = torch.get_num_threads()
            torch.set_num_threads(1)

    def __exit__(self, *exc):
        if self.cpu:
            torch.set_num_threads(self.threads)


def available_memory() -> int | None:
    """Bytes this process may still allocate: MemAvailable, and the address-space limit when one is set."""
    out = None
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    out = int(line.split()[1]) * 1024
    except (OSError, ValueError):
        pass
    try:
        import resource

        soft = resource.getrlimit(resource.RLIMIT_AS)[0]
        if soft != resource.RLIM_INFINITY:
            with open("/proc/self/statm") as f:
                used = int(f.read().split()[0]) * os.sysconf("SC_PAGE_SIZE")
            out = min(out if out is not None else soft, soft - used)
    except (ImportError, OSError, ValueError):
        pass
    return out


def check_memory(need: int, what: str) -> None:
    """Refuse (:class:`ResourceError`) work that needs more memory than is available, before allocating it."""
    have = available_memory()
    if have is not None and need > have:
        raise ResourceError(f"{what} needs about {need / 2**30:.1f} GiB of memory; "
                            f"{max(have, 0) / 2**30:.1f} GiB is available")


def _round_to_fp16(model: VideoTokenizer) -> VideoTokenizer:
    """Weights are shipped as fp16; run in fp32 with fp16-representable weights so that a model
    loaded from any file behaves identically."""
    with torch.no_grad():
        for t in list(model.parameters()) + list(model.buffers()):
            if t.is_floating_point():
                t.copy_(t.to(torch.float16).to(t.dtype))
    return model
