#!/usr/bin/env bash
# The main job from nothing: set up, then run the bundled demo experiment (experiments/demo.yaml).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh main
export HF_HUB_OFFLINE="${HF_HUB_OFFLINE:-1}" HF_DATASETS_OFFLINE="${HF_DATASETS_OFFLINE:-1}"
exec .venv/bin/harness demo "$@"
