#!/usr/bin/env bash
# The main job: run beat_gan.ipynb top to bottom in ./.venv (made on first use).
# It loads weights/ (or, without shipped weights, trains a small model briefly on the CPU),
# writes 40 beats to generated_output/ with their similarity scores, saves the executed
# notebook as beat_gan.executed.ipynb and prints the scores. Extra arguments go to
# `beatgan run-notebook`, e.g.  bash scripts/main.sh -p iterations=200
source "$(dirname "$0")/_venv.sh"
python -m beatgan run-notebook beat_gan.ipynb --output beat_gan.executed.ipynb "$@"
# The notebook writes its scores table beside the beats (parameter out_dir, default generated_output).
out_dir=generated_output
for arg in "$@"; do
    case "$arg" in out_dir=*) out_dir=${arg#out_dir=}; out_dir=${out_dir//[\"\']/};; esac
done
if [ -f "$out_dir/scores.txt" ]; then echo; cat "$out_dir/scores.txt"; fi
