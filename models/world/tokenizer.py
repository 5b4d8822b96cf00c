"""Frame tokenizer of the World model: a vector quantizer of Crafter's tiles that turns a 64x64
frame into 9x9 = 81 tokens and back.

Crafter draws its world as a 9x9 grid of 7x7-pixel tiles (63 px of content and a 1 px black edge
at 64x64), so the tokenizer patches the frame on that same grid (ViT-style patches): one token per
tile. The codebook holds 1000 tile appearances (texture, object, facing, digit, light level),
fit with k-means on tiles of the training frames (scikit-learn MiniBatchKMeans, in train.py); a
tile's token is its nearest codeword, and the decoder puts the codewords back on the grid.
(A learned FSQ autoencoder with per-tile MLPs was tried first: in the CPU budget it plateaued at
22 dB with 36 codes in use, blurring the player and the inventory digits; k-means reaches 35 dB.)

    vq = TileTokenizer(TokenizerConfig()); vq.set_codebook(centers)   # (1000, 147) in [0, 255]
    tokens = vq.encode(frames_uint8)        # (B, 81) int64 in [0, 1000)
    frames = vq.decode(tokens)              # (B, 64, 64, 3) uint8 (torch)

The decoder is exported to ONNX (`export_decoder_onnx`) and run by ONNX Runtime in the engine
(`OnnxFrameDecoder`): tokens (B, 81) int64 in, frames (B, 64, 64, 3) uint8 out.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F


@dataclass
class TokenizerConfig:
    size: int = 64  # frame side in pixels
    patch: int = 7  # tile side in pixels (Crafter: 64 // 9)
    grid: int = 9  # tiles per side; grid * patch = 63 px of content, the rest is a black edge
    codes: int = 1000  # codebook size (the dynamics model's vocabulary)

    @property
    def n_tokens(self) -> int:
        return self.grid * self.grid

    @property
    def vocab(self) -> int:
        return self.codes

    @property
    def tile_dim(self) -> int:
        return 3 * self.patch * self.patch


class TileTokenizer(nn.Module):
    def __init__(self, cfg: TokenizerConfig):
        super().__init__()
        self.cfg = cfg
        # (codes, 7 * 7 * 3) tile pixels in [0, 1], row-major (y, x, rgb) inside a tile
        self.register_buffer("codebook", torch.zeros(cfg.codes, cfg.tile_dim))

    @property
    def content(self) -> int:
        return self.cfg.grid * self.cfg.patch

    def set_codebook(self, centers: np.ndarray) -> None:
        """centers (codes, 147) in [0, 255] pixel units."""
        c = torch.as_tensor(np.asarray(centers, dtype=np.float32) / 255.0)
        if c.shape != self.codebook.shape:
            raise ValueError(f"codebook must be {tuple(self.codebook.shape)}, got {tuple(c.shape)}")
        self.codebook.copy_(c.clamp(0, 1))

    def tiles(self, frames: torch.Tensor) -> torch.Tensor:
        """(B, 64, 64, 3) -> (B, 81, 147): each tile's pixels, tiles row by row."""
        B, g, p, n = frames.shape[0], self.cfg.grid, self.cfg.patch, self.content
        x = frames[:, :n, :n].reshape(B, g, p, g, p, 3).permute(0, 1, 3, 2, 4, 5)
        return x.reshape(B, g * g, 3 * p * p)

    def untile(self, t: torch.Tensor) -> torch.Tensor:
        """(B, 81, 147) -> (B, 64, 64, 3), black outside the 63 px of content."""
        B, g, p = t.shape[0], self.cfg.grid, self.cfg.patch
        x = t.reshape(B, g, g, p, p, 3).permute(0, 1, 3, 2, 4, 5).reshape(B, g * p, g * p, 3)
        pad = self.cfg.size - self.content
        return F.pad(x, (0, 0, 0, pad, 0, pad))

    @torch.inference_mode()
    def encode(self, frames: np.ndarray | torch.Tensor) -> torch.Tensor:
        """frames (B, 64, 64, 3) uint8 -> tokens (B, 81) int64: the nearest codeword of each tile."""
        x = torch.as_tensor(np.asarray(frames)).to(self.codebook.device).float() / 255.0
        t = self.tiles(x)  # (B, 81, 147)
        cb = self.codebook
        d = (cb * cb).sum(-1) - 2 * t @ cb.T  # squared distance up to the tile's own norm; (B, 81, codes)
        return d.argmin(-1)

    @torch.inference_mode()
    def decode(self, tokens: torch.Tensor) -> torch.Tensor:
        """tokens (B, 81) int64 -> frames (B, 64, 64, 3) uint8."""
        return FrameDecoder(self)(torch.as_tensor(tokens).to(self.codebook.device))


class FrameDecoder(nn.Module):
    """The decoder alone, token ids in, uint8 frames out: the graph that is exported to ONNX."""

    def __init__(self, vq: TileTokenizer):
        super().__init__()
        self.vq = vq

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:  # (B, 81) int64 -> (B, 64, 64, 3) uint8
        y = self.vq.untile(self.vq.codebook[tokens])
        return (y * 255.0 + 0.5).clamp(0, 255).to(torch.uint8)


def fit_codebook(frames: np.ndarray, codes: int, n_frames: int = 3000, seed: int = 0, max_iter: int = 30) -> np.ndarray:
    """k-means over the tiles of `n_frames` random frames (B, 64, 64, 3) -> centers (codes, 147) in [0, 255]."""
    from sklearn.cluster import MiniBatchKMeans

    rng = np.random.default_rng(seed)
    pick = rng.choice(len(frames), min(n_frames, len(frames)), replace=False)
    x = np.asarray(frames[pick])[:, :63, :63].reshape(len(pick), 9, 7, 9, 7, 3).transpose(0, 1, 3, 2, 4, 5)
    x = x.reshape(-1, 147).astype(np.float32)
    km = MiniBatchKMeans(codes, batch_size=4096, n_init=1, max_iter=max_iter, random_state=seed,
                         max_no_improvement=None, compute_labels=False).fit(x)
    return km.cluster_centers_


def export_decoder_onnx(ae: TileTokenizer, path: Path) -> Path:
    """Write the decoder as an ONNX graph with a dynamic batch axis (needs `onnx`/`onnxscript`)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    dec = FrameDecoder(ae).eval()
    example = torch.zeros(1, ae.cfg.n_tokens, dtype=torch.long)
    torch.onnx.export(dec, (example,), str(path), input_names=["tokens"], output_names=["frames"],
                      dynamic_axes={"tokens": {0: "batch"}, "frames": {0: "batch"}}, opset_version=18,
                      dynamo=False)
    return path


class OnnxFrameDecoder:
    """The exported decoder under ONNX Runtime: tokens (B, 81) int64 -> frames (B, 64, 64, 3) uint8."""

    def __init__(self, path: Path, threads: int = 1):
        import onnxruntime as ort

        opts = ort.SessionOptions()
        opts.intra_op_num_threads = threads
        opts.inter_op_num_threads = 1
        opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        self.session = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])

    def __call__(self, tokens: np.ndarray | torch.Tensor) -> np.ndarray:
        t = tokens.cpu().numpy() if isinstance(tokens, torch.Tensor) else np.asarray(tokens)
        return self.session.run(["frames"], {"tokens": t.astype(np.int64)})[0]


def load_tokenizer(path: Path, device: str = "cpu") -> TileTokenizer:
    from models.common.weights import load_config, load_weights

    cfg = TokenizerConfig(**load_config(path)["config"])
    return load_weights(TileTokenizer(cfg), path, device)
