"""docs/state-machine.md shows the state machine that `trips.model.TRANSITIONS` defines."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from trips import diagram
from trips.model import TERMINAL, TRANSITIONS, Action, TripState

EDGE = re.compile(r"^\s+(\w+) --> (\w+): (\w+)$")


def test_the_documented_diagram_is_the_one_generated_from_the_table() -> None:
    text = diagram.DOC.read_text()
    found = diagram.embedded(text)
    assert found is not None, f"{diagram.DOC} lost its generated block"
    assert found == diagram.block(), (
        "docs/state-machine.md drifted from trips.model.TRANSITIONS: "
        "run `python -m trips.diagram --write`"
    )


def test_the_generated_diagram_draws_every_transition_and_nothing_else() -> None:
    edges = {
        (TripState(m[1]), Action(m[3])): TripState(m[2])
        for line in diagram.mermaid().splitlines()
        if (m := EDGE.match(line))
    }
    assert edges == TRANSITIONS
    ends = {line.split()[0] for line in diagram.mermaid().splitlines() if line.endswith("[*]")}
    assert ends == {state.value for state in TERMINAL}


def test_rewriting_a_drifted_document_restores_the_block_and_keeps_the_prose(
    tmp_path: Path,
) -> None:
    doc = tmp_path / "state-machine.md"
    stale = diagram.block().replace("offered --> accepted: accept", "offered --> arrived: accept")
    doc.write_text(f"# Title\n\nbefore\n\n{stale}\n\nafter\n")
    assert diagram.embedded(doc.read_text()) != diagram.block()
    diagram.write(doc)
    assert doc.read_text() == f"# Title\n\nbefore\n\n{diagram.block()}\n\nafter\n"


def test_a_document_without_the_generated_block_is_refused(tmp_path: Path) -> None:
    doc = tmp_path / "state-machine.md"
    doc.write_text("# no diagram here\n")
    assert diagram.embedded(doc.read_text()) is None
    with pytest.raises(SystemExit, match="no generated block"):
        diagram.write(doc)
