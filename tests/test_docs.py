"""Docs that are generated from code must match it."""

from by_framework.settings import reference_table
from tests.support import ROOT


def test_configuration_reference_matches_the_settings_object() -> None:
    text = (ROOT / "docs" / "configuration.md").read_text()
    assert reference_table() in text, "regenerate with: python -m by_framework config"
