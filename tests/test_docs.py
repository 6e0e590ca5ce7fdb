"""Docs that are generated from code, or show it, must match it."""

from by_framework.settings import reference_table
from tests.support import ROOT


def test_configuration_reference_matches_the_settings_object() -> None:
    text = (ROOT / "docs" / "configuration.md").read_text()
    assert reference_table() in text, "regenerate with: python -m by_framework config --reference"


def test_the_readme_quick_start_is_cookbook_01() -> None:
    """The README shows cookbook/01's two files as they are (the cookbook's test runs them)."""
    readme = (ROOT / "README.md").read_text()
    blocks = readme.split("```python\n")[1:]
    shown = {block.split("\n", 1)[0]: block.split("```", 1)[0] for block in blocks}
    for name in ("my_agent.py", "send_task.py"):
        code = (ROOT / "cookbook" / "01_quickstart" / name).read_text()
        assert shown.get(f"# {name}") == code, f"README's {name} differs from cookbook/01's"
