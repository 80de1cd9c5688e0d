#!/usr/bin/env bash
# Make a Docker engine answer on this machine, for the docker sandbox backend.
#
# Idempotent: exits 0 at once when `docker info` already answers. Otherwise, as
# root, installs Debian's docker.io (plus busybox-static, which the sandbox base
# image is built from, and openssl, for the egress sink's throw-away certificate),
# starts dockerd in the background and waits for it.
# Anything else (not root, no apt, dockerd refusing to start) prints one reason
# and exits non-zero, so callers (CI, the test suite) can skip with that reason.
#
# Environment knobs:
#   MOSAIC_DOCKERD_LOG      where dockerd logs (default /var/log/dockerd.log)
#   MOSAIC_DOCKERD_WAIT_S   how long to wait for the engine (default 60)
#   MOSAIC_STORAGE_DRIVER   force a storage driver instead of overlay2-then-vfs
set -euo pipefail

WAIT_S="${MOSAIC_DOCKERD_WAIT_S:-60}"
LOG="${MOSAIC_DOCKERD_LOG:-/var/log/dockerd.log}"
LOCK="/tmp/mosaic-gym-setup-engine.lock"

say() { echo "setup_engine: $*" >&2; }
fail() { echo "setup_engine: no Docker engine: $*" >&2; exit 1; }

engine_answers() {
    command -v docker >/dev/null 2>&1 && timeout 20 docker info >/dev/null 2>&1
}

if engine_answers; then
    exit 0
fi
if [ -n "${DOCKER_HOST:-}" ]; then
    fail "DOCKER_HOST=${DOCKER_HOST} does not answer (not starting a local engine for a remote host)"
fi
if [ "$(id -u)" -ne 0 ]; then
    fail "no engine answers and this is not root (start dockerd, or run this script as root)"
fi

# Serialise concurrent callers (several test workers may start at once).
exec 9>"$LOCK"
flock -w $((WAIT_S + 300)) 9 || fail "timed out waiting for another setup_engine run"
if engine_answers; then
    exit 0
fi

apt_install() {
    command -v apt-get >/dev/null 2>&1 || fail "dockerd is missing and apt-get is not available"
    export DEBIAN_FRONTEND=noninteractive
    # Only refresh the package lists when apt does not know the packages yet.
    local pkg
    for pkg in "$@"; do
        local policy
        policy="$(apt-cache policy "$pkg" 2>/dev/null || true)"
        if ! grep -q 'Candidate: [^(]' <<<"$policy"; then
            say "apt-get update (apt does not know $pkg yet)"
            apt-get update -qq >&2 || fail "apt-get update failed"
            break
        fi
    done
    # Keep package scripts from starting services: we start dockerd ourselves.
    local own_policy=0
    if [ ! -e /usr/sbin/policy-rc.d ]; then
        printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d
        chmod 755 /usr/sbin/policy-rc.d
        own_policy=1
    fi
    say "installing $* (Debian packages)"
    local status=0
    apt-get install -y -qq --no-install-recommends "$@" >&2 || status=$?
    if [ "$own_policy" -eq 1 ]; then
        rm -f /usr/sbin/policy-rc.d
    fi
    [ "$status" -eq 0 ] || fail "apt-get install $* failed (exit $status)"
}

needed=()
command -v dockerd >/dev/null 2>&1 || needed+=(docker.io)
# The sandbox base image is a root file system made of Debian's static busybox.
dpkg -s busybox-static >/dev/null 2>&1 || needed+=(busybox-static)
# The egress sink makes a throw-away certificate to read HTTPS from the sandboxes.
command -v openssl >/dev/null 2>&1 || needed+=(openssl)
if [ "${#needed[@]}" -gt 0 ]; then
    apt_install "${needed[@]}"
fi
command -v docker >/dev/null 2>&1 || fail "the docker client is missing after installing docker.io"

if ! touch "$LOG" 2>/dev/null; then
    LOG="$(mktemp /tmp/dockerd.XXXXXX.log)"
fi

dockerd_running() {
    [ -s /var/run/docker.pid ] && kill -0 "$(cat /var/run/docker.pid)" 2>/dev/null
}

wait_for_engine() {  # $1: pid of the dockerd we started (empty: not ours)
    local deadline=$((SECONDS + WAIT_S))
    while [ "$SECONDS" -lt "$deadline" ]; do
        if engine_answers; then
            return 0
        fi
        if [ -n "$1" ] && ! kill -0 "$1" 2>/dev/null; then
            return 1
        fi
        sleep 0.5
    done
    return 1
}

if dockerd_running; then
    say "dockerd (pid $(cat /var/run/docker.pid)) is already starting; waiting"
    wait_for_engine "" && exit 0
    fail "dockerd pid $(cat /var/run/docker.pid) runs but does not answer after ${WAIT_S}s"
fi

if [ -n "${MOSAIC_STORAGE_DRIVER:-}" ]; then
    drivers=("$MOSAIC_STORAGE_DRIVER")
else
    drivers=(overlay2 vfs)
fi
failures=""
for driver in "${drivers[@]}"; do
    say "starting dockerd (storage driver $driver, log $LOG)"
    echo "=== setup_engine: dockerd --storage-driver=$driver ($(date)) ===" >>"$LOG"
    first_line=$(($(wc -l <"$LOG") + 1))
    setsid dockerd --storage-driver="$driver" >>"$LOG" 2>&1 </dev/null &
    pid=$!
    if wait_for_engine "$pid"; then
        say "engine ready (dockerd pid $pid, storage driver $driver)"
        exit 0
    fi
    if kill -0 "$pid" 2>/dev/null; then
        kill "$pid" 2>/dev/null || true
        for _ in $(seq 1 20); do kill -0 "$pid" 2>/dev/null || break; sleep 0.5; done
    fi
    rm -f /var/run/docker.pid
    why="$(tail -n "+$first_line" "$LOG" | grep -iE 'level=(error|fatal)|failed' | tail -n 1 | sed 's/^.*msg="\{0,1\}//; s/"$//' || true)"
    failures="${failures:+$failures; }$driver: ${why:-no answer within ${WAIT_S}s}"
    say "dockerd with $driver failed: ${why:-no answer within ${WAIT_S}s}"
done
fail "dockerd would not start ($failures; log: $LOG)"
