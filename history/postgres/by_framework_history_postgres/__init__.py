"""PostgreSQL session history for by-framework: set ``BYF_HISTORY_URL=postgresql://...``."""

from by_framework_history_postgres.schema import MIGRATIONS, SCHEMA_VERSION
from by_framework_history_postgres.store import DEFAULT_SCHEMA, PostgresHistoryStore, from_url

__all__ = ["DEFAULT_SCHEMA", "MIGRATIONS", "SCHEMA_VERSION", "PostgresHistoryStore", "from_url"]
