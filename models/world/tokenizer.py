"""Frame tokenizer of the World model: a small convolutional autoencoder with finite scalar
quantization (FSQ, Mentzer et al. 2023) that turns a 64x64 Crafter frame into 9x9 = 81 tokens.

Crafter draws its world as a 9x9 grid of 7x7-pixel tiles (63 px of content and a 1 px black edge
at 64x64), so the tokenizer patches the frame on that same grid: one token per tile. A tile's token
says which texture, object and light level it shows; neighbouring tiles inform each other through
3x3 convolutions on the 9x9 grid. FSQ needs no codebook losses and never collapses: each token is
4 bounded scalars rounded to (8, 5, 5, 5) levels, i.e. one of 1000 codes.

    ae = FrameAutoencoder(TokenizerConfig())
    tokens = ae.encode(frames_uint8)        # (B, 81) int64 in [0, 1000)
    frames = ae.decode(tokens)              # (B, 64, 64, 3) uint8 (torch)

The decoder is exported to ONNX (`export_decoder_onnx`) and run by ONNX Runtime in the engine
(`OnnxFrameDecoder`): tokens (B, 81) int64 in, frames (B, 64, 64, 3) uint8 out.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
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
    width: int = 96  # channels on the 9x9 grid
    n_res: int = 2  # residual blocks on the grid, in the encoder and in the decoder
    levels: list[int] = field(default_factory=lambda: [8, 5, 5, 5])  # FSQ levels per latent dim

    @property
    def n_tokens(self) -> int:
        return self.grid * self.grid

    @property
    def vocab(self) -> int:
        return math.prod(self.levels)


class FSQ(nn.Module):
    """Finite scalar quantization: bound each latent dim with tanh, round to its levels (straight-through)."""

    def __init__(self, levels: list[int]):
        super().__init__()
        lv = torch.tensor(levels, dtype=torch.float32)
        self.register_buffer("levels", lv, persistent=False)
        self.register_buffer("basis", torch.cumprod(torch.tensor([1] + levels[:-1]), 0).float(), persistent=False)
        self.register_buffer("half_width", (lv // 2), persistent=False)
        # every code's latent vector, (vocab, dims): lets the decoder start from token ids
        idx = torch.arange(math.prod(levels))
        self.register_buffer("table", self.indices_to_codes(idx), persistent=False)

    def bound(self, z: torch.Tensor) -> torch.Tensor:
        """z (..., d) -> values in (-L/2, L/2) per dim, offset so even levels round symmetrically."""
        eps = 1e-3
        half_l = (self.levels - 1) * (1 - eps) / 2
        offset = torch.where(self.levels % 2 == 1, 0.0, 0.5)
        shift = torch.atanh(offset / half_l)
        return torch.tanh(z + shift) * half_l - offset

    def forward(self, z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """z (..., d) -> quantized codes (..., d) in [-1, 1] (straight-through) and indices (...)."""
        b = self.bound(z)
        q = b + (torch.round(b) - b).detach()
        codes = q / self.half_width
        return codes, self.codes_to_indices(codes.detach())

    def codes_to_indices(self, codes: torch.Tensor) -> torch.Tensor:
        digits = torch.round(codes * self.half_width + self.half_width)
        return (digits * self.basis).sum(-1).long()

    def indices_to_codes(self, idx: torch.Tensor) -> torch.Tensor:
        digits = (idx[..., None] // self.basis.long()) % self.levels.long()
        return (digits.float() - self.half_width) / self.half_width


class ResBlock(nn.Module):
    def __init__(self, ch: int):
        super().__init__()
        self.norm1, self.conv1 = nn.GroupNorm(8, ch), nn.Conv2d(ch, ch, 3, padding=1)
        self.norm2, self.conv2 = nn.GroupNorm(8, ch), nn.Conv2d(ch, ch, 3, padding=1)

    def forward(self, x):
        h = self.conv1(F.gelu(self.norm1(x)))
        return x + self.conv2(F.gelu(self.norm2(h)))


class FrameAutoencoder(nn.Module):
    """Per-tile patch embedding (ViT-style) -> residual convs on the 9x9 grid -> FSQ, and back."""

    def __init__(self, cfg: TokenizerConfig):
        super().__init__()
        self.cfg = cfg
        c, d, pix = cfg.width, len(cfg.levels), 3 * cfg.patch * cfg.patch
        self.enc_patch = nn.Sequential(nn.Conv2d(pix, c, 1), nn.GELU(), nn.Conv2d(c, c, 1))  # (B, c, 9, 9)
        self.enc_res = nn.Sequential(*[ResBlock(c) for _ in range(cfg.n_res)])
        self.enc_out = nn.Sequential(nn.GroupNorm(8, c), nn.GELU(), nn.Conv2d(c, d, 1))
        self.fsq = FSQ(list(cfg.levels))
        self.dec_in = nn.Conv2d(d, c, 1)
        self.dec_res = nn.Sequential(*[ResBlock(c) for _ in range(cfg.n_res)])
        # each tile's 7x7x3 pixels from its vector: a small per-tile MLP (1x1 convs)
        self.dec_patch = nn.Sequential(nn.GroupNorm(8, c), nn.GELU(), nn.Conv2d(c, 2 * c, 1), nn.GELU(),
                                       nn.Conv2d(2 * c, pix, 1))

    @property
    def content(self) -> int:
        return self.cfg.grid * self.cfg.patch

    def patchify(self, x: torch.Tensor) -> torch.Tensor:
        """(B, 3, 63, 63) -> (B, 3 * 7 * 7, 9, 9): each tile's pixels as channels."""
        B, g, p = x.shape[0], self.cfg.grid, self.cfg.patch
        return x.reshape(B, 3, g, p, g, p).permute(0, 1, 3, 5, 2, 4).reshape(B, 3 * p * p, g, g)

    def unpatchify(self, t: torch.Tensor) -> torch.Tensor:
        B, g, p = t.shape[0], self.cfg.grid, self.cfg.patch
        return t.reshape(B, 3, p, p, g, g).permute(0, 1, 4, 2, 5, 3).reshape(B, 3, g * p, g * p)

    # ---- float in [0, 1], channels first ------------------------------------------------------
    def encode_float(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """x (B, 3, 64, 64) in [0, 1] -> codes (B, 81, d), indices (B, 81)."""
        n = self.content
        h = self.enc_patch(self.patchify(x[:, :, :n, :n] * 2 - 1))
        z = self.enc_out(self.enc_res(h))  # (B, d, 9, 9)
        return self.fsq(z.flatten(2).transpose(1, 2))

    def decode_codes(self, codes: torch.Tensor) -> torch.Tensor:
        """codes (B, 81, d) -> frames (B, 3, 64, 64) in [0, 1] (black edge outside the 63 px)."""
        B, g = codes.shape[0], self.cfg.grid
        h = self.dec_res(self.dec_in(codes.transpose(1, 2).reshape(B, -1, g, g)))
        y = torch.sigmoid(self.unpatchify(self.dec_patch(h)))
        pad = self.cfg.size - self.content
        return F.pad(y, (0, pad, 0, pad))

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        codes, idx = self.encode_float(x)
        return self.decode_codes(codes), idx

    # ---- uint8 frames and token ids (what the rest of the package uses) --------------------------
    @torch.inference_mode()
    def encode(self, frames: np.ndarray | torch.Tensor) -> torch.Tensor:
        """frames (B, 64, 64, 3) uint8 -> tokens (B, 81) int64."""
        x = torch.as_tensor(np.asarray(frames)).to(next(self.parameters()).device)
        x = x.permute(0, 3, 1, 2).float() / 255.0
        return self.encode_float(x)[1]

    @torch.inference_mode()
    def decode(self, tokens: torch.Tensor) -> torch.Tensor:
        """tokens (B, 81) int64 -> frames (B, 64, 64, 3) uint8."""
        return FrameDecoder(self)(tokens)


class FrameDecoder(nn.Module):
    """The decoder alone, token ids in, uint8 frames out: the graph that is exported to ONNX."""

    def __init__(self, ae: FrameAutoencoder):
        super().__init__()
        self.ae = ae

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:  # (B, 81) int64 -> (B, 64, 64, 3) uint8
        codes = self.ae.fsq.table[tokens]
        y = self.ae.decode_codes(codes)
        return (y * 255.0 + 0.5).clamp(0, 255).to(torch.uint8).permute(0, 2, 3, 1)


def export_decoder_onnx(ae: FrameAutoencoder, path: Path) -> Path:
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


def load_tokenizer(path: Path, device: str = "cpu") -> FrameAutoencoder:
    from models.common.weights import load_config, load_weights

    cfg = TokenizerConfig(**load_config(path)["config"])
    return load_weights(FrameAutoencoder(cfg), path, device)
