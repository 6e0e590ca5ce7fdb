"""The HTTP gateway fan-out bench (``bench/gateway_fanout.py``) measures what it says: a short
run with real gateway, worker and follower processes on the real Redis prints its figures with
every event delivered, and refuses figures when the followers did not get every event."""

import sys

import pytest

from bench import gateway_fanout
from bench.sse_followers import START, count_events

FRAME = b'id: 1-%d\nevent: chunk\ndata: {"message_id": "m", "seq": %d}\n\n'
STREAM = b"".join(FRAME % (n, n) for n in range(3)) + b": keep-alive\n\n" + FRAME % (9, 9)


@pytest.mark.parametrize("size", [1, 2, 3, 5, 7, len(STREAM)])
def test_the_followers_count_each_event_once_however_the_bytes_are_split(size: int) -> None:
    total, tail = 0, START
    for offset in range(0, len(STREAM), size):
        events, tail = count_events(tail, STREAM[offset : offset + size])
        total += events
    assert total == 4  # the keep-alive comment is not an event


def short_run(monkeypatch: pytest.MonkeyPatch) -> None:
    """A run of a few seconds: 100 followers, 1 worker, windows of 1 s, few probes."""
    monkeypatch.setattr(gateway_fanout, "WARMUP_PROBES", 2)
    monkeypatch.setattr(gateway_fanout, "IDLE_PROBES", 5)
    monkeypatch.setattr(gateway_fanout, "SETTLE_S", 0.3)
    monkeypatch.setattr(gateway_fanout, "DELIVERY_TIMEOUT_S", 2.0)
    argv = ["gateway_fanout.py", "--followers", "100", "--workers", "1", "--seconds", "1"]
    monkeypatch.setattr(sys, "argv", [*argv, "--interval", "0.2"])
    gateway_fanout.main()


def test_a_short_run_delivers_every_event_and_prints_its_figures(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    short_run(monkeypatch)
    out = capsys.readouterr().out
    print(out)
    completeness = next(line for line in out.splitlines() if line.startswith("completeness"))
    received, expected = completeness.split(" received ")[1].split(" events")[0].split(" of the ")
    assert received == expected and int(expected.replace(",", "")) > 0
    assert "100 SSE followers over 50 sessions in 2 client processes" in out
    assert "µs per delivered event" in out and "KiB per follower" in out
    assert [line.split()[0] for line in out.splitlines() if line.startswith(("idle", "under"))] == [
        "idle",
        "under",
    ]
    assert "goal: added p50 under load <= +2 ms:" in out


def test_the_bench_refuses_figures_when_an_event_is_missing(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    counted = gateway_fanout._expected_events

    async def one_more(*args: object) -> int:
        return await counted(*args) + 1  # type: ignore[arg-type]

    monkeypatch.setattr(gateway_fanout, "_expected_events", one_more)
    with pytest.raises(SystemExit) as exit_:
        short_run(monkeypatch)
    assert "1 missing; the figures would not be worth keeping" in str(exit_.value.code)
