"""The receiver's -c OTEL overrides give way to otel.* settings the operator put in codex.args."""

from __future__ import annotations

import pytest

from bridge.sidecar.generation import sets_otel as _sets_otel


@pytest.mark.parametrize(
    ("args", "sets"),
    [
        ([], False),
        (["-c", "features.plugins=false"], False),
        (["-c", "otel.exporter=none"], True),
        (["-cotel.trace_exporter=none"], True),
        (["script.py", "normal"], False),
        (["-c"], False),
    ],
)
def test_sets_otel(args: list[str], sets: bool) -> None:
    assert _sets_otel(args) is sets
