"""run_worker raises the garbage collector's youngest threshold while it serves, then puts it
back."""

import gc
from collections.abc import Iterator

import pytest

from by_framework import GatewayClient, Settings
from by_framework.worker.run import YOUNGEST_COLLECTION_THRESHOLD, fewer_collections
from tests.support import final_result, wait_online, worker_process
from tests.test_worker_processes import stop


@pytest.fixture
def thresholds() -> Iterator[None]:
    """This process's thresholds, put back after the test whatever it did."""
    before = gc.get_threshold()
    yield
    gc.set_threshold(*before)


@pytest.mark.usefixtures("thresholds")
def test_the_threshold_is_raised_for_the_block_then_put_back() -> None:
    gc.set_threshold(700, 10, 10)
    with fewer_collections():
        assert gc.get_threshold() == (YOUNGEST_COLLECTION_THRESHOLD, 10, 10)
    assert gc.get_threshold() == (700, 10, 10)


@pytest.mark.usefixtures("thresholds")
def test_a_threshold_put_back_even_when_the_block_raises() -> None:
    gc.set_threshold(700, 10, 10)
    with pytest.raises(RuntimeError), fewer_collections():
        raise RuntimeError("the worker failed")
    assert gc.get_threshold() == (700, 10, 10)


@pytest.mark.usefixtures("thresholds")
@pytest.mark.parametrize("youngest", [0, 2 * YOUNGEST_COLLECTION_THRESHOLD])
def test_collection_off_or_a_higher_threshold_is_left_as_it_is(youngest: int) -> None:
    gc.set_threshold(youngest, 10, 10)
    with fewer_collections():
        assert gc.get_threshold() == (youngest, 10, 10)
    assert gc.get_threshold() == (youngest, 10, 10)


@pytest.mark.usefixtures("thresholds")
def test_a_threshold_changed_during_the_block_is_kept() -> None:
    gc.set_threshold(700, 10, 10)
    with fewer_collections():
        gc.set_threshold(5_000, 20, 20)  # the worker's own code tuned it
    assert gc.get_threshold() == (5_000, 20, 20)


async def test_a_worker_process_serves_with_the_raised_threshold(
    client: GatewayClient, settings: Settings
) -> None:
    worker = worker_process(settings, "gc-w", "tests.agents.CollectorAgent")
    try:
        await wait_online(client, "gc-w")
        sent = await client.send_message("collector", "s-gc", "thresholds?")
        result = await final_result(client, sent.message_id)
        youngest, *_ = result.data["thresholds"]
        assert youngest == YOUNGEST_COLLECTION_THRESHOLD
    finally:
        assert stop(worker) == 0
