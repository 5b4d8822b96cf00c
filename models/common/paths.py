"""Where things live: shipped weights in assets/, built training data in the user cache dir
(WEFT_CACHE_DIR overrides it), shared raw data beside the repo (../shared/data)."""
from __future__ import annotations

import os
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
ASSETS = REPO / "assets"
SHARED_DATA = REPO.parent / "shared" / "data"


def cache_dir(*parts: str) -> Path:
    from platformdirs import user_cache_dir

    d = Path(os.environ.get("WEFT_CACHE_DIR") or user_cache_dir("weft")).joinpath(*parts)
    d.mkdir(parents=True, exist_ok=True)
    return d


def asset(*parts: str) -> Path:
    return ASSETS.joinpath(*parts)
