#!/usr/bin/env bash
# The package's library tests from an installed wheel, in a directory that is not a checkout (make test-wheel).
#
# 1. Build the wheel from a copy of the sources (pyproject.toml, README.md, src/; the build writes build/ and
#    *.egg-info beside them), with the test environment's setuptools: no network.
# 2. Install it into a fresh venv that sees the test environment's packages (torch, numpy, pytest, ...) through
#    a .pth file naming that environment's site-packages. Not --system-site-packages: that would be the base
#    interpreter's packages, not the environment's; and a .pth file's directory is added without its own .pth
#    files, so the checkout's editable install (src/ on the path) stays out.
# 3. Run the tests that need only the library and a config from a temporary directory that holds tests/ and
#    config/ and nothing else of the checkout (no src/, workflow/, Snakefile, docs/ or .git).
#
# Left out, as they need the checkout: test_workflow.py, test_report.py (Snakemake builds of the workflow),
# test_figures.py (the workflow's notebooks, README.md), test_lint.py and test_ci_workflow.py (the checkout's
# files and .github/), test_paper_notes.py and test_decisions.py (docs/, results/), and the tests deselected
# below: a workflow notebook's code inputs, the schema read from src/, and the three paper-size Fig 1 runs
# (minutes of training that the suite itself runs; they test the numerics, not the packaging).
set -euo pipefail

PY=${PY:-.venv/bin/python}
PY=$(command -v "$PY")
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
TESTS=(
    test_architecture.py test_claims.py test_config.py test_deep_mlp.py test_engine_equivalence.py test_grids.py
    test_gpus.py test_images.py test_metrics_phases.py test_mnist.py test_numerics.py test_precision.py test_pruning.py
    test_resume.py test_runs.py test_studies.py test_summary.py test_tables.py test_tasks.py test_transformer.py
    test_widths.py
)
DESELECT=(
    tests/test_architecture.py::test_a_notebooks_code_inputs_are_its_imports
    tests/test_runs.py::test_fig1_runs_land_in_the_paper_phases
)

TMP=$(mktemp -d "${TMPDIR:-/tmp}/grokking-wheel.XXXXXX")
trap 'rm -rf "$TMP"' EXIT
start=$SECONDS

mkdir -p "$TMP/build"
cp "$ROOT/pyproject.toml" "$ROOT/README.md" "$TMP/build/"
(cd "$ROOT" && tar --exclude=__pycache__ --exclude='*.egg-info' -cf - src) | tar -xf - -C "$TMP/build"
"$PY" -m pip wheel -q --disable-pip-version-check --no-deps --no-build-isolation --no-index -w "$TMP/dist" "$TMP/build"
wheel=$(ls "$TMP"/dist/*.whl)

"$PY" -m venv --without-pip "$TMP/venv"
VPY="$TMP/venv/bin/python"
site=$("$VPY" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
"$PY" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])' >"$site/test-environment.pth"
"$PY" -m pip install -q --disable-pip-version-check --no-deps --no-index --target "$site" "$wheel"

mkdir "$TMP/run"
cp -r "$ROOT/config" "$TMP/run/config"
(cd "$ROOT" && tar --exclude=__pycache__ -cf - tests) | tar -xf - -C "$TMP/run"
cd "$TMP/run"
"$VPY" - "$site" <<'PY'
import sys
from pathlib import Path

import grokking

where = Path(grokking.__file__).resolve()
assert where.is_relative_to(Path(sys.argv[1]).resolve()), f"grokking imported from {where}, not the wheel"
for data in ("config.schema.yaml", "claims.yaml"):
    assert (where.parent / data).is_file(), f"the wheel has no {data}"
print(f"grokking {grokking.__version__} from {where.parent}")
PY
echo "wheel $(basename "$wheel") built and installed in $((SECONDS - start)) s; testing in $TMP/run"
args=()
for t in "${DESELECT[@]}"; do args+=(--deselect "$t"); done
"$VPY" -m pytest -q -p no:cacheprovider "${args[@]}" "${TESTS[@]/#/tests/}" "$@"
echo "test-wheel: $((SECONDS - start)) s"
