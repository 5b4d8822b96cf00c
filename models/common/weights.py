"""Save and load model weights as fp16 safetensors with a JSON config beside them (never pickle)."""
from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file

MAX_FILE_MB = 25


def save_weights(model: torch.nn.Module, path: Path, config: dict | object | None = None, meta: dict | None = None) -> None:
    """model -> path (.safetensors, fp16) and path.with_suffix('.json') with config and meta."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().to(torch.float16).contiguous() if v.is_floating_point() else v.contiguous()
             for k, v in model.state_dict().items()}
    save_file(state, str(path))
    mb = path.stat().st_size / 2**20
    if mb > MAX_FILE_MB:
        raise ValueError(f"{path} is {mb:.1f} MB; weights files must stay under {MAX_FILE_MB} MB")
    if config is not None:
        cfg = asdict(config) if hasattr(config, "__dataclass_fields__") else dict(config)
        path.with_suffix(".json").write_text(json.dumps({"config": cfg, "meta": meta or {}}, indent=2))


def load_config(path: Path) -> dict:
    return json.loads(Path(path).with_suffix(".json").read_text())


def load_weights(model: torch.nn.Module, path: Path, device: str = "cpu", dtype: torch.dtype = torch.float32) -> torch.nn.Module:
    """Load fp16 safetensors into `model`, cast to `dtype` (fp32 on CPU), strictly."""
    state = load_file(str(path), device="cpu")
    state = {k: v.to(dtype) if v.is_floating_point() else v for k, v in state.items()}
    model.load_state_dict(state, strict=True)
    return model.to(device).eval()
