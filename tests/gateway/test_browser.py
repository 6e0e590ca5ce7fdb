"""A real browser on the cookbook's web chat (cookbook/web_chat): headless Chromium loads the page
from a static file server, chats with the recipe's agent through a real gateway process and a
real worker process, is reloaded in the middle of an answer, and answers an ``ask_user``.

Debian's ``chromium``, driven by Playwright's Python package (never ``playwright install``: CI
installs the Debian package, see .ci/run)."""

import asyncio
import contextlib
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from playwright.async_api import ConsoleMessage, Page, async_playwright

from by_framework import AgentState, GatewayClient, Settings
from tests.support import ROOT, free_port, output_of, process_env, spawn, wait_online

CHROMIUM = Path("/usr/bin/chromium")
RECIPE = ROOT / "cookbook" / "web_chat"
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]  # fmt: skip

pytestmark = pytest.mark.skipif(
    not CHROMIUM.exists(),
    reason="needs Debian's chromium at /usr/bin/chromium (apt-get install chromium)",
)


@contextlib.contextmanager
def running(*commands: list[str], env: dict[str, str]) -> Iterator[list[subprocess.Popen[str]]]:
    """Processes started in the recipe's folder, as its README starts them; stopped at the end."""
    processes = [spawn(command, RECIPE, env) for command in commands]
    try:
        yield processes
    finally:
        for process in processes:
            process.terminate()
        for process in processes:
            process.wait(20)


async def gateway_serving(url: str, gateway: subprocess.Popen[str], timeout: float = 20) -> None:
    """Until the gateway answers and sees the chat agent online."""
    async with httpx.AsyncClient(base_url=url) as http, asyncio.timeout(timeout):
        while True:
            assert gateway.poll() is None, f"the gateway exited:\n{output_of(gateway)[-3000:]}"
            with contextlib.suppress(httpx.TransportError):
                agents = (await http.get("/v1/agents")).json().get("agents", [])
                if any(agent["agent_type"] == "chat" for agent in agents):
                    return
            await asyncio.sleep(0.1)


@contextlib.asynccontextmanager
async def browser_page() -> AsyncIterator[tuple[Page, list[str]]]:
    """A page of a fresh headless Chromium, and the errors its scripts raise or log."""
    errors: list[str] = []

    def logged(message: ConsoleMessage) -> None:
        if message.type == "error":
            errors.append(f"console: {message.text}")

    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(
            executable_path=str(CHROMIUM), args=CHROMIUM_ARGS
        )
        try:
            page = await browser.new_page()
            page.on("pageerror", lambda error: errors.append(f"page error: {error}"))
            page.on("console", logged)
            yield page, errors
        finally:
            await browser.close()


async def entries(page: Page) -> list[tuple[str, str]]:
    """What the chat shows: (role, text) of each entry, in order."""
    shown = await page.eval_on_selector_all(
        "#log .entry", "els => els.map(e => [e.classList[1], e.textContent])"
    )
    return [(role, text) for role, text in shown]


async def say(page: Page, text: str) -> None:
    await page.fill("#message", text)
    await page.press("#message", "Enter")


async def test_web_chat_streams_survives_a_reload_and_answers_a_question(
    client: GatewayClient, settings: Settings
) -> None:
    static_port, gateway_port = free_port(), free_port()
    origin, gateway_url = f"http://127.0.0.1:{static_port}", f"http://127.0.0.1:{gateway_port}"
    env = process_env(settings)
    worker = [sys.executable, "-m", "by_framework", "--worker-class", "chat_agent.ChatAgent",
              "--worker-id", "chat-1"]  # fmt: skip
    gateway = [sys.executable, "-m", "by_framework", "gateway", "--host", "127.0.0.1",
               "--port", str(gateway_port), "--insecure", "--cors-origins", origin]  # fmt: skip
    static = [sys.executable, "-m", "http.server", "--bind", "127.0.0.1", str(static_port)]
    with running(worker, gateway, static, env=env) as (_, gateway_process, _):
        await wait_online(client, "chat-1")
        await gateway_serving(gateway_url, gateway_process)
        async with browser_page() as (page, errors):
            followed: list[str] = []
            page.on("request", lambda r: followed.append(r.url) if "/events" in r.url else None)
            await page.goto(f"{origin}/index.html?gateway={gateway_url}")
            session = await page.text_content("#session")

            # A long answer, streamed a word at a time; the page is reloaded after its 3rd word.
            words = [f"w{i:02}" for i in range(1, 25)]
            await say(page, " ".join(words))
            await page.wait_for_function(
                "() => document.querySelector('#log .agent')?.textContent.includes('w03')"
            )
            before_reload = len(followed)
            await page.reload()
            assert await page.text_content("#session") == session
            await page.wait_for_selector("#log .agent.done", timeout=20_000)
            expected = "You said: " + " ".join(words)
            assert await entries(page) == [("user", " ".join(words)), ("agent", expected)], errors
            assert await page.get_attribute("#log .agent", "data-status") == "completed"
            # After the reload the page followed on from the last event it had shown, not from
            # the session's start: every chunk above came exactly once.
            resumed_after = parse_qs(urlsplit(followed[before_reload]).query)["after"]
            assert resumed_after != ["0-0"], followed

            # A question, still there after a reload, answered through the page.
            await say(page, "/ask What is your name?")
            await page.wait_for_selector("#log .ask form")
            await page.reload()
            await page.fill("#log .ask input", "Ada")
            await page.click("#log .ask button")
            await page.wait_for_selector("#log .agent.done >> nth=1", timeout=20_000)
            assert (await entries(page))[2:] == [
                ("user", "/ask What is your name?"),
                ("ask", "What is your name?"),  # its form gone once answered
                ("user", "Ada"),
                ("agent", "You answered: Ada"),
            ], errors
            assert errors == []
            asked = await page.get_attribute("#log .ask", "data-message-id")

    assert asked is not None
    record = await client.get_task(asked)
    assert record is not None and record.status is AgentState.COMPLETED
    assert record.result is not None and record.result.content == "You answered: Ada"
