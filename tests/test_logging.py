"""The handler workers and commands log through: the lines of one turn of the loop in one write,
in the order they were logged, wherever they come from."""

import asyncio
import io
import logging
import threading
import uuid
from collections.abc import Iterator

import pytest

from by_framework.common.logger import TurnBatchedStreamHandler


class Broken(io.StringIO):
    def write(self, text: str) -> int:
        raise OSError("stderr is gone")


class Writes(io.StringIO):
    """A stream that keeps each write apart."""

    def __init__(self) -> None:
        super().__init__()
        self.writes: list[str] = []

    def write(self, text: str) -> int:
        self.writes.append(text)
        return len(text)


Logged = tuple[logging.Logger, Writes, TurnBatchedStreamHandler]


@pytest.fixture
def logged() -> Iterator[Logged]:
    stream = Writes()
    handler = TurnBatchedStreamHandler(stream)
    handler.setFormatter(logging.Formatter("%(message)s"))
    log = logging.getLogger(f"test-{uuid.uuid4().hex}")
    log.propagate = False
    log.setLevel(logging.INFO)
    log.addHandler(handler)
    yield log, stream, handler
    log.removeHandler(handler)


async def test_the_lines_of_one_turn_go_out_in_one_write_at_its_end(logged: Logged) -> None:
    log, stream, _ = logged
    for n in range(3):
        log.info("line %d", n)
    assert stream.writes == []
    await asyncio.sleep(0)
    assert stream.writes == ["line 0\nline 1\nline 2\n"]
    log.info("next turn")
    await asyncio.sleep(0)
    assert stream.writes[1:] == ["next turn\n"]


def test_a_line_logged_outside_a_loop_is_written_at_once(logged: Logged) -> None:
    log, stream, _ = logged
    log.info("now")
    assert stream.writes == ["now\n"]


async def test_a_line_from_another_thread_comes_after_the_lines_waiting_for_the_turn(
    logged: Logged,
) -> None:
    log, stream, _ = logged
    log.info("in the loop")
    thread = threading.Thread(target=log.info, args=("in a thread",))
    thread.start()
    thread.join()  # the loop's turn has not ended: its line still waits
    assert stream.writes == ["in the loop\nin a thread\n"]
    await asyncio.sleep(0)
    assert stream.writes == ["in the loop\nin a thread\n"]


async def test_flush_writes_the_waiting_lines(logged: Logged) -> None:
    """What logging's own flush at exit relies on, when the loop stops before its turn ends."""
    log, stream, handler = logged
    log.info("waiting")
    handler.flush()
    assert stream.writes == ["waiting\n"]
    await asyncio.sleep(0)
    assert stream.writes == ["waiting\n"]


def test_lines_of_a_loop_that_stopped_mid_turn_are_written_by_the_next_line(logged: Logged) -> None:
    log, stream, _ = logged

    async def log_and_stop() -> None:
        log.info("last of the loop")
        asyncio.get_running_loop().stop()

    loop = asyncio.new_event_loop()
    try:
        task = loop.create_task(log_and_stop())
        loop.run_forever()  # stops in the turn that logged: the write was due in the next one
        assert task.done()
    finally:
        loop.close()
    log.info("after the loop")
    assert stream.writes == ["last of the loop\nafter the loop\n"]


async def test_a_stream_that_fails_loses_the_turns_lines_once_and_the_loop_goes_on(
    capsys: pytest.CaptureFixture[str],
) -> None:
    handler = TurnBatchedStreamHandler(Broken())
    log = logging.getLogger(f"test-{uuid.uuid4().hex}")
    log.propagate = False
    log.addHandler(handler)
    try:
        log.warning("lost")
        await asyncio.sleep(0)
        await asyncio.sleep(0)
    finally:
        log.removeHandler(handler)
    assert capsys.readouterr().err.count("--- Logging error ---") == 1
