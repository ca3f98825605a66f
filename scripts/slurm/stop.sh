#!/usr/bin/env bash
# Stops the single-node Slurm cluster that start.sh started: cancels the jobs still queued or
# running (their slurmstepd processes would outlive slurmd), then stops slurmd, slurmctld and
# munged by the pids in their pid files, trusting a pid only when /proc/PID/comm names the daemon
# (see pids.sh). Waits until each has exited (a zombie counts as exited), SIGKILL after 10 s.
# `--quiet` prints nothing when nothing runs. Safe to run when nothing runs.
set -euo pipefail

if [ "$(id -u)" -ne 0 ]; then
    exec sudo --preserve-env=EXPMAN_SLURM_DIR "$0" "$@"
fi

here=$(cd "$(dirname "$0")" && pwd)
dir=${EXPMAN_SLURM_DIR:-/tmp/expman-slurm}
quiet=""
if [ "${1:-}" = --quiet ]; then quiet=1; fi
say() { if [ -z "$quiet" ]; then printf 'slurm: %s\n' "$*"; fi; }

# shellcheck source=scripts/slurm/pids.sh
source "$here/pids.sh"

# Jobs first, while the controller still answers.
if daemon_alive slurmctld "$dir/pids/slurmctld.pid" && command -v squeue >/dev/null; then
    jobs=$(squeue -h -o %i 2>/dev/null | tr '\n' ' ' || true)
    if [ -n "${jobs// /}" ]; then
        say "cancelling jobs $jobs"
        # shellcheck disable=SC2086
        scancel $jobs 2>/dev/null || true
        for _ in $(seq 1 50); do
            [ -z "$(squeue -h -t running,completing -o %i 2>/dev/null || true)" ] && break
            sleep 0.2
        done
    fi
fi

# stop NAME PIDFILE: SIGTERM, wait up to 10 s, then SIGKILL.
stop() {
    local name=$1 pidfile=$2 pid
    pid=$(pid_from "$pidfile") || return 0
    if ! pid_is "$name" "$pid"; then
        rm -f "$pidfile" # stale: its process is gone, or the pid belongs to another program
        return 0
    fi
    kill -TERM "$pid" 2>/dev/null || true
    for _ in $(seq 1 100); do
        pid_is "$name" "$pid" || break
        sleep 0.1
    done
    if pid_is "$name" "$pid"; then
        kill -KILL "$pid" 2>/dev/null || true
        sleep 0.2
    fi
    rm -f "$pidfile"
    say "stopped $name (pid $pid)"
}

stop slurmd "$dir/pids/slurmd.pid"
stop slurmctld "$dir/pids/slurmctld.pid"
stop munged "$(munged_pidfile)"
