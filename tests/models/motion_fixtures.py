"""Shared helpers for the motion tests: a tiny random denoiser and a text encoder that needs no
download (a fixed random unit vector per text), so the tests run in seconds."""
from __future__ import annotations

import zlib

import numpy as np
import torch

from models.motion.model import MotionConfig, MotionDenoiser
from models.motion.stream import MotionBundle, MotionSession, standing_pose


class HashEncoder:
    def encode(self, texts):
        if isinstance(texts, str):
            texts = [texts]
        out = []
        for t in texts:
            v = np.random.default_rng(zlib.crc32(t.strip().lower().encode())).standard_normal(384)
            out.append(v / np.linalg.norm(v))
        return np.array(out, np.float32)


def tiny_bundle(seed: int = 0) -> MotionBundle:
    torch.manual_seed(seed)
    model = MotionDenoiser(MotionConfig(d_model=32, n_layer=1, n_head=2, steps=3)).eval()
    return MotionBundle(model, HashEncoder(), standing_pose())


def session(params: dict | None = None, bundle: MotionBundle | None = None) -> tuple[MotionSession, list]:
    s = MotionSession(bundle or tiny_bundle(), "cpu")
    out = s.start(params or {})
    return s, out
