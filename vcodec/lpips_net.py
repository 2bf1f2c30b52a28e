"""The LPIPS network (AlexNet, v0.1) built only from weights already on this machine — the one place that decides
whether LPIPS is available, for the benchmark metric and the training loss alike.

Needs the optional packages `lpips` and `torchvision` (`pip install 'vcodec[lpips]'`) and torchvision's AlexNet
ImageNet weights in the torch hub cache (`$TORCH_HOME/hub/checkpoints/alexnet-owt-7be5be79.pth`, sha256-checked).
Nothing is ever downloaded and random weights are never used: when something is missing, `lpips_status()` says what.
The model maps two (N, 3, H, W) RGB batches in [-1, 1] to (N, 1, 1, 1) distances (lower is closer).
"""
from __future__ import annotations

import functools
import hashlib
import os


def _alexnet_cache_file() -> tuple[str, str]:
    """(path where torchvision caches the AlexNet ImageNet weights, expected sha256 prefix)."""
    import torch
    from torchvision.models import AlexNet_Weights

    name = os.path.basename(AlexNet_Weights.IMAGENET1K_V1.url)  # alexnet-owt-7be5be79.pth
    prefix = name.rsplit("-", 1)[-1].split(".")[0]
    return os.path.join(torch.hub.get_dir(), "checkpoints", name), prefix


@functools.lru_cache(maxsize=1)
def lpips_status() -> str | None:
    """None when LPIPS can be built from real pretrained weights, else why not (one line). Never downloads."""
    try:
        import lpips  # noqa: F401
        import torchvision  # noqa: F401
    except Exception as e:  # ImportError, or a torchvision built for another torch (RuntimeError at import)
        return f"LPIPS needs the [lpips] extra: lpips/torchvision not importable ({e})"
    path, prefix = _alexnet_cache_file()
    if not os.path.isfile(path):
        return f"AlexNet ImageNet weights not in the torch hub cache ({path}); LPIPS would need a download"
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    if not h.hexdigest().startswith(prefix):
        return f"cached AlexNet weights {path} fail their sha256 check"
    return None


@functools.lru_cache(maxsize=1)
def lpips_model():
    """The LPIPS (AlexNet, v0.1) module in eval mode on the CPU, its parameters frozen. Raises RuntimeError with
    `lpips_status()`'s reason when it cannot be built from local weights."""
    reason = lpips_status()
    if reason is not None:
        raise RuntimeError(reason)
    import warnings

    import lpips
    import torch
    import torchvision

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        # pnet_rand=True builds the backbone without asking torchvision to download; real weights are loaded below.
        model = lpips.LPIPS(net="alex", version="0.1", pretrained=True, pnet_rand=True, verbose=False)
    path, _ = _alexnet_cache_file()
    tv = torchvision.models.alexnet()
    tv.load_state_dict(torch.load(path, map_location="cpu", weights_only=True))
    for i in range(1, 6):
        for name, module in getattr(model.net, f"slice{i}").named_children():
            module.load_state_dict(tv.features[int(name)].state_dict())
    for p in model.parameters():
        p.requires_grad_(False)
    return model.eval()
