#!/usr/bin/env bash
# The package's library tests from an installed wheel, in a directory that is not a checkout (make test-wheel).
#
# 1. Build the wheel from a copy of the sources (pyproject.toml, README.md, src/; the build writes build/ and
#    *.egg-info beside them), with the test environment's setuptools: no network.
# 2. Install it into a fresh venv that sees the test environment's packages (torch, numpy, pytest, ...) through
#    a .pth file naming that environment's site-packages. Not --system-site-packages: that would be the base
#    interpreter's packages, not the environment's; and a .pth file's directory is added without its own .pth
#    files, so the checkout's editable install (src/ on the path) stays out.
# 3. Run every test that is not marked `checkout` (tests/conftest.py: tests that read the workflow, docs/,
#    benchmarks/, .github/ or build with Snakemake) from a temporary directory that holds tests/ and config/
#    and nothing else of the checkout (no src/, workflow/, Snakefile, docs/ or .git). `make test` runs the
#    `checkout` tests in the checkout, so each test runs once.
set -euo pipefail

PY=${PY:-.venv/bin/python}
PY=$(command -v "$PY")
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
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
"$VPY" -m pytest -q -p no:cacheprovider -m "not checkout" tests "$@"
echo "test-wheel: $((SECONDS - start)) s"
