#!/usr/bin/env bash
# The test suite, in ./.venv (made on first use). Extra arguments go to pytest.
source "$(dirname "$0")/_venv.sh"
python -m pytest "$@"
