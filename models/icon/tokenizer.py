"""Icon tokens (IconShop-style): a uniquely decodable sequence of command and coordinate tokens.

    icon      = BOS path+ EOS
    path      = PATH subpath+                 one island of the icon (see svg.py)
    subpath   = M x y (L x y | C x y x y x y)+ [Z]
x and y have their own token ranges, so every token says what it is and the sequence decodes
without look-ahead. Fill-in-the-middle (FIM) requests put the paths around a hole before the path
to draw:  TXT FIM_PRE <paths before> FIM_SUF <paths after> FIM_MID path EOS.
Exemplar-conditioned generation (library icons of the prompt's concept shown to the model first):
          TXT EXM <exemplar 1 paths> [EXM <exemplar 2 paths>] BOS path+ EOS.

`Grammar` is the state machine of this language; its `bias` table plugs into the decoding core's
`logits_bias` hook so every sample is a valid token sequence.
"""
from __future__ import annotations

import numpy as np

from models.icon.svg import GRID, N_POINTS, IconPath

PAD, BOS, EOS, PATH, M, L, C, Z, TXT, FIM_PRE, FIM_SUF, FIM_MID, EXM = range(13)
SPECIAL = ["PAD", "BOS", "EOS", "PATH", "M", "L", "C", "Z", "TXT", "FIM_PRE", "FIM_SUF", "FIM_MID", "EXM"]
X0 = 16  # x coordinate tokens X0 .. X0+GRID-1
Y0 = X0 + GRID  # y coordinate tokens
VOCAB = Y0 + GRID
CMD_TOKEN = {"M": M, "L": L, "C": C, "Z": Z}
TOKEN_CMD = {v: k for k, v in CMD_TOKEN.items()}


def encode_paths(paths: list[IconPath]) -> list[int]:
    """Paths (integer grid points) -> PATH M x y ... tokens, without BOS/EOS."""
    out: list[int] = []
    for p in paths:
        q = np.clip(np.rint(p.pts), 0, GRID - 1).astype(np.int64)
        out.append(PATH)
        i = 0
        for c in p.cmds:
            out.append(CMD_TOKEN[c])
            for x, y in q[i:i + N_POINTS[c]]:
                out += [X0 + int(x), Y0 + int(y)]
            i += N_POINTS[c]
    return out


def encode_icon(paths: list[IconPath]) -> list[int]:
    return [BOS] + encode_paths(paths) + [EOS]


def decode(tokens, *, partial: bool = False) -> list[IconPath]:
    """Tokens -> paths. Stops at EOS. Tokens before the first PATH (BOS, text, FIM markers) are skipped.

    partial=False: a malformed or unterminated sequence raises ValueError. partial=True (live streaming): an
    unfinished command at the end is dropped and the path in progress is returned as far as it goes.
    """
    paths: list[IconPath] = []
    cmds: list[str] = []
    pts: list[tuple[int, int]] = []
    toks = [int(t) for t in tokens]
    i = 0
    while i < len(toks) and toks[i] != PATH:
        i += 1

    def close_path():
        if cmds and any(c != "M" for c in cmds):
            while cmds and cmds[-1] == "M":  # a dangling move draws nothing
                cmds.pop()
                pts.pop()
            paths.append(IconPath("".join(cmds), np.array(pts, dtype=np.float32)))
        cmds.clear()
        pts.clear()

    ended = False
    while i < len(toks):
        t = toks[i]
        if t == EOS:
            ended = True
            break
        if t == PATH:
            close_path()
            i += 1
            continue
        if t in TOKEN_CMD:
            c = TOKEN_CMD[t]
            n = N_POINTS[c]
            coords = toks[i + 1:i + 1 + 2 * n]
            if len(coords) < 2 * n:
                if partial:
                    break
                raise ValueError(f"command {c} at token {i} is cut short")
            ok = all(X0 <= coords[2 * k] < Y0 and Y0 <= coords[2 * k + 1] < VOCAB for k in range(n))
            if not ok:
                raise ValueError(f"command {c} at token {i} has malformed coordinates")
            if not cmds and c != "M":
                raise ValueError(f"a path must start with M (token {i})")
            cmds.append(c)
            pts += [(coords[2 * k] - X0, coords[2 * k + 1] - Y0) for k in range(n)]
            i += 1 + 2 * n
            continue
        raise ValueError(f"unexpected token {t} at {i}")
    if not ended and not partial:
        raise ValueError("the sequence has no end-of-icon token")
    close_path()
    return paths


def fim_prompt(before: list[IconPath], after: list[IconPath]) -> list[int]:
    """Context tokens for redrawing the path between `before` and `after` (empty `after` = suggest next)."""
    return [FIM_PRE] + encode_paths(before) + [FIM_SUF] + encode_paths(after) + [FIM_MID]


def exemplar_prompt(exemplars: list) -> list[int]:
    """Context tokens showing library icons before the new one: EXM <paths> per exemplar, then BOS.
    exemplars: token arrays of whole icons (BOS ... EOS) or of their paths only."""
    out: list[int] = []
    for ex in exemplars:
        body = [int(t) for t in ex if int(t) not in (BOS, EOS)]
        out += [EXM] + body
    return out + [BOS]


# ---- grammar ------------------------------------------------------------------------------------
# States: START (expect PATH), AFTER_PATH (expect M), X1..X3 / Y1..Y3 (coordinates, k points left),
# AFTER_M (a move needs a drawing command), CMD (a command finished), AFTER_Z, END.
START, AFTER_PATH, X1, X2, X3, Y1, Y2, Y3, AFTER_M, CMD, AFTER_Z, END = range(12)
N_STATES = 12
_XS, _YS = {1: X1, 2: X2, 3: X3}, {1: Y1, 2: Y2, 3: Y3}
_K = {X1: 1, X2: 2, X3: 3, Y1: 1, Y2: 2, Y3: 3}


class Grammar:
    """Valid next tokens, one state per row. single_path=True: exactly one path then EOS (infill).

    `min_room` tokens before `max_len` only closing moves are allowed, so a sample always ends
    with EOS inside its token budget.
    """

    def __init__(self, single_path: bool = False, max_len: int = 10_000):
        self.single_path, self.max_len = single_path, max_len
        allow = {
            START: [PATH],
            AFTER_PATH: [M],
            AFTER_M: [L, C],
            CMD: [L, C, Z, M, EOS] + ([] if single_path else [PATH]),
            AFTER_Z: [M, EOS] + ([] if single_path else [PATH]),
            END: [EOS],
        }
        self.table = np.full((N_STATES, VOCAB), -np.inf, dtype=np.float32)  # (states, V) additive bias
        for s, toks in allow.items():
            self.table[s, toks] = 0.0
        for s in (X1, X2, X3):
            self.table[s, X0:Y0] = 0.0
        for s in (Y1, Y2, Y3):
            self.table[s, Y0:VOCAB] = 0.0
        self.closing = self.table.copy()  # near the budget: no new commands, only finish
        self.closing[CMD] = -np.inf
        self.closing[CMD, [Z, EOS]] = 0.0
        self.closing[AFTER_Z] = -np.inf
        self.closing[AFTER_Z, EOS] = 0.0
        self.closing[AFTER_PATH] = self.table[AFTER_PATH]
        self.closing[AFTER_M, [L]] = 0.0
        self.closing[AFTER_M, C] = -np.inf

    @staticmethod
    def advance(state: int, tok: int) -> int:
        if state == END or tok == EOS:
            return END
        if tok == PATH:
            return AFTER_PATH
        if tok == M:
            return X1
        if tok == L:
            return X1
        if tok == C:
            return X3
        if tok == Z:
            return AFTER_Z
        if state in _XS.values():
            return _YS[_K[state]]
        if state in _YS.values():
            k = _K[state]
            return _XS[k - 1] if k > 1 else CMD  # GrammarTracker turns this into AFTER_M after a move
        raise ValueError(f"token {tok} is not allowed in state {state}")

    def bias(self, states: np.ndarray, used: int) -> np.ndarray:
        """(B,) states, tokens used so far -> (B, V) additive logits bias."""
        table = self.closing if self.max_len - used <= 9 else self.table
        return table[states]


class GrammarTracker:
    """Per-row grammar state for a batch being decoded; remembers whether the last command was a move."""

    def __init__(self, grammar: Grammar, batch: int, start: int = START):
        self.g = grammar
        self.state = np.full(batch, start, dtype=np.int64)
        self.last_cmd = np.zeros(batch, dtype=np.int64)
        self.used = 0
        # rows that may not end yet (their drawing is still empty); the session clears them. Never
        # applied within the closing margin, where ending is the only way to stay in the budget.
        self.no_eos = np.zeros(batch, dtype=bool)
        # geometry for the no-zero-length-segment rule: current point, subpath start, the x just
        # given, and whether every point of the command so far sat on the current point
        self.cur = np.full((batch, 2), -1, dtype=np.int64)
        self.start = np.full((batch, 2), -1, dtype=np.int64)
        self.x = np.full(batch, -1, dtype=np.int64)
        self.still = np.zeros(batch, dtype=bool)

    def bias(self) -> np.ndarray:
        b = self.g.bias(self.state, self.used)
        veto = self.no_eos & (self.state != END)
        # a line or curve whose every point is the current point draws nothing: its last y may not
        # close it (models fall into loops of such commands, e.g. "C 316 891 316 891 316 891" again)
        still = (self.state == Y1) & self.still & (self.x == self.cur[:, 0]) & (self.last_cmd != M)
        if (veto.any() and self.g.max_len - self.used > 9) or still.any():
            b = b.copy()
            if self.g.max_len - self.used > 9:
                b[veto, EOS] = -np.inf
            rows = np.flatnonzero(still)
            b[rows, Y0 + self.cur[rows, 1]] = -np.inf
        return b

    def may_end(self, b: int) -> bool:
        """Would EOS be a grammatical next token for row b (a command or a Z just finished)?"""
        return int(self.state[b]) in (CMD, AFTER_Z)

    def feed(self, toks) -> None:
        for b, t in enumerate(np.asarray(toks).reshape(-1).tolist()):
            s = int(self.state[b])
            if t in (M, L, C, Z):
                self.last_cmd[b] = t
                self.still[b] = True
                if t == Z:
                    self.cur[b] = self.start[b]
            if self.g.table[s, t] == -np.inf and s != END:
                raise ValueError(f"token {t} is not allowed in state {s}")
            if X0 <= t < Y0:
                self.x[b] = t - X0
            elif t >= Y0 and s in (Y1, Y2, Y3):
                y = t - Y0
                self.still[b] &= bool(self.x[b] == self.cur[b, 0] and y == self.cur[b, 1])
                if s == Y1:  # the command's end point
                    self.cur[b] = (self.x[b], y)
                    if self.last_cmd[b] == M:
                        self.start[b] = self.cur[b]
            if s in (Y1,) and t >= Y0:
                self.state[b] = AFTER_M if self.last_cmd[b] == M else CMD
            else:
                self.state[b] = Grammar.advance(s, t)
        self.used += 1

    def feed_prefix(self, toks) -> None:
        """Advance every row through the same tokens (a forced prefix)."""
        for t in toks:
            self.feed(np.full(len(self.state), t))


# ---- degenerate repetition ------------------------------------------------------------------------
_ARITY = {M: 2, L: 2, C: 6, Z: 0}


def repeating_tail(tokens, max_period: int = 48, min_span: int = 12, min_reps: int = 3) -> int:
    """The period p (2..max_period) of a block repeated at the end of `tokens`, at least `min_reps`
    times and over at least `min_span` tokens; 0 when there is none. Coordinates are absolute, so
    such a tail redraws the same points again and again: the sampling loop the model falls into
    (like the repeated n-grams `no_repeat_ngram_size` guards against in text decoding)."""
    n = len(tokens)
    for p in range(2, max_period + 1):
        reps = max(min_reps, -(-min_span // p))
        if reps * p > n:
            break
        tail = tokens[n - p:]
        if all(tokens[n - (r + 1) * p:n - r * p] == tail for r in range(1, reps)):
            return p
    return 0


def close_row(tokens: list[int]) -> list[int]:
    """End a generated row (PATH M x y L x y ...) cleanly, EOS excluded: drop an unfinished trailing
    command, drop a trailing move that draws nothing (and a path left empty), close the open path (Z).
    The result followed by EOS is a valid sequence."""
    out = list(tokens)

    def last_cmd() -> int:
        return max((i for i, t in enumerate(out) if t in (PATH, M, L, C, Z)), default=-1)

    i = last_cmd()
    if i >= 0 and out[i] in (M, L, C) and len(out) - i - 1 < _ARITY[out[i]]:
        out = out[:i]  # an unfinished command
    i = last_cmd()
    if i >= 0 and out[i] == M:
        out = out[:i]  # a move with nothing drawn after it
    i = last_cmd()
    if i >= 0 and out[i] == PATH:
        out = out[:i]  # a path left with no commands
    i = last_cmd()
    if i >= 0 and out[i] in (L, C):
        out.append(Z)
    return out


def is_valid(tokens, single_path: bool = False) -> bool:
    """Does a generated token sequence (after BOS / FIM_MID, up to EOS) follow the grammar?"""
    tr = GrammarTracker(Grammar(single_path), 1)
    try:
        for t in tokens:
            tr.feed([int(t)])
            if int(t) == EOS:
                return True
    except ValueError:
        return False
    return False
