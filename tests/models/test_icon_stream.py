"""The icon session: streaming order, grammar-valid samples, infill keeps untouched paths byte-identical,
speculative greedy equals plain greedy, import of good and malformed SVG. Tiny random model, no Qt."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from models.common.session import ParamError
from models.icon.model import IconConfig, IconModel
from models.icon.stream import IconBundle, IconSession
from models.icon.svg import IconPath
from models.icon.tokenizer import EOS, PATH, is_valid

SQUARE = '<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 24 24"><rect x="2" y="2" width="8" height="8"/>' \
         '<circle cx="17" cy="17" r="4"/></svg>'


@pytest.fixture(scope="module")
def bundle():
    torch.manual_seed(0)
    model = IconModel(IconConfig(n_layer=2, n_head=2, d_model=32, max_seq_len=512)).eval()
    return IconBundle(model, encoder=None, ngrams={})


def run(bundle, params):
    s = IconSession(bundle, "cpu")
    events = list(s.start(params))
    steps = 0
    while not s.done:
        events += s.step()
        steps += 1
        assert steps < 5000
    return s, events


def test_generate_streams_paths_then_one_output(bundle):
    s, events = run(bundle, {"prompt": "a rocket", "n": 3, "temperature": 1.0, "seed": 3, "max_tokens": 120})
    kinds = [k for k, _ in events]
    assert kinds[0] == "progress" and kinds[-1] == "output" and kinds.count("output") == 1
    out = events[-1][1]
    assert len(out["candidates"]) == 3
    for b, cand in enumerate(out["candidates"]):
        finals = [d for k, d in events if k == "partial" and d["candidate"] == b and d["final"]]
        # finished paths arrive in order, one per index, and match the final icon
        assert [d["index"] for d in finals] == list(range(len(finals)))
        assert len(finals) == len(cand["paths"])
        for d, p in zip(finals, cand["paths"]):
            assert d["cmds"] == p["cmds"] and np.array_equal(d["pts"], p["pts"])
    for row in s.rows:  # the grammar keeps every sample a valid sequence (or cut at the budget)
        assert row[0] == PATH
        assert is_valid(row) or (EOS not in row and len(row) == s.max_new)


def test_bad_params_are_plain_errors(bundle):
    for params, word in [({"prompt": ""}, "prompt"), ({"prompt": "x", "n": 9}, "n"),
                         ({"prompt": "x", "temperature": "hot"}, "temperature"), ({"mode": "dance"}, "mode"),
                         ({"mode": "infill", "paths": [{"cmds": "MZ"}], "index": 0}, "malformed")]:
        with pytest.raises(ParamError, match=word):
            IconSession(bundle, "cpu").start(params)


def test_import_normalises_and_rejects_malformed(bundle):
    _, events = run(bundle, {"mode": "import", "svg": SQUARE})
    paths = events[-1][1]["paths"]
    assert len(paths) == 2 and paths[0]["cmds"].startswith("M")
    assert max(p["pts"].max() for p in paths) <= 511
    for bad in ["", "<svg", "not an svg at all", '<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 9 9">'
                '<path d="M1 1H8V8z" fill="#fff"/></svg>', '<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 9 9">'
                '<image href="x.png"/></svg>']:
        with pytest.raises(ParamError, match="SVG|file|empty"):
            IconSession(bundle, "cpu").start({"mode": "import", "svg": bad})


def test_infill_keeps_untouched_paths_identical(bundle):
    _, ev = run(bundle, {"mode": "import", "svg": SQUARE})
    paths = ev[-1][1]["paths"] + [{"cmds": "MLLZ", "pts": np.array([[300.5, 20], [400, 20], [350, 90.25]], np.float32)}]
    _, events = run(bundle, {"mode": "infill", "paths": paths, "index": 1, "prompt": "a badge", "seed": 1,
                             "temperature": 1.0, "max_tokens": 80})
    out = events[-1][1]["candidates"][0]
    assert len(out["paths"]) == 3
    for i in (0, 2):
        assert out["paths"][i]["cmds"] == paths[i]["cmds"]
        assert out["paths"][i]["pts"].tobytes() == np.asarray(paths[i]["pts"], np.float32).tobytes()
    partials = [d for k, d in events if k == "partial"]
    assert partials and all(d["index"] == 1 for d in partials)
    # suggest adds exactly one path after the others
    _, events = run(bundle, {"mode": "suggest", "paths": paths, "prompt": "a badge", "seed": 2, "max_tokens": 80})
    out = events[-1][1]["candidates"][0]
    assert len(out["paths"]) == len(paths) + 1  # exactly one path added...
    for given, kept in zip(paths, out["paths"]):  # ...after the given ones, which stay as they were
        assert kept["cmds"] == given["cmds"]
        assert np.asarray(kept["pts"], np.float32).tobytes() == np.asarray(given["pts"], np.float32).tobytes()
    new = out["paths"][-1]
    assert len(new["cmds"]) >= 2 and len(new["pts"]) >= 2  # a real path, not an empty or echoed one
    assert not any(new["cmds"] == p["cmds"] and np.array_equal(np.asarray(new["pts"], np.float32),
                                                               np.asarray(p["pts"], np.float32)) for p in paths)


def test_speculative_greedy_equals_plain_greedy(bundle):
    for params in ({"prompt": "a house", "n": 1, "temperature": 0.0, "guidance": 2.0, "max_tokens": 60},
                   {"prompt": "a house", "n": 1, "temperature": 0.0, "guidance": 1.0, "max_tokens": 60}):
        s1, _ = run(bundle, {**params, "speculative": True})
        s2, _ = run(bundle, {**params, "speculative": False})
        assert s1.speculative and not s2.speculative
        assert s1.rows == s2.rows
        assert s1.spec_stats["forwards"] <= s1.spec_stats["tokens"]


def test_speculative_sampling_is_valid_and_seeded(bundle):
    params = {"prompt": "a house", "n": 1, "temperature": 0.9, "top_p": 0.95, "guidance": 2.0, "max_tokens": 80,
              "seed": 3, "speculative": True}
    s1, ev1 = run(bundle, params)
    s2, _ = run(bundle, params)
    assert s1.speculative  # sampled single-candidate requests draft and verify when asked
    assert s1.rows == s2.rows  # the seed fixes the draws
    assert 0 < s1.spec_stats["forwards"] <= s1.spec_stats["tokens"] == len(s1.rows[0])
    assert ev1[-1][0] == "output"  # (the grammar tracker raises on any token the grammar forbids)
    s3, _ = run(bundle, {**params, "seed": 4})
    s4, _ = run(bundle, {k: v for k, v in params.items() if k != "speculative"})
    assert not s4.speculative and s3.rows != s1.rows  # off by default when sampling


def test_int8_copy_serves_sampled_requests_and_greedy_stays_exact(bundle):
    from dataclasses import replace

    from models.common.quant import int8_linear

    fast, ok = int8_linear(bundle.model.gpt)
    assert ok
    b8 = replace(bundle, fast_gpt=fast)
    s, events = run(b8, {"prompt": "a house", "n": 2, "temperature": 0.8, "max_tokens": 60, "seed": 1})
    assert s.stats()["int8"] and events[-1][0] == "output"
    greedy = {"prompt": "a house", "n": 1, "temperature": 0.0, "guidance": 2.0, "max_tokens": 60}
    s1, _ = run(b8, {**greedy, "speculative": True})
    s2, _ = run(b8, {**greedy, "speculative": False})
    assert not s1.stats()["int8"] and not s2.stats()["int8"]
    assert s1.rows == s2.rows  # greedy decodes in float either way


def test_a_candidate_stuck_in_a_loop_is_ended_cleanly(bundle):
    from models.icon.tokenizer import C, L, M, X0, Y0

    x, y = lambda v: X0 + v, lambda v: Y0 + v
    row = [PATH, M, x(1), y(1), L, x(9), y(1)] + [C, x(3), y(3), x(4), y(5), x(6), y(7)] * 40
    s = IconSession(bundle, "cpu")
    s.start({"prompt": "a house", "n": 1, "temperature": 0.8, "max_tokens": 400, "seed": 0})
    s.tokens_iter = (np.array([t]) for t in row)  # what a looping model would emit
    events = []
    while not s.done:
        events += s.step()
    out = events[-1][1]["candidates"][0]
    assert out["valid"] and len(out["paths"]) == 1
    assert s.stats()["loops_stopped"] == 1 and s.n_tokens < 40  # stopped after three turns, not 287 tokens
    assert [d["final"] for k, d in events if k == "partial"][-1]  # the path was sent as finished


def test_candidates_do_not_end_empty(bundle):
    """A candidate may not end (EOS) while its drawing is still empty; with the check off, the tiny
    random model ends some candidates without ink, so the check is what makes the difference."""
    from models.icon.svg import render_paths
    from models.icon.tokenizer import decode

    def inked(row):
        paths = decode(row, partial=True)
        return bool(paths) and bool((render_paths(paths, 32) > 0.5).any())

    def empties(require):
        n_empty = 0
        for seed in range(2):
            s, _ = run(bundle, {"prompt": "a rocket", "n": 8, "temperature": 1.2, "seed": seed, "max_tokens": 48,
                                "require_ink": require})
            n_empty += sum(1 for b, row in enumerate(s.rows) if s.finished[b] and not inked(row))
        return n_empty

    assert empties(True) == 0
    assert empties(False) > 0


def test_tracker_ink_veto_only_where_it_can_be_kept():
    from models.icon.tokenizer import CMD, END, Grammar, GrammarTracker

    tr = GrammarTracker(Grammar(max_len=100), 3)
    tr.state[:] = [CMD, CMD, END]
    tr.no_eos[:] = [True, False, True]
    b = tr.bias()
    assert b[0, EOS] == -np.inf and b[1, EOS] == 0.0 and b[2, EOS] == 0.0  # END rows keep their only move
    tr.used = 95  # inside the closing margin: ending must stay possible
    assert tr.bias()[0, EOS] == 0.0


def test_tracker_forbids_segments_that_draw_nothing():
    from models.icon.tokenizer import C, L, M, X0, Y0, Grammar, GrammarTracker

    tr = GrammarTracker(Grammar(), 1)
    tr.feed_prefix([PATH, M, X0 + 10, Y0 + 20, L, X0 + 10])
    assert tr.bias()[0, Y0 + 20] == -np.inf and tr.bias()[0, Y0 + 21] == 0.0  # L back onto (10, 20): no
    tr.feed([Y0 + 30])  # L 10 30 is fine; now at (10, 30)
    tr.feed_prefix([C, X0 + 10, Y0 + 30, X0 + 10, Y0 + 30, X0 + 10])
    assert tr.bias()[0, Y0 + 30] == -np.inf  # a curve with all points on (10, 30)
    tr2 = GrammarTracker(Grammar(), 1)
    tr2.feed_prefix([PATH, M, X0 + 10, Y0 + 30, C, X0 + 11, Y0 + 30, X0 + 10, Y0 + 30, X0 + 10])
    assert tr2.bias()[0, Y0 + 30] == 0.0  # a control point elsewhere: the curve has a shape


def test_sampled_rows_hold_no_zero_length_segments(bundle):
    from models.icon.tokenizer import decode

    s, _ = run(bundle, {"prompt": "a rocket", "n": 8, "temperature": 1.0, "seed": 5, "max_tokens": 120})
    for row in s.rows:
        for p in decode(row, partial=True):
            pts, k = np.asarray(p.pts), 0
            cur = pts[0]
            for cmd in p.cmds:
                n = {"M": 1, "L": 1, "C": 3, "Z": 0}[cmd]
                seg = pts[k:k + n]
                if cmd in "LC":
                    assert not np.all(seg == cur), "a segment that draws nothing"
                if n:
                    cur = seg[-1]
                k += n


def test_each_candidate_is_sent_whole_as_soon_as_it_ends(bundle):
    _, events = run(bundle, {"prompt": "a house", "n": 3, "seed": 2, "max_tokens": 300})
    done = [(i, d) for i, (k, d) in enumerate(events) if k == "progress" and d.get("candidate_done")]
    out = events[-1][1]["candidates"]
    assert len(done) == sum(c["ended"] in ("eos", "loop") for c in out) >= 1
    for i, d in done:
        assert i < len(events) - 1  # before the output
        final = out[d["candidate"]]["paths"]
        assert len(d["paths"]) == len(final) > 0
        assert all(a["cmds"] == b["cmds"] and np.array_equal(a["pts"], b["pts"]) for a, b in zip(d["paths"], final))
        assert "<svg" in d["svg"]
