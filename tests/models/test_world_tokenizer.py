"""World frame tokenizer: FSQ codes round-trip, the shipped autoencoder reconstructs real Crafter
frames above a quality floor, and its ONNX decoder matches torch."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from models.world.tokenizer import FSQ, FrameAutoencoder, TokenizerConfig

PSNR_FLOOR_DB = 26.0  # shipped tokenizer on real held-out frames (measured ~30 dB, see CARD.md)


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2)
    return 10 * np.log10(255.0**2 / max(mse, 1e-12))


def test_fsq_indices_and_codes_round_trip():
    fsq = FSQ([8, 5, 5, 5])
    idx = torch.arange(1000)
    assert torch.equal(fsq.codes_to_indices(fsq.indices_to_codes(idx)), idx)
    codes, got = fsq(torch.randn(64, 4) * 3)
    assert got.min() >= 0 and got.max() < 1000
    assert torch.allclose(fsq.table[got], codes)  # the lookup table the decoder starts from


def test_patchify_is_exact_on_the_tile_grid():
    ae = FrameAutoencoder(TokenizerConfig())
    x = torch.rand(2, 3, 63, 63)
    assert torch.equal(ae.unpatchify(ae.patchify(x)), x)
    # one tile's pixels land in one token position
    x = torch.zeros(1, 3, 63, 63)
    x[:, :, 7:14, 14:21] = 1.0  # tile (row 1, col 2)
    hot = ae.patchify(x).abs().sum(1)[0]
    assert hot.nonzero().tolist() == [[1, 2]]


def test_random_tokenizer_shapes_and_onnx_decoder(tmp_path):
    pytest.importorskip("onnx")
    from models.world.tokenizer import FrameDecoder, OnnxFrameDecoder, export_decoder_onnx

    ae = FrameAutoencoder(TokenizerConfig()).eval()
    frames = np.random.default_rng(0).integers(0, 256, (3, 64, 64, 3), dtype=np.uint8)
    tok = ae.encode(frames)
    assert tok.shape == (3, 81) and tok.dtype == torch.int64
    path = export_decoder_onnx(ae, tmp_path / "dec.onnx")
    out = OnnxFrameDecoder(path)(tok)
    with torch.inference_mode():
        ref = FrameDecoder(ae)(tok).numpy()
    assert out.shape == (3, 64, 64, 3) and out.dtype == np.uint8
    assert np.abs(out.astype(int) - ref.astype(int)).max() <= 1


def test_shipped_tokenizer_reconstructs_real_frames():
    from models.world.stream import DECODER_ONNX, TOKENIZER, load_starts
    from models.world.tokenizer import OnnxFrameDecoder, load_tokenizer

    if not TOKENIZER.exists():
        pytest.skip("no shipped tokenizer (python -m models.world.train --stage tokenizer)")
    ae = load_tokenizer(TOKENIZER)
    frames, _ = load_starts()  # real frames of held-out worlds
    tok = ae.encode(frames)
    rec = ae.decode(tok).numpy()
    scores = [psnr(f, r) for f, r in zip(frames, rec)]
    assert np.mean(scores) >= PSNR_FLOOR_DB, scores
    assert (rec[:, 63] == 0).all() and (rec[:, :, 63] == 0).all()  # Crafter's black edge stays black
    onnx = OnnxFrameDecoder(DECODER_ONNX)(tok)
    assert np.abs(onnx.astype(int) - rec.astype(int)).max() <= 2
