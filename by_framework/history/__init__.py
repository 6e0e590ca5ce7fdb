"""Session history: the ``HistoryStore`` port's backends, chosen by URL, and what a worker records.

``memory://`` (the default) is built in; ``postgresql://...`` comes with the
``by-framework-history-postgres`` package. See ``docs/history.md``.
"""

from by_framework.history.backends import ENTRY_POINT_GROUP, open_history_store
from by_framework.history.content import MAX_PAGE
from by_framework.history.memory import MemoryHistoryStore
from by_framework.history.recorder import TurnRecorder
from by_framework.history.session import SessionHistory
from by_framework.ports import HistoryMessage, HistoryPage, HistoryStore

__all__ = [
    "ENTRY_POINT_GROUP",
    "MAX_PAGE",
    "HistoryMessage",
    "HistoryPage",
    "HistoryStore",
    "MemoryHistoryStore",
    "SessionHistory",
    "TurnRecorder",
    "open_history_store",
]
