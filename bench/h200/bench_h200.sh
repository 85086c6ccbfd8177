#!/usr/bin/env bash
# The full-size benchmark on the H200 (run from the repo root; carry .whl): the measured bf16
# matrix rate, then bench/bench_train.py under JAX at d = 64, batch 64, in float32 and with
# --mixed-precision. Prints a table; bench_h200.json and bench_h200.txt go to $OUT.
#
#   bash bench/h200/bench_h200.sh [flags for bench/h200/bench_h200.py]
#
# In the weights run it shares a call with the second batch of weight parts, sent first (the
# parts leave room for this script's two small files):
#   bash bench/h200/train_h200.sh send; bash bench/h200/bench_h200.sh
set -uo pipefail
here=bench/h200
[ -f "$here/bench_h200.py" ] || { echo "run from the repo root" >&2; exit 2; }
source "$here/env.sh"
command -v nvidia-smi >/dev/null && nvidia-smi --query-gpu=name,memory.total,clocks.sm,clocks.mem \
    --format=csv,noheader
"$PY" "$here/bench_h200.py" --out "$OUT" "$@"
