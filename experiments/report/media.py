"""The report's own copies of the runs' audio and figures: ``media/<run>/<file>``.

Every file the page shows is hard-linked (a copy where the file system refuses a link:
another device, no link support) into the report folder, atomically, so the report
folder alone is complete: it can be copied, mailed or served without the runs. A run
folder's files are written atomically by new files (never rewritten in place), so a
link keeps showing what the run wrote when the report was built.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import uuid
from pathlib import Path

from mnmf.data.io import atomic_write

MEDIA = "media"


class Media:
    """Places the runs' files under ``out/media`` and remembers what it placed.

    Parameters
    ----------
    out : Path
        The report folder.
    """

    def __init__(self, out: Path) -> None:
        self.folder = out / MEDIA
        self._placed: dict[Path, Path] = {}

    def place(self, file: Path, *, run: str) -> Path:
        """The report's copy of ``file`` of run folder ``run`` (placed on first use)."""
        source = file.resolve()
        if source not in self._placed:
            target = self.folder / run_slug(run) / file.name
            _link_or_copy(source, target)
            self._placed[source] = target
        return self._placed[source]

    def prune(self) -> None:
        """Remove files under ``media/`` that this report did not place (older reports')."""
        if not self.folder.is_dir():
            return
        kept = set(self._placed.values())
        for current, _, files in os.walk(self.folder, topdown=False):
            here = Path(current)
            for name in files:
                if here / name not in kept:
                    (here / name).unlink(missing_ok=True)
            if here != self.folder and not any(here.iterdir()):
                here.rmdir()


def run_slug(name: str) -> str:
    """A folder name for run folder ``name``: readable, unique (a short hash of the name)."""
    readable = re.sub(r"[^A-Za-z0-9_-]+", "_", name).strip("_")[:80] or "run"
    return f"{readable}-{hashlib.sha256(name.encode('utf-8')).hexdigest()[:8]}"


def _link_or_copy(source: Path, target: Path) -> None:
    """Hard-link ``source`` to ``target`` atomically; copy (atomically) if linking fails."""
    try:
        if target.exists() and os.path.samefile(source, target):
            return
    except OSError:
        pass
    target.parent.mkdir(parents=True, exist_ok=True)
    temporary = target.parent / f".{target.name}.{uuid.uuid4().hex}.tmp"
    try:
        os.link(source, temporary)
        os.replace(temporary, target)
        return
    except OSError:
        temporary.unlink(missing_ok=True)
    atomic_write(target, lambda path: shutil.copyfile(source, path))
