#!/usr/bin/env bash
# Download the wheels in bench/h200/wheels.txt into .whl/ (git-ignored) for the H200's
# CPython 3.12 on manylinux x86_64, with the command the device README gives. Run here, from
# anywhere in the repo, before a device call that names .whl in its carry list.
#
#   bash bench/h200/fetch_wheels.sh        # then: du -sh .whl
set -euo pipefail
repo=$(git -C "$(dirname "$0")" rev-parse --show-toplevel)
cd "$repo"
exclude=$(git rev-parse --git-path info/exclude)
mkdir -p "$(dirname "$exclude")"
grep -qx '/.whl/' "$exclude" 2>/dev/null || echo /.whl/ >> "$exclude"
mkdir -p .whl
platforms=(manylinux_2_28_x86_64 manylinux_2_27_x86_64 manylinux_2_17_x86_64
           manylinux2014_x86_64 manylinux1_x86_64)
args=()
for p in "${platforms[@]}"; do args+=(--platform "$p"); done
grep -v '^\s*#' bench/h200/wheels.txt | grep -v '^\s*$' | while read -r pin; do
    python3 -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 \
        --implementation cp "${args[@]}" -d .whl "$pin"
done
# One version of each package: two stop the install on the device.
names=$(ls .whl/*.whl | xargs -n1 basename | cut -d- -f1 | tr 'A-Z' 'a-z' | sort)
dupes=$(echo "$names" | uniq -d)
if [ -n "$dupes" ]; then
    echo "more than one wheel of: $dupes (remove the stale ones from .whl/)" >&2
    exit 1
fi
ls -l .whl/*.whl
du -ch .whl/*.whl | tail -1
