"""Finding the audio files of a folder of loops, and the error and warning every loop reader raises."""

from __future__ import annotations

import dataclasses
import os
import warnings
from pathlib import Path

import soundfile as sf


class LoopError(ValueError):
    """A loop file that cannot be used, with the file named and what was expected."""


class LoopWarning(UserWarning):
    """A loop file skipped or changed on the way in (padded, resampled, ...)."""


def _audio_suffixes() -> tuple[str, ...]:
    suffixes = {"." + ext.lower() for ext in sf.available_formats()}
    # Names soundfile reads by their content (AIFF-C, Broadcast WAV, Opus in Ogg); .raw holds no
    # header, so it cannot be read without its format given.
    suffixes |= {".aif", ".aifc", ".wave", ".bwf", ".oga", ".opus", ".mp3"}
    return tuple(sorted(suffixes - {".raw"}))


AUDIO_SUFFIXES = _audio_suffixes()


@dataclasses.dataclass
class FolderScan:
    """What a folder of loops holds.

    audio: audio files by suffix, sorted by relative path. other: how many other files per
    suffix (READMEs and hidden files not counted). unreadable: (subfolder, reason) for every
    folder that could not be listed.
    """

    folder: Path
    audio: list[Path]
    other: dict[str, int]
    unreadable: list[tuple[Path, str]]

    @property
    def empty(self) -> bool:
        """Nothing of the user's: no file but READMEs and hidden ones, nothing unreadable."""
        return not (self.audio or self.other or self.unreadable)

    def summary(self) -> str:
        """``3 .m4a files, 1 unreadable subfolder (a: Permission denied)``."""
        parts = [f"{n} {suffix or 'suffix-less'} file{'s' if n > 1 else ''}"
                 for suffix, n in sorted(self.other.items(), key=lambda kv: -kv[1])]
        if self.unreadable:
            first, reason = self.unreadable[0]
            parts.append(f"{len(self.unreadable)} unreadable subfolder"
                         f"{'s' if len(self.unreadable) > 1 else ''} ({first}: {reason})")
        return ", ".join(parts) or "nothing"


def _ignored(name: str) -> bool:
    # Hidden files include the ``._name.wav`` resource forks macOS leaves in zip files.
    return name.startswith(".") or name.upper().startswith("README")


def scan_folder(folder: str | os.PathLike) -> FolderScan:
    """Walk ``folder`` recursively; raise ``LoopError`` if ``folder`` itself cannot be listed.

    A file counts as audio by its suffix (what soundfile reads: .wav, .aiff, .flac, .ogg, ...).
    Linked subfolders are followed (a pack linked into the folder is the user's loops), each
    real folder once.
    """
    folder = Path(folder)
    unreadable: list[tuple[Path, str]] = []
    audio_files: list[Path] = []
    other: dict[str, int] = {}

    def failed(error: OSError) -> None:
        unreadable.append((Path(error.filename or folder), error.strerror or str(error)))

    seen: set[str] = set()  # real paths walked: a link back up the tree is not walked twice
    for root, dirs, names in os.walk(folder, onerror=failed, followlinks=True):
        real = os.path.realpath(root)
        if real in seen:
            dirs[:] = []
            continue
        seen.add(real)
        dirs[:] = [d for d in dirs if not d.startswith(".")]
        for name in names:
            if _ignored(name):
                continue
            path = Path(root) / name
            suffix = path.suffix.lower()
            if suffix in AUDIO_SUFFIXES:
                audio_files.append(path)
            else:
                other[suffix] = other.get(suffix, 0) + 1
    if unreadable and unreadable[0][0] == folder:
        raise LoopError(f"{folder}: cannot be read ({unreadable[0][1]}); expected a folder of "
                        f"drum loops")
    unreadable = [(p.relative_to(folder) if p.is_relative_to(folder) else p, why)
                  for p, why in unreadable]
    audio_files.sort(key=lambda p: p.relative_to(folder).as_posix())
    return FolderScan(folder=folder, audio=audio_files, other=other, unreadable=unreadable)


def find_audio_files(folder: str | os.PathLike) -> list[Path]:
    """Audio files under ``folder`` (recursively), sorted by relative path.

    Hidden files are ignored. Subfolders that cannot be read are reported with a
    ``LoopWarning`` (their loops are missing from the list), never dropped silently.
    """
    # Kept by hand (scan_folder): librosa.util.find_files misses "B.Wav" and .aiff, walks into
    # hidden folders and cannot report a subfolder it fails to read.
    scan = scan_folder(folder)
    for path, reason in scan.unreadable:
        warnings.warn(LoopWarning(f"{Path(folder) / path}: subfolder cannot be read ({reason}); "
                                  f"its loops are left out"), stacklevel=2)
    return scan.audio
