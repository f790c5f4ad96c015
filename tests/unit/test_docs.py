"""Documents that are generated from code stay equal to it; every link resolves."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from ridehail.settings import settings_table

ROOT = Path(__file__).resolve().parents[2]
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]


def test_the_configuration_page_lists_exactly_the_settings_in_code() -> None:
    text = (ROOT / "docs" / "configuration.md").read_text()
    block = text.split("<!-- settings:begin -->\n", 1)[1].split("\n<!-- settings:end -->", 1)[0]
    assert block == settings_table()


@pytest.mark.parametrize("doc", DOCS, ids=lambda p: p.name)
def test_every_relative_link_in_the_docs_points_at_a_file_that_exists(doc: Path) -> None:
    links = re.findall(r"\]\(([^)#\s]+)(?:#[^)]*)?\)", doc.read_text())
    missing = [
        link
        for link in links
        if not link.startswith(("http://", "https://", "mailto:"))
        and not (doc.parent / link).exists()
    ]
    assert missing == []
