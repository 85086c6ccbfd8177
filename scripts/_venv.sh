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
    # The log keeps pip's build chatter out of the way; it is shown when the install fails.
    if ! { .venv/bin/python -m pip install --quiet --upgrade pip &&
           .venv/bin/python -m pip install --quiet -c constraints.txt -e ".[dev]"; } > .venv/install.log 2>&1; then
        cat .venv/install.log
        echo "beatgan: the install failed (log above, also in .venv/install.log)" >&2
        exit 1
    fi
    touch .venv/.installed
fi
export PATH="$PWD/.venv/bin:$PATH"
