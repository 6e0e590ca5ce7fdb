"""The dashboard in a real browser: headless Chromium (Debian's, driven by Playwright, set up as
tests/gateway/test_browser.py does) on a real dashboard process, with real worker processes.
Each test takes a screenshot of the page it drives; with BYF_SCREENSHOTS=1 it is saved into
docs/images/ (the pictures of docs/dashboard.md): a plain test run leaves the tree as it was."""

import asyncio
import os

import httpx
import pytest
from playwright.async_api import Page

from by_framework import AgentState, GatewayClient
from tests.dashboard.conftest import ADMIN, API_KEYS, VIEWER
from tests.gateway.test_browser import CHROMIUM, browser_page
from tests.support import ROOT, output_of, wait_all

IMAGES = ROOT / "docs" / "images"
VIEWPORT = {"width": 1200, "height": 800}
SHOWN_WITHIN_MS = 2_000  # the bound: a worker that just started is on the page by then

pytestmark = pytest.mark.skipif(
    not CHROMIUM.exists(),
    reason="needs Debian's chromium at /usr/bin/chromium (apt-get install chromium)",
)


EXPECTED = ("status of 401 (Unauthorized)", "status of 404 (Not Found)")


def unexpected(errors: list[str]) -> list[str]:
    """The page's errors, less the browser's notes of the answers a page expects: 401 before
    it asks for a token, 404 for a session that has no task yet (it says so)."""
    return [error for error in errors if not error.endswith(EXPECTED)]


async def screenshot(page: Page, name: str) -> None:
    image = await page.screenshot()
    assert image.startswith(b"\x89PNG")
    if os.environ.get("BYF_SCREENSHOTS") == "1":
        (IMAGES / f"dashboard-{name}.png").write_bytes(image)


async def sign_in(page: Page, token: str) -> None:
    await page.wait_for_selector("#sign-in[open]")
    await page.fill("#token", token)
    await page.click("#sign-in-button")


async def test_the_fleet_page_shows_a_worker_as_it_starts_and_drains_it(
    client: GatewayClient, start_dashboard, start_worker
) -> None:
    dashboard = await start_dashboard()
    await start_worker(client, "fleet-1", "tests.agents.EchoAgent")
    async with browser_page() as (page, errors):
        await page.set_viewport_size(VIEWPORT)
        await page.goto(f"{dashboard.url}/")
        await page.wait_for_selector('#workers tr[data-key="fleet-1"]')

        await start_worker(client, "fleet-2", "tests.agents.EchoAgent")  # online in Redis now
        await page.wait_for_selector('#workers tr[data-key="fleet-2"]', timeout=SHOWN_WITHIN_MS)

        sends = [await client.send_message("echo", f"s{i}", {"sleep": i / 20}) for i in range(8)]
        await wait_all(client, sends)
        await page.wait_for_function(  # counted by the workers, published with a heartbeat
            "() => document.querySelector('#summary').textContent.includes('completed 8')"
        )
        row = await page.text_content('#workers tr[data-key="fleet-2"]')
        assert row is not None and "running" in row and "echo" in row
        assert await page.text_content('#agent-types tr[data-key="echo"] td:nth-child(2)') == "2"
        assert await page.locator("#chart rect.bar").count() >= 15
        await screenshot(page, "fleet")

        # An admin (anyone, without auth) drains a worker from the page, and resumes it.
        await page.click('#workers tr[data-key="fleet-1"] button.drain')
        await page.wait_for_selector("#banner >> text=worker fleet-1 is draining")
        await page.wait_for_selector('#workers tr[data-key="fleet-1"] .s-draining')
        await page.click('#workers tr[data-key="fleet-1"] button.resume')
        await page.wait_for_selector('#workers tr[data-key="fleet-1"] .s-running')
        assert unexpected(errors) == []


async def test_a_session_page_streams_its_events_and_answers_a_question(
    client: GatewayClient, start_dashboard, start_worker
) -> None:
    dashboard = await start_dashboard()
    await start_worker(client, "guide-1", "tests.dashboard.agents.GuideAgent")
    async with browser_page() as (page, errors):
        await page.set_viewport_size(VIEWPORT)
        await page.goto(f"{dashboard.url}/sessions/trip-1")
        await page.wait_for_selector("#live.on")
        await page.wait_for_selector("#tree >> text=No task recorded")

        sent = await client.send_message("guide", "trip-1", {"steps": 5, "delay": 0.1})
        await page.wait_for_selector("#timeline .e-chunk >> text=step 0")
        await page.wait_for_selector("#timeline .e-ask_user form")
        # The steps streamed onto the open page while the task went on: it now waits for us.
        record = await client.get_task(sent.message_id)
        assert record is not None and record.status is AgentState.WAITING_USER
        texts = await page.locator("#timeline .e-chunk .body").all_text_contents()
        assert texts == ["the way is clear", "step 0 step 1 step 2 step 3 step 4"]
        assert await page.text_content("#timeline .e-part .body") == 'custom {"steps":5}'
        parent = f'#tree li[data-message-id="{sent.message_id}"]'
        await page.wait_for_selector(f"{parent} > .s-waiting_user")
        (child,) = record.children
        assert await page.is_visible(f'{parent} li[data-message-id="{child}"] > .s-completed')

        await page.fill("#timeline .e-ask_user input", "Ada")
        await page.click("#timeline .e-ask_user button")
        await page.wait_for_selector("#timeline .e-chunk >> text=Hello, Ada!")
        await page.wait_for_selector(f"{parent} > .s-completed")
        assert await page.text_content("#timeline .e-ask_user .body") == (
            "What is your name?answered: Ada"
        )
        await screenshot(page, "session")

        # The task found by its id: its record, its session, its tree.
        await page.goto(f"{dashboard.url}/tasks")
        await page.fill("#task-id", sent.message_id)
        await page.press("#task-id", "Enter")
        await page.wait_for_selector("#task dl.record")
        assert await page.text_content("#task-session") == "trip-1"
        assert await page.locator("#task-tree li").count() == 2
        await screenshot(page, "tasks")
        await page.click("#task-session")
        await page.wait_for_selector("#timeline .e-chunk >> text=Hello, Ada!")
        assert unexpected(errors) == []
    result = (await client.get_task(sent.message_id)).result  # type: ignore[union-attr]
    assert result is not None and result.content == "Hello, Ada!"


async def test_only_an_admin_replays_a_dead_letter_and_it_runs_again(
    client: GatewayClient, start_dashboard, start_worker
) -> None:
    dashboard = await start_dashboard(**API_KEYS)
    # A poison command: the worker that takes it dies, the next one gives up on it.
    one_delivery = ("--max-deliveries", "1")
    crash = await start_worker(client, "crash-1", "tests.agents.CrashAgent", *one_delivery)
    poison = await client.send_message("echo", "poisoned", "crash")
    assert await asyncio.to_thread(crash.wait, 20) == 17, output_of(crash)
    await start_worker(client, "echo-1", "tests.agents.EchoAgent", *one_delivery)
    dead_letters = client.engine.dead_letters
    async with asyncio.timeout(15):
        while not (letters := await dead_letters.list()):
            await asyncio.sleep(0.1)
    (letter,) = letters

    async with browser_page() as (page, errors):
        await page.set_viewport_size(VIEWPORT)
        await page.goto(f"{dashboard.url}/dead-letters")
        await sign_in(page, "key-viewer")
        replay = f'#dead-letters tr[data-key="{letter.id}"] button.replay'
        await page.wait_for_selector(replay)
        assert await page.text_content("#viewer .role") == "read-only"
        assert await page.is_disabled(replay)
        async with httpx.AsyncClient(base_url=dashboard.url) as http:
            refused = await http.post(f"/api/dead-letters/{letter.id}/replay", headers=VIEWER)
            assert refused.status_code == 403, refused.text
            assert "may look, not act" in refused.json()["detail"]
        assert await dead_letters.get(letter.id) == letter

        await page.click("#sign-out")
        await sign_in(page, "key-ops")
        await page.wait_for_selector(f"{replay}:not([disabled])")
        row = await page.text_content(f'#dead-letters tr[data-key="{letter.id}"]')
        assert row is not None and "gave up after 1 deliveries" in row and "crash" in row
        await screenshot(page, "dead-letters")
        await page.click(replay)
        await page.wait_for_selector("#banner >> text=Replayed")
        await page.wait_for_selector("#no-dead-letters:not([hidden])")
        assert unexpected(errors) == []

    # Back on its queue, where a worker ran it.
    result = await client.wait_for_result(poison.message_id, timeout=15)
    assert result.status is AgentState.COMPLETED and result.content == "crash"
    assert await dead_letters.list() == []
    async with httpx.AsyncClient(base_url=dashboard.url) as http:
        answer = await http.post(f"/api/dead-letters/{letter.id}/replay", headers=ADMIN)
        assert answer.status_code == 404
