"""Each recipe's README, pasted: its shell commands run as written (``bash -c``, in a copy of the
recipe, from where the README says), pointed at the test's Redis and key prefix, and what they
print checked against what the README says they print.

What a reader does besides pasting is done here once for all: the packages are installed (a
README's ``pip install`` line is that step, not run again here), and where the README says to use
a second terminal, its first block runs in the background while the next one runs. Everything a
block starts (``&``) runs in the block's own process group, stopped at the end.
"""

import asyncio
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlparse

import pytest

from by_framework import GatewayClient, Settings
from tests.conftest import CORE_ONLY
from tests.support import ROOT, eventually, process_env, wait_online

COOKBOOK = ROOT / "cookbook"
BLOCK = re.compile(r"```(\w*)\n(.*?)```", re.S)
SHOWN = re.compile(r"^#   (.*)$", re.M)  # output a README shows as a comment under its command

LOG_LINE = re.compile(r"(?<!^)(?<!\n)(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} [A-Z]+ )")
"""A log line's start where another line of the terminal has not ended."""
CUT_IN = re.compile(r"(?<!^)(?<!\n)(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} [A-Z]+ [^\n]*\n)")
"""A whole log line written in the middle of another line of the terminal."""


@dataclass(frozen=True)
class Recipe:
    name: str
    blocks: tuple[int, ...] = (0,)
    """The README's bash blocks to run, in order: all but the last in other terminals."""
    stdin: str = ""
    """What the reader types."""
    extension: bool = False
    """Its workers need a package the core-only run does not install."""
    varying: tuple[str, ...] = ()
    """Patterns of shown lines whose content differs on each run (an id): not compared."""
    also: tuple[str, ...] = ()
    """Lines it prints that the README names in prose rather than shows in a block."""
    on_6379: bool = False
    """It talks to localhost:6379 whatever the environment says (the spec's quick start)."""
    login: str = ""
    """The reader's login name, as the README shows it in what the commands print."""
    database: str = ""
    """The PostgreSQL URL the README's commands use: this test's schema is used instead."""
    online_first: tuple[str, ...] = ()
    """Workers the reader sees start before typing the last block (its output names them all)."""


RECIPES = [
    Recipe("01_quickstart", also=("Hello from your agent!",), on_6379=True),
    Recipe("04_scatter_gather"),
    Recipe("05_human_approval", stdin="yes\n", login="alice"),
    Recipe("06_cancel_tree"),
    Recipe("08_hot_reload_plugin"),
    Recipe(
        "09_scale_out",
        blocks=(0, 1),
        varying=(r"^photo-\d+\.jpg -> ", r"^resizer-1: ", "^{"),
        online_first=("resizer-1", "resizer-2", "resizer-3"),
    ),
    Recipe("10_scheduled_report"),
    Recipe("11_double_texting_chat"),
    Recipe("adk_cross_agent", extension=True),
    # Its second block is the same run on a PostgreSQL checkpointer at the reader's own database.
    Recipe("langgraph_worker", stdin="yes\n", extension=True, varying=(r"^session trip-",)),
    Recipe(
        "postgres_history",
        extension=True,
        database="postgresql://postgres@localhost:5432/postgres?schema=notebook_demo",
    ),
]
NOT_RUN = {
    "tracing": "its collector listens on a fixed port (tests/tracing/test_cookbook.py runs it)",
    "web_chat": "a page for a browser, on fixed ports (tests/gateway/test_browser.py runs it)",
}


def test_every_recipe_is_pasted_or_says_why_not() -> None:
    recipes = {path.parent.name for path in COOKBOOK.glob("*/README.md")}
    assert recipes == {recipe.name for recipe in RECIPES} | set(NOT_RUN)


def bash_blocks(readme: str) -> list[str]:
    return [body for lang, body in BLOCK.findall(readme) if lang in {"bash", "sh"}]


def shown_output(readme: str, recipe: Recipe) -> list[str]:
    """The lines the README shows its commands print: its ``text`` blocks and the ``#   ``
    comments under a command, less those that vary from run to run and "..."."""
    shown = [line for lang, body in BLOCK.findall(readme) if lang == "text"
             for line in body.splitlines()]  # fmt: skip
    for index in recipe.blocks:
        shown += SHOWN.findall(bash_blocks(readme)[index])
    return [
        line.strip()
        for line in [*shown, *recipe.also]
        if line.strip()
        and line.strip() != "..."
        and not any(re.match(pattern, line) for pattern in recipe.varying)
    ]


def echoed(printed: str, shown: list[str], answer: str) -> str:
    """The output as a terminal shows it: what the reader typed after each prompt that the
    README shows answered (a pipe echoes nothing, so the next output follows the prompt)."""
    for line in shown:
        if answer and line.endswith(f" {answer}"):
            prompt = line.removesuffix(answer)
            printed = printed.replace(prompt, f"{prompt}{answer}\n", 1)
    return printed


def pasted(block: str, recipe: Recipe, database: str) -> str:
    """The block as the reader pastes it, less the install step the test environment did, with
    this test's database for the reader's."""
    lines = [line for line in block.splitlines() if not line.startswith("pip install")]
    script = "\n".join(lines)
    return script.replace(recipe.database, database) if recipe.database else script


class Terminal:
    """A ``bash -c`` of a block in a process group of its own; its output goes to a file."""

    def __init__(self, script: str, cwd: Path, env: dict[str, str], stdin: str) -> None:
        self.log = tempfile.TemporaryFile("w+")
        self.process = subprocess.Popen(
            ["bash", "-c", script], cwd=cwd, env=env, stdin=subprocess.PIPE, stdout=self.log,
            stderr=subprocess.STDOUT, text=True, start_new_session=True,
        )  # fmt: skip
        assert self.process.stdin is not None
        self.process.stdin.write(stdin)
        self.process.stdin.close()

    def output(self) -> str:
        self.log.seek(0)
        return self.log.read()

    def stop(self) -> bool:
        """Stop every process the block left running (its ``&`` workers, a ``tail``): SIGTERM,
        then SIGKILL to what is left after ten seconds. Whether SIGTERM was enough."""
        for sig, grace in ((signal.SIGTERM, 10.0), (signal.SIGKILL, 5.0)):
            if not self._signal(sig):
                return True
            deadline = time.monotonic() + grace
            while time.monotonic() < deadline:
                self.process.poll()  # reap the shell: a zombie still counts in its group
                if not self._signal(0):
                    return sig == signal.SIGTERM
                time.sleep(0.1)
        return False

    def _signal(self, sig: int) -> bool:
        """Send ``sig`` to the block's process group; False if no process is left in it."""
        try:
            os.killpg(self.process.pid, sig)
        except ProcessLookupError:
            return False
        return True


@pytest.mark.parametrize("recipe", RECIPES, ids=lambda recipe: recipe.name)
async def test_the_readme_commands_run_as_pasted(
    recipe: Recipe, settings: Settings, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    if recipe.extension and CORE_ONLY:
        pytest.skip("its workers need an extension package, not installed in the core-only run")
    redis = urlparse(str(settings.redis_url))
    if recipe.on_6379 and (redis.hostname not in {"127.0.0.1", "localhost"} or redis.port != 6379):
        pytest.skip("it talks to localhost:6379; the tests use another Redis")
    readme = (COOKBOOK / recipe.name / "README.md").read_text()
    database = _database(recipe, request)
    blocks = [pasted(bash_blocks(readme)[index], recipe, database) for index in recipe.blocks]
    shutil.copytree(COOKBOOK / recipe.name, tmp_path / "cookbook" / recipe.name)
    # On PATH: the python of this run, as in the reader's activated environment.
    env = process_env(
        settings, PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"
    )
    if recipe.login:
        env.update(LOGNAME=recipe.login, USER=recipe.login)

    def where(block: str) -> Path:  # from the clone's root if it says so, else the recipe's
        from_root = block.startswith(f"cd cookbook/{recipe.name}")
        return tmp_path if from_root else tmp_path / "cookbook" / recipe.name

    terminals = [Terminal(block, where(block), env, "") for block in blocks[:-1]]
    if recipe.online_first:
        client = GatewayClient.connect(settings)
        try:
            for worker_id in recipe.online_first:
                await wait_online(client, worker_id, timeout=30)
        except BaseException:
            for terminal in terminals:
                await asyncio.to_thread(terminal.stop)
            raise
        finally:
            await client.aclose()
    last = Terminal(blocks[-1], where(blocks[-1]), env, recipe.stdin)

    async def tail_saw_all() -> bool:
        return terminals[0].output().count('"type": "end"') >= 12

    try:
        code = await asyncio.to_thread(last.process.wait, 60)
        if recipe.name == "09_scale_out":  # the tail, in the other terminal, sees all twelve
            await eventually(tail_saw_all, timeout=30, what="the tail to show the twelve ends")
    finally:
        stopped = [await asyncio.to_thread(terminal.stop) for terminal in [last, *terminals]]
    printed = "".join(terminal.output() for terminal in [*terminals, last])
    assert code == 0, printed
    assert all(stopped), f"what the commands started did not stop on SIGTERM:\n{printed}"
    shown = shown_output(readme, recipe)
    printed = echoed(printed, shown, recipe.stdin.strip())
    # A worker in the background logs to the same terminal: its line can land in the middle of
    # a line the client has not ended yet (it prints a reply as it streams). Each log line
    # starts with its timestamp: one cut in is moved after the rest, the client's line joined.
    printed = CUT_IN.sub("", printed) + "".join(CUT_IN.findall(printed))
    printed = LOG_LINE.sub(r"\n\1", printed)
    missing = Counter(shown) - Counter(line.strip() for line in printed.splitlines())
    assert not missing, f"shown, not printed: {list(missing)}\n--- printed:\n{printed}"
    if recipe.name == "09_scale_out":
        spread = re.findall(r"^photo-\d\d\.jpg -> resizer-[123] \(completed\)$", printed, re.M)
        assert len(spread) == 12, printed
        counts = re.search(r"^resizer-1: (\d+), resizer-2: (\d+), resizer-3: (\d+)$", printed, re.M)
        assert counts is not None and sum(map(int, counts.groups())) == 12, printed


def _database(recipe: Recipe, request: pytest.FixtureRequest) -> str:
    """For a recipe on PostgreSQL, a schema of this test's own in the test database."""
    if not recipe.database:
        return ""
    url = request.getfixturevalue("postgres_url")
    return f"{url}?schema={request.getfixturevalue('history_schema')}"
