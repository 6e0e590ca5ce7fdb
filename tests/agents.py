"""Agents the tests run, in-process and in worker processes."""

import asyncio
import gc
import os
import time
from typing import Any

from by_framework import (
    AgentContext,
    ArtifactEvent,
    AskUserEvent,
    ByFrameworkError,
    GatewayWorker,
    MessageHeader,
    ResumeCommand,
)


class EchoAgent(GatewayWorker):
    """Streams its input back; content {"sleep": s} makes it take s seconds first."""

    def get_agent_types(self) -> list[str]:
        return ["echo"]

    async def process_command(self, command: Any, context: AgentContext) -> dict[str, Any]:
        content = command.content
        if isinstance(content, dict) and "sleep" in content:
            await asyncio.sleep(content["sleep"])
        await context.emit_chunk(f"echo: {content}")
        return {"status": "completed", "content": content, "data": {"pid": os.getpid()}}


class CollectorAgent(GatewayWorker):
    """Answers with the garbage collector's thresholds in the process that runs it."""

    def get_agent_types(self) -> list[str]:
        return ["collector"]

    async def process_command(self, command: Any, context: AgentContext) -> dict[str, Any]:
        return {"status": "completed", "data": {"thresholds": list(gc.get_threshold())}}


class ShowcaseAgent(GatewayWorker):
    """Uses every part of the context: chunks, reasoning, states, artifacts, workspace."""

    def get_agent_types(self) -> list[str]:
        return ["showcase", "showcase-b"]

    async def process_command(self, command: Any, context: AgentContext) -> dict[str, Any]:
        if isinstance(command.content, dict) and "sleep" in command.content:
            await asyncio.sleep(command.content["sleep"])
            return {"status": "completed", "content": command.content}
        if command.content == "fail":
            raise RuntimeError("asked to fail")
        if command.content == "unserializable":
            return {"status": "completed", "content": object()}
        await context.emit_state("analyzing", detail="step 1")
        await context.emit_chunk("thinking about it", kind="reasoning")
        notes = context.workspace / "notes.txt"
        notes.write_text("scratch")
        for part in ("a", "b", "c"):
            await context.emit_chunk(part)
        await context.emit_artifact(ArtifactEvent(url="https://example.com/out.json"))
        return {
            "status": "COMPLETED",
            "content": {"agent": context.current_agent_id, "workspace": str(context.workspace)},
        }


class StreamerAgent(GatewayWorker):
    """Streams ``chunks`` numbered chunks, asks an echo agent, then streams as many again."""

    def get_agent_types(self) -> list[str]:
        return ["streamer"]

    async def process_command(self, command: Any, context: AgentContext) -> dict[str, Any]:
        count = command.content["chunks"]
        for i in range(count):
            await context.emit_chunk(str(i))
        reply = await context.call_agent("echo", "middle")
        for i in range(count, 2 * count):
            await context.emit_chunk(str(i))
        return {"status": "completed", "content": reply.content}  # type: ignore[union-attr]


class StuckStartAgent(EchoAgent):
    """Its ``on_startup`` never ends (a database that never answers)."""

    async def on_startup(self) -> None:
        await asyncio.Event().wait()


class SlowStartAgent(EchoAgent):
    """Its ``on_startup`` takes 3 s with its event loop blocked (a model loaded by synchronous
    code), then 3 s more waiting (a database that answers late)."""

    async def on_startup(self) -> None:
        time.sleep(3)  # noqa: ASYNC251 (the blocked loop is the point)
        await asyncio.sleep(3)


class CrashAgent(GatewayWorker):
    """Kills its own process on "crash" (a poison command); echoes anything else."""

    def get_agent_types(self) -> list[str]:
        return ["echo"]

    async def process_command(self, command: Any, context: AgentContext) -> dict[str, Any]:
        if command.content == "crash":
            await context.emit_chunk("about to crash")
            os._exit(17)
        return {"status": "completed", "content": command.content}


class OrchestraAgent(GatewayWorker):
    """Agents that call agents, for the orchestration tests. Content is a dict with an "op":

    - "call": call_agent(target, content, timeout) and return the reply's content and status,
      or the error's type and message;
    - "misuse": bad calls; returns each error's type and message;
    - "chain": call the first agent type of "via" with the rest of the chain;
    - "fanout": dispatch "n" children over the "targets" agent types, collect, return them all;
    - "ask": ask the user; the resume's content comes back with the pid that got it;
    - "sleep": sleep "seconds" (checking context.cancelled), "tree" below it first: a list of
      sub-calls sent without waiting;
    - "upper": upper-case "text".
    """

    def get_agent_types(self) -> list[str]:
        return ["planner", "helper", "asker"]

    async def process_command(self, command: Any, context: AgentContext) -> Any:
        if isinstance(command, ResumeCommand):
            answer = {"answer": command.content, "pid": os.getpid(), "trace": context.trace_id}
            return {"content": answer}
        content = command.content
        op = content.get("op") if isinstance(content, dict) else None
        if op == "call":
            try:
                reply = await context.call_agent(
                    content["target"], content.get("content"), timeout=content.get("timeout")
                )
            except ByFrameworkError as exc:
                return {"content": {"error": type(exc).__name__, "message": str(exc)}}
            return {"content": {"reply": reply.content, "status": reply.status.value}}
        if op == "misuse":
            problems = {}
            for name, attempt in (
                ("content", lambda: context.call_agent("helper", object())),
                ("blank", lambda: context.call_agent(" ", "x")),
                ("group", lambda: context.dispatch_group([{"content": 1}])),
                ("empty", lambda: context.dispatch_group([])),
                ("unknown group", lambda: context.collect_group_results("nope")),
            ):
                try:
                    await attempt()
                except ByFrameworkError as exc:
                    problems[name] = f"{type(exc).__name__}: {exc}"
            return {"content": problems}
        if op == "chain":
            if not content["via"]:
                return {"content": {"at": context.current_agent_id}}
            first, *rest = content["via"]
            reply = await context.call_agent(first, {"op": "chain", "via": rest})
            return {"content": {"at": context.current_agent_id, "inner": reply.content}}
        if op == "fanout":
            targets = content["targets"]
            calls = [
                {
                    "target_agent_type": targets[i % len(targets)],
                    "content": _child(targets[i % len(targets)], i, content),
                }
                for i in range(content["n"])
            ]
            group = await context.dispatch_group(calls)
            results = await context.collect_group_results(group["task_group_id"])
            return {"content": {"ids": group["message_ids"], "results": results}}
        if op == "ask":
            return await context.ask_user(AskUserEvent(prompt=content.get("prompt", "ok?")))
        if op == "sleep":
            for sub in content.get("tree", []):
                await context.call_agent(sub["target"], sub["content"], wait_for_reply=False)
            for _ in range(int(content["seconds"] * 10)):
                if context.cancelled:
                    await context.emit_chunk("cleaning up")
                    return {"status": "cancelled"}
                await asyncio.sleep(0.1)
            return {"content": "slept"}
        if op == "upper":
            return {"content": content["text"].upper()}
        raise ValueError(f"unknown op in {content!r}")


def _child(target: str, index: int, content: dict[str, Any]) -> Any:
    if target == "echo":
        return {"sleep": content.get("child_sleep", 0), "i": index}
    return {"op": "upper", "text": f"child {index}"}


class TurnAgent(GatewayWorker):
    """Runs in its session's turn, as its message's multitask strategy says; content
    {"sleep": s} holds the turn s seconds. Answers with when it ran and what it stopped."""

    def get_agent_types(self) -> list[str]:
        return ["turns"]

    async def process_command(self, command: Any, context: AgentContext) -> dict[str, Any]:
        strategy = getattr(command, "multitask_strategy", "enqueue")
        async with context.session_turn(strategy) as turn:
            began = time.time()
            await context.emit_state("in turn")
            await asyncio.sleep(command.content.get("sleep", 0))
            content = {"began": began, "ended": time.time(), "superseded": turn.superseded}
            return {"status": "completed", "content": content}

    async def answer_query(self, name: str, args: dict[str, Any], header: MessageHeader) -> Any:
        """ "when": the time it is answered (a writing one waits for the session's turn first);
        "sleep": answers after args["seconds"]; "set": answers with what is not JSON."""
        if name == "sleep":
            await asyncio.sleep(args["seconds"])
        if name == "set":
            return {1, 2}
        if name not in ("when", "sleep"):
            raise ValueError(f"no such question: {name}")
        return {"at": time.time(), "session": header.session_id, "user": header.user_code}
