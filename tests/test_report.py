"""`snakemake --report` after the smoke build: one self-contained HTML file with every figure of the preset,
its caption from workflow/report/captions.yaml, and the claims table (rule `claims`,
``grokking.report.claims.to_html``); plus the claims table's page on hand-made rows.

The smoke build is the session's shared one (tests/conftest.py), so this module adds only the report build
(seconds) to `make test`.
"""

from __future__ import annotations

import base64
import html
import json
import re
from html.parser import HTMLParser
from pathlib import Path

import pytest
from conftest import run_snakemake

from grokking.config import enabled_figures, load_preset
from grokking.report.claims import CLAIMS, to_html
from grokking.report.figures import captions
from grokking.report.verdicts import with_noise

pytestmark = pytest.mark.checkout  # needs the checkout: left out of make test-wheel

ROOT = Path(__file__).resolve().parents[1]


class Page(HTMLParser):
    """Every start tag with its attributes, the text of <style> elements, and the claims table's rows
    (cell texts) of an HTML page."""

    def __init__(self, text: str):
        super().__init__(convert_charrefs=True)
        self.tags: list[tuple[str, dict]] = []
        self.styles: list[str] = []
        self.rows: list[list[str]] = []
        self._in: list[str] = []
        self.feed(text)
        self.close()

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))
        if tag in ("style", "td"):
            self._in.append(tag)
            if tag == "td":
                self.rows[-1].append("")
        elif tag == "tr":
            self.rows.append([])

    def handle_endtag(self, tag):
        if self._in and self._in[-1] == tag:
            self._in.pop()

    def handle_data(self, data):
        if self._in and self._in[-1] == "style":
            self.styles.append(data)
        elif self._in and self._in[-1] == "td":
            self.rows[-1][-1] += data

    def external_references(self) -> list[str]:
        """Everything the page would fetch from elsewhere: script/style/image/frame sources that are not
        data: URIs, stylesheets linked by href, and url(...) or @import in styles."""
        found = []
        for tag, attrs in self.tags:
            for key in ("src", "href", "data", "srcset", "poster"):
                value = (attrs.get(key) or "").strip()
                if not value or value.startswith("data:") or value.startswith("#"):
                    continue
                if tag == "a" and key == "href":
                    continue  # a link the reader may follow, not a resource the page loads
                found.append(f"<{tag} {key}={value[:80]}>")
        for css in self.styles:
            found += [m[:80] for m in re.findall(r"url\(\s*['\"]?(?!data:)[^)'\"]+|@import[^;]+", css)]
        return found


def decode(data_uri: str) -> bytes:
    head, _, payload = data_uri.partition(",")
    assert head.startswith("data:") and head.endswith(";base64"), head[:80]
    return base64.b64decode(payload)


def script_json(page: str, name: str):
    """The JSON that the report assigns in <script id=NAME> (its results, its categories)."""
    m = re.search(rf'<script id="{name}">\s*var \w+ = (.*?);\s*</script>', page, re.S)
    assert m, f"no <script id={name!r}> in the report"
    return json.loads(m.group(1))


def text_of(fragment: str) -> str:
    return " ".join(html.unescape(re.sub(r"<[^>]+>", " ", fragment)).split())


@pytest.fixture(scope="module")
def report(smoke_build, tmp_path_factory):
    out = tmp_path_factory.mktemp("report") / "report.html"
    res = run_snakemake(smoke_build, "--report", str(out), "--configfile", "config/smoke.yaml", timeout=600)
    assert res.returncode == 0, (res.stdout + res.stderr)[-4000:]
    page = out.read_text(encoding="utf-8")
    return {"page": page, "results": script_json(page, "results"), "categories": script_json(page, "categories")}


@pytest.fixture(scope="module")
def smoke_config(smoke_build):
    return load_preset(smoke_build / "config", "smoke")


def test_report_is_self_contained(report):
    page = Page(report["page"])
    assert sum(tag == "script" for tag, _ in page.tags) > 5 and page.styles  # the parser saw the page
    assert page.external_references() == []
    # every result (figure, claims table) travels inside the file as a data: URI
    assert report["results"] and all(r["data_uri"].startswith("data:") for r in report["results"].values())


def test_report_has_every_figure_with_its_caption(report, smoke_build, smoke_config):
    text = captions(smoke_build / "workflow", smoke_config)  # filled with the smoke settings
    by_file = {r["filename"]: (path, r) for path, r in report["results"].items()}
    figures = enabled_figures(smoke_config)
    assert len(figures) == len(smoke_config["figures"]) > 30
    for fig in figures:
        name = f"{fig}_{smoke_config['figures'][fig]['slug']}.png"
        assert name in by_file, f"{name} is not in the report"
        path, r = by_file[name]
        assert path in report["categories"]["Figures"]["Other"]
        assert r["mime_type"] == "image/png"
        assert decode(r["data_uri"]) == (smoke_build / "figures" / "smoke" / name).read_bytes()
        assert " ".join(text[fig].split()) in text_of(r["caption"]), (fig, text_of(r["caption"])[:300])


def test_report_has_the_claims_table(report, smoke_build):
    """The claims table is one of the report's results: the page the claims rule wrote, embedded, with a
    row per claim of the smoke build (every claim of grokking.report.claims) and its verdict. (The claim
    ids also appear among the job's params in the report, so the rows are read from the embedded page.)"""
    claims = [(p, r) for p, r in report["results"].items() if r["filename"] == "claims.html"]
    assert len(claims) == 1, sorted(r["filename"] for r in report["results"].values())
    path, r = claims[0]
    assert report["categories"]["Claims"]["Other"] == [path] and r["mime_type"] == "text/html"
    caption = text_of(r["caption"])
    assert caption.startswith("The claims report of the smoke preset")
    embedded = decode(r["data_uri"])
    assert embedded == (smoke_build / "figures" / "smoke" / "claims.html").read_bytes()
    page = Page(embedded.decode("utf-8"))
    assert page.external_references() == []
    rows = {cells[0]: cells for cells in page.rows if cells}
    report_json = json.loads((smoke_build / "results" / "smoke" / "claims.json").read_text())
    assert sorted(rows) == sorted(c.id for c in CLAIMS) == sorted(row["id"] for row in report_json["claims"])
    for row in report_json["claims"]:
        cells = rows[row["id"]]
        assert cells[1:4] == [row["figure"], row["claim"], row["metric"]]
        assert cells[9].startswith(row["verdict"]), (row["id"], cells[9])
    n_pass = report_json["verdicts"]["PASS"]
    assert f"{n_pass} of {len(rows)} claims pass, " in text_of(embedded.decode("utf-8"))


def test_claims_table_page_escapes_and_explains():
    """The page on hand-made rows: markup in the text is escaped, failures carry their error or the
    preset's known-failure reason, values are shown as in claims.md."""
    rows = [
        {"id": "a", "figure": "Fig 1a", "claim": "x < y & z", "metric": "m|n", "op": ">=", "threshold": 0.9}
        | {"value": 0.94228, "passed": True},
        {"id": "b", "figure": "Fig 2", "claim": "c", "metric": "m", "op": "==", "threshold": "Coexistence"}
        | {"value": None, "passed": False, "error": "FileNotFoundError: grids/wd.npz"},
        {"id": "c", "figure": "Fig 12", "claim": "c", "metric": "m", "op": ">", "threshold": 0.0}
        | {"value": -0.0231, "passed": False, "known_failure": "8 heads end lower at one block"},
    ]
    rows = [with_noise(r) for r in rows]
    out = to_html(rows, "demo", ["d"])
    assert "x &lt; y &amp; z" in out and "<script" not in out
    page = Page(out)
    cells = {r[0]: r for r in page.rows if r}
    assert cells["a"][2:] == ["x < y & z", "m|n", "0.942", ">= 0.9", "+0.0423", "–", "–", "PASS"]
    assert cells["b"][4:] == ["–", "== Coexistence", "–", "–", "–", "FAIL (FileNotFoundError: grids/wd.npz)"]
    assert cells["c"][4:] == [
        "-0.0231",
        "> 0",
        "-0.0231",
        "–",
        "–",
        "FAIL (known failure: 8 heads end lower at one block)",
    ]
    assert "1 of 3 claims pass, 2 fail, 0 unresolved" in text_of(out)
    assert "1 of those that do not pass are known in this preset (the reason is in the row)." in text_of(out)
    assert "Not built in this preset: d." in text_of(out)
    assert page.external_references() == []
