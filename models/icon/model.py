"""The Icon model: one decoder-only transformer (models/common) over SVG tokens, after a text prefix.

Sequence: TXT BOS path tokens ... EOS. The TXT slot carries the MiniLM embedding of the prompt
through a linear projection added to its token embedding; a zero embedding (text dropped, ~10%
of training samples) is the unconditional input for classifier-free guidance. Fill-in-the-middle
samples use TXT FIM_PRE ... FIM_SUF ... FIM_MID path EOS (see tokenizer.py).
"""
from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
import torch.nn as nn
import torch.nn.functional as F

from models.common.transformer import Transformer, TransformerConfig
from models.icon.tokenizer import VOCAB


@dataclass
class IconConfig:
    vocab_size: int = VOCAB  # special + x + y coordinate tokens
    n_layer: int = 6  # transformer blocks
    n_head: int = 8  # attention heads
    d_model: int = 256  # residual width
    max_seq_len: int = 1024  # longest token sequence (text slot + context + icon)
    mlp_ratio: float = 4.0  # MLP hidden width / d_model
    dropout: float = 0.0  # training only
    text_dim: int = 384  # MiniLM sentence embedding size

    def transformer(self) -> TransformerConfig:
        return TransformerConfig(vocab_size=self.vocab_size, n_layer=self.n_layer, n_head=self.n_head,
                                 d_model=self.d_model, max_seq_len=self.max_seq_len, mlp_ratio=self.mlp_ratio,
                                 dropout=self.dropout)

    @classmethod
    def from_dict(cls, d: dict) -> "IconConfig":
        return cls(**{k: v for k, v in d.items() if k in cls.__dataclass_fields__})

    def to_dict(self) -> dict:
        return asdict(self)


class IconModel(nn.Module):
    def __init__(self, cfg: IconConfig):
        super().__init__()
        self.cfg = cfg
        self.gpt = Transformer(cfg.transformer())
        self.text_proj = nn.Linear(cfg.text_dim, cfg.d_model, bias=False)
        nn.init.normal_(self.text_proj.weight, std=0.02)

    def prefix_embeds(self, text: torch.Tensor, T: int) -> torch.Tensor:
        """text: (B, 384) unit embeddings (zeros = no text) -> (B, T, C) added to the token embeddings:
        the projection at position 0 (the TXT slot), zeros elsewhere."""
        e = self.text_proj(text.to(self.text_proj.weight.dtype))  # (B, C)
        out = torch.zeros(text.shape[0], T, e.shape[-1], dtype=e.dtype, device=e.device)
        out[:, 0] = e
        return out

    def forward(self, idx: torch.Tensor, text: torch.Tensor, targets: torch.Tensor | None = None):
        """idx: (B, T) tokens starting with TXT; text: (B, 384); targets: (B, T) next tokens, -1 = no loss.
        Returns logits (B, T, V), or the mean cross-entropy when targets are given."""
        logits = self.gpt(idx, embeds=self.prefix_embeds(text, idx.shape[1]))
        if targets is None:
            return logits
        return F.cross_entropy(logits.float().view(-1, logits.shape[-1]), targets.view(-1), ignore_index=-1)

    def num_params(self) -> int:
        return sum(p.numel() for p in self.parameters())
