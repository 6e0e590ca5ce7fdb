"""The fault soak (``bench/fault_soak.py``) catches what it is there to catch: a short run on its
own redis-server and real worker processes, with a forged second result of a completed task and a
task that never existed among those it sent, must fail loudly and name both."""

import sys
from collections.abc import Awaitable, Callable, Sequence

import pytest

from bench import fault_soak
from by_framework import GatewayClient

FinalBatch = Callable[[GatewayClient, fault_soak.Soak, Sequence[str]], Awaitable[bool]]


def forging_final_batch(original: FinalBatch) -> FinalBatch:
    """The soak's final batch, then a completed task's result written again and a task id that
    was never sent added to those the soak sent."""

    async def final_batch(
        client: GatewayClient, soak: fault_soak.Soak, sessions: Sequence[str]
    ) -> bool:
        done = await original(client, soak, sessions)
        redis = client._engine.redis
        stream = soak.keys.session_data_stream(sessions[0])
        for _, fields in await redis.xrange(stream):
            if b'"type":"result"' in fields[b"e"] and b'"status":"completed"' in fields[b"e"]:
                await redis.xadd(stream, fields)  # the same result written a second time
                break
        soak.roots["never-sent"] = fault_soak.Root("plain", sessions[0], final=False)
        return done

    return final_batch


def test_the_soak_fails_loudly_on_a_lost_and_a_twice_completed_task(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(fault_soak, "_final_batch", forging_final_batch(fault_soak._final_batch))
    monkeypatch.setattr(sys, "argv", ["fault_soak.py", "--minutes", "0.05"])
    with pytest.raises(SystemExit) as exit_:
        fault_soak.main()
    out, err = capsys.readouterr()
    print(out)
    assert exit_.value.code == 1
    assert "| final batch after the faults (10 of each kind) | 40 | 40 |" in out
    assert "never-sent (plain): no record" in err
    assert "!!! FAULT SOAK FAILED: plain: 1 lost (not ended)" in err
    assert "1 completed twice" in err
