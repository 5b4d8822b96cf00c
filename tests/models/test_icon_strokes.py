"""Stroke icons (Lucide / Tabler style) import as filled outlines that look like the original."""
from __future__ import annotations

import pytest

from models.icon.svg import IconError, parse_svg, render, render_paths

ROCKET = ('<svg xmlns="http://www.w3.org/2000/svg" width="24" height="24" viewBox="0 0 24 24" fill="none" '
          'stroke="currentColor" stroke-width="2" stroke-linecap="round" stroke-linejoin="round">'
          '<path d="M4.5 16.5c-1.5 1.26-2 5-2 5s3.74-.5 5-2c.71-.84.7-2.13-.09-2.91a2.18 2.18 0 0 0-2.91-.09z"/>'
          '<path d="m12 15-3-3a22 22 0 0 1 2-3.95A12.88 12.88 0 0 1 22 2c0 2.72-.78 7.5-6 11a22.35 22.35 0 0 1-4 2z"/>'
          '<circle cx="12" cy="12" r="3"/></svg>')
LINES = ('<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 24 24"><g stroke="#000" stroke-width="1.5" '
         'fill="none"><line x1="4" y1="12" x2="20" y2="12"/><polyline points="14 6 20 12 14 18"/></g></svg>')


@pytest.mark.timeout(30)
@pytest.mark.parametrize("svg, parts", [(ROCKET, 3), (LINES, 1)])
def test_a_stroke_icon_imports_as_outlines_that_match_it(svg, parts):
    paths = parse_svg(svg)
    assert len(paths) >= parts and all(p.cmds.startswith("M") for p in paths)
    a = render(svg.replace("currentColor", "black"), 64) > 0.5
    b = render_paths(paths, 64) > 0.5
    assert (a & b).sum() / (a | b).sum() > 0.9


@pytest.mark.timeout(30)
def test_a_broken_stroke_icon_gets_one_sentence():
    bad = ROCKET.replace('d="m12 15', 'd="m12 15 Q')
    try:
        parse_svg(bad)
    except IconError as e:
        assert str(e) and "\n" not in str(e) and "Error" not in str(e)
