import numpy as np

from models.common.text import DIM, shared_encoder


def test_text_encoder_embeds_offline_and_caches():
    enc = shared_encoder()
    v = enc.encode(["a red chair", "A  red chair ", "a wooden table", "walk forward"])
    assert v.shape == (4, DIM) and v.dtype == np.float32
    assert np.allclose(np.linalg.norm(v, axis=1), 1.0, atol=1e-5)
    assert np.allclose(v[0], v[1])  # normalised text shares one cache entry
    assert v[0] @ v[2] > v[0] @ v[3]  # furniture is closer to furniture than to walking
    assert "a red chair" in enc._cache
    assert enc.encode([]).shape == (0, DIM)
