#!/usr/bin/env bash
# The whole test suite from nothing: set up (with test extras), install Chromium for the browser
# tests when possible, then run pytest. Extra arguments go to pytest (e.g. -m "not slow").
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh test
if [ ! -x /usr/bin/chromium ] && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null) \
        || echo "chromium could not be installed; browser tests will be skipped"
fi
export HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1 TOKENIZERS_PARALLELISM=false
.venv/bin/lint-imports --no-cache   # the import rules in pyproject.toml (docs/architecture.md)
exec .venv/bin/python -m pytest -q "$@"
