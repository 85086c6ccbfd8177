#!/usr/bin/env bash
# The H200 weights run of weights/README.md, rehearsed on this CPU with a tiny model (d = 2,
# 8 loops, batch 4): the same four calls (train, train, bench + send, send), each call's $OUT
# gathered as the device tool would bring it back, the parts joined and hash-checked, and the
# joined generator loaded under JAX and TensorFlow to give the same audio. About a minute.
#
#   bash bench/h200/dry_run.sh [WORK_DIR]      (from the repo root; default /tmp/beatgan-h200-dry)
set -euo pipefail
[ -f bench/h200/train_h200.py ] || { echo "run from the repo root" >&2; exit 2; }
work=${1:-/tmp/beatgan-h200-dry}
export BEATGAN_PYTHON=${BEATGAN_PYTHON:-/work/venv/bin/python} BEATGAN_SKIP_WHEELS=1
export JAX_PLATFORMS=cpu BEATGAN_RUN_DIR=$work/run TF_CPP_MIN_LOG_LEVEL=3
PY=$BEATGAN_PYTHON
rm -rf "$work"
mkdir -p "$work/received"
# 64 KiB parts and a per-call limit scaled like 15 MiB parts to 64 MiB, so that the tiny
# weights also need several calls.
tiny="--model-dim 2 --batch-size 4 --loops 8 --probe-iterations 2 --part-bytes 65536 --call-max-bytes 279620"

device_call() {  # N COMMAND: run COMMAND with a fresh $OUT, check the limits, gather its files
    local n=$1; shift
    export OUT=$work/out$n
    echo "=== call $n: $*"
    bash -c "$*" 2>&1 | grep -v '^\s*$' | grep -v '^I0000\|^WARNING: All log\|oneDNN\|cuda' | tail -n 12
    local count bytes
    count=$(find "$OUT" -type f | wc -l)
    bytes=$(du -cb "$OUT"/* | tail -1 | cut -f1)
    echo "--- call $n brought back $count file(s), $bytes bytes: $(ls "$OUT" | tr '\n' ' ')"
    [ "$count" -le 8 ] || { echo "more than 8 files" >&2; exit 1; }
    cp "$OUT"/* "$work/received/"
}

device_call 1 "bash bench/h200/train_h200.sh train 40 $tiny --max-iterations 3 --no-send"
device_call 2 "bash bench/h200/train_h200.sh train 40 $tiny --max-iterations 6"
device_call 3 "bash bench/h200/train_h200.sh send $tiny; bash bench/h200/bench_h200.sh --model-dim 2 --batch-size 4 --iterations 2 --warmup 1 --matmul-n 256 | tail -n 4"
device_call 4 "bash bench/h200/train_h200.sh send $tiny"

echo "=== join"
"$PY" bench/h200/join_parts.py "$work/received" --out "$work/weights"
for f in config.json generator.weights.h5 discriminator.weights.h5; do
    cmp "$work/weights/$f" "$work/run/export/$f"
done
echo "joined files are byte-identical to the run's export"

echo "=== the joined generator under JAX and TensorFlow"
for backend in jax tensorflow; do
    KERAS_BACKEND=$backend "$PY" -c "
import sys, numpy as np
from beatgan.generation import generate
audio, _ = generate(sys.argv[1], n=4, seed=0)
np.save(sys.argv[2], audio)
" "$work/weights" "$work/audio-$backend.npy" 2>/dev/null
done
"$PY" -c "
import sys, numpy as np
a, b = np.load(sys.argv[1]), np.load(sys.argv[2])
diff = float(np.abs(a - b).max())
print(f'4 beats {a.shape}: max |JAX - TensorFlow| = {diff:.2e} (peak {np.abs(a).max():.3f})')
sys.exit(0 if diff < 1e-5 else 1)
" "$work/audio-jax.npy" "$work/audio-tensorflow.npy"
echo "DRY RUN OK"
