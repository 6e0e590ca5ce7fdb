"""One client process of ``bench/gateway_fanout.py``: many SSE followers of a gateway.

Each follower is one streaming GET of ``/v1/sessions/{id}/events`` (httpx, asyncio) that counts
the events it receives and throws them away: counting the ``id:`` lines of the raw bytes, no
decoding or JSON parsing, so that the client's own cost stays small beside the gateway's.

Protocol with the bench (files, so the process can run detached from it):
- once every follower has its response headers (status 200) or has failed, the file ``--ready``
  is written: the number of followers that failed;
- on SIGUSR1 a line ``<events received> <followers failed>`` is appended to ``--counts``;
- SIGTERM ends the process.

A follower whose request fails or whose stream ends counts as failed; the bench refuses figures
with a failed follower.

Run by the bench:  python bench/sse_followers.py --base URL --ready PATH --counts PATH S1 S2 ...
(a session id once per follower on it), the API key in env BENCH_GATEWAY_TOKEN.
"""

import argparse
import asyncio
import os
import signal
import sys
from pathlib import Path

import httpx

EVENT_MARK = b"\nid:"  # every event the gateway sends has an id line; heartbeats do not
START = b"\n"  # the tail before a stream's first read: its first line is a line start too


def count_events(tail: bytes, data: bytes) -> tuple[int, bytes]:
    """Events that begin in ``data``, read after ``tail`` (what the last call returned, START
    at first), and the tail to pass with the next read: a mark split across two reads counts
    once."""
    joined = tail + data
    return joined.count(EVENT_MARK), joined[-(len(EVENT_MARK) - 1) :]


class Tally:
    """What every follower of the process received, shared (one event loop, no locks)."""

    def __init__(self, followers: int) -> None:
        self.events = 0
        self.failed = 0
        self.waiting = followers  # followers neither connected nor failed yet
        self.settled = asyncio.Event()

    def settle(self) -> None:
        self.waiting -= 1
        if self.waiting == 0:
            self.settled.set()


async def follow(client: httpx.AsyncClient, url: str, tally: Tally) -> None:
    connected = False
    try:
        async with client.stream("GET", url) as response:
            if response.status_code != 200:
                await response.aread()
                raise RuntimeError(f"GET {url}: {response.status_code} {response.text[:200]}")
            connected = True
            tally.settle()
            tail = START
            async for data in response.aiter_raw():
                events, tail = count_events(tail, data)
                tally.events += events
        raise RuntimeError(f"GET {url}: the stream ended")
    except asyncio.CancelledError:
        raise
    except Exception as exc:  # any failure: reported and counted
        tally.failed += 1
        if not connected:
            tally.settle()
        print(f"follower failed: {exc!r}", file=sys.stderr, flush=True)


async def run(base: str, sessions: list[str], ready: Path, counts: Path) -> None:
    tally = Tally(len(sessions))
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()

    def snapshot() -> None:
        with counts.open("a") as out:
            out.write(f"{tally.events} {tally.failed}\n")

    loop.add_signal_handler(signal.SIGUSR1, snapshot)
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    limits = httpx.Limits(max_connections=None, max_keepalive_connections=0)
    timeout = httpx.Timeout(10.0, read=None)
    headers = {"Authorization": f"Bearer {os.environ['BENCH_GATEWAY_TOKEN']}"}
    async with httpx.AsyncClient(
        base_url=base, headers=headers, limits=limits, timeout=timeout
    ) as client:
        followers = [
            asyncio.create_task(follow(client, f"/v1/sessions/{session}/events", tally))
            for session in sessions
        ]
        await tally.settled.wait()
        _write(ready, str(tally.failed))
        await stop.wait()
        for task in followers:
            task.cancel()
        await asyncio.gather(*followers, return_exceptions=True)


def _write(path: Path, text: str) -> None:
    path.write_text(text)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--base", required=True, help="the gateway's base URL")
    parser.add_argument("--ready", type=Path, required=True)
    parser.add_argument("--counts", type=Path, required=True)
    parser.add_argument("sessions", nargs="+", help="a session id per follower")
    args = parser.parse_args()
    asyncio.run(run(args.base, args.sessions, args.ready, args.counts))


if __name__ == "__main__":
    main()
