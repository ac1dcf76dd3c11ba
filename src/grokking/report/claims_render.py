"""The claims report's text: a Markdown table (``claims.md``) and a self-contained HTML page
(``claims.html``, for ``snakemake --report``), one row per claim of :func:`.claims.evaluate`."""

from __future__ import annotations

from . import verdicts


def _fmt(x):
    if x is None:
        return "–"
    return f"{x:.3g}" if isinstance(x, float) else str(x)


def _cell(text) -> str:
    return str(text).replace("|", "\\|")


def _result_text(r: dict) -> str:
    """A row's verdict (PASS, FAIL with the error, UNRESOLVED), the preset's known-failure reason, the
    diverged models."""
    result = r["verdict"] + (f" ({r['error']})" if r.get("error") else "")
    if "known_failure" in r:
        result += f" (known {'failure' if not r['passed'] else 'failure, passes here'}: {r['known_failure']})"
    if r.get("diverged"):
        result += f" (diverged, in no phase: {r['diverged']})"
    return result


def _summary_line(rows: list[dict], skipped=()) -> str:
    n = verdicts.counts(rows)
    line = f"{n[verdicts.PASS]} of {len(rows)} claims pass, {n[verdicts.FAIL]} fail"
    line += f", {n[verdicts.UNRESOLVED]} unresolved (margin within the seed-to-seed noise)."
    n_known = sum(r["verdict"] != verdicts.PASS and "known_failure" in r for r in rows)
    if n_known:
        line += f" {n_known} of those that do not pass are known in this preset (the reason is in the row)."
    studied = sum(bool(r.get("seeds")) for r in rows)
    if not studied:
        line += (
            " Noise not measured: the robustness study (`snakemake robustness`, README) retrains the claims' "
            "runs and grids with other seeds and gives each claim its noise and seed count."
        )
    elif studied < len(rows):
        line += f" Noise measured for {studied} of the {len(rows)} claims (config `robustness.claims`)."
    if skipped:
        line += f" Not built in this preset: {', '.join(skipped)}."
    return line


def _seeds_text(r: dict) -> str:
    return f"{r['holds']} of {r['seeds']}" if r.get("seeds") else "–"


def _cells(r: dict) -> tuple:
    """(figure, claim, measured, value, test, margin, noise, holds for, result) of a row."""
    return (
        r["figure"],
        r["claim"],
        r["metric"],
        _fmt(r["value"]),
        f"{r['op']} {_fmt(r['threshold'])}",
        "–" if r.get("margin") is None else f"{r['margin']:+.3g}",
        _fmt(r.get("noise")),
        _seeds_text(r),
        _result_text(r),
    )


HEADERS = ("figure", "claim", "measured", "value", "test", "margin", "noise", "holds for (seeds)", "result")


def _fragile_lines(rows: list[dict]) -> list[str]:
    return [f"- `{r['id']}` ({r['figure']}): {r['fragile']}." for r in rows if r.get("fragile")]


def to_markdown(rows: list[dict], preset: str = "", note: str = "") -> str:
    """The claims report in Markdown; ``note`` (a rehearsal's) above everything else."""
    lines = [
        f"# Claims report{f' ({preset} preset)' if preset else ''}",
        "",
        *([f"**{note}**", ""] if note else []),
        _summary_line(rows),
        "",
        "| " + " | ".join(HEADERS) + " |",
        "|" + "---|" * len(HEADERS),
    ]
    for r in rows:
        cells = list(_cells(r))
        if r["verdict"] != verdicts.PASS:
            cells[-1] = f"**{r['verdict']}**" + cells[-1][len(r["verdict"]) :]
        lines.append("| " + " | ".join(_cell(c) for c in cells) + " |")
    fragile = _fragile_lines(rows)
    if fragile:
        lines += ["", "## Fragile claims", "", *fragile]
    return "\n".join(lines) + "\n"


HTML_STYLE = """
body { font-family: system-ui, sans-serif; font-size: 14px; margin: 1em; color: #222; }
table { border-collapse: collapse; width: 100%; }
th, td { border: 1px solid #ccc; padding: 4px 6px; text-align: left; vertical-align: top; }
th { background: #f0f0f0; }
td.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
code { font-size: 12px; }
tr.pass td.result { color: #176317; font-weight: bold; }
tr.fail td.result { color: #a31515; font-weight: bold; }
tr.known td.result, tr.unresolved td.result { color: #8a5a00; }
"""


def to_html(rows: list[dict], preset: str = "", skipped=(), note: str = "") -> str:
    """The claims report as one self-contained page (inline style, no external file) for
    ``snakemake --report``: one table row per claim, with its id."""
    from html import escape

    title = f"Claims report ({preset} preset)" if preset else "Claims report"
    out = [
        "<!DOCTYPE html>",
        '<html lang="en">',
        f'<head><meta charset="utf-8"><title>{escape(title)}</title><style>{HTML_STYLE}</style></head>',
        "<body>",
        f"<h1>{escape(title)}</h1>",
        *([f'<p class="note"><strong>{escape(note)}</strong></p>'] if note else []),
        f"<p>{escape(_summary_line(rows, skipped))}</p>",
        '<table id="claims">',
        "<thead><tr>" + "".join(f"<th>{h}</th>" for h in ("id", *HEADERS)) + "</tr></thead>",
        "<tbody>",
    ]
    for r in rows:
        css = {verdicts.PASS: "pass", verdicts.UNRESOLVED: "unresolved"}.get(r["verdict"], "fail")
        css = "known" if css != "pass" and "known_failure" in r else css
        kinds = ("", "", "", *[' class="num"'] * 5, ' class="result"')
        cells = [f"<td><code>{escape(r['id'])}</code></td>"]
        cells += [f"<td{k}>{escape(str(c))}</td>" for k, c in zip(kinds, _cells(r), strict=True)]
        out.append(f'<tr class="{css}" id="claim-{escape(r["id"])}">' + "".join(cells) + "</tr>")
    out += ["</tbody>", "</table>"]
    fragile = [r for r in rows if r.get("fragile")]
    if fragile:
        out += ['<h2 id="fragile">Fragile claims</h2>', "<ul>"]
        out += [
            f"<li><code>{escape(r['id'])}</code> ({escape(r['figure'])}): {escape(r['fragile'])}.</li>" for r in fragile
        ]
        out += ["</ul>"]
    out += ["</body>", "</html>", ""]
    return "\n".join(out)
