"""Text front end: raw text -> normalised sentences -> character ids with word spans.

Written here (no GPL phonemizer): the front end turns everything a user may type into plain spoken
words, then (for a model trained on phonemes) each word into its CMUdict phonemes (lexicon.py), or
its letters when the word is unknown. Numbers (integers, decimals,
ordinals, years, money, percentages, times), common abbreviations and symbols are expanded;
punctuation is reduced to the marks that change how a sentence is read (, . ? !).
"""
from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass

from models.speech.lexicon import PHONES, pronounce

PAD = "_"
SYMBOLS = PAD + " abcdefghijklmnopqrstuvwxyz',.?!"
CHAR_ID = {c: i for i, c in enumerate(SYMBOLS)}
PHONE_ID = {p: len(SYMBOLS) + i for i, p in enumerate(PHONES)}  # phonemes follow the characters
N_SYMBOLS = len(SYMBOLS) + len(PHONES)
PUNCT = ",.?!"

_ONES = "zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen sixteen " \
        "seventeen eighteen nineteen".split()
_TENS = "_ _ twenty thirty forty fifty sixty seventy eighty ninety".split()
_SCALES = [(10 ** 12, "trillion"), (10 ** 9, "billion"), (10 ** 6, "million"), (1000, "thousand")]
_ORD_IRREGULAR = {"one": "first", "two": "second", "three": "third", "five": "fifth", "eight": "eighth",
                  "nine": "ninth", "twelve": "twelfth"}
_ABBREV = {
    "mr": "mister", "mrs": "missus", "ms": "miz", "dr": "doctor", "st": "saint", "jr": "junior", "sr": "senior",
    "prof": "professor", "vs": "versus", "etc": "et cetera", "approx": "approximately", "no": "number",
    "e.g": "for example", "i.e": "that is", "a.m": "a m", "p.m": "p m", "mt": "mount", "ft": "feet",
    "km": "kilometers", "kg": "kilograms", "cm": "centimeters", "mm": "millimeters", "lb": "pounds",
}
_SYMBOL_WORDS = {"&": " and ", "@": " at ", "+": " plus ", "=": " equals ", "#": " number ", "%": " percent ",
                 "°": " degrees ", "/": " slash "}


def number_words(n: int) -> str:
    """Cardinal number in words (0 <= n < 10**15); larger numbers are read digit by digit."""
    if n < 0:
        return "minus " + number_words(-n)
    if n >= 10 ** 15:
        return " ".join(_ONES[int(d)] for d in str(n))
    if n < 20:
        return _ONES[n]
    if n < 100:
        t, o = divmod(n, 10)
        return _TENS[t] + (" " + _ONES[o] if o else "")
    if n < 1000:
        h, r = divmod(n, 100)
        return _ONES[h] + " hundred" + (" " + number_words(r) if r else "")
    for value, name in _SCALES:
        if n >= value:
            q, r = divmod(n, value)
            return number_words(q) + " " + name + (" " + number_words(r) if r else "")
    raise AssertionError(n)


def ordinal_words(n: int) -> str:
    words = number_words(n).split(" ")
    last = words[-1]
    if last in _ORD_IRREGULAR:
        last = _ORD_IRREGULAR[last]
    elif last.endswith("y"):
        last = last[:-1] + "ieth"
    else:
        last += "th"
    return " ".join(words[:-1] + [last])


def year_words(n: int) -> str:
    """1999 -> nineteen ninety nine; 2005 -> two thousand five; 1900 -> nineteen hundred."""
    if 2000 <= n <= 2009:
        return number_words(n)
    hi, lo = divmod(n, 100)
    if lo == 0:
        return number_words(hi) + " hundred"
    return number_words(hi) + " " + (("oh " + _ONES[lo]) if lo < 10 else number_words(lo))


def _digits(s: str) -> str:
    return " ".join(_ONES[int(d)] for d in s)


def _money(m: re.Match) -> str:
    whole = int(m.group(1).replace(",", ""))
    cents = m.group(2)
    out = number_words(whole) + (" dollar" if whole == 1 else " dollars")
    if cents and int(cents):
        c = int(cents.ljust(2, "0")[:2])
        out += " " + number_words(c) + (" cent" if c == 1 else " cents")
    return " " + out + " "


def _number(m: re.Match) -> str:
    s = m.group(0)
    if "." in s:
        whole, frac = s.split(".", 1)
        return " " + number_words(int(whole.replace(",", "") or 0)) + " point " + _digits(frac) + " "
    n = int(s.replace(",", ""))
    if "," not in s and len(s) == 4 and 1100 <= n <= 2099:
        return " " + year_words(n) + " "
    if len(s) > 1 and s.startswith("0"):
        return " " + _digits(s) + " "
    return " " + number_words(n) + " "


def _time(m: re.Match) -> str:
    h, mnt = int(m.group(1)), int(m.group(2))
    if mnt == 0:
        return f" {number_words(h)} o'clock "
    return f" {number_words(h)} " + (("oh " + _ONES[mnt]) if mnt < 10 else number_words(mnt)) + " "


def normalize(text: str) -> str:
    """Any text -> lower-case words and , . ? ! only (one line)."""
    t = unicodedata.normalize("NFKC", text)
    t = t.replace("\u2019", "'").replace("\u2018", "'").replace("`", "'")
    t = re.sub(r"[\u2013\u2014]|--", ", ", t)
    t = re.sub(r"\$\s?(\d[\d,]*)(?:\.(\d+))?", _money, t)
    t = re.sub(r"(\d+(?:\.\d+)?)\s?%", lambda m: m.group(1) + " percent", t)
    t = re.sub(r"\b(\d{1,2}):(\d{2})\b", _time, t)
    t = re.sub(r"\b(\d+)(st|nd|rd|th)\b", lambda m: " " + ordinal_words(int(m.group(1))) + " ", t, flags=re.I)
    t = re.sub(r"(?<![\d.])-(?=\d)", " minus ", t)
    t = re.sub(r"\d[\d,]*(?:\.\d+)?", _number, t)
    t = unicodedata.normalize("NFKD", t).encode("ascii", "ignore").decode()
    for sym, word in _SYMBOL_WORDS.items():
        t = t.replace(sym, word)

    def abbrev(m: re.Match) -> str:
        word = m.group(1).lower()
        return " " + _ABBREV[word] + " " if word in _ABBREV else m.group(0)
    t = re.sub(r"\b((?:[A-Za-z]\.)+[A-Za-z]|[A-Za-z]+)\.(?=\s|$)", lambda m: abbrev(m) if m.group(1).lower() in _ABBREV
               and m.group(1).lower() not in ("no",) else m.group(0), t)
    t = re.sub(r"\b([A-Za-z]+)\b", lambda m: _ABBREV.get(m.group(1).lower(), m.group(1))
               if m.group(1).lower() in ("km", "kg", "cm", "mm", "lb", "vs", "etc") else m.group(1), t)
    t = t.lower()
    t = re.sub(r"[;:]", ",", t)
    t = re.sub(r"[^a-z',.?! ]+", " ", t)  # quotes, brackets, hyphens and anything else -> a space
    t = re.sub(r"(?<![a-z])'|'(?![a-z])", " ", t)  # apostrophes only inside words
    t = re.sub(r"\s+([,.?!])", r"\1", t)
    t = re.sub(r"[,.?!](?:[,.?! ]*[,.?!])?", lambda m: next(c for c in "?!.," if c in m.group(0)), t)
    t = re.sub(r"([,.?!])(?=[a-z])", r"\1 ", t)
    t = re.sub(r"\s+", " ", t).strip(" ,")
    return t


def unspeakable(text: str) -> list[str]:
    """What `normalize` drops without a word for it (emoji, CJK, most symbols), each once, in order.
    Accented Latin letters are read as their base letters (café -> cafe) and are not listed."""
    out: list[str] = []
    for c in text:
        if c.isspace() or c.isascii() or c in _SYMBOL_WORDS or c in "\u2013\u2014\u2018\u2019\u201c\u201d":
            continue
        base = unicodedata.normalize("NFKD", c).encode("ascii", "ignore").decode()
        if base.strip() or unicodedata.category(c) in ("Mn", "Cf"):  # é -> e; combining marks, joiners
            continue
        if c not in out:
            out.append(c)
    return out


_BRACED = re.compile(r"\{([^{}]*)\}")
_VOWEL_BASES = {q[:-1] for q in PHONES if q[-1] in "012"}


def _placeholder(k: int) -> str:
    out = ""
    while True:
        k, r = divmod(k, 26)
        out += chr(97 + r)
        if not k:
            return "qzxq" + out


def user_pronunciations(text: str) -> tuple[str, dict[str, tuple[str, ...]]]:
    """Pronunciations typed inline in braces, "{T AH0 M EY1 T OW2}" (ARPAbet; a vowel without a
    stress digit gets 1), are swapped for placeholder words that survive normalisation; returns the
    text and {placeholder: phonemes}. Raises ValueError for an unknown symbol or empty braces."""
    table: dict[str, tuple[str, ...]] = {}

    def swap(m: re.Match) -> str:
        phones = []
        for sym in m.group(1).replace(",", " ").upper().split():
            sym = sym + "1" if sym in _VOWEL_BASES else sym
            if sym not in PHONE_ID:
                raise ValueError(f"'{sym}' in {{{m.group(1)}}} is not an ARPAbet phoneme (e.g. {{HH AH0 L OW1}} for 'hello')")
            phones.append(sym)
        if not phones:
            raise ValueError("empty braces: write a pronunciation inside, e.g. {HH AH0 L OW1}")
        key = _placeholder(len(table))
        table[key] = tuple(phones)
        return f" {key} "
    return _BRACED.sub(swap, text), table


def split_sentences(text: str, max_chars: int = 220) -> list[str]:
    """Normalise and split into sentences, each ending with . ? or !; long ones split at commas/words."""
    t = normalize(text)
    if not t:
        return []
    parts = [p.strip() for p in re.findall(r"[^.?!]+[.?!]?", t) if p.strip(" ,.?!")]
    out = []
    for p in parts:
        if p[-1] not in ".?!":
            p = p.rstrip(",") + "."
        while len(p) > max_chars:  # cut at the last comma (or space) before the limit
            cut = p.rfind(", ", 0, max_chars)
            cut = cut + 1 if cut > max_chars // 3 else p.rfind(" ", 0, max_chars)
            out.append(p[:cut].rstrip(" ,") + ",")
            p = p[cut:].strip()
        out.append(p)
    return out


@dataclass
class Encoded:
    ids: list[int]  # symbol ids (characters, or phonemes then punctuation and space)
    words: list[tuple[int, int]]  # per word: [start, end) symbol span, including its trailing punctuation and space
    spelt: list[bool] | None = None  # per word: read from its letters (phoneme mode only)


def encode(sentence: str, phonemes: bool = False, spell=None, user: dict | None = None) -> Encoded:
    """A normalised sentence -> symbol ids and word spans (a word owns its punctuation and the space
    after it). phonemes: each word as its lexicon phonemes when it has them, else its letters;
    spell(i, word) -> True forces word i to letters (training keeps the letter path alive); user:
    placeholder word -> phonemes (user_pronunciations)."""
    pieces = [p for p in sentence.split(" ") if p]
    ids: list[int] = []
    words, spelt = [], []
    for i, piece in enumerate(pieces):
        text = piece + (" " if i < len(pieces) - 1 else "")
        core = piece.rstrip(PUNCT)
        start = len(ids)
        ph = (user or {}).get(core) or (pronounce(core) if phonemes and core else None)
        if ph is not None and not (spell is not None and spell(i, core)):
            ids += [PHONE_ID[p] for p in ph] + [CHAR_ID[c] for c in text[len(core):] if c in CHAR_ID]
            spelt.append(False)
        else:
            ids += [CHAR_ID[c] for c in text if c in CHAR_ID and c != PAD]
            spelt.append(True)
        words.append((start, len(ids)))
    return Encoded(ids, words, spelt if phonemes else None)
