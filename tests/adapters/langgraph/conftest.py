"""PostgreSQL for the LangGraph adapter's tests: a schema of each test's own (the checkpointer's
tables, created by the workers' ``setup()``), dropped afterwards."""

import os
import uuid
from collections.abc import Iterator

import pytest

PG_URL = os.environ.get("BYF_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test")


@pytest.fixture
def checkpointer_url() -> Iterator[str]:
    """A ``postgresql://`` URL whose connections use a schema of this test's own."""
    import psycopg  # the adapter's "postgres" extra, which `make install` installs

    schema = f"byf_lg_{uuid.uuid4().hex[:12]}"
    try:
        with psycopg.connect(PG_URL, autocommit=True, connect_timeout=5) as connection:
            connection.execute(f'CREATE SCHEMA "{schema}"')
    except psycopg.OperationalError as exc:
        pytest.fail(f"no PostgreSQL at {PG_URL} (set BYF_TEST_POSTGRES_URL): {exc}")
    separator = "&" if "?" in PG_URL else "?"
    yield f"{PG_URL}{separator}options=-csearch_path%3D{schema}"
    with psycopg.connect(PG_URL, autocommit=True) as connection:
        connection.execute("SET lock_timeout = '20s'")  # a failure, never a hang
        connection.execute(f'DROP SCHEMA "{schema}" CASCADE')
