#!/usr/bin/env bash
# make test-slurm: the smoke preset through profiles/slurm on a real one-node SLURM cluster.
#
#  1. installs slurmctld, slurmd, slurm-client and munge with apt-get where missing (Debian's SLURM 22.05);
#  2. starts a private cluster (tests/slurm/cluster.sh) whose partitions are the ones the profile names;
#  3. runs tests/slurm/slurm_cluster_checks.py: the smoke build through the profile, its figures, one
#     SLURM job per Snakemake job where the profile puts it, and a failing job failing the build;
#  4. stops the cluster and removes its directory on every exit (trap), also after a failure or a timeout.
#
# Bounded: the whole script by GROK_SLURM_TIMEOUT seconds (default 1320), the smoke build by
# GROK_SLURM_BUILD_TIMEOUT (default 1080); a hung Snakemake is killed, never waited for.
# Where it cannot run (not root, no apt-get, packages not installable) it says why and exits 0, or 1
# when CI is set. GROK_SLURM_KEEP=1 keeps the cluster's directory (logs) after the run.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."

START=$(date +%s)
TOTAL=${GROK_SLURM_TIMEOUT:-1320}
BUILD=${GROK_SLURM_BUILD_TIMEOUT:-1080}
PY=${PY:-.venv/bin/python}
PACKAGES=(slurmctld slurmd slurm-client munge)
CLUSTER=""
PYTEST_PID=""
POLICY=""
SKIPPED=""

elapsed() { echo $(($(date +%s) - START)); }

cannot() {
    echo "test-slurm: not run: $*" >&2
    SKIPPED=1
    if [[ -n ${CI:-} ]]; then
        echo "test-slurm: CI is set, so not running is a failure" >&2
        exit 1
    fi
    exit 0
}

cleanup() {
    local rc=$?
    trap - EXIT INT TERM
    if [[ -n $PYTEST_PID ]]; then
        # pytest, its Snakemake and their children form one process group (setsid below): end what is
        # left of it (a Snakemake that ignored SIGTERM outlives a killed pytest) before the cluster goes
        if kill -TERM -- "-$PYTEST_PID" 2>/dev/null; then
            for _ in $(seq 20); do
                kill -0 -- "-$PYTEST_PID" 2>/dev/null || break
                sleep 0.5
            done
            kill -KILL -- "-$PYTEST_PID" 2>/dev/null || true
        fi
        wait "$PYTEST_PID" 2>/dev/null || true
    fi
    [[ -z $POLICY ]] || rm -f "$POLICY"
    if [[ -n $CLUSTER ]]; then
        ((rc == 0)) || tests/slurm/cluster.sh logs "$CLUSTER" >&2 || true
        tests/slurm/cluster.sh stop "$CLUSTER" || rc=1
        if [[ -n ${GROK_SLURM_KEEP:-} ]]; then
            echo "test-slurm: kept $CLUSTER"
        else
            rm -rf "$CLUSTER"
        fi
    fi
    if ((rc == 0)) && [[ -n $SKIPPED ]]; then
        echo "test-slurm: skipped (a failure only where CI is set)"
    elif ((rc == 0)); then
        echo "test-slurm: PASSED in $(elapsed) s"
    else
        echo "test-slurm: FAILED (exit $rc) after $(elapsed) s" >&2
    fi
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 143' TERM
trap 'exit 130' INT

[[ $(id -u) == 0 ]] || cannot "needs root (it installs packages and starts the SLURM and munge daemons)"
[[ -x $PY ]] || cannot "no $PY (make test-slurm creates it)"

missing=()
for p in "${PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
    command -v apt-get >/dev/null || cannot "${missing[*]} missing and no apt-get to install them"
    echo "test-slurm: installing ${missing[*]} with apt-get"
    if [[ ! -e /usr/sbin/policy-rc.d ]]; then
        # keep the packages from starting the host's own slurmd/slurmctld/munge services while installing
        POLICY=/usr/sbin/policy-rc.d
        printf '#!/bin/sh\nexit 101\n' >"$POLICY"
        chmod 755 "$POLICY"
    fi
    apt_start=$(date +%s)
    export DEBIAN_FRONTEND=noninteractive
    timeout 300 apt-get update -q >/dev/null || cannot "apt-get update failed"
    timeout 600 apt-get install -y -q --no-install-recommends "${missing[@]}" >/dev/null ||
        cannot "apt-get install ${missing[*]} failed"
    [[ -z $POLICY ]] || rm -f "$POLICY"
    POLICY=""
    echo "test-slurm: installed in $(($(date +%s) - apt_start)) s"
fi

# the partitions the profile names: the default one first, then those of set-resources
mapfile -t partitions < <("$PY" - <<'EOF'
import yaml

p = yaml.safe_load(open("profiles/slurm/config.yaml"))
names = [p["default-resources"]["slurm_partition"]]
names += [r["slurm_partition"] for r in p.get("set-resources", {}).values() if "slurm_partition" in r]
print("\n".join(dict.fromkeys(str(n) for n in names)))
EOF
)

CLUSTER=$(mktemp -d /tmp/grok-slurm.XXXXXX)
tests/slurm/cluster.sh start "$CLUSTER" "${partitions[@]}"
# shellcheck source=/dev/null  # written by cluster.sh start
source "$CLUSTER/env.sh"
echo "test-slurm: cluster up after $(elapsed) s"

left=$((TOTAL - $(elapsed) - 60)) # a minute kept for stopping the cluster
((left > 300)) || {
    echo "test-slurm: only $left s left of GROK_SLURM_TIMEOUT=$TOTAL" >&2
    exit 1
}
left_for_build=$((left - 210)) # the failing-job test runs first, bounded at 180 s
export GROK_SLURM_BUILD_TIMEOUT=$((BUILD < left_for_build ? BUILD : left_for_build))
export MPLBACKEND=Agg
setsid timeout -k 20 "$left" "$PY" -m pytest -q -s --tb=short -p no:cacheprovider --basetemp="$CLUSTER/pytest" \
    tests/slurm/slurm_cluster_checks.py &
PYTEST_PID=$!
wait "$PYTEST_PID"
