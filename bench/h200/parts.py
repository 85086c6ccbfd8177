"""Split files into parts small enough to come back from the device machine, and join them.

The device tool returns at most 8 files per call, each at most 16 MiB, 64 MiB in all
(/work/.library/device/README.md). The exported weights at d = 64 are larger (generator about
76 MB, discriminator about 70 MB), so the H200 side splits them into parts with a manifest of
sha256 sums, sends a few parts per call, and this side joins them and refuses any mismatch.

Manifest (``manifest.json``)::

    {"format": 1, "part_bytes": 15728640, "source": {...},
     "files": [{"name": "generator.weights.h5", "bytes": N, "sha256": "...",
                "parts": [{"name": "generator.weights.h5.part00", "bytes": n, "sha256": "..."},
                          ...]},
               ...]}

Command line (standard library only, so it runs anywhere)::

    python bench/h200/parts.py split FILE... --parts-dir DIR [--part-bytes N]
    python bench/h200/parts.py join  PARTS_DIR --out DIR [--only NAME...]
    python bench/h200/parts.py send  PARTS_DIR --out DIR    # next parts that fit into DIR

``bench/h200/join_parts.py`` is the same ``join``.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import sys
from pathlib import Path
from typing import Any, Sequence

MANIFEST = "manifest.json"
SENT = "sent.json"
MIB = 1 << 20
#: 15 MiB: under the 16 MiB per-file limit with room to spare.
PART_BYTES = 15 * MIB
#: What one call may bring back (the device README's limits).
MAX_FILES_PER_CALL = 8
MAX_BYTES_PER_CALL = 64 * MIB
#: Kept free in every call for small files written after the parts (and rounding).
RESERVE_BYTES = 2 * MIB


class PartError(ValueError):
    """A part or a joined file is missing, has the wrong size, or the wrong sha256."""


def sha256_of(path: str | Path, *, chunk_bytes: int = 4 * MIB) -> str:
    """Hex sha256 of a file, read in chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk_bytes):
            digest.update(block)
    return digest.hexdigest()


def part_name(name: str, index: int) -> str:
    """``generator.weights.h5.part03``."""
    return f"{name}.part{index:02d}"


# --- the sending side ------------------------------------------------------------------------
def split_files(paths: Sequence[str | Path], parts_dir: str | Path, *, part_bytes: int = PART_BYTES,
                source: dict[str, Any] | None = None) -> dict[str, Any]:
    """Cut each file into parts of at most ``part_bytes`` in ``parts_dir``; write the manifest.

    Files keep their order (send the important ones first); names must be unique. An empty
    file gets one empty part. ``source`` (any JSON) is stored in the manifest as provenance.
    Returns the manifest.
    """
    if part_bytes < 1:
        raise ValueError(f"part_bytes must be positive, got {part_bytes}")
    names = [Path(p).name for p in paths]
    if len(set(names)) != len(names):
        raise ValueError(f"file names must be unique, got {names}")
    parts_dir = Path(parts_dir)
    parts_dir.mkdir(parents=True, exist_ok=True)
    files = []
    for path in map(Path, paths):
        whole = hashlib.sha256()
        parts = []
        with open(path, "rb") as f:
            while True:
                block = f.read(part_bytes)
                if not block and parts:
                    break
                whole.update(block)
                name = part_name(path.name, len(parts))
                (parts_dir / name).write_bytes(block)
                parts.append({"name": name, "bytes": len(block),
                              "sha256": hashlib.sha256(block).hexdigest()})
                if len(block) < part_bytes:
                    break
        files.append({"name": path.name, "bytes": path.stat().st_size,
                      "sha256": whole.hexdigest(), "parts": parts})
    manifest = {"format": 1, "part_bytes": part_bytes, "source": source or {}, "files": files}
    _write_json(parts_dir / MANIFEST, manifest)
    _write_json(parts_dir / SENT, [])
    return manifest


def send_next(parts_dir: str | Path, out_dir: str | Path, *,
              max_files: int = MAX_FILES_PER_CALL, max_bytes: int = MAX_BYTES_PER_CALL,
              reserve_bytes: int = RESERVE_BYTES) -> list[str]:
    """Copy the manifest and the next unsent parts, in manifest order, into ``out_dir``.

    Counts what ``out_dir`` already holds against the per-call limits, so that figures written
    before this call still come back. Records what was sent in ``parts_dir/sent.json``; the
    parts of one call are all or nothing for the caller to re-request (``reset_sent``).
    Returns the part names copied (empty when everything was sent already).
    """
    parts_dir, out_dir = Path(parts_dir), Path(out_dir)
    manifest = load_manifest(parts_dir)
    sent = json.loads((parts_dir / SENT).read_text()) if (parts_dir / SENT).exists() else []
    out_dir.mkdir(parents=True, exist_ok=True)
    present = [p for p in out_dir.rglob("*") if p.is_file() and p.name != MANIFEST]
    files_left = max_files - len(present) - 1  # the manifest goes along every time
    bytes_left = (max_bytes - reserve_bytes - sum(p.stat().st_size for p in present)
                  - (parts_dir / MANIFEST).stat().st_size)
    chosen = []
    for part in (p for f in manifest["files"] for p in f["parts"]):
        if part["name"] in sent:
            continue
        if files_left < 1 or part["bytes"] > bytes_left:
            break  # keep manifest order: the next call starts where this one stopped
        chosen.append(part["name"])
        files_left -= 1
        bytes_left -= part["bytes"]
    shutil.copyfile(parts_dir / MANIFEST, out_dir / MANIFEST)
    for name in chosen:
        shutil.copyfile(parts_dir / name, out_dir / name)
    _write_json(parts_dir / SENT, sent + chosen)
    return chosen


def unsent(parts_dir: str | Path) -> list[str]:
    """Part names not yet sent, in manifest order."""
    parts_dir = Path(parts_dir)
    sent = set(json.loads((parts_dir / SENT).read_text())) if (parts_dir / SENT).exists() else set()
    return [p["name"] for f in load_manifest(parts_dir)["files"] for p in f["parts"]
            if p["name"] not in sent]


def reset_sent(parts_dir: str | Path, names: Sequence[str] | None = None) -> None:
    """Mark parts (default: all) as not sent, so that the next ``send_next`` sends them again."""
    parts_dir = Path(parts_dir)
    sent = json.loads((parts_dir / SENT).read_text()) if (parts_dir / SENT).exists() else []
    _write_json(parts_dir / SENT, [] if names is None else [n for n in sent if n not in set(names)])


# --- the receiving side ----------------------------------------------------------------------
def load_manifest(parts_dir: str | Path) -> dict[str, Any]:
    path = Path(parts_dir) / MANIFEST
    if not path.is_file():
        raise PartError(f"no {MANIFEST} in {parts_dir}: expected the folder the parts came back in")
    manifest = json.loads(path.read_text())
    if manifest.get("format") != 1:
        raise PartError(f"{path}: unknown manifest format {manifest.get('format')!r}")
    return manifest


def check_parts(parts_dir: str | Path, *, only: Sequence[str] | None = None) -> list[dict[str, Any]]:
    """The manifest's file entries to join, after checking every part's size and sha256.

    Raises ``PartError`` naming every missing part and the first part whose size or hash is
    wrong. ``only``: check (and later join) just these file names.
    """
    parts_dir = Path(parts_dir)
    files = load_manifest(parts_dir)["files"]
    if only:
        unknown = sorted(set(only) - {f["name"] for f in files})
        if unknown:
            raise PartError(f"not in the manifest: {unknown}; it lists {[f['name'] for f in files]}")
        files = [f for f in files if f["name"] in set(only)]
    missing = [p["name"] for f in files for p in f["parts"] if not (parts_dir / p["name"]).is_file()]
    if missing:
        raise PartError(f"{len(missing)} part(s) missing from {parts_dir}: {', '.join(missing)} "
                        f"(bring them back with 'train_h200.sh send', or join fewer files with --only)")
    for f in files:
        for p in f["parts"]:
            path = parts_dir / p["name"]
            size = path.stat().st_size
            if size != p["bytes"]:
                raise PartError(f"{path}: {size} bytes, the manifest says {p['bytes']}; "
                                f"refusing to join (fetch this part again)")
            digest = sha256_of(path)
            if digest != p["sha256"]:
                raise PartError(f"{path}: sha256 {digest[:16]}..., the manifest says "
                                f"{p['sha256'][:16]}...; refusing to join (fetch this part again)")
    return files


def join_parts(parts_dir: str | Path, out_dir: str | Path, *,
               only: Sequence[str] | None = None) -> list[Path]:
    """Join parts into whole files in ``out_dir``; every part and every whole file is hash-checked.

    Nothing is written unless every part checks out; each whole file is written under a
    temporary name, checked against the manifest's size and sha256, then renamed, so
    ``out_dir`` never holds a wrong or half-written file. Returns the paths written.
    """
    parts_dir, out_dir = Path(parts_dir), Path(out_dir)
    files = check_parts(parts_dir, only=only)
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for f in files:
        target = out_dir / f["name"]
        tmp = out_dir / f".joining-{f['name']}"
        digest = hashlib.sha256()
        with open(tmp, "wb") as out:
            for p in f["parts"]:
                block = (parts_dir / p["name"]).read_bytes()
                digest.update(block)
                out.write(block)
        if tmp.stat().st_size != f["bytes"] or digest.hexdigest() != f["sha256"]:
            tmp.unlink()
            raise PartError(f"joined {f['name']} does not match the manifest "
                            f"({f['bytes']} bytes, sha256 {f['sha256'][:16]}...); nothing written")
        os.replace(tmp, target)
        written.append(target)
    return written


def _write_json(path: Path, value: Any) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(value, indent=1) + "\n")
    os.replace(tmp, path)


# --- command line ------------------------------------------------------------------------------
def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("split", help="cut files into parts with a manifest")
    p.add_argument("files", nargs="+", type=Path)
    p.add_argument("--parts-dir", required=True, type=Path)
    p.add_argument("--part-bytes", type=int, default=PART_BYTES)
    p = sub.add_parser("join", help="join parts into whole files, checking every sha256")
    p.add_argument("parts_dir", type=Path)
    p.add_argument("--out", required=True, type=Path)
    p.add_argument("--only", nargs="+", help="join only these file names (e.g. the generator)")
    p = sub.add_parser("send", help="copy the manifest and the next parts that fit into --out")
    p.add_argument("parts_dir", type=Path)
    p.add_argument("--out", required=True, type=Path)
    args = parser.parse_args(argv)
    try:
        if args.command == "split":
            manifest = split_files(args.files, args.parts_dir, part_bytes=args.part_bytes)
            for f in manifest["files"]:
                print(f"{f['name']}: {f['bytes']} bytes in {len(f['parts'])} part(s), "
                      f"sha256 {f['sha256']}")
        elif args.command == "join":
            for path in join_parts(args.parts_dir, args.out, only=args.only):
                print(f"joined {path} ({path.stat().st_size} bytes, sha256 ok)")
        else:
            chosen = send_next(args.parts_dir, args.out)
            print(f"sent {len(chosen)} part(s): {' '.join(chosen) or '-'}; "
                  f"{len(unsent(args.parts_dir))} left")
    except PartError as err:
        print(f"parts: error: {err}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
