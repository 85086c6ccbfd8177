#!/usr/bin/env bash
# The main job: run beat_gan.ipynb top to bottom in ./.venv (made on first use).
# It loads weights/ (or, without shipped weights, trains a small model briefly on the CPU),
# writes 40 beats to generated_output/ with their similarity scores, and saves the
# executed notebook as beat_gan.executed.ipynb. Extra arguments are notebook
# options of `beatgan run-notebook`, e.g.  bash scripts/main.sh -p iterations=200
source "$(dirname "$0")/_venv.sh"
python -m beatgan run-notebook beat_gan.ipynb --output beat_gan.executed.ipynb "$@"
