# Sourced by the other scripts: make ./.venv with beatgan and its pinned
# dependencies on first use (or when pyproject.toml or constraints.txt change), then put it first on PATH.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
PYTHON=${PYTHON:-python3}
if ! "$PYTHON" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
    echo "beatgan: needs Python 3.11 or newer (the pinned numpy, scipy, keras and jax do);" \
         "found $("$PYTHON" --version 2>&1 | head -1). Set PYTHON=/path/to/python3.11 and run again." >&2
    exit 1
fi
if [ ! -x .venv/bin/python ]; then
    echo "beatgan: creating .venv with $($PYTHON --version)"
    "$PYTHON" -m venv .venv
fi
if [ ! -f .venv/.installed ] || [ pyproject.toml -nt .venv/.installed ] || [ constraints.txt -nt .venv/.installed ]; then
    echo "beatgan: installing beatgan and the tested versions (constraints.txt) into .venv (about a minute)"
    # Measured on a fresh clone: .venv ends at 3.5 GB, and the install peaks at 4.2 GB.
    free_mb=$(df -Pm .venv | awk 'NR == 2 {print $4}')
    if [ -n "$free_mb" ] && [ "$free_mb" -lt 4500 ]; then
        echo "beatgan: warning: only ${free_mb} MB free here; the install needs about 4,200 MB" >&2
    fi
    # The log keeps pip's build chatter out of the way; it is shown when the install fails.
    if ! { .venv/bin/python -m pip install --quiet --upgrade pip &&
           .venv/bin/python -m pip install --quiet -c constraints.txt -e ".[dev]"; } > .venv/install.log 2>&1; then
        cat .venv/install.log
        if grep -q "No space left on device" .venv/install.log; then
            echo "beatgan: the disk filled up: the install needs about 4,200 MB free, and" \
                 "$(df -Pm .venv | awk 'NR == 2 {print $4}') MB are free now" >&2
        fi
        echo "beatgan: the install failed (log above, also in .venv/install.log)" >&2
        exit 1
    fi
    touch .venv/.installed
fi
export PATH="$PWD/.venv/bin:$PATH"
