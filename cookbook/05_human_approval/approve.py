"""Ask the deployer to deploy a release; answer its question; print how it ends.

python approve.py v1.4.2                 # asks you on the terminal
python approve.py v1.4.2 --answer yes    # answers for you
"""

import argparse
import asyncio
import getpass
import uuid

from by_framework import AskUserEvent, GatewayClient, Settings, StreamChunkEvent


async def follow(
    client: GatewayClient, session: str, message_id: str, after: str
) -> tuple[AskUserEvent | None, str]:
    """Print the task's chunks until its run ends; the question it asked (if any) and the stream
    id to read on from."""
    question = None
    async for item in client.events(session, after, until_message_id=message_id, timeout=60):
        after = item.stream_id
        if isinstance(item.event, StreamChunkEvent):
            print(f"[deployer] {item.event.content}")
        elif isinstance(item.event, AskUserEvent):
            question = item.event
    return question, after


async def main(release: str, answer: str | None, approver: str) -> None:
    client = GatewayClient.connect(Settings.resolve())  # REDIS_URL, BYAI_KEY_PREFIX
    session = f"deploy-{uuid.uuid4().hex[:8]}"
    try:
        sent = await client.send_message("deployer", session, release, wait_for_worker=10)
        question, after = await follow(client, session, sent.message_id, "0-0")
        record = await client.get_task(sent.message_id)
        assert record is not None
        print(f"task {record.status.value}")  # waiting_user: no worker holds it now
        if question is None:
            return
        choices = "/".join(question.options or [])
        if answer is None:
            answer = await asyncio.to_thread(input, f"{question.prompt} [{choices}] ")
        else:
            print(f"{question.prompt} [{choices}] {answer}")
        await client.resume(sent.message_id, session, answer, {"approver": approver})
        await follow(client, session, sent.message_id, after)
        result = await client.wait_for_result(sent.message_id)
        print(f"{result.status.value}: {result.content}")
    finally:
        await client.aclose()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("release")
    parser.add_argument("--answer", help="answer the question with this instead of asking")
    parser.add_argument("--approver", default=getpass.getuser())
    args = parser.parse_args()
    asyncio.run(main(args.release, args.answer, args.approver))
