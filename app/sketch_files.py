"""Sketch images for the 3D panel and `weft-cli shape --sketch`: a PNG / JPEG / BMP / GIF / WebP / TIFF
file -> an (H, W, 4) uint8 RGBA array, or a SketchFileError whose message is one plain sentence that
names the file. Qt-free and torch-free (PIL + numpy), so the CLI and the panel share it.

Limits, checked from the header before any pixel is decoded: MAX_FILE_MB of file, MAX_SIDE x MAX_SIDE
pixels (a 14000 x 14000 PNG is a few KB of zeros and a gigabyte of pixels). Images larger than
MAX_SIDE_OUT on a side are downscaled on the way in (JPEG at decode time with `Image.draft`): the model
frames every sketch at 64 x 64, so nothing is lost. An image without ink (all white or all
transparent) is refused as an empty sketch.
"""
from __future__ import annotations

import struct
import warnings
from pathlib import Path

import numpy as np

from app.shape_files import _shown  # one way of naming a file in a message

MAX_FILE_MB = 50
MAX_SIDE = 8192  # at most MAX_SIDE * MAX_SIDE pixels are decoded (any aspect ratio)
MAX_SIDE_OUT = 2048  # larger images are downscaled to this longest side
FORMATS = ("PNG", "JPEG", "BMP", "GIF", "WEBP", "TIFF", "PPM")
INK = 0.15  # darkness (0..1) below which a pixel counts as paper, as in the model's sketch framing


class SketchFileError(ValueError):
    """An image file that cannot be used as a sketch; the message is shown to the user as is."""


def _png_size(path: Path) -> tuple[int, int] | None:
    """Width and height from a PNG's IHDR chunk (for the message when PIL refuses to even open it)."""
    try:
        with open(path, "rb") as f:
            head = f.read(24)
    except OSError:
        return None
    if len(head) == 24 and head[:8] == b"\x89PNG\r\n\x1a\n" and head[12:16] == b"IHDR":
        return struct.unpack(">II", head[16:24])
    return None


def _too_large(name: str, w: int | None, h: int | None) -> SketchFileError:
    size = f"the image is {w}×{h} pixels" if w and h else "the image has too many pixels"
    return SketchFileError(f"'{name}' is too large: {size}; at most {MAX_SIDE}×{MAX_SIDE} are read.")


def load_sketch(path: str | Path) -> np.ndarray:
    """Read a sketch image -> (H, W, 4) uint8 RGBA, longest side at most MAX_SIDE_OUT."""
    from PIL import Image, UnidentifiedImageError

    p = Path(path)
    name = _shown(p.name)
    if not p.exists():
        raise SketchFileError(f"The sketch file {_shown(str(p), 200)} does not exist.")
    if not p.is_file():
        raise SketchFileError(f"'{name}' is not a file.")
    size = p.stat().st_size
    if size == 0:
        raise SketchFileError(f"'{name}' is empty (0 bytes).")
    if size > MAX_FILE_MB * 2**20:
        raise SketchFileError(f"'{name}' is {size / 2**20:.0f} MB; at most {MAX_FILE_MB} MB are read.")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # PIL's DecompressionBombWarning: our own limit is lower
            with Image.open(p, formats=FORMATS) as im:
                w, h = im.size
                if w * h <= 0:
                    raise SketchFileError(f"'{name}' is an image with no pixels ({w}×{h}).")
                if w * h > MAX_SIDE * MAX_SIDE:
                    raise _too_large(name, w, h)
                if max(w, h) > MAX_SIDE_OUT:
                    im.draft("RGB", (MAX_SIDE_OUT, MAX_SIDE_OUT))  # JPEG: decode at a reduced scale
                im.load()
                img = _to_rgba(im, name)
    except SketchFileError:
        raise
    except Image.DecompressionBombError:
        raise _too_large(name, *(_png_size(p) or (None, None))) from None
    except UnidentifiedImageError:
        raise SketchFileError(f"'{name}' is not an image this panel reads (PNG, JPEG, BMP, GIF, WebP or TIFF).") from None
    except MemoryError:
        raise SketchFileError(f"'{name}' is too large to load into memory.") from None
    except OSError as e:
        if isinstance(e, (FileNotFoundError, PermissionError, IsADirectoryError)):
            raise SketchFileError(f"'{name}' could not be opened: {(e.strerror or 'the system refused').lower()}.") from None
        raise SketchFileError(f"'{name}' is damaged or cut short: its pixels could not be decoded.") from None
    except Exception:  # SyntaxError, ValueError, zlib.error, struct.error ... from a broken file
        raise SketchFileError(f"'{name}' is damaged or cut short: its pixels could not be decoded.") from None
    arr = np.asarray(img)
    if arr.ndim != 3 or arr.shape[2] != 4 or arr.size == 0:
        raise SketchFileError(f"'{name}' could not be read as an RGBA image.")
    if _is_empty(arr):
        raise SketchFileError(f"'{name}' is blank, so the sketch is empty: draw something (dark lines on a light background).")
    return np.ascontiguousarray(arr)


def _to_rgba(im, name: str):
    """Any PIL mode -> RGBA, downscaled to MAX_SIDE_OUT; float or 16/32-bit images are checked for
    NaN / infinity and scaled to 0..255."""
    from PIL import Image

    if im.mode in ("F", "I", "I;16", "I;16B", "I;16L", "I;16N"):
        a = np.asarray(im, dtype=np.float64)
        if not np.isfinite(a).all():
            raise SketchFileError(f"'{name}' holds pixel values that are not numbers (NaN or infinity).")
        lo, hi = float(a.min()), float(a.max())
        top = 1.0 if hi <= 1.0 and lo >= 0 else (255.0 if hi <= 255 and lo >= 0 else hi)
        a = np.clip(a / max(top, 1e-12) * 255.0, 0, 255).astype(np.uint8)
        im = Image.fromarray(a, "L")
    im = im.convert("RGBA")
    if max(im.size) > MAX_SIDE_OUT:
        im.thumbnail((MAX_SIDE_OUT, MAX_SIDE_OUT), Image.Resampling.BOX)
    return im


def _is_empty(rgba: np.ndarray) -> bool:
    """No ink whichever way the sketch is read: composited over white (the sketch pad), or with the
    alpha channel as ink (the model's framing of a transparent drawing)."""
    grey = rgba[..., :3].mean(-1, dtype=np.float32) / 255.0
    alpha = rgba[..., 3].astype(np.float32) / 255.0
    over_white = 1.0 - (grey * alpha + (1.0 - alpha))
    as_alpha = alpha * (1.0 - grey * 0.5) if alpha.min() < 0.99 else 1.0 - grey
    return float(over_white.max()) <= INK and float(np.max(as_alpha)) <= INK
