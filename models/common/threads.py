"""Intra-op thread count for one decode step."""
from __future__ import annotations

from contextlib import contextmanager

import torch


@contextmanager
def torch_threads(n: int):
    """Run a frame on `n` intra-op threads, then give the engine back its setting. One thread is
    the fast choice for this small model: on a busy 2-core machine a 2-thread pool spends most of a
    frame waiting for its slower thread (measured: 86 ms vs 670 ms per frame)."""
    before = torch.get_num_threads()
    if n != before:
        torch.set_num_threads(n)
    try:
        yield
    finally:
        if n != before:
            torch.set_num_threads(before)
