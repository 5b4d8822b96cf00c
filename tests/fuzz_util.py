"""Shared pieces of the importer fuzz tests (tests/models/test_import_fuzz.py,
tests/app/test_import_fuzz_files.py): seeded mutations of valid files and the check that a refusal
is one plain sentence. Qt-free, torch-free."""
from __future__ import annotations

import random
import re
import time
from collections import Counter

# Python exception class names and library phrases a user must never see
RAW_MARKERS = ("Traceback", "ValueError", "KeyError", "IndexError", "StopIteration", "RecursionError",
               "TypeError", "AttributeError", "OverflowError", "ZeroDivisionError", "UnicodeDecodeError",
               "ParseError", "MemoryError", "list index out of range", "No module named",
               "cannot convert float", "could not convert string", "NoneType", "object has no attribute",
               "out of bounds for axis")
MAX_SECONDS = 2.0  # per file

WEIRD = ["nan", "NaN", "inf", "-inf", "1e308", "1e999", "-1e999", "-1", "-99999999", "99999999999999999999",
         "0", "1e-320", "0x1F", "", " ", "\t", "é", "\x00", "\ufeff", "💥", "'", '"', "<", ">", "&", "{", "}",
         "#", "-", ".", "..", "1.2.3", "+-5", "999999999999"]


def check_refusal(err: BaseException, label: str) -> str:
    """Assert `err`'s message is a plain one-line sentence; return it."""
    msg = str(err)
    assert msg.strip(), f"{label}: empty message"
    assert "\n" not in msg and "\r" not in msg, f"{label}: message spans lines: {msg!r}"
    assert len(msg) <= 300, f"{label}: message is {len(msg)} characters: {msg[:120]!r}"
    for m in RAW_MARKERS:
        assert m not in msg, f"{label}: raw library text {m!r} in {msg!r}"
    assert not re.fullmatch(r"\s*'[^']*'\s*", msg), f"{label}: a bare quoted token {msg!r}"
    assert len(msg.split()) >= 3, f"{label}: not a sentence: {msg!r}"
    return msg


def mutate_text(rng: random.Random, text: str, extra: list[str] = ()) -> tuple[str, str]:
    """One seeded mutation of `text` -> (kind, mutated text)."""
    kind = rng.choice(["truncate", "flip", "insert", "delete", "duplicate", "encoding", "garbage_body",
                       "swap_lines", "replace_number", "insert", "replace_number"])
    n = len(text)
    if kind == "truncate":
        return kind, text[:rng.randrange(n + 1)]
    if kind == "flip":
        chars = list(text)
        for _ in range(rng.randint(1, 8)):
            if chars:
                chars[rng.randrange(len(chars))] = chr(rng.choice([rng.randrange(32, 127), rng.randrange(0, 32),
                                                                   rng.randrange(128, 0x3000)]))
        return kind, "".join(chars)
    if kind == "insert":
        tokens = WEIRD + list(extra)
        out = text
        for _ in range(rng.randint(1, 4)):
            i = rng.randrange(len(out) + 1)
            out = out[:i] + rng.choice(tokens) + out[i:]
        return kind, out
    if kind == "delete":
        i = rng.randrange(n + 1)
        return kind, text[:i] + text[i + rng.randint(1, 200):]
    if kind == "duplicate":
        i = rng.randrange(n + 1)
        j = min(n, i + rng.randint(1, 80))
        return kind, text[:i] + text[i:j] * rng.choice([2, 10, 300, 3000]) + text[j:]
    if kind == "encoding":
        codec = rng.choice(["utf-16", "utf-32", "cp1252", "latin-1"])
        return kind, text.encode(codec, errors="replace").decode("latin-1")
    if kind == "garbage_body":
        cut = rng.randrange(min(n, 200) + 1)
        return kind, text[:cut] + bytes(rng.randrange(256) for _ in range(rng.randint(1, 400))).decode("latin-1")
    if kind == "swap_lines":
        lines = text.split("\n")
        if len(lines) > 2:
            i, j = rng.randrange(len(lines)), rng.randrange(len(lines))
            lines[i], lines[j] = lines[j], lines[i]
        return kind, "\n".join(lines)
    # replace_number: one number becomes something odd
    nums = list(re.finditer(r"-?\d+(\.\d+)?", text))
    if not nums:
        return kind, text
    m = rng.choice(nums)
    return kind, text[:m.start()] + rng.choice(WEIRD + list(extra)) + text[m.end():]


def mutate_bytes(rng: random.Random, data: bytes) -> tuple[str, bytes]:
    """One seeded mutation of a binary file -> (kind, mutated bytes)."""
    kind = rng.choice(["truncate", "flip", "flip", "insert", "delete", "zero_run", "garbage_body", "header_only",
                       "duplicate"])
    n = len(data)
    b = bytearray(data)
    if kind == "truncate":
        return kind, bytes(b[:rng.randrange(n + 1)])
    if kind == "flip":
        for _ in range(rng.randint(1, 16)):
            if b:
                b[rng.randrange(len(b))] = rng.randrange(256)
        return kind, bytes(b)
    if kind == "insert":
        i = rng.randrange(n + 1)
        return kind, bytes(b[:i]) + rng.choice([b"\xff" * 8, b"\x00" * 4, b"nan", b"-1", b"1e999",
                                                 bytes(rng.randrange(256) for _ in range(16))]) + bytes(b[i:])
    if kind == "delete":
        i = rng.randrange(n + 1)
        return kind, bytes(b[:i] + b[i + rng.randint(1, 64):])
    if kind == "zero_run":
        i = rng.randrange(n + 1)
        return kind, bytes(b[:i]) + b"\x00" * rng.randint(1, 64) + bytes(b[i + 64:])
    if kind == "garbage_body":
        cut = rng.randrange(min(n, 64) + 1)
        return kind, bytes(b[:cut]) + bytes(rng.randrange(256) for _ in range(rng.randint(1, 300)))
    if kind == "header_only":
        return kind, bytes(b[:rng.randint(8, 40)])
    i = rng.randrange(n + 1)
    j = min(n, i + rng.randint(1, 40))
    return kind, bytes(b[:i] + b[i:j] * rng.choice([2, 50]) + b[j:])


class FuzzTally:
    """Runs one importer over many inputs: success or a plain refusal, each in under MAX_SECONDS."""

    def __init__(self, error_type: type[BaseException]):
        self.error_type = error_type
        self.outcomes: Counter = Counter()
        self.worst = (0.0, "")
        self.n = 0

    def run(self, label: str, fn, *args) -> None:
        self.n += 1
        t0 = time.perf_counter()
        try:
            fn(*args)
            self.outcomes["ok"] += 1
        except self.error_type as e:
            msg = check_refusal(e, label)
            self.outcomes[_key(msg)] += 1
        except Exception as e:  # anything else is a leak of library text
            raise AssertionError(f"{label}: {type(e).__name__} leaked: {str(e)[:200]!r}") from e
        dt = time.perf_counter() - t0
        if dt > self.worst[0]:
            self.worst = (dt, label)
        assert dt < MAX_SECONDS, f"{label}: took {dt:.2f} s"

    def report(self, name: str) -> str:
        top = ", ".join(f"{k}: {v}" for k, v in self.outcomes.most_common(12))
        return f"{name}: {self.n} files, max {self.worst[0] * 1000:.0f} ms ({self.worst[1]}); {top}"


def _key(msg: str) -> str:
    """A message with its numbers and quoted bits blanked, for counting kinds of refusal."""
    msg = re.sub(r"'[^']*'", "'…'", msg)
    return re.sub(r"\d[\d,.]*", "N", msg)[:70]
