"""The claims report as one self-contained HTML page, for the Snakemake report (rule `claims`).

    python workflow/report/claims_table.py results/<preset>/claims.json figures/<preset>/claims.html

Reads the rows written by `python -m grokking claims` (claims.json) and writes a table with one row a
claim: its id, the figure it supports, the claim, what is measured, the value, the test and PASS/FAIL
(with the error or the preset's known-failure reason). Inline style only: no file or URL is referenced,
so the page shows the same inside the report and on its own. Standard library only.
"""

from __future__ import annotations

import json
import math
import sys
from html import escape
from pathlib import Path

STYLE = """
body { font-family: system-ui, sans-serif; font-size: 14px; margin: 1em; color: #222; }
table { border-collapse: collapse; width: 100%; }
th, td { border: 1px solid #ccc; padding: 4px 6px; text-align: left; vertical-align: top; }
th { background: #f0f0f0; }
td.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
code { font-size: 12px; }
tr.pass td.result { color: #176317; font-weight: bold; }
tr.fail td.result { color: #a31515; font-weight: bold; }
tr.known td.result { color: #8a5a00; }
"""


def fmt(x) -> str:
    """A measured value or threshold as the Markdown report shows it (3 significant digits)."""
    if x is None:
        return "–"
    if isinstance(x, float):
        return "NaN" if math.isnan(x) else f"{x:.3g}"
    return str(x)


def result_text(row: dict) -> tuple[str, str]:
    """(CSS class, text) of a row's result cell."""
    if row["passed"]:
        css, text = "pass", "PASS"
    else:
        css, text = "fail", "FAIL" + (f" ({row['error']})" if row.get("error") else "")
    if "known_failure" in row:
        css = "known" if not row["passed"] else css
        text += f" (known {'failure' if not row['passed'] else 'failure, passes here'}: {row['known_failure']})"
    return css, text


def render(report: dict) -> str:
    rows = report["claims"]
    preset = report.get("preset") or ""
    title = f"Claims report ({preset} preset)" if preset else "Claims report"
    summary = f"{sum(r['passed'] for r in rows)} of {len(rows)} claims pass."
    skipped = report.get("not_built_in_this_preset") or []
    if skipped:
        summary += f" Not built in this preset: {', '.join(skipped)}."
    head = ("id", "figure", "claim", "measured", "value", "test", "result")
    out = [
        "<!DOCTYPE html>",
        '<html lang="en">',
        '<head><meta charset="utf-8">',
        f"<title>{escape(title)}</title>",
        f"<style>{STYLE}</style>",
        "</head>",
        "<body>",
        f"<h1>{escape(title)}</h1>",
        f"<p>{escape(summary)}</p>",
        '<table id="claims">',
        "<thead><tr>" + "".join(f"<th>{h}</th>" for h in head) + "</tr></thead>",
        "<tbody>",
    ]
    for r in rows:
        css, result = result_text(r)
        cells = (
            f"<td><code>{escape(r['id'])}</code></td>",
            f"<td>{escape(str(r['figure']))}</td>",
            f"<td>{escape(str(r['claim']))}</td>",
            f"<td>{escape(str(r['metric']))}</td>",
            f'<td class="num">{escape(fmt(r["value"]))}</td>',
            f'<td class="num">{escape(r["op"])} {escape(fmt(r["threshold"]))}</td>',
            f'<td class="result">{escape(result)}</td>',
        )
        out.append(f'<tr class="{css}" id="claim-{escape(r["id"])}">' + "".join(cells) + "</tr>")
    out += ["</tbody>", "</table>", "</body>", "</html>", ""]
    return "\n".join(out)


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print(__doc__, file=sys.stderr)
        return 2
    source, target = (Path(a) for a in argv)
    page = render(json.loads(source.read_text()))
    tmp = target.with_name(target.name + ".tmp")
    tmp.write_text(page, encoding="utf-8")
    tmp.replace(target)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
