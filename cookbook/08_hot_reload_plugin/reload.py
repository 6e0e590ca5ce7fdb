"""Ask every online worker to reload its plugins; print each worker's answer.

python reload.py "friendlier greeting"
"""

import asyncio
import sys

from by_framework import GatewayClient, Settings


async def main(reason: str) -> int:
    client = GatewayClient.connect(Settings.resolve())  # REDIS_URL, BYAI_KEY_PREFIX
    try:
        report = await client.reload_plugins(reason=reason, timeout=10)
    finally:
        await client.aclose()
    for worker_id, ack in sorted(report.answers.items()):
        change = f"config v{ack.version_before} -> v{ack.version_after}"
        print(f"{worker_id}: {ack.status}, {change}" + (f": {ack.error}" if ack.error else ""))
    for worker_id in report.missing:
        print(f"{worker_id}: no answer")
    return 0 if report.ok else 1


if __name__ == "__main__":
    sys.exit(asyncio.run(main(" ".join(sys.argv[1:]) or "reload")))
