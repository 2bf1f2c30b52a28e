"""The MAGVIT-v2-style causal video tokenizer (torch)."""
from .autoencoder import VideoTokenizer
from .config import TokenizerConfig

__all__ = ["TokenizerConfig", "VideoTokenizer"]
