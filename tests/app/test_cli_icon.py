"""`weft-cli icon` files and arguments (no engine needed): safe unique names for any prompt, x-1 ... x-n,
no overwrite, arguments refused before an engine starts."""
from __future__ import annotations

import argparse

import pytest

from app.cli import main
from app.cli.icon import free_name, slug, target_files, validate


def args(**kw):
    base = dict(prompt="a rocket", num=4, out=".", temperature=0.8, top_p=0.95, guidance=2.0, seed=None,
                exemplar=None)
    return argparse.Namespace(**{**base, **kw})


def test_names_are_safe_and_unique_for_any_script():
    assert slug("A Rocket!") == "a-rocket"
    assert slug("café naïve") == "cafe-naive"
    emoji, cjk = slug("🚀"), slug("東京")
    assert emoji.startswith("icon-") and cjk.startswith("icon-") and emoji != cjk
    assert "/" not in slug("../../etc/passwd") and slug("../../etc/passwd") == "etc-passwd"


def test_output_names(tmp_path):
    assert [p.name for p in target_files(str(tmp_path / "x.svg"), "a rocket", 3)] == ["x-1.svg", "x-2.svg", "x-3.svg"]
    assert [p.name for p in target_files(str(tmp_path / "x.svg"), "a rocket", 1)] == ["x.svg"]
    assert [p.name for p in target_files(str(tmp_path), "a rocket", 2)] == ["a-rocket-1.svg", "a-rocket-2.svg"]
    (tmp_path / "x.svg").write_text("keep me")
    (tmp_path / "x-2.svg").write_text("keep me too")
    assert free_name(tmp_path / "x.svg").name == "x-3.svg"


@pytest.mark.parametrize("kw, says", [({"prompt": "  "}, "empty"), ({"num": 9}, "-n must be"),
                                      ({"temperature": 5.0}, "--temperature"), ({"seed": -1}, "--seed"),
                                      ({"exemplar": [1, 2, 3, 4]}, "at most 3"), ({"prompt": "x" * 600}, "characters")])
def test_bad_arguments_get_one_sentence(kw, says):
    assert says in validate(args(**kw))
    assert validate(args()) is None


def test_bad_arguments_are_refused_before_an_engine_starts(capsys, monkeypatch):
    import engine.launch

    def no_engine(*a, **k):
        raise AssertionError("an engine was started for a bad request")

    monkeypatch.setattr(engine.launch, "ensure_shared_engine", no_engine)
    monkeypatch.setattr(engine.launch, "EngineProcess", no_engine)
    assert main(["icon", "a rocket", "-n", "12"]) == 2
    assert "-n must be between 1 and 8" in capsys.readouterr().err
