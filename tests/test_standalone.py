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
GENERATED = {"benchmarks/results/latest.json", "benchmarks/results/profiles"}
TEXT_SUFFIXES = {".py", ".md", ".toml", ".json", ".jsonl", ".txt", ".cfg", ".ini", ".spec", ".ts", ".rs", ""}


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
# A path into the repository, in prose, backticks or comments; a placeholder (<dir>, {a,b}, *) ends the check early.
PATH = re.compile(r"(?<![\w/.<{*-])((?:bridge|tests|docs|fixtures|schemas|benchmarks|packaging|examples)/[\w./-]*)")
# Where every named path must exist: the pages, the shipped code and its comments, the dev scripts.
PATH_SCOPES = ("README.md", "docs", "fixtures", "bridge", "benchmarks", "packaging", "Makefile", "pyproject.toml")
PAGES = ("README.md", "docs/*.md", "fixtures/*/README.md")


def _named_paths(text: str) -> list[str]:
    out = []
    for match in PATH.finditer(text):
        if text[match.end() : match.end() + 1] in ("<", "{", "*"):
            continue
        out.append(match.group(1).rstrip(".-"))
    return out


def test_every_page_a_document_links_exists() -> None:
    missing = []
    for page in sorted({p for pattern in PAGES for p in REPO.glob(pattern)}):
        for target in LINK.findall(page.read_text()):
            if "://" not in target and not (page.parent / target).exists():
                missing.append(f"{page.relative_to(REPO)} links {target}")
    assert missing == []


def test_every_file_or_folder_the_docs_and_the_code_name_exists() -> None:
    missing = []
    for path in tracked(*PATH_SCOPES):
        for target in _named_paths(path.read_text(errors="replace")):
            if target.rstrip("/") in GENERATED or any(target.startswith(g + "/") for g in GENERATED):
                continue
            if not (REPO / target).exists() and not (path.parent / target).exists():
                missing.append(f"{path.relative_to(REPO)} names {target}")
    assert missing == []


def test_the_path_check_sees_a_stale_name_and_skips_placeholders() -> None:
    text = "see `bridge/otel/export.py`, bridge/receiver/ and tests/<dir> or fixtures/codex-0.169.0/{chat,shell}/."
    assert _named_paths(text) == ["bridge/otel/export.py", "bridge/receiver/"]
    assert not (REPO / "bridge/otel/export.py").exists()


# "docs/protocol.md §3.7", "(`docs/peers.md` §2, §3)", "docs/protocol.md §3.2 to §3.4";
# a bare "§4.3" on a page is its own.
_PAGE = re.compile(r"([\w-]+\.md)`?\)?[ ,]*$")
_SECTION = re.compile(r"§\s?(\d+(?:\.\d+)*)")


def section_numbers(page: Path) -> set[str]:
    return set(re.findall(r"^#{1,6} (?:§\s?)?(\d+(?:\.\d+)*)[.) ]", page.read_text(), re.M))


def cited_sections(path: Path, text: str) -> list[tuple[str, str, int]]:
    """``(page, section, line)`` of every § in ``text``: the page named just before it, else the page itself."""
    out = []
    for match in _SECTION.finditer(text):
        before = text[max(0, match.start() - 120) : match.start()]
        # Walk back over a list of sections ("§3.2 to §3.4", "§3.7, §4") to the page that names them.
        before = re.sub(r"(?:§\s?\d+(?:\.\d+)*\)?[ ,]*(?:to|and|or)?[ ,]*)+$", "", before.rstrip())
        named = _PAGE.search(before.replace("\n", " "))
        page = named.group(1) if named else (path.name if path.suffix == ".md" else "?")
        out.append((page, match.group(1), text.count("\n", 0, match.start()) + 1))
    return out


def test_every_cited_section_exists() -> None:
    """Code and pages cite a page's numbered sections ("docs/protocol.md §3.7"): each must be there."""
    bad = []
    for path in tracked(*DOC_SCOPES, "examples"):
        if path.suffix not in (".py", ".md", ".ts", ".rs") or path == Path(__file__).resolve():
            continue
        for page, section, line in cited_sections(path, path.read_text(errors="replace")):
            where = f"{path.relative_to(REPO)}:{line}"
            target = next((p for p in (REPO / "docs" / page, path.parent / page) if p.is_file()), None)
            if target is None:
                bad.append(f"{where} cites §{section} of {page}, which is not a page of the repository")
            elif section not in section_numbers(target):
                bad.append(f"{where} cites §{section} of {target.relative_to(REPO)}, which has no such section")
    assert bad == []


def test_the_section_check_reads_lists_and_pages() -> None:
    text = "x (docs/protocol.md §3.2 to §3.4) and (`docs/peers.md` §2, §3); §4.3 alone"
    found = [(page, section) for page, section, _ in cited_sections(REPO / "docs" / "runbook.md", text)]
    assert found == [("protocol.md", "3.2"), ("protocol.md", "3.4"), ("peers.md", "2"), ("peers.md", "3"),
                     ("runbook.md", "4.3")]  # fmt: skip
    assert cited_sections(REPO / "bridge" / "x.py", "see §9")[0][0] == "?"


def test_protocol_sections_are_numbered_and_unique() -> None:
    """Code and pages cite docs/protocol.md by section number: the numbers must exist and not repeat."""
    headings = re.findall(r"^#{2,4} (\d+(?:\.\d+)*)\. ", (REPO / "docs" / "protocol.md").read_text(), re.M)
    headings += re.findall(r"^#{3,4} (\d+\.\d+(?:\.\d+)*) ", (REPO / "docs" / "protocol.md").read_text(), re.M)
    assert len(headings) == len(set(headings))
    for cited in ("1", "2", "3.1", "3.2", "3.3", "3.4", "3.5", "3.6", "3.7", "3.8", "4.1", "4.2", "4.3", "4.4",
                  "4.5", "5", "6", "7", "8", "9"):  # fmt: skip
        assert cited in headings, f"docs/protocol.md has no section {cited}"
