"""SVG in and out for the Icon model: parse any SVG with svgelements into a normalised `Icon`
(absolute coordinates on one grid, only M / L / C / Z), write it back as SVG text, render it.

Normalisation, the same for the training corpus and for files a user imports:
  - transforms resolved (svgelements `reify`), every shape (rect, circle, polygon ...) turned into a path;
  - arcs and quadratics turned into cubics, relative commands into absolute ones;
  - the viewport mapped onto a 0..GRID-1 square ("meet", centred) and coordinates rounded to integers;
  - each path element split into "islands": groups of subpaths whose bounding boxes overlap. Islands
    never touch, so drawing them as separate <path> elements renders exactly like the original element,
    and the panel can stream, select and redraw them one by one.
Everything the model cannot represent (strokes, several colours, masks, images, text, even-odd holes
that a nonzero fill would close) is refused with an `IconError` whose message says why.
"""
from __future__ import annotations

import io
import re
from dataclasses import dataclass, field

import numpy as np

GRID = 512  # coordinate levels per axis; the normalised viewBox is "0 0 511 511"
VIEW = GRID - 1
N_POINTS = {"M": 1, "L": 1, "C": 3, "Z": 0}  # points each command carries


class IconError(ValueError):
    """An SVG the icon pipeline cannot take; `reason` is a short key for counting, the message a sentence."""

    def __init__(self, reason: str, message: str):
        super().__init__(message)
        self.reason = reason


@dataclass
class IconPath:
    """One drawable path: commands "MCCLZM..." and their points (n_points, 2) on the grid (float or int)."""

    cmds: str
    pts: np.ndarray = field(repr=False)

    def __post_init__(self):
        self.pts = np.asarray(self.pts, dtype=np.float32).reshape(-1, 2)
        if sum(N_POINTS.get(c, -10_000) for c in self.cmds) != len(self.pts):
            raise IconError("malformed", f"path commands {self.cmds[:20]!r} do not match {len(self.pts)} points")
        if not self.cmds or self.cmds[0] != "M":
            raise IconError("malformed", "a path must start with a move (M)")

    def d(self) -> str:
        """The SVG path data string (absolute commands, coordinates printed compactly)."""
        out, i = [], 0
        for c in self.cmds:
            n = N_POINTS[c]
            out.append(c + " ".join(f"{_num(x)} {_num(y)}" for x, y in self.pts[i:i + n]))
            i += n
        return "".join(out)

    def to_wire(self) -> dict:
        return {"cmds": self.cmds, "pts": self.pts.astype(np.float32)}

    @classmethod
    def from_wire(cls, d: dict) -> "IconPath":
        try:
            return cls(str(d["cmds"]), np.asarray(d["pts"], dtype=np.float32))
        except (KeyError, TypeError) as e:
            raise IconError("malformed", f"a path needs 'cmds' and 'pts': {e}") from None


def _num(v: float) -> str:
    r = round(float(v), 2)
    return str(int(r)) if r == int(r) else f"{r:g}"


def to_svg(paths: list[IconPath], size: int | None = None, fill: str = "currentColor") -> str:
    """Paths on the grid -> a standalone SVG document (viewBox 0 0 511 511)."""
    wh = f' width="{size}" height="{size}"' if size else ""
    body = "".join(f'<path d="{p.d()}"/>' for p in paths)
    return (f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {VIEW} {VIEW}"{wh}>'
            f'<g fill="{fill}">{body}</g></svg>')


def render(svg_text: str, size: int = 64) -> np.ndarray:
    """Rasterise SVG text with resvg -> (size, size) float32 coverage in [0, 1] (alpha channel)."""
    import resvg_py
    from PIL import Image

    png = resvg_py.svg_to_bytes(svg_string=svg_text, width=size, height=size, skip_system_fonts=True)
    img = Image.open(io.BytesIO(bytes(png))).convert("RGBA").resize((size, size))
    return np.asarray(img, dtype=np.float32)[..., 3] / 255.0


def render_paths(paths: list[IconPath], size: int = 64) -> np.ndarray:
    return render(to_svg(paths, fill="black"), size)


def iou(a: np.ndarray, b: np.ndarray, thresh: float = 0.5) -> float:
    """Pixel IoU of two coverage images; two empty images count as identical."""
    a, b = a > thresh, b > thresh
    union = np.logical_or(a, b).sum()
    return 1.0 if union == 0 else float(np.logical_and(a, b).sum() / union)


# ---- parsing ---------------------------------------------------------------------------------
_UNSUPPORTED = {"mask": "masks", "clippath": "clip paths", "image": "embedded images", "text": "text",
                "pattern": "patterns", "filter": "filters", "lineargradient": "gradients",
                "radialgradient": "gradients"}


def _check_markup(text: str) -> None:
    tags = {t.lower() for t in re.findall(r"<\s*([A-Za-z][\w:-]*)", text)}
    for tag, what in _UNSUPPORTED.items():
        if tag in tags:
            raise IconError(tag if tag != "radialgradient" else "lineargradient",
                            f"this SVG uses {what}, which icons cannot hold")
    if "svg" not in tags:
        raise IconError("not_svg", "this file is not an SVG document (no <svg> element)")


def _is_dark(color) -> bool:
    r, g, b = color.red, color.green, color.blue
    return 0.299 * r + 0.587 * g + 0.114 * b < 128


def parse_svg(text: str, *, max_paths: int = 64) -> list[IconPath]:
    """SVG document text -> normalised icon paths on the grid. Raises IconError with a plain reason."""
    import svgelements as se

    if not isinstance(text, str) or not text.strip():
        raise IconError("empty", "the SVG is empty")
    _check_markup(text)
    try:
        svg = se.SVG.parse(io.StringIO(text), reify=True, color="black", on_error="raise")
    except Exception as e:  # svgelements raises many types on broken XML
        raise IconError("malformed", f"the SVG could not be read: {type(e).__name__}: {str(e)[:200]}") from None
    w, h = float(svg.width or 0), float(svg.height or 0)
    if not (w > 0 and h > 0):
        raise IconError("no_size", "the SVG has no usable width/height or viewBox")
    scale = VIEW / max(w, h)
    off = np.array([(max(w, h) - w) / 2, (max(w, h) - h) / 2]) * scale  # centre a non-square viewport

    subpath_groups: list[list[tuple[str, np.ndarray]]] = []
    for el in svg.elements():
        if not isinstance(el, se.Shape):
            continue
        if el.values.get("visibility") == "hidden":
            continue
        stroke_w = float(el.stroke_width or 0) if el.stroke is not None and el.stroke.value is not None else 0.0
        has_fill = el.fill is not None and el.fill.value is not None and el.fill.alpha > 0
        if stroke_w > 0 and el.stroke.alpha > 0:
            raise IconError("stroke", "this SVG draws with strokes; only filled icons are supported")
        if not has_fill:
            continue
        if not _is_dark(el.fill):
            raise IconError("colour", "this SVG has light-coloured parts (cut-outs painted in white); "
                                      "only single-colour icons are supported")
        opacity = float(el.values.get("opacity", 1) or 1) * float(el.values.get("fill-opacity", 1) or 1)
        if opacity < 0.99:
            raise IconError("colour", "this SVG has semi-transparent parts; only solid single-colour icons are supported")
        path = abs(se.Path(el)) if not isinstance(el, se.Path) else abs(el)
        path.reify()
        subs = _subpaths(path, scale, off)
        if not subs:
            continue
        if el.values.get("fill-rule") == "evenodd" and len(subs) > 1 and not _evenodd_same(subs):
            raise IconError("evenodd", "this SVG cuts holes with the even-odd rule in a way a nonzero fill "
                                       "cannot reproduce")
        subpath_groups.append(subs)
    if not subpath_groups:
        raise IconError("empty", "the SVG has no filled shapes to draw")
    paths = [p for subs in subpath_groups for p in _islands(subs)]
    if len(paths) > max_paths:
        raise IconError("too_many_paths", f"the SVG has {len(paths)} separate shapes; at most {max_paths} are supported")
    return paths


def _cubic_from_quad(p0, q, p1):
    return p0 + 2 / 3 * (q - p0), p1 + 2 / 3 * (q - p1)


def _subpaths(path, scale: float, off: np.ndarray) -> list[tuple[str, np.ndarray]]:
    """An absolute svgelements Path -> [(cmds, int points (n, 2))], one per subpath, quantised."""
    import svgelements as se

    subs, cmds, pts = [], [], []

    def q(p):
        return np.clip(np.rint(np.array([p.x, p.y], dtype=np.float64) * scale + off), 0, VIEW)

    def flush():
        if cmds and any(c != "M" for c in cmds):
            subs.append(("".join(cmds), np.array(pts, dtype=np.float32)))
        cmds.clear()
        pts.clear()

    def add(c, *ps):
        if c == "L" and pts and np.array_equal(ps[0], pts[-1]):
            return  # a zero-length line after rounding
        if c == "C" and pts and all(np.array_equal(p, pts[-1]) for p in ps):
            return
        cmds.append(c)
        pts.extend(ps)

    for seg in path:
        if isinstance(seg, se.Move):
            flush()
            add("M", q(seg.end))
        elif isinstance(seg, se.Close):
            if cmds:
                if cmds[-1] == "L" and np.array_equal(pts[-1], pts[0]):  # pts[0] is this subpath's M
                    cmds.pop()
                    pts.pop()
                cmds.append("Z")
                flush()
        elif not cmds:
            continue  # drawing without a move: svgelements always emits one, so this is defensive
        elif isinstance(seg, se.Line):
            add("L", q(seg.end))
        elif isinstance(seg, se.CubicBezier):
            add("C", q(seg.control1), q(seg.control2), q(seg.end))
        elif isinstance(seg, se.QuadraticBezier):
            p0, c, p1 = (np.array([v.x, v.y]) for v in (seg.start, seg.control, seg.end))
            c1, c2 = _cubic_from_quad(p0, c, p1)
            add("C", q(se.Point(*c1)), q(se.Point(*c2)), q(seg.end))
        elif isinstance(seg, se.Arc):
            quarters = max(1, int(np.ceil(abs(float(seg.sweep)) / (np.pi / 2) - 1e-6)))  # one cubic per 90 degrees
            for cub in seg.as_cubic_curves(quarters):
                add("C", q(cub.control1), q(cub.control2), q(cub.end))
    flush()
    return subs


def _bbox(pts: np.ndarray) -> np.ndarray:
    return np.concatenate([pts.min(0), pts.max(0)])


def _islands(subs: list[tuple[str, np.ndarray]]) -> list[IconPath]:
    """Group subpaths whose bounding boxes overlap (union-find); each group becomes one IconPath."""
    n = len(subs)
    parent = list(range(n))

    def find(i):
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    boxes = np.stack([_bbox(p) for _, p in subs])  # (n, 4) x0 y0 x1 y1
    overlap = ((boxes[:, None, 0] <= boxes[None, :, 2]) & (boxes[None, :, 0] <= boxes[:, None, 2]) &
               (boxes[:, None, 1] <= boxes[None, :, 3]) & (boxes[None, :, 1] <= boxes[:, None, 3]))
    for i, j in zip(*np.nonzero(np.triu(overlap, 1))):
        parent[find(i)] = find(j)
    groups: dict[int, list[int]] = {}
    for i in range(n):
        groups.setdefault(find(i), []).append(i)
    out = []
    for members in sorted(groups.values(), key=min):
        out.append(IconPath("".join(subs[i][0] for i in members), np.concatenate([subs[i][1] for i in members])))
    return out


def _evenodd_same(subs: list[tuple[str, np.ndarray]], size: int = 64) -> bool:
    """Does a nonzero fill of these subpaths look like the even-odd fill the SVG asked for?"""
    d = "".join(IconPath(c, p).d() for c, p in subs)
    head = f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {VIEW} {VIEW}">'
    a = render(f'{head}<path fill="black" fill-rule="evenodd" d="{d}"/></svg>', size)
    b = render(f'{head}<path fill="black" d="{d}"/></svg>', size)
    return iou(a, b) >= 0.99
