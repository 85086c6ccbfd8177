"""Join weight parts brought back from the H200 and check every sha256; refuse on any mismatch.

    python bench/h200/join_parts.py PARTS_DIR --out weights/ [--only generator.weights.h5 ...]

PARTS_DIR holds ``manifest.json`` and the ``*.partNN`` files of all the calls (copy each call's
files there as they come back). Exits 1, writing nothing, when a part is missing or differs
from the manifest. The logic is ``parts.join_parts`` (standard library only).
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from parts import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main(["join", *sys.argv[1:]]))
