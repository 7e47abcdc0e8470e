"""The drill's live timeline: one row per step, coloured on a terminal, plain otherwise."""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass, field
from typing import TextIO

_COLOURS = {"ok": "\x1b[32m", "fail": "\x1b[31m", "info": "\x1b[36m", "warn": "\x1b[33m"}
_RESET = "\x1b[0m"
_MODE_COLOURS = {"HYBRID_ACTIVE": "\x1b[32m", "OTEL_ONLY": "\x1b[36m", "DEGRADED_STREAMING": "\x1b[33m",
                 "FAILURE": "\x1b[31m"}  # fmt: skip


@dataclass
class Row:
    step: str
    command: str
    mode: str
    verdict: str  # ok | fail | info | warn
    detail: str


@dataclass
class Timeline:
    out: TextIO = field(default_factory=lambda: sys.stdout)
    colour: bool | None = None
    rows: list[Row] = field(default_factory=list)
    started: float = field(default_factory=time.monotonic)

    def __post_init__(self) -> None:
        if self.colour is None:
            self.colour = self.out.isatty()

    def _paint(self, text: str, colour: str | None) -> str:
        return f"{colour}{text}{_RESET}" if self.colour and colour else text

    def header(self, text: str) -> None:
        self.out.write("\n" + self._paint(text, "\x1b[1m") + "\n")
        self.out.flush()

    def note(self, text: str) -> None:
        self.out.write(f"  {text}\n")
        self.out.flush()

    def add(self, step: str, command: str, mode: str | None, verdict: str, detail: str = "") -> Row:
        row = Row(step, command, mode or "-", verdict, detail)
        self.rows.append(row)
        elapsed = time.monotonic() - self.started
        mark = {"ok": "OK  ", "fail": "FAIL", "info": "..  ", "warn": "WARN"}[verdict]
        line = (
            f"{elapsed:6.1f}s  {self._paint(mark, _COLOURS[verdict])}  {step:<36} {command:<41} "
            f"{self._paint(f'{row.mode:<18}', _MODE_COLOURS.get(row.mode))} {detail}"
        )
        self.out.write(line.rstrip() + "\n")
        self.out.flush()
        return row

    @property
    def failures(self) -> list[Row]:
        return [r for r in self.rows if r.verdict == "fail"]
