"""Fuzzing the SVG and BVH importers (GitHub issues 21, 24, 25): every malformed file is either read or
refused with the importer's own error, one plain line, in well under 2 s. Qt-free (runs with Qt blocked).

Each fuzz test mutates a few valid seed files with a seeded RNG (truncation, character flips, odd
numbers such as NaN / inf / 1e999 / negative counts, deleted and repeated spans, wrong encodings,
garbage bodies), then adds the regressions the issues named: nested <use> bombs, a 10 MB path,
NaN coordinates, deep nesting, deep BVH hierarchies, inf values, huge frame counts, a 24 MB BVH."""
from __future__ import annotations

import io
import json
import random
import time

import numpy as np
import pytest

from models.icon.svg import MAX_PATH_CHARS, MAX_USE_DEPTH, IconError, parse_svg
from models.motion import bvh
from tests.fuzz_util import FuzzTally, check_refusal, mutate_text
from tests.models.test_motion_bvh import FOREIGN_BVH

N_FUZZ = 250
SVG_NS = 'xmlns="http://www.w3.org/2000/svg" xmlns:xlink="http://www.w3.org/1999/xlink"'


def _svg_seeds() -> list[str]:
    from models.common.paths import asset

    rows = [json.loads(line) for line in open(asset("icon", "test_icons.jsonl"))]
    seeds = [rows[i]["src"] for i in (0, 7, 42, 99)]
    seeds += [
        f'<svg {SVG_NS} viewBox="0 0 24 24"><rect x="2" y="2" width="8" height="8"/>'
        '<circle cx="16" cy="16" r="5"/><polygon points="2 22 6 14 10 22"/></svg>',
        f'<svg {SVG_NS} width="48" height="24"><g transform="translate(2 2) scale(2)"><defs>'
        '<path id="p" d="M0 0h4v4h-4z"/></defs><use href="#p"/><use xlink:href="#p" x="10"/></g>'
        '<path d="M30 2a6 6 0 1 0 0.1 0zM40 2q4 8 8 0t4 4z" fill-rule="evenodd"/></svg>',
    ]
    return seeds


def _bvh_seeds() -> list[str]:
    rng = np.random.default_rng(0)
    own = bvh.header() + "MOTION\nFrames: 4\nFrame Time: 0.0333333\n" + "\n".join(
        " ".join(f"{v:.4f}" for v in row) for row in rng.uniform(-90, 90, (4, 6 + 3 * 12))) + "\n"
    foreign = FOREIGN_BVH
    return [own, foreign, foreign.replace("\n", "\r\n")]


# ---- SVG ---------------------------------------------------------------------------------------
def _svg_extra(rng: random.Random) -> list[str]:
    """Format-specific insertions: deep nesting, <use> fan-out, odd attributes."""
    nest = rng.choice([40, 2000])
    fan = "".join(f'<g id="f{i}">' + f'<use href="#f{i - 1}"/>' * 6 + "</g>" for i in range(1, 8))
    return ["<g>" * nest + "</g>" * nest, "<g>" * nest, f'<path id="f0" d="M0 0h1v1z"/>{fan}<use href="#f7"/>',
            '<use href="#p"/>', '<g id="p"><use href="#p"/></g>', ' transform="scale(1e308)"', ' d="M0 0Lnan 1z"',
            '<rect x="1e400" width="5" height="5"/>', '<!DOCTYPE svg [<!ENTITY a "aaaa">]>', "&a;",
            ' opacity="abc"', ' viewBox="0 0 inf nan"', '<path d="M0 0A1e308 1e308 0 1 1 5 5z"/>',
            ' stroke-width="nan" stroke="#000"', "<![CDATA[ x ]]>", "<?pi x?>", "<!-- c -->",
            '<circle r="-5"/>', '<ellipse rx="1e999" ry="2"/>', '<style>path{fill:red}</style>']


ODD_VALUES = ["nan", "inf", "-inf", "1e999", "-1", "0", "", "1e308", "-1e308", "M0 0L", "M", "Z", "M0 0" + "L1 1" * 5000,
              "url(#nope)", "#fff", "none", "currentColor", "evenodd", "scale(0)", "scale(nan)", "rotate(1e308)",
              "matrix(1 2 3)", "translate(1e308 1e308)", "0 0 0 0", "0 0 -5 -5", "abc", "9" * 400, "1 2 3 4 5",
              "#p", "#missing", "display:none", "fill:url(#x)", "opacity:nan"]


def _mutate_attribute(rng: random.Random, text: str) -> tuple[str, str]:
    """Replace one attribute's value (or add an attribute) with an odd value; the XML stays well-formed."""
    import re

    attrs = list(re.finditer(r'(\s[\w:-]+)="([^"]*)"', text))
    value = rng.choice(ODD_VALUES)
    if attrs and rng.random() < 0.7:
        m = rng.choice(attrs)
        return f"attr {m.group(1).strip()}", text[:m.start(2)] + value + text[m.end(2):]
    tags = list(re.finditer(r"<(path|rect|circle|g|svg|use|polygon)\b", text))
    if not tags:
        return "attr none", text
    m = rng.choice(tags)
    name = rng.choice(["d", "x", "y", "width", "height", "r", "transform", "fill", "opacity", "fill-rule",
                       "viewBox", "href", "style", "points", "stroke", "stroke-width", "rx", "cx"])
    return f"add {name}", text[:m.end()] + f' {name}="{value}"' + text[m.end():]


@pytest.mark.timeout(60)
def test_svg_fuzz_is_read_or_refused_plainly():
    rng = random.Random(21)
    seeds = _svg_seeds()
    tally = FuzzTally(IconError)
    for i in range(N_FUZZ):
        seed = rng.randrange(len(seeds))
        if rng.random() < 0.4:  # keep the XML well-formed so the odd values reach svgelements and beyond
            kind, text = _mutate_attribute(rng, seeds[seed])
        else:
            kind, text = mutate_text(rng, seeds[seed], _svg_extra(rng))
        label = f"svg #{i} (seed {seed}, {kind})"
        tally.run(label, parse_svg, text)
    for text in ["", " ", "\x00" * 10, "<svg", "<svg/>", "<svg></svg>", "<html><body/></html>", "<?xml version='1.0'?>",
                 bytes(range(256)).decode("latin-1") * 4, "<svg>" + "\ud800" + "</svg>"]:
        tally.run(f"svg literal {text[:20]!r}", parse_svg, text)
    print(tally.report("SVG"))
    assert tally.n >= N_FUZZ
    assert tally.outcomes["ok"] > 0  # the mutations are not all fatal: the fuzz reaches the deep code


def _timed_refusal(text: str, words: str | tuple[str, ...]) -> str:
    t0 = time.perf_counter()
    with pytest.raises(IconError) as e:
        parse_svg(text)
    dt = time.perf_counter() - t0
    msg = check_refusal(e.value, str(words))
    assert any(w in msg for w in ((words,) if isinstance(words, str) else words)), msg
    assert dt < 1.0, f"{dt:.2f} s for {msg}"
    return msg


@pytest.mark.timeout(60)
def test_svg_nested_use_bomb_is_refused_at_once():
    # 1.3 KB: each level uses the one below ten times; svgelements would inline 10^7 paths (> 150 s before)
    levels = "".join(f'<g id="l{i}">' + f'<use href="#l{i - 1}"/>' * 10 + "</g>" for i in range(1, 8))
    bomb = f'<svg {SVG_NS} viewBox="0 0 24 24"><defs><path id="l0" d="M0 0h1v1z"/>{levels}</defs><use href="#l7"/></svg>'
    assert len(bomb) < 1500
    _timed_refusal(bomb, (f"more than {MAX_USE_DEPTH} levels deep", "once its <use> references are expanded"))
    # a shallow but wide fan-out (within the chain depth) is counted once expanded
    wide = "".join(f'<g id="w{i}">' + f'<use href="#w{i - 1}"/>' * 30 + "</g>" for i in range(1, 4))
    _timed_refusal(f'<svg {SVG_NS} viewBox="0 0 24 24"><defs><path id="w0" d="M0 0h1v1z"/>{wide}</defs>'
                   '<use href="#w3"/></svg>', "once its <use> references are expanded")
    # circular references, direct and through another element
    _timed_refusal(f'<svg {SVG_NS} viewBox="0 0 9 9"><g id="a"><use href="#a"/></g></svg>', "refers to itself")
    _timed_refusal(f'<svg {SVG_NS} viewBox="0 0 9 9"><g id="a"><use href="#b"/></g><g id="b"><use xlink:href="#a"/></g>'
                   '</svg>', "refers to itself")


@pytest.mark.timeout(60)
def test_svg_huge_path_and_document_are_refused_with_the_limit():
    d = "M0 0" + "L1 1L2 0" * (10 * 2**20 // 8)  # 10 MB of path data
    msg = _timed_refusal(f'<svg {SVG_NS} viewBox="0 0 9 9"><path d="{d}"/></svg>', "MB of text")
    assert "at most 2 MB" in msg
    d = "M0 0" + "L1 1L2 0" * (MAX_PATH_CHARS // 8 + 10)  # over the per-path limit, under the document's
    msg = _timed_refusal(f'<svg {SVG_NS} viewBox="0 0 9 9"><path d="{d}"/></svg>', "path data")
    assert f"{MAX_PATH_CHARS:,}" in msg


@pytest.mark.timeout(60)
def test_svg_nan_and_infinite_coordinates_are_refused():
    head = f'<svg {SVG_NS} viewBox="0 0 24 24">'
    _timed_refusal(head + '<path d="M0 0Lnan 5L0 5Z"/></svg>', "not made of drawing commands and numbers")
    _timed_refusal(head + '<rect x="1e400" y="0" width="5" height="5"/></svg>', "not finite")
    _timed_refusal(head + '<path transform="scale(1e308) scale(1e308)" d="M0 0L5 5L0 5Z"/></svg>', "not finite")
    _timed_refusal(head + '<path d="M0 0A1e308 1e308 0 1 1 5 5Z"/></svg>', "not a finite number")
    _timed_refusal(f'<svg {SVG_NS} width="inf" height="24"><path d="M0 0L5 5L0 5Z"/></svg>',
                   ("not a finite number", "no usable width"))


@pytest.mark.timeout(60)
def test_svg_deep_nesting_malformed_xml_and_entities_are_refused():
    deep = f'<svg {SVG_NS} viewBox="0 0 9 9">' + "<g>" * 5000 + '<path d="M0 0h5v5z"/>' + "</g>" * 5000 + "</svg>"
    _timed_refusal(deep, "levels deep")
    msg = _timed_refusal(f'<svg {SVG_NS} viewBox="0 0 9 9"><path d="M0 0h5v5z"></svg>', "not well-formed XML")
    assert "line 1" in msg
    laughs = ('<?xml version="1.0"?><!DOCTYPE svg [<!ENTITY a "aaaaaaaaaa">' +
              "".join(f'<!ENTITY {c} "{("&" + p + ";") * 10}">' for p, c in zip("abcdefgh", "bcdefghi")) +
              f']><svg {SVG_NS} viewBox="0 0 9 9"><g id="&i;"/></svg>')
    _timed_refusal(laughs, "entities")
    many = f'<svg {SVG_NS} viewBox="0 0 9 9">' + "<g/>" * 6000 + "</svg>"
    _timed_refusal(many, "elements")


# ---- BVH ---------------------------------------------------------------------------------------
def _bvh_extra(rng: random.Random) -> list[str]:
    depth = rng.choice([70, 3000])
    return ["JOINT j\n{\nOFFSET 0 1 0\nCHANNELS 3 Zrotation Xrotation Yrotation\n" * depth + "}\n" * depth,
            "End Site\n{\nOFFSET 0 1 0\n}\n", "{", "}", "}}}}", "CHANNELS 7", "CHANNELS -1", "CHANNELS 99999999999",
            "Frames: inf", "Frames: nan", "Frames: 1e9", "Frames: -5", "Frames: 2.5", "Frame Time: 0",
            "Frame Time: nan", "MOTION\n", "HIERARCHY\n", "ROOT x\n", "Wrotation", "\n" * 50]


@pytest.mark.timeout(60)
def test_bvh_fuzz_is_read_or_refused_plainly():
    rng = random.Random(24)
    seeds = _bvh_seeds()
    tally = FuzzTally(bvh.BVHError)
    for i in range(N_FUZZ):
        seed = rng.randrange(len(seeds))
        kind, text = mutate_text(rng, seeds[seed], _bvh_extra(rng))
        tally.run(f"bvh #{i} (seed {seed}, {kind})", bvh.parse, text)
    for text in ["", "\n", "HIERARCHY", "HIERARCHY\nMOTION", "MOTION\nHIERARCHY", "\x00" * 100,
                 bytes(range(256)).decode("latin-1") * 4]:
        tally.run(f"bvh literal {text[:20]!r}", bvh.parse, text)
    print(tally.report("BVH"))
    assert tally.outcomes["ok"] > 0


def _bvh_refusal(text: str, words: str) -> str:
    t0 = time.perf_counter()
    with pytest.raises(bvh.BVHError) as e:
        bvh.parse(text)
    dt = time.perf_counter() - t0
    msg = check_refusal(e.value, words)
    assert words in msg, msg
    assert dt < 1.0, f"{dt:.2f} s for {msg}"
    return msg


HEAD = "HIERARCHY\nROOT a\n{\n OFFSET 0 0 0\n CHANNELS 3 Xposition Yposition Zposition\n}\n"


@pytest.mark.timeout(60)
def test_bvh_deep_hierarchy_is_a_message_not_a_recursion_error():
    n = 5000
    deep = (HEAD[:-2] + "JOINT b\n{\nOFFSET 0 1 0\nCHANNELS 1 Zrotation\n" * n + "}\n" * (n + 1) +
            "MOTION\nFrames: 1\nFrame Time: 0.03\n" + "0 " * (3 + n) + "\n")
    _bvh_refusal(deep, f"more than {bvh.MAX_DEPTH} levels deep")
    wide = HEAD[:-2] + "JOINT b\n{\nOFFSET 0 1 0\nCHANNELS 1 Zrotation\n}\n" * 400 + "}\nMOTION\n"
    _bvh_refusal(wide, f"more than {bvh.MAX_JOINTS} joints")


@pytest.mark.timeout(60)
def test_bvh_infinite_and_nan_values_are_refused():
    _bvh_refusal(HEAD + "MOTION\nFrames: 2\nFrame Time: 0.03\n1 2 3\n1 inf 3\n", "not finite")
    _bvh_refusal(HEAD + "MOTION\nFrames: 1\nFrame Time: 0.03\nnan 2 3\n", "not finite")
    _bvh_refusal(HEAD.replace("OFFSET 0 0 0", "OFFSET 0 1e999 0") + "MOTION\nFrames: 1\nFrame Time: 0.03\n1 2 3\n",
                 "not finite")
    _bvh_refusal(HEAD + "MOTION\nFrames: inf\nFrame Time: 0.03\n1 2 3\n", "whole number")
    _bvh_refusal(HEAD + "MOTION\nFrames: nan\nFrame Time: 0.03\n1 2 3\n", "whole number")
    _bvh_refusal(HEAD + "MOTION\nFrames: 1\nFrame Time: nan\n1 2 3\n", "not plausible")
    _bvh_refusal(HEAD + "MOTION\nFrames: 2\nFrame Time: 0.03\n1 2 3\n1 2\n", "frame 2 has 2")


@pytest.mark.timeout(60)
def test_bvh_huge_frame_count_is_refused_before_reading():
    msg = _bvh_refusal(HEAD + "MOTION\nFrames: 1000000000\nFrame Time: 0.03\n1 2 3\n", "frames")
    assert f"{bvh.MAX_FRAMES:,}" in msg
    wide_head = HEAD.replace("}\n", "JOINT b\n{\nOFFSET 0 1 0\nCHANNELS 6 Xposition Yposition Zposition "
                             "Zrotation Xrotation Yrotation\n}\n" * 200 + "}\n")
    _bvh_refusal(wide_head + "MOTION\nFrames: 90000\nFrame Time: 0.03\n", "values")
    _bvh_refusal(HEAD + "MOTION\nFrames: 3\nFrame Time: 0.03\n1 2 3\n" + "\n" * 2_000_000, "truncated")


@pytest.mark.timeout(60)
def test_a_big_legal_bvh_is_read_quickly():
    """24 MB, 30,000 frames of a 31-joint skeleton (the issue's file took 44 s and 1.16 GB)."""
    lines = ["HIERARCHY", "ROOT Hips", "{", "OFFSET 0 0 0",
             "CHANNELS 6 Xposition Yposition Zposition Zrotation Xrotation Yrotation"]
    for i in range(30):
        lines += [f"JOINT j{i}", "{", "OFFSET 0 5 0", "CHANNELS 3 Zrotation Xrotation Yrotation",
                  "End Site", "{", "OFFSET 0 1 0", "}", "}"]
    lines.append("}")
    values = np.random.default_rng(1).uniform(-180, 180, (30_000, 96))
    buf = io.StringIO()
    np.savetxt(buf, values, fmt="%.4f")
    text = "\n".join(lines) + "\nMOTION\nFrames: 30000\nFrame Time: 0.00833333\n" + buf.getvalue()
    assert len(text) > 24e6
    t0 = time.perf_counter()
    clip = bvh.parse(text)
    dt = time.perf_counter() - t0
    assert clip.motion.shape == (30_000, 96) and len(clip.names) == 61
    np.testing.assert_allclose(clip.motion[123], values[123], atol=1e-4)
    assert dt < 3.0, f"{dt:.2f} s"


# ---- sketch arrays (the model side of a sketch import) -----------------------------------------
@pytest.mark.timeout(60)
def test_prepare_user_sketch_refuses_nan_and_inf():
    from models.shape.data import prepare_user_sketch

    with pytest.raises(ValueError, match="no numbers"):
        prepare_user_sketch(np.full((64, 64), np.nan, np.float32))
    a = np.ones((64, 64), np.float32)
    a[10:50, 30] = 0
    a[5, 5] = np.inf
    with pytest.raises(ValueError, match="not numbers"):
        prepare_user_sketch(a)
    a[5, 5] = 1
    assert prepare_user_sketch(a).shape == (64, 64)
