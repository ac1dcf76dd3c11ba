"""The generated blocks of the decision records (docs/decisions/NNN-*.md): each study table is rendered from
its result, never typed.

A block is delimited by two HTML comments that Markdown does not show::

    <!-- study:NAME preset=PRESET begin sha256=HEX -->
    ...the rendered table of results/PRESET/studies/NAME.json...
    <!-- study:NAME end -->

HEX is the SHA-256 of the block's content, so a block edited by hand is detected without any result at hand
(:func:`check_block`); where the result exists, the content must also equal what rendering it gives now. A
block whose study has not run says so, with the command that runs it.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass
from pathlib import Path

from ..layout import Layout
from .studytable import render_study

BLOCK = re.compile(
    r"^<!-- study:(?P<name>[a-z0-9_]+) preset=(?P<preset>[A-Za-z0-9_-]+) begin sha256=(?P<sha>[0-9a-f]*) -->\n"
    r"(?P<content>.*?)"
    r"^<!-- study:(?P=name) end -->$",
    re.M | re.S,
)


@dataclass(frozen=True)
class Block:
    name: str
    preset: str
    sha: str
    content: str
    span: tuple


def digest(content: str) -> str:
    return hashlib.sha256(content.encode()).hexdigest()


def blocks(text: str) -> list[Block]:
    """The generated blocks of a document, in order."""
    return [Block(m["name"], m["preset"], m["sha"], m["content"], m.span()) for m in BLOCK.finditer(text)]


def shown(docs_dir, preset: str) -> list[str]:
    """The studies whose blocks of ``preset`` the Markdown files of ``docs_dir`` hold, sorted."""
    names = {b.name for path in Path(docs_dir).glob("*.md") for b in blocks(path.read_text()) if b.preset == preset}
    return sorted(names)


def result_path(results_dir, preset: str, name: str) -> Path:
    return Path(Layout(f"{results_dir}/{preset}", "").study(name))


def build_command(preset: str, name: str, results_dir="results") -> str:
    overlay = "" if preset == "paper" else f" --configfile config/{preset}.yaml"
    return f"snakemake {result_path(results_dir, preset, name)}{overlay}"


def content_for(name: str, preset: str, results_dir="results") -> str:
    """What a block holds: the rendered result, or that the study has not run yet and how to run it."""
    path = result_path(results_dir, preset, name)
    if not path.exists():
        return f"*Not yet run:* `{build_command(preset, name)}`\n"
    return render_study(json.loads(path.read_text())) + f"\nRebuild: `{build_command(preset, name)} --force`\n"


def block_text(name: str, preset: str, content: str) -> str:
    """A whole block: its markers around ``content``, the begin marker carrying the content's hash."""
    return f"<!-- study:{name} preset={preset} begin sha256={digest(content)} -->\n{content}<!-- study:{name} end -->"


def check_block(block: Block) -> str | None:
    """Why a block cannot be trusted without its result (edited by hand), or None."""
    if block.sha != digest(block.content):
        return f"study:{block.name} preset={block.preset}: content does not match its sha256 (edited by hand?)"
    return None


def render_text(text: str, results_dir="results", presets=None) -> tuple[str, list[dict]]:
    """``text`` with every block (of ``presets``, default all) rendered anew, and each block's state:
    ``rendered`` (from its result), ``not run``, with ``changed`` whether its text changed."""
    out, pos, report = [], 0, []
    for b in blocks(text):
        out.append(text[pos : b.span[0]])
        pos = b.span[1]
        if presets is not None and b.preset not in presets:
            out.append(text[b.span[0] : b.span[1]])
            continue
        content = content_for(b.name, b.preset, results_dir)
        new = block_text(b.name, b.preset, content)
        out.append(new)
        state = "not run" if content.startswith("*Not yet run") else "rendered"
        report.append(
            {"study": b.name, "preset": b.preset, "state": state, "changed": new != text[b.span[0] : b.span[1]]}
        )
    out.append(text[pos:])
    return "".join(out), report


def check_text(text: str, results_dir="results", presets=None) -> list[dict]:
    """Each block's state without writing: ``edited`` (hash mismatch), ``stale`` (differs from its result
    rendered now), ``ok``, or ``not run`` (no result here, whatever the block shows)."""
    report = []
    for b in blocks(text):
        if presets is not None and b.preset not in presets:
            continue
        if check_block(b):
            state = "edited"
        elif not result_path(results_dir, b.preset, b.name).exists():
            state = "not run"  # a clone has no results: its sha256 is all that can be checked
        else:
            state = "ok" if content_for(b.name, b.preset, results_dir) == b.content else "stale"
        report.append({"study": b.name, "preset": b.preset, "state": state})
    return report


def render_docs(docs_dir: Path, results_dir: Path, presets=None, check=False) -> list[dict]:
    """Render (or with ``check`` only inspect) the blocks of every Markdown file of ``docs_dir``."""
    from ..atomic import write_bytes

    report = []
    for path in sorted(Path(docs_dir).glob("*.md")):
        text = path.read_text()
        if check:
            found = check_text(text, results_dir, presets)
        else:
            new, found = render_text(text, results_dir, presets)
            if new != text:
                write_bytes(path, new.encode())
        report += [dict(r, file=str(path)) for r in found]
    return report
