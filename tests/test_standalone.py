"""The repository stands alone: no test, benchmark or document reaches outside it, and every
document a page points at exists."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]

# Spelled in pieces so that this file does not match itself.
OUTSIDE_PATHS = ("../" + "shared", "/work" + "/shared", "shared/" + "reference", "/work" + "/wt/")
OUTSIDE_DOCS = (
    "CONTRACT" + ".md", "CONTRACT" + " §", "ARCHITECTURE" + "-SKETCH", "docs/" + "parts/", "REAL" + "-PEERS",
)  # fmt: skip
# Where the outside documents may no longer be cited: everywhere.
DOC_SCOPES = ("bridge", "schemas", "docs", "tests", "benchmarks", "fixtures", "README.md", "Makefile", "pyproject.toml")
# Files a page may name that a make target writes (gitignored, so absent from a fresh clone).
GENERATED = {"benchmarks/results/latest.json"}
TEXT_SUFFIXES = {".py", ".md", ".toml", ".json", ".jsonl", ".txt", ".cfg", ".ini", ""}


def tracked(*scopes: str) -> list[Path]:
    out = subprocess.run(
        ["git", "ls-files", "--", *scopes], cwd=REPO, capture_output=True, text=True, check=True
    ).stdout.split()
    return [REPO / p for p in out if (REPO / p).suffix in TEXT_SUFFIXES and (REPO / p).is_file()]


def test_nothing_tracked_reads_a_path_outside_the_repository() -> None:
    offenders = []
    for path in tracked("."):
        if path == Path(__file__).resolve():
            continue
        text = path.read_text(errors="replace")
        offenders += [f"{path.relative_to(REPO)}: {needle}" for needle in OUTSIDE_PATHS if needle in text]
    assert offenders == []


def test_no_document_outside_the_repository_is_cited() -> None:
    offenders = []
    for path in tracked(*DOC_SCOPES):
        if path == Path(__file__).resolve():
            continue
        text = path.read_text(errors="replace")
        offenders += [f"{path.relative_to(REPO)}: {needle}" for needle in OUTSIDE_DOCS if needle in text]
    assert offenders == []


LINK = re.compile(r"\]\(([^)#\s]+)(?:#[^)]*)?\)")
MENTION = re.compile(r"`((?:docs|fixtures|schemas|tests|benchmarks|bridge)/[A-Za-z0-9_./-]+\.(?:md|py|json|jsonl))`")


def test_every_page_and_file_a_document_points_at_exists() -> None:
    missing = []
    for page in [REPO / "README.md", *sorted((REPO / "docs").glob("*.md")), *sorted(REPO.glob("fixtures/*/README.md"))]:
        text = page.read_text()
        for target in LINK.findall(text):
            if "://" in target:
                continue
            if not (page.parent / target).exists():
                missing.append(f"{page.relative_to(REPO)} links {target}")
        for target in MENTION.findall(text):
            if target not in GENERATED and not (REPO / target).exists() and not (page.parent / target).exists():
                missing.append(f"{page.relative_to(REPO)} names {target}")
    assert missing == []


def test_protocol_sections_are_numbered_and_unique() -> None:
    """Code and pages cite docs/protocol.md by section number: the numbers must exist and not repeat."""
    headings = re.findall(r"^#{2,4} (\d+(?:\.\d+)*)\. ", (REPO / "docs" / "protocol.md").read_text(), re.M)
    headings += re.findall(r"^#{3,4} (\d+\.\d+(?:\.\d+)*) ", (REPO / "docs" / "protocol.md").read_text(), re.M)
    assert len(headings) == len(set(headings))
    for cited in ("1", "2", "3.1", "3.2", "3.3", "3.4", "3.5", "3.6", "3.7", "3.8", "4.1", "4.2", "4.3", "4.4",
                  "4.5", "5", "6", "7", "8", "9"):  # fmt: skip
        assert cited in headings, f"docs/protocol.md has no section {cited}"
