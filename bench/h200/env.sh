# Sourced by train_h200.sh and bench_h200.sh, from the repo root: the H200's Python with the
# carried wheels, the JAX backend, and where the run and the outputs go.
#
#   BEATGAN_PYTHON       interpreter (default python3: the image's, which holds JAX)
#   BEATGAN_RUN_DIR      run folder kept on the machine between calls (default /root/beatgan-run)
#   BEATGAN_SKIP_WHEELS  set to skip the wheel install (a dry run where keras is installed)
#   OUT                  the device tool's output folder (required)
PY=${BEATGAN_PYTHON:-python3}
RUN_DIR=${BEATGAN_RUN_DIR:-/root/beatgan-run}
if [ -z "${OUT:-}" ]; then
    echo "OUT is not set: it is the device tool's output folder (set it for a dry run)" >&2
    exit 2
fi
mkdir -p "$OUT"
if [ -z "${BEATGAN_SKIP_WHEELS:-}" ]; then
    if ! ls .whl/*.whl >/dev/null 2>&1; then
        echo "no wheels in .whl/: run 'bash bench/h200/fetch_wheels.sh' here and name .whl in carry" >&2
        exit 2
    fi
    # The device README's install line, verbatim but for the repo root added to the path.
    python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
        --target /tmp/site .whl/*.whl && export PYTHONPATH=/tmp/site || exit 3
fi
export PYTHONPATH="${PYTHONPATH:+$PYTHONPATH:}$PWD"
export KERAS_BACKEND=jax PYTHONUNBUFFERED=1 MPLBACKEND=Agg TF_CPP_MIN_LOG_LEVEL=2
