"""The shared PostgreSQL checkpointer: replicas that start together set its tables up once,
one after the other, and never wait for each other for good."""

import asyncio

from by_framework_langgraph import LangGraphWorker
from by_framework_langgraph.threads import advisory_key
from by_framework_langgraph.worker import SETUP_LOCK

from tests.adapters.langgraph import graphs


async def test_replicas_starting_together_set_the_checkpointer_up_without_a_deadlock(
    checkpointer_url: str,
) -> None:
    import psycopg

    replicas = [
        LangGraphWorker(graphs.build_chat, "lg-chat", checkpointer_url=checkpointer_url)
        for _ in range(3)
    ]
    async with await psycopg.AsyncConnection.connect(checkpointer_url, autocommit=True) as other:
        (schema,) = await (await other.execute("SELECT current_schema()")).fetchone()  # type: ignore[misc]
        key = advisory_key(f"{SETUP_LOCK}:{schema}")
        # Another replica is setting up: the three start and wait for it, then take turns.
        await other.execute("SELECT pg_advisory_lock(%s)", (key,))
        starting = [asyncio.create_task(replica.on_startup()) for replica in replicas]
        await asyncio.sleep(0.5)
        assert not any(task.done() for task in starting)
        await other.execute("SELECT pg_advisory_unlock(%s)", (key,))
        try:
            async with asyncio.timeout(30):  # CREATE INDEX CONCURRENTLY waits for no replica
                await asyncio.gather(*starting)
            config = {"configurable": {"thread_id": "t"}}
            assert [(await r.graph.aget_state(config)).values for r in replicas] == [{}] * 3
        finally:
            for task in starting:
                task.cancel()
            await asyncio.gather(*starting, return_exceptions=True)
            for replica in replicas:
                await replica.on_shutdown()
        cursor = await other.execute(
            "SELECT count(*), count(DISTINCT v) FROM checkpoint_migrations"
        )
        (rows, versions) = await cursor.fetchone()  # type: ignore[misc]
    assert rows == versions > 0  # every migration ran once
