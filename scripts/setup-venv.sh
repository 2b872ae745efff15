#!/usr/bin/env bash
# Creates (or updates) the project-local Python virtual environment .venv that the live tests
# (tests/it/live.rs, tests/live/server.py) run moto in. Idempotent and fast when up to date: the
# installed requirements are recorded in .venv/.cks-requirements and pip only runs when
# tests/live/requirements.txt differs from that stamp.
#
# Fails (non-zero, with the reason) when python3, its venv module or pip is missing: the live
# tests are part of the suite, never silently skipped.
set -euo pipefail
cd "$(dirname "$0")/.."

REQ=tests/live/requirements.txt
VENV=.venv
STAMP="$VENV/.cks-requirements"
PYTHON="${CKS_PYTHON:-python3}"

die() {
  echo "scripts/setup-venv.sh: $*" >&2
  exit 1
}

[ -f "$REQ" ] || die "$REQ is missing"

if [ -x "$VENV/bin/python" ] && [ -f "$STAMP" ] && cmp -s "$REQ" "$STAMP" \
   && "$VENV/bin/python" -c 'import moto.server' >/dev/null 2>&1; then
  exit 0
fi

if ! command -v "$PYTHON" >/dev/null 2>&1; then
  die "$PYTHON is not installed; the live tests need Python 3.9+ with the venv module and pip (e.g. apt-get install python3 python3-venv python3-pip)"
fi
if ! "$PYTHON" -c 'import sys; sys.exit(0 if sys.version_info >= (3, 9) else 1)'; then
  die "$("$PYTHON" --version 2>&1) is too old; the live tests need Python 3.9 or newer"
fi
if ! "$PYTHON" -c 'import venv' >/dev/null 2>&1; then
  die "the Python venv module is missing (e.g. apt-get install python3-venv)"
fi
if ! "$PYTHON" -c 'import ensurepip' >/dev/null 2>&1 && ! "$PYTHON" -m pip --version >/dev/null 2>&1; then
  die "pip is missing: neither ensurepip nor pip is available (e.g. apt-get install python3-pip python3-venv)"
fi

if [ ! -x "$VENV/bin/python" ]; then
  echo "scripts/setup-venv.sh: creating $VENV" >&2
  rm -rf "$VENV"
  if ! "$PYTHON" -m venv "$VENV"; then
    rm -rf "$VENV"
    die "'$PYTHON -m venv $VENV' failed (is python3-venv installed?)"
  fi
fi
if ! "$VENV/bin/python" -m pip --version >/dev/null 2>&1; then
  if ! "$VENV/bin/python" -m ensurepip --upgrade >/dev/null 2>&1; then
    rm -rf "$VENV"
    die "$VENV has no pip and ensurepip failed (e.g. apt-get install python3-pip python3-venv)"
  fi
fi

echo "scripts/setup-venv.sh: installing $(grep -v '^#' "$REQ" | xargs) into $VENV" >&2
rm -f "$STAMP"
if ! "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check -r "$REQ"; then
  die "pip install -r $REQ failed (see above); the live tests need it"
fi
"$VENV/bin/python" -c 'import moto.server' || die "moto is not importable in $VENV after the install"
cp "$REQ" "$STAMP"
