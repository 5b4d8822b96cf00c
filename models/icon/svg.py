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

Hostile or broken files are refused before svgelements sees them, by one cheap pass of the stdlib's
expat parser (`_prescan`): at most MAX_SVG_CHARS of text, well-formed XML without entity declarations,
MAX_DEPTH levels of nesting, MAX_ELEMENTS elements once every <use> is expanded (a 1 KB file of nested
<use> can otherwise stand for billions of shapes), <use> chains at most MAX_USE_DEPTH deep and never
circular, path data (d / points) at most MAX_PATH_CHARS per attribute and MAX_TOTAL_PATH_CHARS in all.
Coordinates must be finite numbers. Every failure, expected or not, is one plain sentence.
"""
from __future__ import annotations

import io
import re
import xml.etree.ElementTree as ET
import xml.parsers.expat
from dataclasses import dataclass, field

import numpy as np

GRID = 512  # coordinate levels per axis; the normalised viewBox is "0 0 511 511"
VIEW = GRID - 1
N_POINTS = {"M": 1, "L": 1, "C": 3, "Z": 0}  # points each command carries

# Limits on an imported SVG (an icon is a few KB; these leave room for detailed ones and keep every
# refusal well under a second).
MAX_SVG_CHARS = 2_000_000  # the whole document
MAX_DEPTH = 32  # element nesting
MAX_ELEMENTS = 5_000  # elements, counting each <use> expansion
MAX_USE_DEPTH = 4  # <use> of an element that itself holds a <use> ...
MAX_PATH_CHARS = 200_000  # one d / points attribute
MAX_TOTAL_PATH_CHARS = 400_000  # all path data, counting each <use> expansion
MAX_ATTR_CHARS = 20_000  # any other attribute, and a <style> sheet
MAX_TRANSFORM_WORK = 2_000_000  # characters of transform / style svgelements re-reads, summed over elements
MAX_SUBPATHS = 2_000  # outlines (M ... Z) in the whole icon, before grouping
MAX_SEGMENTS = 20_000  # drawing commands in the whole icon


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


_XLINK_HREF = "{http://www.w3.org/1999/xlink}href"
_BAD_PATH_CHAR = re.compile(r"[^MmZzLlHhVvCcSsQqTtAa0-9eE.+\-\s,]")  # SVG path grammar's alphabet
_BAD_POINTS_CHAR = re.compile(r"[^0-9eE.+\-\s,]")
_XML_REASONS = {"no element found": "the document ends early",
                "mismatched tag": "a closing tag does not match its opening tag",
                "not well-formed (invalid token)": "an invalid character or token",
                "unclosed token": "a tag or attribute is not closed",
                "junk after document element": "there is text after the closing </svg>",
                "duplicate attribute": "an element repeats an attribute",
                "undefined entity": "an unknown &entity; is used"}


def _local(tag) -> str:
    return tag.rsplit("}", 1)[-1].lower() if isinstance(tag, str) else ""


def _prescan(text: str) -> list[str]:
    """One cheap expat pass that refuses what would break or stall svgelements (see the limits above).
    Returns the document's path data (d attributes), to say which part failed if svgelements fails."""
    if len(text) > MAX_SVG_CHARS:
        raise IconError("too_large", f"the SVG is {len(text) / 1e6:.1f} MB of text; at most "
                                     f"{MAX_SVG_CHARS / 1e6:g} MB are read")
    _check_entities(text)
    parser = ET.XMLPullParser(events=("start", "end"))
    state = {"root": None, "depth": 0, "n": 0, "css": 0}

    def take_events():
        for ev, el in parser.read_events():
            if ev == "end":
                state["depth"] -= 1
                if _local(el.tag) == "style" and el.text:
                    if len(el.text) > MAX_ATTR_CHARS:
                        raise IconError("too_large", f"the SVG's <style> sheet is {len(el.text):,} characters long; "
                                                     f"at most {MAX_ATTR_CHARS:,} are read")
                    if "transform" in el.text.lower():
                        state["css"] += len(el.text)
                continue
            state["depth"] += 1
            state["n"] += 1
            if state["root"] is None:
                state["root"] = el
            if state["depth"] > MAX_DEPTH:
                raise IconError("too_deep", f"the SVG nests elements more than {MAX_DEPTH} levels deep")
            if state["n"] > MAX_ELEMENTS:
                raise IconError("too_many_elements", f"the SVG has more than {MAX_ELEMENTS:,} elements")
            for k, v in el.attrib.items():
                if _local(k) in ("d", "points"):
                    if len(v) > MAX_PATH_CHARS:
                        raise IconError("too_large", f"the SVG has path data {len(v):,} characters long; "
                                                     f"at most {MAX_PATH_CHARS:,} per path are read")
                    bad = (_BAD_PATH_CHAR if _local(k) == "d" else _BAD_POINTS_CHAR).search(v)
                    if bad:
                        raise IconError("malformed", "the SVG has path data that is not made of drawing commands "
                                                     f"and numbers (at character {bad.start() + 1} of {len(v):,})")
                elif len(v) > MAX_ATTR_CHARS:
                    raise IconError("too_large", f"the SVG has a '{_local(k)[:30]}' attribute {len(v):,} characters "
                                                 f"long; at most {MAX_ATTR_CHARS:,} are read")

    try:
        for i in range(0, len(text), 1 << 16):
            parser.feed(text[i:i + (1 << 16)])
            take_events()
        parser.close()
        take_events()
    except ET.ParseError as e:
        why = xml.parsers.expat.ErrorString(e.code) if isinstance(e.code, int) else ""
        line, col = e.position if getattr(e, "position", None) else (0, -1)
        why = _XML_REASONS.get(why, why or "it cannot be parsed")
        raise IconError("malformed", f"the SVG is not well-formed XML: {why} (line {line}, column {col + 1})") from None
    root = state["root"]
    if root is None:
        raise IconError("malformed", "the SVG is not well-formed XML: the document has no elements")
    if _local(root.tag) != "svg":
        raise IconError("not_svg", "this file is not an SVG document (its outermost element is not <svg>)")
    _check_expansion(root, state["css"])
    return [v for el in root.iter() for k, v in el.attrib.items() if _local(k) == "d"]


_ENTITY = re.compile(r"<!ENTITY\s+(%\s+)?([^\s>]+)\s+(\"[^\"]*\"|'[^']*'|SYSTEM\b|PUBLIC\b)", re.I)
MAX_ENTITY_EXPANSION = 200_000  # characters that internal entities may add (editors declare namespaces so)


def _check_entities(text: str) -> None:
    """Allow the plain entities some editors declare (<!ENTITY ns_svg "http://...">), refuse the rest:
    nested (the "billion laughs"), parameter and external entities, and expansions past a limit."""
    n_decl = len(re.findall(r"<!ENTITY", text, re.I))
    if not n_decl:
        return
    decls = _ENTITY.findall(text)
    refused = IconError("entities", "this SVG declares XML entities that nest, point outside the file or expand "
                                    "too far; the importer refuses them")
    if len(decls) != n_decl or n_decl > 100:
        raise refused
    grow = 0
    for pct, name, val in decls:
        if pct or val.upper() in ("SYSTEM", "PUBLIC") or "&" in val or "%" in val:
            raise refused
        grow += text.count(f"&{name};") * (len(val) - 2)
        if grow > MAX_ENTITY_EXPANSION:
            raise refused


def _check_expansion(root, css_transform: int) -> None:
    """Count what svgelements will build once every <use> is inlined (it copies the referenced element,
    children and all, into each <use>): elements, path characters, transform text re-read by each
    element (children inherit their ancestors' transforms as text), and <use> chain depth.
    Memoised per element, so a fan-out bomb costs one visit per element, not per expansion."""
    ids = {}
    for el in root.iter():
        if el.get("id") is not None:
            ids[el.get("id")] = el  # svgelements keeps the last element of an id
    memo: dict[int, tuple[int, int, int, int]] = {}
    active: set[int] = set()

    def visit(el, hops: int) -> tuple[int, int, int, int]:
        key = id(el)
        if key in active:
            raise IconError("use_loop", "the SVG has a <use> element that refers to itself or to an element "
                                        "that contains it")
        r = memo.get(key)
        if r is None:
            active.add(key)
            style = el.get("style", "")
            t = len(el.get("transform", "")) + (len(style) if "transform" in style.lower() else 0) + css_transform
            count, udepth, tcost = 1, 0, t
            chars = sum(len(v) for k, v in el.attrib.items() if _local(k) in ("d", "points"))
            kids = [(c, 0) for c in el]
            if _local(el.tag) == "use":
                url = el.get("href", el.get(_XLINK_HREF))  # svgelements: href wins over xlink:href
                target = ids.get(url[1:]) if url else None
                if target is not None:
                    if hops + 1 > MAX_USE_DEPTH:
                        raise IconError("use_depth", f"the SVG chains <use> references more than {MAX_USE_DEPTH} "
                                                     "levels deep")
                    kids.append((target, 1))
            for c, hop in kids:
                cc, ch, ct, cu = visit(c, hops + hop)
                count, chars, tcost, udepth = count + cc, chars + ch, tcost + ct + cc * t, max(udepth, cu + hop)
                if count > MAX_ELEMENTS:
                    raise IconError("too_many_elements", f"the SVG stands for more than {MAX_ELEMENTS:,} elements "
                                                         "once its <use> references are expanded")
                if chars > MAX_TOTAL_PATH_CHARS:
                    raise IconError("too_large", f"the SVG holds more than {MAX_TOTAL_PATH_CHARS:,} characters of "
                                                 "path data once its <use> references are expanded")
                if tcost > MAX_TRANSFORM_WORK:
                    raise IconError("too_large", "the SVG's transforms are too long to apply to all its elements")
            active.discard(key)
            memo[key] = r = (count, chars, tcost, udepth)
        if hops + r[3] > MAX_USE_DEPTH:
            raise IconError("use_depth", f"the SVG chains <use> references more than {MAX_USE_DEPTH} levels deep")
        return r

    visit(root, 0)


def _float(v, default: float = 1.0) -> float:
    """An opacity-like attribute value; unreadable text counts as the default, as browsers do."""
    try:
        f = float(v)
    except (TypeError, ValueError):
        return default
    return f if np.isfinite(f) else default


def outline_strokes(text: str) -> str:
    """An SVG that draws with strokes -> the same drawing as filled outlines (picosvg, Google's SVG
    simplifier, over skia-pathops: strokes with their width, caps and joins become fills). The document
    has passed the limits of `_prescan` already; picosvg's own errors become one plain sentence."""
    _prescan(text)  # the same limits as any import, before picosvg sees the text
    try:
        from picosvg.svg import SVG
    except ImportError:  # noqa: BLE001 - the package is a dependency; a broken install says so plainly
        raise IconError("stroke", "this SVG draws with strokes and the stroke converter (picosvg) is not installed") from None
    try:
        return SVG.fromstring(text.replace("currentColor", "black")).topicosvg().tostring()
    except Exception:  # noqa: BLE001 - picosvg raises many kinds for what it cannot convert
        raise IconError("stroke", "this SVG draws with strokes that could not be turned into filled outlines") from None


def parse_svg(text: str, *, max_paths: int = 64) -> list[IconPath]:
    """SVG document text -> normalised icon paths on the grid. Raises IconError with a plain reason
    (one sentence, one line) for every input it cannot take, whatever went wrong inside."""
    if not isinstance(text, str) or not text.strip():
        raise IconError("empty", "the SVG is empty")
    try:
        return _parse_svg(text, max_paths)
    except IconError as e:
        if e.reason != "stroke":
            raise
        # a stroke icon (Lucide, Tabler, ...): turn its strokes into filled outlines and read that
        return _parse_svg(outline_strokes(text), max_paths)
    except RecursionError:
        raise IconError("too_deep", "the SVG is nested too deeply to read") from None
    except MemoryError:
        raise IconError("too_large", "the SVG is too large to read") from None
    except Exception:  # an svgelements or numpy failure on odd input: say so plainly, not in library words
        raise IconError("malformed", "the SVG could not be read: some of its attributes or path data are "
                                     "malformed") from None


def _parse_svg(text: str, max_paths: int) -> list[IconPath]:
    import svgelements as se

    if len(text) > MAX_SVG_CHARS:
        _prescan(text)  # the size message, before the regex below scans megabytes
    _check_markup(text)
    path_data = _prescan(text)
    try:
        svg = se.SVG.parse(io.StringIO(text), reify=True, color="black", on_error="raise")
    except Exception:  # the XML is well-formed (prescan), so this is an attribute or path svgelements refuses
        for d in path_data:
            try:
                se.Path(d)
            except Exception:
                raise IconError("malformed", "the SVG has path data that cannot be read: a command lacks its "
                                             "numbers or a number is malformed") from None
        raise IconError("malformed", "the SVG could not be read: some of its attributes are malformed") from None
    if not isinstance(svg, se.SVG):
        raise IconError("not_svg", "this file is not an SVG document (no <svg> element)")
    w, h = float(svg.width or 0), float(svg.height or 0)
    if not (np.isfinite(w) and np.isfinite(h)):
        raise IconError("not_finite", "the SVG's width, height or viewBox is not a finite number")
    if not (w > 0 and h > 0):
        raise IconError("no_size", "the SVG has no usable width/height or viewBox")
    scale = VIEW / max(w, h)
    off = np.array([(max(w, h) - w) / 2, (max(w, h) - h) / 2]) * scale  # centre a non-square viewport

    subpath_groups: list[list[tuple[str, np.ndarray]]] = []
    n_subpaths = n_segments = 0
    for el in svg.elements():
        if not isinstance(el, se.Shape):
            continue
        if el.values.get("visibility") == "hidden":
            continue
        stroke_w = _float(el.stroke_width or 0, 0.0) if el.stroke is not None and el.stroke.value is not None else 0.0
        has_fill = el.fill is not None and el.fill.value is not None and el.fill.alpha > 0
        if stroke_w > 0 and el.stroke.alpha > 0:
            raise IconError("stroke", "this SVG draws with strokes; only filled icons are supported")
        if not has_fill:
            continue
        if not _is_dark(el.fill):
            raise IconError("colour", "this SVG has light-coloured parts (cut-outs painted in white); "
                                      "only single-colour icons are supported")
        opacity = _float(el.values.get("opacity", 1) or 1) * _float(el.values.get("fill-opacity", 1) or 1)
        if opacity < 0.99:
            raise IconError("colour", "this SVG has semi-transparent parts; only solid single-colour icons are supported")
        path = abs(se.Path(el)) if not isinstance(el, se.Path) else abs(el)
        path.reify()
        n_segments += len(path)
        if n_segments > MAX_SEGMENTS:
            raise IconError("too_large", f"the SVG has more than {MAX_SEGMENTS:,} drawing commands")
        subs = _subpaths(path, scale, off)
        if not subs:
            continue
        n_subpaths += len(subs)
        if n_subpaths > MAX_SUBPATHS:
            raise IconError("too_large", f"the SVG has more than {MAX_SUBPATHS:,} separate outlines")
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
        with np.errstate(over="ignore", invalid="ignore"):  # 1e308 * scale: refused just below
            v = np.array([p.x, p.y], dtype=np.float64) * scale + off
        if not np.isfinite(v).all():
            raise IconError("not_finite", "the SVG has coordinates that are not finite numbers (NaN or infinity)")
        return np.clip(np.rint(v), 0, VIEW)

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
            sweep = abs(float(seg.sweep))
            if not np.isfinite(sweep):
                raise IconError("not_finite", "the SVG has an arc whose size is not a finite number")
            quarters = min(8, max(1, int(np.ceil(sweep / (np.pi / 2) - 1e-6))))  # one cubic per 90 degrees
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
