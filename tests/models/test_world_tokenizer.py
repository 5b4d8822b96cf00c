"""World frame tokenizer: tiles map to tokens on Crafter's grid, the shipped codebook reconstructs
real held-out frames above a quality floor, and the ONNX decoder matches torch."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from models.world.tokenizer import TileTokenizer, TokenizerConfig, fit_codebook

PSNR_FLOOR_DB = 30.0  # shipped codebook on real held-out start frames, mean per frame (measured ~36 dB)


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2)
    return 10 * np.log10(255.0**2 / max(mse, 1e-12))


def test_tiles_sit_on_the_crafter_grid():
    vq = TileTokenizer(TokenizerConfig())
    x = torch.rand(2, 64, 64, 3)
    x[:, 63], x[:, :, 63] = 0, 0
    assert torch.equal(vq.untile(vq.tiles(x)), x)
    x = torch.zeros(1, 64, 64, 3)
    x[:, 7:14, 14:21] = 1.0  # tile (row 1, col 2) -> token 1 * 9 + 2
    hot = vq.tiles(x).abs().sum(-1)[0]
    assert hot.nonzero().flatten().tolist() == [11]


def test_codebook_fit_round_trips_frames_made_of_its_tiles(tmp_path):
    pytest.importorskip("sklearn")
    rng = np.random.default_rng(0)
    palette = rng.integers(0, 256, (6, 7, 7, 3), dtype=np.uint8)  # 6 distinct tile textures
    frames = np.zeros((40, 64, 64, 3), np.uint8)
    for f in frames:
        for gy in range(9):
            for gx in range(9):
                f[gy * 7:(gy + 1) * 7, gx * 7:(gx + 1) * 7] = palette[rng.integers(6)]
    cfg = TokenizerConfig(codes=6)
    vq = TileTokenizer(cfg)
    vq.set_codebook(fit_codebook(frames, 6, n_frames=40, max_iter=20))
    tok = vq.encode(frames)
    assert tok.shape == (40, 81) and len(np.unique(tok)) == 6
    rec = vq.decode(tok).numpy()
    assert np.abs(rec.astype(int) - frames).max() <= 1
    with pytest.raises(ValueError, match="codebook"):
        vq.set_codebook(np.zeros((5, 147)))


def test_onnx_decoder_matches_torch(tmp_path):
    pytest.importorskip("onnx")
    from models.world.tokenizer import FrameDecoder, OnnxFrameDecoder, export_decoder_onnx

    vq = TileTokenizer(TokenizerConfig())
    vq.set_codebook(np.random.default_rng(1).uniform(0, 255, (1000, 147)))
    tok = torch.randint(0, 1000, (3, 81))
    path = export_decoder_onnx(vq, tmp_path / "dec.onnx")
    out = OnnxFrameDecoder(path)(tok)
    with torch.inference_mode():
        ref = FrameDecoder(vq)(tok).numpy()
    assert out.shape == (3, 64, 64, 3) and out.dtype == np.uint8
    assert np.abs(out.astype(int) - ref.astype(int)).max() <= 1


def test_shipped_tokenizer_reconstructs_real_frames():
    from models.world.stream import DECODER_ONNX, TOKENIZER, load_starts
    from models.world.tokenizer import OnnxFrameDecoder, load_tokenizer

    if not TOKENIZER.exists():
        pytest.skip("no shipped tokenizer (python -m models.world.train --stage tokenizer)")
    vq = load_tokenizer(TOKENIZER)
    frames, _ = load_starts()  # real frames of held-out worlds
    tok = vq.encode(frames)
    rec = vq.decode(tok).numpy()
    scores = [psnr(f, r) for f, r in zip(frames, rec)]
    assert np.mean(scores) >= PSNR_FLOOR_DB, scores
    assert (rec[:, 63] == 0).all() and (rec[:, :, 63] == 0).all()  # Crafter's black edge stays black
    onnx = OnnxFrameDecoder(DECODER_ONNX)(tok)
    assert np.abs(onnx.astype(int) - rec.astype(int)).max() <= 1
