"""int8 weights for CPU decoding.

Batch-1 decoding on a CPU reads every weight once per token, so it is bound by memory traffic and
per-op overhead, not arithmetic. Dynamic quantization (int8 weights, activations quantised per
call, int32 accumulation; PyTorch's fbgemm / x86 kernels) halves the bytes read per token versus
fp16 and quarters them versus fp32: the Icon model decodes ~1.9x faster on this 2-core machine.

`torch.ao.quantization.quantize_dynamic` is deprecated in favour of torchao, but it is still in the
pinned torch 2.13 and needs nothing else; if it is missing or fails, the model stays in float and
`int8_linear` says so in its second return value. WEFT_INT8=0 turns it off.
"""
from __future__ import annotations

import logging
import os
import warnings

import torch
from torch import nn

log = logging.getLogger("weft.quant")


def int8_enabled(device: str) -> bool:
    return str(device).startswith("cpu") and os.environ.get("WEFT_INT8", "1") != "0"


def int8_linear(model: nn.Module) -> tuple[nn.Module, bool]:
    """-> (a copy of `model` whose nn.Linear layers hold int8 weights, True), or (model, False)."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            from torch.ao.quantization import quantize_dynamic

            return quantize_dynamic(model, {nn.Linear}, dtype=torch.qint8), True
    except Exception as e:  # noqa: BLE001 - any failure means: keep the float model
        log.warning("int8 quantization unavailable (%s); decoding in float", e)
        return model, False
