"""Write World frames to a video file: MP4 (H.264 through imageio-ffmpeg) or GIF (Pillow), or a
PNG contact sheet.
Plain numpy in, no Qt, so the panel and `weft-cli world` share it."""
from __future__ import annotations

from pathlib import Path

import numpy as np

FORMATS = (".mp4", ".gif", ".png")


def upscale(frame: np.ndarray, factor: int) -> np.ndarray:
    """Nearest-neighbour upscale of an (H, W, 3) frame by an integer factor."""
    return frame.repeat(factor, axis=0).repeat(factor, axis=1) if factor > 1 else frame


def write_video(frames: list[np.ndarray] | np.ndarray, path: str | Path, fps: float = 15.0, scale: int = 4) -> Path:
    """frames: (T, H, W, 3) uint8 -> path (.mp4 or .gif). Frames are upscaled `scale` times
    (nearest neighbour) so players do not smear 64x64 pixels. Raises ValueError on bad input."""
    path = Path(path)
    if path.suffix.lower() == ".png":
        return write_strip(frames, path, scale=scale)
    if path.suffix.lower() not in FORMATS:
        raise ValueError(f"cannot write '{path.suffix}': choose a file ending in {' or '.join(FORMATS)}")
    if len(frames) == 0:
        raise ValueError("there are no frames to write")
    if not 0 < fps <= 120:
        raise ValueError(f"fps must be in (0, 120], got {fps}")
    path.parent.mkdir(parents=True, exist_ok=True)
    import imageio.v2 as imageio

    tmp = path.with_name(path.stem + ".partial" + path.suffix)
    frames_up = (upscale(np.asarray(f, dtype=np.uint8), scale) for f in frames)
    if path.suffix.lower() == ".mp4":
        with imageio.get_writer(tmp, format="FFMPEG", fps=fps, codec="libx264", quality=8,
                                macro_block_size=16, pixelformat="yuv420p") as w:
            for f in frames_up:
                w.append_data(f)
    else:
        imageio.mimsave(tmp, list(frames_up), format="GIF", duration=1000.0 / fps, loop=0)
    tmp.replace(path)  # never leave a half-written file under the user's name
    return path


def write_strip(frames, path: str | Path, labels: list[str] | None = None, every: int | None = None,
                columns: int = 8, scale: int = 3) -> Path:
    """A contact sheet of every `every`-th frame (about 2 rows of `columns` by default), each with its
    label (e.g. the key held) underneath, as PNG."""
    from PIL import Image, ImageDraw

    if len(frames) == 0:
        raise ValueError("there are no frames to write")
    every = every or max(1, len(frames) // (2 * columns))
    picks = list(range(0, len(frames), every))
    h, w = (np.asarray(frames[0]).shape[0] * scale, np.asarray(frames[0]).shape[1] * scale)
    rows = (len(picks) + columns - 1) // columns
    pad = 16
    sheet = Image.new("RGB", (columns * (w + 4), rows * (h + pad + 4)), (24, 24, 28))
    draw = ImageDraw.Draw(sheet)
    for k, i in enumerate(picks):
        x, y = (k % columns) * (w + 4), (k // columns) * (h + pad + 4)
        sheet.paste(Image.fromarray(upscale(np.asarray(frames[i], dtype=np.uint8), scale)), (x, y))
        text = f"{i}" + (f" {labels[i]}" if labels and i < len(labels) else "")
        draw.text((x + 2, y + h + 2), text[: w // 6], fill=(230, 230, 230))
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    sheet.save(path)
    return path


def read_video(path: str | Path) -> np.ndarray:
    """Read a written file back (T, H, W, 3): used by tests to prove it plays."""
    import imageio.v3 as iio

    return np.asarray(iio.imread(path, index=None))
