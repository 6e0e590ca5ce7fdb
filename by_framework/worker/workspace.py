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
        self._session_dir = Path(root) / _path_segment(session_id)
        self._dir = self._session_dir / _path_segment(message_id)
        self._created = False

    @property
    def path(self) -> Path:
        if not self._created:
            self._dir.mkdir(parents=True, exist_ok=True)
            self._created = True
        return self._dir

    def cleanup(self) -> None:
        if not self._created:
            return
        shutil.rmtree(self._dir, ignore_errors=True)
        try:
            self._session_dir.rmdir()  # only if no other task of the session still uses it
        except OSError:
            pass
        self._created = False
