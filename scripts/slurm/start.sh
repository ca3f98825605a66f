#!/usr/bin/env bash
# Starts a single-node Slurm cluster on this machine for the Slurm tests (tests/slurm.rs):
# Debian's munge, slurmctld and slurmd as plain background daemons (no systemd), configured in
# $EXPMAN_SLURM_DIR (default /tmp/expman-slurm), and waits until the node is idle.
#
# - Installs slurmctld, slurmd, slurm-client and munge (--no-install-recommends) when missing.
# - Writes /etc/slurm/slurm.conf and gres.conf, but refuses to replace a slurm.conf it did not
#   write (a real cluster's); EXPMAN_SLURM_FORCE=1 overrides.
# - The node offers EXPMAN_SLURM_CPUS CPUs (default 16, more than the machine has: the test jobs
#   mostly sleep, and SlurmdParameters=config_overrides lets slurmd accept it) and
#   EXPMAN_SLURM_FAKE_GPUS fake GPUs (default 2; character-device clones of /dev/null), so
#   `--gres=gpu:N` is scheduled for real and Slurm sets CUDA_VISIBLE_DEVICES.
# - Already running with this configuration: returns at once. Otherwise stops leftovers (by pid,
#   see stop.sh), wipes Slurm's state (job ids restart at 1) and starts afresh.
# - Fails after EXPMAN_SLURM_WAIT seconds (default 60) if the node is not idle, printing the
#   daemons' logs.
#
# Jobs run as the submitting user; the daemons as root. The tests: tests/slurm.rs; how expman
# uses Slurm: README.md, "On a Slurm cluster".
set -euo pipefail

if [ "$(id -u)" -ne 0 ]; then
    # The daemons run as root (SlurmUser=root) and the packages need root to install.
    exec sudo --preserve-env=EXPMAN_SLURM_DIR,EXPMAN_SLURM_CPUS,EXPMAN_SLURM_FAKE_GPUS,EXPMAN_SLURM_WAIT,EXPMAN_SLURM_FORCE "$0" "$@"
fi

here=$(cd "$(dirname "$0")" && pwd)
dir=${EXPMAN_SLURM_DIR:-/tmp/expman-slurm}
cpus=${EXPMAN_SLURM_CPUS:-16}
gpus=${EXPMAN_SLURM_FAKE_GPUS:-2}
wait_s=${EXPMAN_SLURM_WAIT:-60}
marker="# Written by expman scripts/slurm/start.sh"
conf=/etc/slurm/slurm.conf
started=$(date +%s%N)

say() { printf 'slurm: %s\n' "$*"; }
die() { printf 'slurm: error: %s\n' "$*" >&2; exit 1; }
elapsed() { echo "$(( ($(date +%s%N) - started) / 1000000 )) ms"; }

# --- packages -------------------------------------------------------------------------------
missing=()
for bin in slurmctld:slurmctld slurmd:slurmd sbatch:slurm-client munged:munge; do
    command -v "${bin%%:*}" >/dev/null 2>&1 || missing+=("${bin#*:}")
done
if [ ${#missing[@]} -gt 0 ]; then
    say "installing ${missing[*]} (apt-get, --no-install-recommends)"
    command -v apt-get >/dev/null || die "apt-get not found: install ${missing[*]} by hand (Debian/Ubuntu packages slurmctld slurmd slurm-client munge)"
    # Maintainer scripts would start the daemons through invoke-rc.d; this script starts them
    # itself, with its own configuration. A policy-rc.d that says "no" stops that (many images
    # ship one already; then it is left alone).
    own_policy=""
    if [ ! -e /usr/sbin/policy-rc.d ]; then
        printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d
        chmod 755 /usr/sbin/policy-rc.d
        own_policy=1
    fi
    trap '[ -n "$own_policy" ] && rm -f /usr/sbin/policy-rc.d' EXIT
    apt-get update -qq || die "apt-get update failed"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
        slurmctld slurmd slurm-client munge >/dev/null || die "apt-get install failed"
    if [ -n "$own_policy" ]; then rm -f /usr/sbin/policy-rc.d; fi
    trap - EXIT
    say "installed ($(elapsed))"
fi

# --- pid files that can be trusted ------------------------------------------------------------
# shellcheck source=scripts/slurm/pids.sh
source "$here/pids.sh"

host=$(hostname -s)
# What this configuration is, so a second start with the same settings reuses the cluster.
fingerprint="$marker (dir=$dir cpus=$cpus gpus=$gpus host=$host)"

# (Compared on captured text: `head | grep -q` can fail through SIGPIPE under pipefail.)
first_line=""
if [ -f "$conf" ]; then first_line=$(head -n1 "$conf"); fi
if [ "$first_line" = "$fingerprint" ] &&
    daemon_alive munged "$(munged_pidfile)" &&
    daemon_alive slurmctld "$dir/pids/slurmctld.pid" &&
    daemon_alive slurmd "$dir/pids/slurmd.pid"; then
    state=$(sinfo -h -n "$host" -o %T 2>/dev/null || true)
    if [ "$state" = idle ] || [ "$state" = mixed ] || [ "$state" = allocated ]; then
        say "already running (node $host $state, $(elapsed))"
        exit 0
    fi
fi

if [ -f "$conf" ] && [ "${first_line#"$marker"}" = "$first_line" ] && [ "${EXPMAN_SLURM_FORCE:-}" != 1 ]; then
    die "$conf exists and was not written by this script (a real cluster's?); not replacing it. \
Set EXPMAN_SLURM_FORCE=1 to replace it."
fi

# Leftovers of an earlier start (or stale pid files from a machine that was reset) go first.
"$here/stop.sh" --quiet

# --- configuration ----------------------------------------------------------------------------
mkdir -p "$dir"/{state,spool,pids,log,dev} /etc/slurm
rm -rf "${dir:?}/state"/* "${dir:?}/spool"/*
for log in slurmctld slurmd munged; do
    if [ -f "$dir/log/$log.log" ]; then mv -f "$dir/log/$log.log" "$dir/log/$log.log.prev"; fi
done
: >"$dir/log/jobcomp.log" # job ids restart at 1: old records would collide

# RealMemory as slurmd measures it (a larger value would drain the node).
memory=$(slurmd -C | sed -n 's/.*RealMemory=\([0-9]*\).*/\1/p')
[ -n "$memory" ] || die "slurmd -C reported no RealMemory"

gres_types=""
node_gres=""
rm -f /etc/slurm/gres.conf
if [ "$gpus" -gt 0 ]; then
    # Slurm needs a character or block device per GPU; a count alone makes slurmd report 0 GPUs
    # and the node INVAL.
    for ((i = 0; i < gpus; i++)); do
        [ -c "$dir/dev/nvidia$i" ] || mknod "$dir/dev/nvidia$i" c 1 3
    done
    gres_types="GresTypes=gpu"
    node_gres="Gres=gpu:$gpus"
    cat >/etc/slurm/gres.conf <<EOF
$marker: fake GPUs (character-device clones of /dev/null).
AutoDetect=off
NodeName=$host Name=gpu File=$dir/dev/nvidia[0-$((gpus - 1))]
EOF
fi

cat >"$conf" <<EOF
$fingerprint
ClusterName=expman-ci
SlurmctldHost=$host(127.0.0.1)
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
MpiDefault=none
MailProg=/bin/true
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
SchedulerType=sched/backfill
SchedulerParameters=batch_sched_delay=0
SlurmdParameters=config_overrides
ReturnToService=2
EnforcePartLimits=ALL
MinJobAge=3600
KillWait=5
StateSaveLocation=$dir/state
SlurmdSpoolDir=$dir/spool
SlurmctldPidFile=$dir/pids/slurmctld.pid
SlurmdPidFile=$dir/pids/slurmd.pid
SlurmctldLogFile=$dir/log/slurmctld.log
SlurmdLogFile=$dir/log/slurmd.log
SlurmctldDebug=info
SlurmdDebug=info
AccountingStorageType=accounting_storage/none
JobAcctGatherType=jobacct_gather/none
JobCompType=jobcomp/filetxt
JobCompLoc=$dir/log/jobcomp.log
$gres_types
NodeName=$host NodeAddr=127.0.0.1 CPUs=$cpus RealMemory=$memory $node_gres State=UNKNOWN
PartitionName=debug Nodes=ALL Default=YES MaxTime=INFINITE State=UP
EOF

# --- daemons --------------------------------------------------------------------------------
[ -f /etc/munge/munge.key ] || {
    mungekey --create --keyfile=/etc/munge/munge.key
    chown munge:munge /etc/munge/munge.key
    chmod 400 /etc/munge/munge.key
}
mkdir -p /run/munge /var/log/munge /var/lib/munge
chown munge:munge /run/munge /var/log/munge /var/lib/munge
chmod 755 /run/munge
if ! daemon_alive munged "$(munged_pidfile)"; then
    rm -f /run/munge/munge.socket.2 /run/munge/munge.socket.2.lock
    # munged must run as the munge user, who owns the key; it daemonizes itself.
    runuser -u munge -- /usr/sbin/munged </dev/null >>"$dir/log/munged.log" 2>&1 ||
        die "munged did not start: $(tail -n 5 /var/log/munge/munged.log 2>/dev/null)"
fi
munge -n | unmunge >/dev/null || die "munge does not work (munge -n | unmunge failed)"

# Both daemonize themselves and write their pid files.
slurmctld </dev/null >>"$dir/log/slurmctld.out" 2>&1 || die "slurmctld did not start: $(tail -n 20 "$dir/log/slurmctld.log")"
slurmd </dev/null >>"$dir/log/slurmd.out" 2>&1 || die "slurmd did not start: $(tail -n 20 "$dir/log/slurmd.log")"

# --- wait for the node ------------------------------------------------------------------------
deadline=$(($(date +%s) + wait_s))
resumed=""
while :; do
    state=$(sinfo -h -n "$host" -o %T 2>/dev/null || true)
    case "$state" in
    idle) break ;;
    drain* | inval* | down*)
        # A node drained by an earlier, broken configuration stays drained: resume it once.
        if [ -z "$resumed" ]; then
            scontrol update nodename="$host" state=resume >/dev/null 2>&1 || true
            resumed=1
        fi
        ;;
    esac
    if [ "$(date +%s)" -ge "$deadline" ]; then
        echo "--- slurmctld.log" >&2
        tail -n 30 "$dir/log/slurmctld.log" >&2 || true
        echo "--- slurmd.log" >&2
        tail -n 30 "$dir/log/slurmd.log" >&2 || true
        die "node $host is '${state:-unreachable}' after ${wait_s}s, not idle"
    fi
    sleep 0.2
done
say "node $host idle: $cpus CPUs, $gpus fake GPUs, state in $dir ($(elapsed))"
