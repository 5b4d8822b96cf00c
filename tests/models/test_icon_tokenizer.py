"""Icon tokens: exact round trip, the grammar, and re-rendering real held-out test icons (pixel IoU)."""
from __future__ import annotations

import json

import numpy as np
import pytest

from models.common.paths import asset
from models.icon.svg import IconError, IconPath, iou, parse_svg, render, render_paths, to_svg
from models.icon.tokenizer import (BOS, EOS, PATH, VOCAB, X0, Y0, Grammar, GrammarTracker, decode, encode_icon,
                                   is_valid)

ICON = ('<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 24 24" width="24" height="24">'
        '<g transform="translate(1 1)"><path d="M3 2a2 2 0 0 0-2 2v8h2V8h2v4h2V4a2 2 0 0 0-2-2zm0 2h2v2H3"/></g>'
        '<circle cx="18" cy="18" r="3"/><rect x="14" y="2" width="6" height="4" rx="1"/>'
        '<path d="M2 20q3 -4 6 0t6 0z"/><polygon points="9,9 12,15 6,15"/></svg>')


def test_round_trip_is_exact_and_uniquely_decodable():
    paths = parse_svg(ICON)
    assert len(paths) >= 4 and all(set(p.cmds) <= set("MLCZ") for p in paths)
    toks = encode_icon(paths)
    assert toks[0] == BOS and toks[-1] == EOS and max(toks) < VOCAB
    back = decode(toks)
    assert [p.cmds for p in back] == [p.cmds for p in paths]
    for a, b in zip(back, paths):
        assert np.array_equal(a.pts, b.pts)
    assert is_valid(toks[1:])
    assert iou(render(ICON.replace("<svg ", '<svg fill="black" '), 96), render_paths(back, 96)) > 0.97


def test_grammar_rejects_broken_sequences_and_masks_tokens():
    toks = encode_icon(parse_svg(ICON))[1:]
    assert not is_valid(toks[:-1])  # no EOS
    assert not is_valid([PATH, X0, Y0, EOS])  # coordinates without a command
    assert not is_valid(toks[:3] + toks[4:])  # an x followed by an x
    tr = GrammarTracker(Grammar(), 2)
    b = tr.bias()
    assert np.isfinite(b[0, PATH]) and np.isinf(b[0, EOS]) and np.isinf(b[0, X0])
    tr.feed([PATH, PATH])
    tr.feed([4, 4])  # M
    b = tr.bias()
    assert np.isfinite(b[:, X0:Y0]).all() and np.isinf(b[:, Y0:]).all()
    with pytest.raises(ValueError):
        tr.feed([Y0, Y0])


def test_decode_partial_and_malformed():
    toks = encode_icon(parse_svg(ICON))
    cut = decode(toks[:40], partial=True)
    assert cut and all(isinstance(p, IconPath) for p in cut)
    with pytest.raises(ValueError):
        decode(toks[:40])
    with pytest.raises(ValueError):
        decode([PATH, 5, X0, X0, EOS])


def test_malformed_and_unsupported_svg_are_refused_with_reasons():
    cases = {"": "empty", "<svg><path d='M0 0 L": "malformed", "hello": "not_svg",
             '<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 9 9"><path d="M1 1L8 8" stroke="#ddd" fill="none"/></svg>':
             "colour",  # strokes become outlines now (tests/models/test_icon_strokes.py); a light one is refused
             '<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 9 9"><mask id="m"/><path d="M1 1H8V8z"/></svg>': "mask",
             '<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 9 9"><path d="M1 1H8V8z" fill="#fff"/></svg>': "colour",
             '<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 9 9"><text>A</text></svg>': "text"}
    for svg, reason in cases.items():
        with pytest.raises(IconError) as e:
            parse_svg(svg)
        assert e.value.reason == reason, (svg, e.value.reason)
        assert str(e.value)


def test_500_test_icons_re_render():
    """decode(encode(icon)) re-renders the original source SVG: mean pixel IoU >= 0.98 (64 px)."""
    rows = [json.loads(line) for line in open(asset("icon", "test_icons.jsonl"))]
    assert len(rows) >= 500
    ious = []
    for r in rows[:500]:
        paths = decode(encode_icon(parse_svg(r["src"])))
        ious.append(iou(render(r["src"].replace("currentColor", "black"), 64), render(to_svg(paths, fill="black"), 64)))
    ious = np.array(ious)
    assert ious.mean() >= 0.98, (ious.mean(), np.percentile(ious, 5))
    assert np.percentile(ious, 10) >= 0.9


def test_a_repeating_tail_is_found_and_closed_into_a_valid_row():
    from models.icon.tokenizer import C, L, M, Z, close_row, repeating_tail

    x, y = lambda v: X0 + v, lambda v: Y0 + v
    head = [PATH, M, x(1), y(1), L, x(9), y(1), L, x(9), y(9)]
    assert repeating_tail(head) == 0
    loop = [C, x(3), y(3), x(4), y(5), x(6), y(7)]
    row = head + loop * 3
    assert repeating_tail(row) == len(loop)
    assert repeating_tail(head + loop * 2) == 0  # two turns are not yet a loop
    assert repeating_tail(head + [x(5), y(5)] * 5) == 0 and repeating_tail(head + [x(5), y(5)] * 6) == 2
    for cut in range(len(row), len(head) - 3, -1):  # wherever the loop is caught, mid-command too
        closed = close_row(row[:cut])
        assert closed[-1] == Z and is_valid(closed + [EOS]), cut
    assert close_row([PATH, M, x(1), y(1)]) == []  # nothing drawn: nothing left
    assert close_row(head + [Z, PATH, M, x(2)]) == head + [Z]
