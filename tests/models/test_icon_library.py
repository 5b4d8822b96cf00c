"""The shipped icon library: every icon keeps its set, licence and author; MiniLM retrieval finds the
concept of plain words; the Icon session draws after library exemplars and says which, with their
attribution and how much of each it repeats."""
from __future__ import annotations

import numpy as np
import pytest

from models.icon.library import LIBRARY_DIR, IconLibrary
from models.icon.tokenizer import BOS, EOS, EXM, decode, exemplar_prompt

pytestmark = pytest.mark.skipif(not (LIBRARY_DIR / "icons.npz").exists(),
                                reason="no shipped icon library (python -m models.icon.library)")
PERMISSIVE = ("MIT", "Apache-2.0", "ISC", "CC0-1.0", "OFL-1.1")


@pytest.fixture(scope="module")
def lib():
    return IconLibrary(LIBRARY_DIR)


@pytest.fixture(scope="module")
def encoder():
    from models.common.text import shared_encoder

    return shared_encoder()


def test_every_icon_decodes_and_keeps_its_licence(lib):
    assert len(lib) > 50_000
    rng = np.random.default_rng(0)
    for i in rng.choice(len(lib), 200, replace=False):
        ic = lib.icon(int(i))
        assert ic.tokens[0] == BOS and ic.tokens[-1] == EOS
        assert decode(ic.tokens)  # a real drawing
        assert ic.license in PERMISSIVE or ic.license.startswith("CC-BY-"), ic.license
        assert ic.set and ic.name.startswith(ic.set + ":")
        assert ic.set in ic.attribution and ic.license in ic.attribution
    cc_by = [s for s in lib.sets if s["license"].startswith("CC-BY")]
    assert all(s["author"] for s in cc_by), "CC-BY sets need their author for the attribution"


@pytest.mark.parametrize("word, expect", [("house", ("home", "house")), ("a red heart", ("heart",)),
                                          ("camera", ("camera",)), ("star", ("star",)),
                                          ("magnifying glass", ("search", "magnif", "zoom", "find"))])
def test_plain_words_find_their_concept(lib, encoder, word, expect):
    hits = lib.search(encoder.encode([word])[0], k=4)
    assert len(hits) == 4 and len({lib.set_id[i] for i, _ in hits}) == 4  # four different sets
    names = [lib.names[i].split(":", 1)[1] for i, _ in hits]
    assert sum(any(e in n for e in expect) for n in names) >= 3, names


def test_exemplar_prompt_layout():
    a = np.array([BOS, 3, 4, 16, 60, EOS])
    assert exemplar_prompt([a, a]) == [EXM, 3, 4, 16, 60, EXM, 3, 4, 16, 60, BOS]
    assert exemplar_prompt([]) == [BOS]


@pytest.mark.timeout(180)
def test_session_draws_after_exemplars_names_them_and_cancels():
    from models.icon.stream import IconSession, load_bundle

    bundle = load_bundle("cpu")
    if not bundle.exemplar_trained:  # the shipped weights never learned exemplars: "auto" shows none
        plain = IconSession(bundle, "cpu")
        plain.start({"prompt": "a house", "n": 1, "max_tokens": 20})
        assert plain.exemplars == []
        bundle.exemplar_trained = True  # the path a fine-tuned model takes
    s = IconSession(bundle, "cpu")
    first = s.start({"prompt": "a house", "n": 2, "seed": 4, "max_tokens": 300})
    assert first and len(s.exemplars) == 2
    out = None
    partials = 0
    while not s.done:
        for kind, d in s.step():
            partials += kind == "partial"
            out = d if kind == "output" else out
    assert partials > 0 and out is not None
    ex = out["exemplars"]
    assert len(ex) == 2 and all(e["license"] and e["attribution"] and "<svg" in e["svg"] for e in ex)
    for c in out["candidates"]:
        assert len(c["exemplar_iou"]) == 2 and all(0.0 <= v <= 1.0 for v in c["exemplar_iou"])
    # the user's own picks, and off
    s2 = IconSession(bundle, "cpu")
    s2.start({"prompt": "a house", "n": 1, "exemplars": [ex[0]["id"]], "max_tokens": 40})
    assert [e.id for e in s2.exemplars] == [ex[0]["id"]]
    s3 = IconSession(bundle, "cpu")
    s3.start({"prompt": "a house", "n": 1, "exemplars": "off", "max_tokens": 40})
    assert s3.exemplars == []
    from models.common.session import ParamError

    with pytest.raises(ParamError, match="library icon numbers"):
        IconSession(bundle, "cpu").start({"prompt": "a house", "exemplars": [10**9]})


@pytest.mark.timeout(120)
def test_library_mode_browses_with_licences():
    from models.common.session import ParamError
    from models.icon.stream import IconSession, load_bundle

    bundle = load_bundle("cpu")
    s = IconSession(bundle, "cpu")
    out = s.start({"mode": "library", "query": "umbrella", "k": 6})
    items = out[0][1]["items"]
    assert s.done and len(items) == 6
    assert all("umbrella" in it["name"] and it["license"] and "<svg" in it["svg"] and it["paths"] for it in items)
    with pytest.raises(ParamError, match="look for"):
        IconSession(bundle, "cpu").start({"mode": "library", "query": " "})
