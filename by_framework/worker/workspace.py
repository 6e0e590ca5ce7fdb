"""Per-task workspace directories, created on first use and removed when the task ends."""

import hashlib
import re
import shutil
from pathlib import Path

_UNSAFE = re.compile(r"[^A-Za-z0-9_.-]")


def _path_segment(identifier: str) -> str:
    """A directory name for any id: readable when safe, otherwise sanitised plus a short hash."""
    if identifier and not _UNSAFE.search(identifier) and identifier not in {".", ".."}:
        return identifier[:100]
    digest = hashlib.sha256(identifier.encode()).hexdigest()[:12]
    return f"{_UNSAFE.sub('_', identifier)[:60]}-{digest}"


class Workspace:
    """``<root>/<session>/<message>``: isolated per task, shared by nothing else."""

    def __init__(self, root: str | Path, session_id: str, message_id: str) -> None:
        self._ids = (root, session_id, message_id)  # paths are built only if the task asks
        self._dir: Path | None = None

    @property
    def path(self) -> Path:
        if self._dir is None:
            root, session_id, message_id = self._ids
            self._dir = Path(root) / _path_segment(session_id) / _path_segment(message_id)
            self._dir.mkdir(parents=True, exist_ok=True)
        return self._dir

    def cleanup(self) -> None:
        if self._dir is None:
            return
        shutil.rmtree(self._dir, ignore_errors=True)
        try:
            self._dir.parent.rmdir()  # only if no other task of the session still uses it
        except OSError:
            pass
        self._dir = None
