# shellcheck shell=bash
# Pid files that can be trusted: sourced by start.sh and stop.sh.
#
# A pid file outlives its daemon (a reset machine, a kill -9, CI ending what a session left
# running), and the pid may since belong to another process. A pid counts only when
# /proc/PID/comm names the daemon, and a zombie counts as dead: killed daemons can stay
# <defunct> for seconds when PID 1 reaps late, while kill -0 still says "alive".

# The pid in pid file $1, if the file holds one.
pid_from() {
    local pid=""
    if [ -r "$1" ]; then read -r pid <"$1" || true; fi
    case "$pid" in '' | *[!0-9]*) return 1 ;; esac
    echo "$pid"
}

# Whether process $2 runs and is the daemon named $1 (and not a zombie).
pid_is() {
    local name=$1 pid=$2 comm state
    comm=$(cat "/proc/$pid/comm" 2>/dev/null) || return 1
    [ "$comm" = "$name" ] || return 1
    # Field 3 of /proc/PID/stat, after the parenthesised command name.
    state=$(sed -n 's/^.*) \([A-Za-z]\).*/\1/p' "/proc/$pid/stat" 2>/dev/null) || return 1
    [ -n "$state" ] && [ "$state" != Z ] && [ "$state" != X ]
}

# Whether the daemon $1 whose pid file is $2 runs.
daemon_alive() {
    local pid
    pid=$(pid_from "$2") || return 1
    pid_is "$1" "$pid"
}

munged_pidfile() { echo /run/munge/munged.pid; }
