"""Which model, where, on which device: names and paths, the shipped weights, the cache, lookup by weights hash.

Shipped models are the ``*.pt`` files in :data:`WEIGHTS_DIR`; a model's *name* is its file stem, and that name
and the sha256 of its weights go into every ``.vcb`` header. Several files may live there side by side (say
``default.pt`` and the ``magvit2-lfq-v1.pt`` it replaced): a stream is decoded by the file whose weights hash
its header names, whatever the file is called now.

torch is imported only when a model is loaded, so listing names and choosing devices stay cheap.
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING

from vcodec.errors import ModelError, ModelNotFoundError

if TYPE_CHECKING:
    from vcodec.model.checkpoint import RatePoint
    from vcodec.tokenizer import Tokenizer

WEIGHTS_DIR = Path(__file__).parent / "weights"
DEFAULT_MODEL = "default"
_CACHE_SIZE = 4  # loaded tokenizers kept (the least recently loaded goes first)


@dataclass(frozen=True)
class ModelInfo:
    """A shipped model, described from its file without building the network."""

    name: str
    path: Path
    weights_hash: str
    parameters: int
    rate_points: tuple[RatePoint, ...]
    card: dict
    default_quality: int


# ----------------------------------------------------------------------------------------------
# devices


def resolve_device(device: str = "auto") -> str:
    """``"auto"`` -> ``"cuda"`` when available, else ``"cpu"``; ``"cuda"`` without CUDA is an error."""
    import torch

    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device == "cuda" and not torch.cuda.is_available():
        raise ModelError("device 'cuda' asked for, but CUDA is not available here (use --device cpu or auto)")
    if device not in ("cpu", "cuda") and not device.startswith("cuda:"):
        raise ModelError(f"unknown device {device!r} (use auto, cpu or cuda)")
    return device


def bf16_is_fast(device) -> bool:
    """Whether bfloat16 pays off on ``device`` (a torch.device or its name): on GPUs, and on CPUs with native bf16
    instructions only (elsewhere emulated: measured 25-60x slower than float32)."""
    if str(device) != "cpu" and not str(device).startswith("cpu:"):
        return True
    try:
        with open("/proc/cpuinfo") as f:
            flags = next((line for line in f if line.startswith("flags")), "").split()
    except OSError:
        return False
    return "avx512_bf16" in flags or "amx_bf16" in flags


PRECISIONS = ("fp32", "bf16")  # the decoder network's number format (tokens are the same either way)


def check_precision(precision: str, device: str) -> None:
    """Refuse a decoder precision that is unknown, or bf16 where it would be emulated (a ModelError, one line)."""
    if precision not in PRECISIONS:
        raise ModelError(f"unknown precision {precision!r} (use {' or '.join(PRECISIONS)})")
    if precision == "bf16" and not bf16_is_fast(device):
        raise ModelError("precision bf16 needs a GPU or a CPU with native bfloat16 instructions (avx512_bf16 or "
                         "amx_bf16); this one would emulate it, ~30x slower than fp32")


# ----------------------------------------------------------------------------------------------
# names and files


def shipped_names() -> list[str]:
    return sorted(p.stem for p in WEIGHTS_DIR.glob("*.pt"))


def model_path(name_or_path: str | os.PathLike) -> Path:
    """The checkpoint file of a shipped model name or a ``.pt`` path. Raises :class:`ModelNotFoundError`."""
    p = Path(name_or_path)
    if p.suffix == ".pt" and p.exists():
        return p
    cand = WEIGHTS_DIR / f"{os.fspath(name_or_path)}.pt"
    if cand.exists():
        return cand
    names = ", ".join(shipped_names()) or "none"
    if p.is_file():  # a file, but not a checkpoint's name
        raise ModelNotFoundError(f"model '{os.fspath(name_or_path)}' is not a .pt checkpoint (shipped models: {names})")
    raise ModelNotFoundError(f"model '{os.fspath(name_or_path)}' not found (shipped models: {names}; or give a .pt path)")


def _file_key(path: Path) -> tuple:
    st = path.stat()
    return os.fspath(path.resolve()), st.st_mtime_ns, st.st_size  # a rewritten file is read again


_INFO_CACHE: dict[tuple, ModelInfo] = {}


def model_info(path: Path) -> ModelInfo:
    """Name, weights hash, size and rate points of one checkpoint file (read once per file version)."""
    key = _file_key(path)
    if key not in _INFO_CACHE:
        from vcodec.model.checkpoint import load_checkpoint, rate_points, resolve_default_quality
        from vcodec.model.config import TokenizerConfig

        try:
            ck = load_checkpoint(path)
            cfg = TokenizerConfig.from_dict(ck["config"])
        except Exception as e:  # noqa: BLE001 -- any unreadable file is reported the same way
            raise ModelError(f"cannot load model {path}: {e}") from None
        params = sum(v.numel() for v in ck["ema"].values())
        # (a point that codes whole tokens stores no width: it is the model's token width)
        points = tuple(replace(rp, bits=rp.bits or cfg.token_bits) for rp in rate_points(ck, cfg))
        _INFO_CACHE[key] = ModelInfo(path.stem, path, ck.get("weights_hash", ""), params, points, ck.get("card", {}),
                                     resolve_default_quality(ck.get("default_quality"), points))
    return _INFO_CACHE[key]


def shipped_models() -> list[ModelInfo]:
    """Every model in :data:`WEIGHTS_DIR`, by name."""
    return [model_info(p) for p in sorted(WEIGHTS_DIR.glob("*.pt"))]


def list_models() -> list[dict]:
    """Shipped models: name, path, weights hash, parameter count, and rate points (quality, levels = token planes,
    bits per token, measured bpp or None)."""
    return [
        {
            "name": m.name,
            "path": str(m.path),
            "weights_hash": m.weights_hash,
            "parameters": m.parameters,
            "default": m.name == DEFAULT_MODEL,
            "default_quality": m.default_quality,
            "rate_points": [asdict(rp) for rp in m.rate_points],
        }
        for m in shipped_models()
    ]


# ----------------------------------------------------------------------------------------------
# loading


_CACHE: dict[tuple, Tokenizer] = {}


def load_tokenizer(model: str | os.PathLike = DEFAULT_MODEL, device: str = "auto",
                   precision: str = "fp32") -> Tokenizer:
    """Load (and cache) a tokenizer by shipped name or ``.pt`` path, its decoder network in ``precision``
    (:data:`PRECISIONS`). Raises :class:`ModelNotFoundError`, or :class:`ModelError` for a precision not offered
    here (:func:`check_precision`)."""
    from vcodec.tokenizer import Tokenizer

    dev = resolve_device(device)
    check_precision(precision, dev)
    path = model_path(model)
    key = (os.fspath(model), *_file_key(path), dev, precision)
    if key not in _CACHE:
        if len(_CACHE) >= _CACHE_SIZE:
            _CACHE.pop(next(iter(_CACHE)))
        _CACHE[key] = Tokenizer.load(path, device=dev, precision=precision)
    return _CACHE[key]


def encoder_tokenizer(tokenizer: Tokenizer | None, model, device: str) -> Tokenizer:
    """The tokenizer given, else the model named (default: :data:`DEFAULT_MODEL`)."""
    if tokenizer is not None:
        return tokenizer
    return load_tokenizer(model if model is not None else DEFAULT_MODEL, device)


def find_by_hash(weights_hash: str) -> ModelInfo | None:
    """The shipped model whose weights hash is ``weights_hash``, if any."""
    return next((m for m in shipped_models() if m.weights_hash == weights_hash), None)


def stream_tokenizer(model_name: str, weights_hash: str, *, tokenizer: Tokenizer | None = None, model=None,
                     device: str = "auto", what: str = "stream", precision: str = "fp32") -> Tokenizer:
    """The tokenizer whose weights made a stream (its header's ``model_name`` and ``weights_hash``): the one
    given, the model named by the caller, or the shipped model with that weights hash (the file named
    ``model_name`` first), its decoder in ``precision`` (a tokenizer given keeps its own). Anything else is
    :class:`ModelNotFoundError`, one line naming the model."""
    if tokenizer is not None or model is not None:
        tok = tokenizer if tokenizer is not None else load_tokenizer(model, device, precision)
        if tok.weights_hash != weights_hash:
            raise ModelNotFoundError(
                f"{what}: made with model {model_name!r} (weights sha256 {weights_hash[:12]}...), "
                f"not with the model given ({tok.name!r}, weights sha256 {tok.weights_hash[:12]}...)"
            )
        return tok
    # The header's name is looked up among shipped models only, never as a path: a .vcb must not make us
    # unpickle an arbitrary local file. Models loaded from a path are found again with model=PATH (--model).
    candidates = []
    if model_name in shipped_names():
        candidates.append(WEIGHTS_DIR / f"{model_name}.pt")
    found = find_by_hash(weights_hash)
    if found is not None:
        candidates.append(found.path)
    for path in candidates:
        if model_info(path).weights_hash == weights_hash:
            tok = load_tokenizer(path, device, precision)
            if tok.weights_hash == weights_hash:
                return tok
    shipped = ", ".join(shipped_names()) or "none"
    same_name = f"; {model_name!r} is another model now" if model_name in shipped_names() else ""
    raise ModelNotFoundError(
        f"{what}: made with model {model_name!r} (weights sha256 {weights_hash[:12]}...), which is not available "
        f"here: no shipped model has those weights (shipped: {shipped}{same_name}); pass its weights with --model PATH"
    )
