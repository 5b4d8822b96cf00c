#!/usr/bin/env bash
# Weft Studio set-up, idempotent: system packages when missing, a virtualenv in .venv with pinned
# torch==2.13.0 (CPU) and everything else, then either the studio or the whole test suite.
#
#   bash bootstrap.sh          # set up, then start the studio (or explain what to do with no display)
#   bash bootstrap.sh test     # set up, then run the whole test suite (what CI runs)
set -euo pipefail
cd "$(dirname "$0")"
MODE="${1:-studio}"
VENV=.venv
PY=$VENV/bin/python

say() { printf '\033[1m[weft]\033[0m %s\n' "$*"; }

# --- 1. system packages (Qt's xcb platform, OpenGL via Mesa, Xvfb for headless GL tests, audio) -------
SYS_PKGS="libgl1 libegl1 libglib2.0-0 libfontconfig1 libxkbcommon0 libdbus-1-3 libxkbcommon-x11-0 \
libxcb-cursor0 libxcb-icccm4 libxcb-image0 libxcb-keysyms1 libxcb-render-util0 libxcb-shape0 libxcb-xkb1 \
xvfb xauth libportaudio2 libsndfile1"
missing=""
for p in $SYS_PKGS; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
done
if [ -n "$missing" ]; then
  if command -v apt-get >/dev/null 2>&1; then
    SUDO=""
    [ "$(id -u)" -ne 0 ] && command -v sudo >/dev/null 2>&1 && SUDO="sudo"
    if [ "$(id -u)" -eq 0 ] || [ -n "$SUDO" ]; then
      say "installing system packages:$missing"
      $SUDO apt-get update -qq
      DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq $missing >/dev/null
    else
      say "missing system packages (install them as root):$missing"
    fi
  else
    say "not a Debian-like system; make sure these are installed:$missing"
  fi
fi

# --- 2. virtualenv with pinned torch ------------------------------------------------------------------
PYTHON_BIN="${PYTHON:-}"
if [ -z "$PYTHON_BIN" ]; then
  for c in python3.11 python3 python; do
    if command -v "$c" >/dev/null 2>&1 && "$c" -c 'import sys; sys.exit(sys.version_info < (3, 11))'; then
      PYTHON_BIN="$c"; break
    fi
  done
fi
[ -n "$PYTHON_BIN" ] || { say "Python 3.11 or newer is needed"; exit 1; }
if [ ! -x "$PY" ]; then
  say "creating $VENV with $($PYTHON_BIN --version)"
  "$PYTHON_BIN" -m venv "$VENV"
fi
STAMP=$VENV/.weft-installed
WANT=$(cat pyproject.toml bootstrap.sh | sha1sum | cut -d' ' -f1)
if [ ! -f "$STAMP" ] || [ "$(cat "$STAMP")" != "$WANT" ]; then
  say "installing Python packages into $VENV (torch==2.13.0 CPU, PySide6-Essentials, ...)"
  $PY -m pip install -q --upgrade pip
  # torch first and pinned: an unpinned torch would pull a multi-GB CUDA build
  $PY -m pip install -q "torch==2.13.0"
  $PY -m pip install -q -e ".[gui,train,bench,test,ray]"
  echo "$WANT" > "$STAMP"
else
  say "Python packages up to date"
fi
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1

# --- 3. run ---------------------------------------------------------------------------------------
case "$MODE" in
  test)
    say "layering contracts (import-linter)"
    $VENV/bin/lint-imports
    say "engine and model tests with Qt blocked (they must run headless, without PySide6)"
    WEFT_BLOCK_QT=1 $PY -m pytest -q -p no:xvfb -p no:pytest-qt -W ignore::pytest.PytestConfigWarning tests/engine tests/models
    say "whole test suite (Qt tests on Xvfb when available)"
    $PY -m pytest -q
    ;;
  studio)
    if [ -z "${DISPLAY:-}${WAYLAND_DISPLAY:-}" ] && [ "$(uname)" = "Linux" ]; then
      say "No display here (DISPLAY and WAYLAND_DISPLAY are unset), so the studio window cannot open."
      say "Everything works from the command line through the same engine, e.g.:"
      echo "    $VENV/bin/weft-cli status"
      echo "    $VENV/bin/weft-cli --help"
      echo "  or see the window on a virtual display:  xvfb-run -a $VENV/bin/weft"
      say "engine check:"
      $VENV/bin/weft-cli status
      exit 0
    fi
    exec $VENV/bin/weft
    ;;
  *)
    echo "usage: bash bootstrap.sh [studio|test]"; exit 2 ;;
esac
