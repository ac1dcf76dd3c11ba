#!/usr/bin/env bash
# A throw-away one-node SLURM cluster (munged + slurmctld + slurmd) whose configuration, keys, state,
# spool, logs and sockets all live in one private directory; the host's /etc/slurm and /etc/munge are
# neither read nor written. Needs root and the Debian packages slurmctld slurmd slurm-client munge.
#
#   tests/slurm/cluster.sh start DIR PARTITION...   the first partition is the default one
#   tests/slurm/cluster.sh stop DIR                 cancels its jobs, stops the daemons it started
#   tests/slurm/cluster.sh logs DIR                 the tails of its daemon logs
#
# After `start`: `source DIR/env.sh` (SLURM_CONF=DIR/slurm.conf, DIR/bin first on PATH), then
# sbatch/squeue/scontrol talk to this cluster, and so does srun inside its jobs.
# Every partition spans the one node (this machine, `hostname -s`), which offers all its CPUs, 90 % of
# its memory and GPUS (default 2) stand-in GPUs: GRES whose device files are copies of /dev/null, so
# that `sbatch --gpus=1` is scheduled as on a GPU partition while the job itself sees no CUDA device.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
GPUS=${GPUS:-2}

die() {
    echo "cluster.sh: $*" >&2
    exit 1
}

# A TCP port on 127.0.0.1 that nothing listens on now (a connection to it is refused).
free_port() {
    local port
    for _ in $(seq 200); do
        port=$((20000 + RANDOM % 20000))
        if ! (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
            echo "$port"
            return 0
        fi
    done
    die "no free TCP port found"
}

# PID from a pid file if that process is alive and is the named program (never a recycled PID).
live_pid() {
    local pidfile=$1 name=$2 pid
    [[ -s $pidfile ]] || return 1
    pid=$(<"$pidfile")
    [[ $pid =~ ^[0-9]+$ ]] || return 1
    [[ -r /proc/$pid/comm ]] || return 1
    [[ $(<"/proc/$pid/comm") == "$name"* ]] || return 1
    echo "$pid"
}

stop_daemon() {
    local pidfile=$1 name=$2 pid
    pid=$(live_pid "$pidfile" "$name") || return 0
    kill -TERM "$pid" 2>/dev/null || true
    for _ in $(seq 50); do
        [[ -d /proc/$pid ]] || return 0
        sleep 0.2
    done
    echo "cluster.sh: $name ($pid) ignored SIGTERM for 10 s, killing it" >&2
    kill -KILL "$pid" 2>/dev/null || true
}

start() {
    local dir=$1
    shift
    (($# > 0)) || die "start needs at least one partition name"
    [[ $(id -u) == 0 ]] || die "must run as root (the daemons and the munge key need it)"
    local cmd
    for cmd in munged munge slurmctld slurmd sbatch squeue scontrol sinfo; do
        command -v "$cmd" >/dev/null || die "'$cmd' not found (apt-get install slurmctld slurmd slurm-client munge)"
    done
    id munge >/dev/null 2>&1 || die "no 'munge' user (the munge package creates it)"

    mkdir -p "$dir"
    dir=$(cd "$dir" && pwd)
    [[ ! -e $dir/slurm.conf ]] || die "$dir already holds a cluster (stop it first)"
    mkdir -p "$dir"/{munge,state,spool,log}
    chmod 755 "$dir" # munged runs as 'munge' and must reach its own subdirectory
    chown munge:munge "$dir/munge"
    chmod 711 "$dir/munge" # clients need to reach the socket; the key itself is 0400

    # munge: a fresh key of this cluster only, owned by munge and readable by nobody else
    local m=$dir/munge
    head -c 1024 /dev/urandom >"$m/munge.key"
    chown munge:munge "$m/munge.key"
    chmod 400 "$m/munge.key"
    runuser -u munge -- munged --force --key-file="$m/munge.key" --socket="$m/munge.socket" \
        --pid-file="$m/munged.pid" --log-file="$m/munged.log" --seed-file="$m/munged.seed"
    local ok=""
    for _ in $(seq 50); do
        if munge -n -S "$m/munge.socket" 2>/dev/null | unmunge -S "$m/munge.socket" >/dev/null 2>&1; then
            ok=1
            break
        fi
        sleep 0.2
    done
    [[ -n $ok ]] || die "munged did not answer: $(tail -5 "$m/munged.log" 2>/dev/null)"

    # slurm.conf from the template, one partition line per name, gres.conf beside it
    local host cpus mem ctld_port slurmd_port
    host=$(hostname -s)
    cpus=$(nproc)
    mem=$(awk '/^MemTotal:/ {printf "%d", $2 / 1024 * 0.9}' /proc/meminfo)
    ctld_port=$(free_port)
    slurmd_port=$(free_port)
    while [[ $slurmd_port == "$ctld_port" ]]; do slurmd_port=$(free_port); done
    sed -e "s|@DIR@|$dir|g" -e "s|@CLUSTER@|grokslurmtest|g" -e "s|@HOST@|$host|g" \
        -e "s|@CTLD_PORT@|$ctld_port|g" -e "s|@SLURMD_PORT@|$slurmd_port|g" -e "s|@CPUS@|$cpus|g" \
        -e "s|@MEM@|$mem|g" -e "s|@GPUS@|$GPUS|g" "$HERE/slurm.conf.in" >"$dir/slurm.conf"
    local part default=YES
    for part in "$@"; do
        echo "PartitionName=$part Nodes=$host Default=$default MaxTime=INFINITE State=UP" >>"$dir/slurm.conf"
        default=NO
    done
    # slurmd drops GPUs without device files and wants character devices: nodes with the numbers of
    # /dev/null, in this directory only
    mkdir -p "$dir/gpu"
    local i
    for ((i = 0; i < GPUS; i++)); do mknod "$dir/gpu/nvidia$i" c 1 3; done
    printf 'AutoDetect=off\nNodeName=%s Name=gpu File=%s/gpu/nvidia[0-%d]\n' "$host" "$dir" $((GPUS - 1)) >"$dir/gres.conf"

    # The plugin's job step drops every SLURM_* variable, SLURM_CONF included, before it calls srun inside
    # the job; on a real cluster srun then reads /etc/slurm/slurm.conf. Here an srun on PATH (jobs inherit
    # PATH) names this cluster's file instead, and the host's /etc/slurm stays untouched.
    mkdir -p "$dir/bin"
    printf '#!/bin/sh\nSLURM_CONF=%s/slurm.conf exec %s "$@"\n' "$dir" "$(command -v srun)" >"$dir/bin/srun"
    chmod 755 "$dir/bin/srun"
    # shellcheck disable=SC2016  # $PATH is expanded where env.sh is sourced
    printf 'export SLURM_CONF=%s/slurm.conf\nexport PATH=%s/bin:"$PATH"\n' "$dir" "$dir" >"$dir/env.sh"

    export SLURM_CONF=$dir/slurm.conf
    slurmctld -c -f "$SLURM_CONF" || die "slurmctld did not start: $(tail -5 "$dir/log/slurmctld.log" 2>/dev/null)"
    slurmd -f "$SLURM_CONF" || die "slurmd did not start: $(tail -5 "$dir/log/slurmd.log" 2>/dev/null)"

    # ready when the node is idle in every partition
    local state=""
    for _ in $(seq 60); do
        state=$(sinfo -h -N -n "$host" -o %t 2>/dev/null | sort -u | tr '\n' ' ' || true)
        [[ $state == "idle " ]] && break
        if ! live_pid "$dir/slurmctld.pid" slurmctld >/dev/null || ! live_pid "$dir/slurmd.pid" slurmd >/dev/null; then
            logs "$dir" >&2
            die "a SLURM daemon exited during start (logs above)"
        fi
        if [[ $state == *down* || $state == *drain* ]]; then
            scontrol update NodeName="$host" State=RESUME >/dev/null 2>&1 || true
        fi
        sleep 0.5
    done
    if [[ $state != "idle " ]]; then
        logs "$dir" >&2
        die "node $host is '${state% }', not idle, 30 s after start"
    fi
    echo "cluster.sh: one-node SLURM cluster up: node $host ($cpus CPUs, $mem MB, $GPUS stand-in GPUs)," \
        "partitions: $*; ports $ctld_port/$slurmd_port; source $dir/env.sh"
}

stop() {
    local dir=$1
    [[ -d $dir ]] || return 0
    dir=$(cd "$dir" && pwd)
    if [[ -f $dir/slurm.conf ]] && live_pid "$dir/slurmctld.pid" slurmctld >/dev/null; then
        export SLURM_CONF=$dir/slurm.conf
        # cancel whatever still runs (e.g. after a timeout) and give the job steps time to end, so that
        # no job process outlives the cluster
        local jobs
        jobs=$(squeue -h -t PENDING,RUNNING,SUSPENDED,COMPLETING,CONFIGURING -o %i 2>/dev/null || true)
        if [[ -n $jobs ]]; then
            # shellcheck disable=SC2086  # one argument per job id
            scancel $jobs 2>/dev/null || true
            for _ in $(seq 30); do
                [[ -z $(squeue -h -t RUNNING,COMPLETING,CONFIGURING -o %i 2>/dev/null) ]] && break
                sleep 1
            done
        fi
    fi
    stop_daemon "$dir/slurmd.pid" slurmd
    stop_daemon "$dir/slurmctld.pid" slurmctld
    stop_daemon "$dir/munge/munged.pid" munged
}

logs() {
    local dir=$1 f
    for f in "$dir/log/slurmctld.log" "$dir/log/slurmd.log"; do
        [[ -f $f ]] || continue
        echo "--- $f (last 20 lines)"
        tail -n 20 "$f"
    done
}

case "${1:-}" in
start)
    (($# >= 3)) || die "usage: $0 start DIR PARTITION..."
    shift
    start "$@"
    ;;
stop)
    (($# == 2)) || die "usage: $0 stop DIR"
    stop "$2"
    ;;
logs)
    (($# == 2)) || die "usage: $0 logs DIR"
    logs "$2"
    ;;
*) die "usage: $0 start DIR PARTITION... | stop DIR | logs DIR" ;;
esac
