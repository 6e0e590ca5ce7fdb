"""Ask the trip planner; print what its graph streams; answer its question; print the answer.

python ask.py "Plan a weekend in Oslo"                # asks you on the terminal
python ask.py "Plan a weekend in Oslo" --answer yes   # answers for you
"""

import argparse
import asyncio
import uuid

from by_framework import (
    AskUserEvent,
    GatewayClient,
    Settings,
    StateChangeEvent,
    StreamChunkEvent,
)


async def follow(
    client: GatewayClient, session: str, message_id: str, after: str
) -> tuple[AskUserEvent | None, str]:
    """Print the run's events until it ends; the question it asked (if any) and where to read on."""
    question, line = None, ""
    async for item in client.events(session, after, until_message_id=message_id, timeout=60):
        after, event = item.stream_id, item.event
        if isinstance(event, StreamChunkEvent) and event.kind == "text":
            line += event.content  # LLM tokens, as they come
            print(event.content, end="", flush=True)
            continue
        if line:
            print()
            line = ""
        if isinstance(event, StreamChunkEvent):  # tool calls and results
            print(f"  [{event.kind}] {event.content}")
        elif isinstance(event, StateChangeEvent) and event.detail == "langgraph node":
            print(f"  [node] {event.state}")
        elif isinstance(event, AskUserEvent):
            question = event
    if line:
        print()
    return question, after


async def main(text: str, answer: str | None) -> None:
    client = GatewayClient.connect(Settings.resolve())  # REDIS_URL, BYAI_KEY_PREFIX
    session = f"trip-{uuid.uuid4().hex[:8]}"
    try:
        sent = await client.send_message("trip-planner", session, text, wait_for_worker=30)
        print(f"session {session}")  # python -m by_framework tail <session> shows it too
        question, after = await follow(client, session, sent.message_id, "0-0")
        while question is not None:
            asked = await client.get_task(sent.message_id)
            print(f"({asked.worker_id} asked; the task waits, no worker holds it)")
            choices = "/".join(question.options or [])
            if answer is None:
                reply = await asyncio.to_thread(input, f"{question.prompt} [{choices}] ")
            else:
                reply = answer
                print(f"{question.prompt} [{choices}] {reply}")
            await client.resume(sent.message_id, session, reply)
            question, after = await follow(client, session, sent.message_id, after)
        result = await client.wait_for_result(sent.message_id)
        record = await client.get_task(sent.message_id)
        print(f"{result.status.value} on {record.worker_id}: {result.content}")
    finally:
        await client.aclose()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("text")
    parser.add_argument("--answer", help="answer the question with this instead of asking")
    args = parser.parse_args()
    asyncio.run(main(args.text, args.answer))
