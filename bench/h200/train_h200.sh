#!/usr/bin/env bash
# Train BeatGAN's shipped weights on the H200 in resumable device calls (run from the repo root;
# the call's carry list must name .whl). weights/README.md gives the calls in order.
#
#   bash bench/h200/train_h200.sh train BUDGET_S [flags]   train for about BUDGET_S seconds,
#        resuming the run folder if this machine holds one; then summary.json, history.csv,
#        losses.png and the first weight parts (with manifest.json) go to $OUT
#   bash bench/h200/train_h200.sh send [flags]             the next weight parts to $OUT
#
# Flags go to bench/h200/train_h200.py (every call of a run passes the same config flags).
# The training process is stopped 15 s past its budget at the latest, so the figures and the
# parts of the newest checkpoint are written even when a chunk runs long.
set -uo pipefail
here=bench/h200
[ -f "$here/train_h200.py" ] || { echo "run from the repo root" >&2; exit 2; }
source "$here/env.sh"
mode=${1:?usage: train_h200.sh train BUDGET_S [flags] | send [flags]}
shift
case "$mode" in
train)
    budget=${1:?train needs a budget in seconds}
    shift
    command -v nvidia-smi >/dev/null && nvidia-smi --query-gpu=name,memory.total,clocks.sm \
        --format=csv,noheader
    timeout -s INT -k 10 $((${budget%.*} + 15)) "$PY" "$here/train_h200.py" train \
        --run-dir "$RUN_DIR" --budget-s "$budget" "$@"
    rc=$?
    case $rc in
    0) ;;
    124|130|137)  # not 124 on exit: the device tool would read that as the whole call timing out
        echo "training stopped at its hard time limit (exit $rc); finishing from the newest checkpoint" >&2
        rc=0 ;;
    *) echo "train failed with exit $rc; finishing with what the run folder holds" >&2 ;;
    esac
    "$PY" "$here/train_h200.py" finish --run-dir "$RUN_DIR" --out "$OUT" "$@" || rc=$?
    exit $rc
    ;;
send)
    exec "$PY" "$here/train_h200.py" send --run-dir "$RUN_DIR" --out "$OUT" "$@"
    ;;
*)
    echo "unknown mode $mode: train or send" >&2
    exit 2
    ;;
esac
