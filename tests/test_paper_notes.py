"""The paper notes (docs/paper.md) and the code guide (docs/code.md) stay true to the tree.

- every citation ``docs/paper.md §X`` (or a range ``§X-Y``) in a tracked text file names a section
  heading of docs/paper.md;
- no tracked file refers to the brief that is not in the repository (its name in capitals, see
  ``ABSENT_BRIEF``): a reader of a clone has nothing to follow there;
- docs/paper.md keeps the skeleton the citations rely on (A1-A12, B with one subsection per figure,
  C1-C3, D1-D13);
- every repository path written in backticks in docs/code.md exists.

Reads files only (no torch import); skipped outside a git checkout (e.g. tests run from a wheel).
A missing docs/paper.md or docs/code.md fails.
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

pytestmark = pytest.mark.checkout  # needs the checkout: left out of make test-wheel

ROOT = Path(__file__).resolve().parents[1]
NOTES = "docs/paper.md"
GUIDE = "docs/code.md"
THIS = "tests/test_paper_notes.py"

CITATION = re.compile(r"docs/paper\.md §([A-D][0-9]*)(?:-([A-D][0-9]+))?")
HEADING = re.compile(r"^#{2,3} ([A-D][0-9]*)\.(?:\s|$)", re.M)
FIGURE_HEADING = re.compile(r"^### Fig (\d+)\b", re.M)
TABLE_HEADING = re.compile(r"^### Table (\d+)\b", re.M)
ABSENT_BRIEF = re.compile(r"\bPAPER\.md\b")  # case-sensitive: docs/paper.md does not match

SKELETON = (
    ["A"]
    + [f"A{i}" for i in range(1, 13)]
    + ["B", "C"]
    + [f"C{i}" for i in range(1, 4)]
    + ["D"]
    + [f"D{i}" for i in range(1, 14)]
)
FIGURES, TABLES = range(1, 33), range(1, 3)


def tracked_files() -> list[str]:
    """The repository's tracked files; skips the test where the tests do not run from a git checkout."""
    try:
        top = subprocess.run(["git", "rev-parse", "--show-toplevel"], cwd=ROOT, capture_output=True, timeout=60)
        if top.returncode != 0 or Path(top.stdout.decode().strip()).resolve() != ROOT:
            pytest.skip("not run from a git checkout of the repository")
        res = subprocess.run(["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, timeout=60, check=True)
    except (OSError, subprocess.SubprocessError):
        pytest.skip("git is not available")
    return [f for f in res.stdout.decode().split("\0") if f]


def text_of(path: str) -> str | None:
    """The file's text, or None for a binary, unreadable or (being deleted) missing file."""
    try:
        data = (ROOT / path).read_bytes()
    except OSError:
        return None
    if b"\0" in data[:8192]:
        return None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return None


def tracked_texts():
    for path in tracked_files():
        text = text_of(path)
        if text is not None:
            yield path, text


def section_ids(text: str) -> set[str]:
    return set(HEADING.findall(text))


def citations(text: str):
    """(line number, cited id) for each end of each citation."""
    for n, line in enumerate(text.splitlines(), 1):
        for m in CITATION.finditer(line):
            yield n, m.group(1)
            if m.group(2):
                yield n, m.group(2)


def dangling(files, sections: set[str]) -> list[str]:
    return [
        f"{path}:{n}: docs/paper.md §{sid}"
        for path, text in files
        if path != NOTES
        for n, sid in citations(text)
        if sid not in sections
    ]


@pytest.fixture(scope="module")
def notes() -> str:
    tracked_files()
    return (ROOT / NOTES).read_text(encoding="utf-8")


def test_every_cited_section_exists(notes):
    files = list(tracked_texts())
    sections = section_ids(notes)
    assert sum(1 for path, text in files if path != NOTES for _ in citations(text)) > 0, "no citation found"
    bad = dangling(files, sections)
    assert not bad, "citations of sections that docs/paper.md does not have:\n  " + "\n  ".join(bad)


def test_the_check_catches_a_removed_section(notes):
    """The check itself: drop a cited heading and the citation dangles, with its file and line."""
    files = [("src/example.py", "x = 1\n# see docs/paper.md §A8 and docs/paper.md §A1-A2\n")]
    assert dangling(files, section_ids(notes)) == []
    broken = re.sub(r"^### A2\..*$", "", notes, flags=re.M)
    assert dangling(files, section_ids(broken)) == ["src/example.py:2: docs/paper.md §A2"]


def test_the_notes_keep_their_skeleton(notes):
    sections = section_ids(notes)
    assert not [s for s in SKELETON if s not in sections], f"missing sections: {sorted(set(SKELETON) - sections)}"
    figures = {int(n) for n in FIGURE_HEADING.findall(notes)}
    tables = {int(n) for n in TABLE_HEADING.findall(notes)}
    assert set(FIGURES) <= figures, f"figures without a subsection of §B: {sorted(set(FIGURES) - figures)}"
    assert set(TABLES) <= tables, f"tables without a subsection of §B: {sorted(set(TABLES) - tables)}"
    headings = re.findall(r"^#{2,3} .*$", notes, flags=re.M)
    assert len(headings) == len(set(headings)), "duplicate headings in docs/paper.md"


def test_nothing_cites_the_absent_brief():
    files = tracked_files()
    if "PAPER" + ".md" in files:
        pytest.skip("the brief is tracked: citing it is allowed")
    bad = [
        f"{path}:{n}"
        for path, text in tracked_texts()
        if path != THIS
        for n, line in enumerate(text.splitlines(), 1)
        if ABSENT_BRIEF.search(line)
    ]
    assert not bad, "references to a file that is not in the repository (cite docs/paper.md §...):\n  " + "\n  ".join(
        bad
    )


BACKTICKS = re.compile(r"`([^`\n]+)`")
PATH_LIKE = re.compile(r"^[\w.-]+(/[\w.-]+)*/?$")
FILE_SUFFIXES = (".py", ".smk", ".yaml", ".yml", ".md", ".ipynb", ".rst", ".toml", ".txt", ".json", ".cfg")
OUTPUT_ROOTS = ("results/", "figures/")  # build outputs, not in a checkout


def repo_paths(text: str) -> list[str]:
    """Spans in backticks that name a file or folder of the repository (not outputs, commands or keys)."""
    out = []
    for span in BACKTICKS.findall(text):
        span = span.split("::")[0]
        if not PATH_LIKE.match(span) or span.startswith(OUTPUT_ROOTS):
            continue
        if "/" in span or span.endswith(FILE_SUFFIXES) or span == "Snakefile":
            out.append(span)
    return out


def test_repo_paths_in_the_code_guide_exist():
    tracked_files()
    paths = repo_paths((ROOT / GUIDE).read_text(encoding="utf-8"))
    assert len(paths) >= 10, f"expected the guide to name the repository's files, found {paths}"
    missing = sorted({p for p in paths if not (ROOT / p).exists()})
    assert not missing, f"{GUIDE} names paths that do not exist: {missing}"


def test_the_guide_path_filter():
    text = "`src/grokking/layout.py` `grids.wd` `python -m grokking x` `results/<preset>/a.npz` `Snakefile` `a.py::f`"
    assert repo_paths(text) == ["src/grokking/layout.py", "Snakefile", "a.py"]
