#!/usr/bin/env bash
# harness.sh - boot a REAL systemd (Debian bookworm, systemd 252) as PID 1 of a systemd-nspawn
# container, on a host whose PID 1 need not be systemd; copy a directory into it, run a test
# command inside (as root, after boot finished), collect output, shut the container down cleanly.
#
# Usage: harness.sh [-s SRC_DIR] [-d DEST_IN_CONTAINER] [-o OUT_DIR] [-t TIMEOUT_S] -- CMD [ARGS...]
#   -s SRC_DIR   host directory copied to DEST (default: none)
#   -d DEST      path inside the container (default: /opt/test); CMD runs with cwd=DEST
#   -o OUT_DIR   where console.log / journal.txt / failed-units.txt / test-output.txt go
#                (default: $SYSD_WORK/out/<run-id>)
#   -t TIMEOUT   seconds allowed for CMD (default 900)
# Env: SYSD_WORK (default /var/tmp/systemd-harness)  SYSD_EXTRA_PACKAGES (comma list baked into cached rootfs)
#      SYSD_MIRROR  SYSD_SUITE (bookworm)  SYSD_PRIVATE_NETWORK=1 (loopback only; default shares host net)
#      SYSD_KEEP=1 (keep the run's overlay upper dir)  SYSD_REBUILD=1 (force rootfs rebuild)
# Exit status: that of CMD (or 2xx for harness failures). Idempotent; rootfs cached under $SYSD_WORK/cache.
set -euo pipefail
umask 022

WORK=${SYSD_WORK:-/var/tmp/systemd-harness}
SUITE=${SYSD_SUITE:-bookworm}
MIRROR=${SYSD_MIRROR:-http://deb.debian.org/debian}
PKGS="systemd,systemd-sysv,dbus,libnss-systemd,python3,python3-venv,procps,iproute2${SYSD_EXTRA_PACKAGES:+,$SYSD_EXTRA_PACKAGES}"
LAYOUT_VERSION=2                       # bump when the rootfs customisation below changes
SRC="" DEST=/opt/test OUT="" TIMEOUT=900
while getopts "s:d:o:t:h" o; do
  case $o in
    s) SRC=$OPTARG ;; d) DEST=$OPTARG ;; o) OUT=$OPTARG ;; t) TIMEOUT=$OPTARG ;;
    *) sed -n '2,15p' "$0"; exit 2 ;;
  esac
done
shift $((OPTIND - 1))
[ "${1:-}" = "--" ] && shift
[ $# -gt 0 ] || { echo "usage: $0 [-s dir] [-d dest] [-o out] [-t timeout] -- CMD..." >&2; exit 2; }
[ "$(id -u)" = 0 ] || { echo "must run as root" >&2; exit 2; }
case $DEST in /*) ;; *) echo "DEST must be an absolute path" >&2; exit 2 ;; esac
if [ -n "$SRC" ]; then
  SRC=$(realpath "$SRC"); [ -d "$SRC" ] || { echo "no such directory: $SRC" >&2; exit 2; }
  case "$(realpath -m "$WORK")/" in "$SRC"/*) echo "SRC_DIR must not contain SYSD_WORK ($WORK)" >&2; exit 2 ;; esac
fi

log() { printf '[%s] %s\n' "$(date +%T)" "$*" >&2; }
T_START=$(date +%s)

# ---------------------------------------------------------------- host tools
need=()
command -v systemd-nspawn >/dev/null || need+=(systemd-container)
command -v mmdebstrap >/dev/null || command -v debootstrap >/dev/null || need+=(mmdebstrap)
command -v nsenter >/dev/null || need+=(util-linux)
command -v pgrep >/dev/null || need+=(procps)
if [ ${#need[@]} -gt 0 ]; then
  log "installing host packages: ${need[*]}"
  apt-get update -q >/dev/null
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${need[@]}" >/dev/null
fi

# ---------------------------------------------------------------- cached rootfs
KEY=$(printf '%s|%s|%s|%s' "$SUITE" "$MIRROR" "$PKGS" "$LAYOUT_VERSION" | sha256sum | cut -c1-12)
CACHE=$WORK/cache/rootfs-$SUITE-$KEY
mkdir -p "$WORK/cache" "$WORK/runs" "$WORK/out"
exec 9>"$WORK/cache/.lock"
flock 9                                           # serialise concurrent builds
if [ -n "${SYSD_REBUILD:-}" ]; then rm -rf "$CACHE"; fi
if [ ! -e "$CACHE/.complete" ]; then
  rm -rf "$CACHE" "$CACHE.tmp"
  log "building rootfs $CACHE (packages: $PKGS)"
  t=$(date +%s)
  if command -v mmdebstrap >/dev/null; then
    mmdebstrap --variant=minbase --include="$PKGS" "$SUITE" "$CACHE.tmp" "$MIRROR" >"$WORK/cache/build.log" 2>&1
  else
    debootstrap --variant=minbase --include="$PKGS" "$SUITE" "$CACHE.tmp" "$MIRROR" >"$WORK/cache/build.log" 2>&1
  fi
  R=$CACHE.tmp
  echo sysdtest >"$R/etc/hostname"
  : >"$R/etc/machine-id"                          # nspawn initialises it from the container UUID
  # quieter/faster boot: no gettys on the console, no periodic jobs
  for u in console-getty.service getty@.service apt-daily.timer apt-daily-upgrade.timer \
           dpkg-db-backup.timer e2scrub_all.timer e2scrub_reap.service systemd-tmpfiles-clean.timer; do
    ln -sf /dev/null "$R/etc/systemd/system/$u"
  done
  touch "$R/.complete"
  mv "$R" "$CACHE"
  log "rootfs built in $(( $(date +%s) - t ))s, size $(du -sh "$CACHE" | cut -f1)"
else
  log "reusing cached rootfs $CACHE"
fi
flock -u 9
for d in "$WORK"/runs/*-*; do                    # leftovers of runs that were SIGKILLed
  [ -d "$d" ] && ! kill -0 "${d##*-}" 2>/dev/null && rm -rf "$d"
done

# ---------------------------------------------------------------- per-run overlay
RUNID=$(date +%Y%m%d-%H%M%S)-$$
RUN=$WORK/runs/$RUNID
OUT=${OUT:-$WORK/out/$RUNID}
MACHINE=sysd-$$
NSPID="" CPID="" TPID=""
cleanup() {
  rc=$?
  trap - INT TERM
  if [ -n "$TPID" ] && kill -0 "$TPID" 2>/dev/null; then
    # interrupted: stop the test unit from inside so the systemd-run client ends normally
    timeout 20 "${IN[@]}" systemctl kill --signal=SIGKILL sysd-test.service >/dev/null 2>&1 || true
    for _ in $(seq 50); do kill -0 "$TPID" 2>/dev/null || break; sleep 0.2; done
    for c in $(pgrep -P "$TPID" || true); do kill -KILL -- "-$c" "$c" 2>/dev/null || true; done
    wait "$TPID" 2>/dev/null || true
  fi
  if [ -n "$NSPID" ] && kill -0 "$NSPID" 2>/dev/null; then
    log "shutting down container"
    kill -TERM "$NSPID" 2>/dev/null || true       # nspawn turns SIGTERM into a clean halt of the container
    for _ in $(seq 120); do kill -0 "$NSPID" 2>/dev/null || break; sleep 0.5; done
    if kill -0 "$NSPID" 2>/dev/null; then
      log "forcing container kill"
      [ -z "$CPID" ] || kill -KILL "$CPID" 2>/dev/null || true  # pid-ns init: takes all container processes along
      sleep 1; kill -KILL "$NSPID" 2>/dev/null || true
    fi
    wait "$NSPID" 2>/dev/null || true
  fi
  # mounts live in nspawn's private mount namespace and vanished with it
  if [ -z "${SYSD_KEEP:-}" ]; then rm -rf "$RUN"; else log "kept $RUN"; fi
  log "total $(( $(date +%s) - T_START ))s; outputs in $OUT; exit $rc"
  exit $rc
}
trap cleanup EXIT
trap 'exit 230' INT TERM
mkdir -p "$RUN/upper/etc/ssl/certs" "$RUN/work" "$RUN/root" "$OUT"
# host integration, refreshed every run: DNS, CA bundle (TLS-intercepting proxies), pip's cert setting
cp -L /etc/resolv.conf "$RUN/upper/etc/resolv.conf" 2>/dev/null || true
cp -L /etc/ssl/certs/ca-certificates.crt "$RUN/upper/etc/ssl/certs/" 2>/dev/null || true
[ -f /etc/pip.conf ] && cp /etc/pip.conf "$RUN/upper/etc/pip.conf"
if [ -n "$SRC" ]; then                           # pre-populate the overlay's upper layer
  mkdir -p "$RUN/upper$DEST"
  cp -a "$SRC/." "$RUN/upper$DEST/"
  chmod -R a+rX "$RUN/upper$DEST"                 # DynamicUser= services must be able to read it
  CWD=$DEST
else
  CWD=/
fi

# ---------------------------------------------------------------- boot
nsargs=(--quiet --register=no --keep-unit --boot --console=read-only -M "$MACHINE"
        -D "$RUN/root" --timezone=off --resolv-conf=off --link-journal=no)
[ -n "${SYSD_PRIVATE_NETWORK:-}" ] && nsargs+=(--private-network)
mkdir -p /run/systemd/nspawn
log "booting container $MACHINE"
T_BOOT=$(date +%s%N)
# Private mount namespace: overlay root + a tmpfs over /run/systemd/nspawn (nspawn refuses to clean up
# its propagate dir on a non-tmpfs /run). Both disappear automatically when nspawn exits.
unshare --mount --propagation private -- /bin/sh -ec '
  mount -t tmpfs -o mode=0755 tmpfs /run/systemd/nspawn
  if ! mount -t overlay overlay -o "lowerdir=$1,upperdir=$2/upper,workdir=$2/work" "$2/root" 2>/dev/null; then
    echo "overlayfs unavailable, copying rootfs" >&2
    cp -a "$1/." "$2/root/"; cp -a "$2/upper/." "$2/root/"
  fi
  shift 2; exec systemd-nspawn "$@"' sh "$CACHE" "$RUN" "${nsargs[@]}" >"$OUT/console.log" 2>&1 </dev/null &
NSPID=$!

for _ in $(seq 600); do                           # container PID 1 = nspawn's child running systemd
  kill -0 "$NSPID" 2>/dev/null || { log "nspawn died:"; tail -20 "$OUT/console.log" >&2; exit 201; }
  for c in $(pgrep -P "$NSPID" || true); do [ "$(cat /proc/$c/comm 2>/dev/null)" = systemd ] && CPID=$c; done
  [ -n "$CPID" ] && break; sleep 0.1
done
[ -n "$CPID" ] || { log "container init not found"; exit 202; }

IN=(nsenter -t "$CPID" -m -u -i -n -p -C -r -w --
    /usr/bin/env -i PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
    HOME=/root LANG=C.UTF-8 TERM=dumb SYSTEMD_PAGER= SYSTEMD_COLORS=0)
state=""
for _ in $(seq 600); do                           # PID 1 may not be listening on its bus yet
  state=$(timeout 120 "${IN[@]}" systemctl is-system-running --wait 2>/dev/null || true)
  case $state in ""|offline|unknown) sleep 0.2 ;; *) break ;; esac
done
log "boot finished in $(( ($(date +%s%N) - T_BOOT) / 1000000 )) ms, system state: ${state:-unknown}"
case $state in running|degraded) ;; *) log "boot failed"; tail -30 "$OUT/console.log" >&2; exit 203 ;; esac
"${IN[@]}" systemctl --failed --no-legend >"$OUT/failed-units.txt" || true
[ -s "$OUT/failed-units.txt" ] && { log "failed units:"; cat "$OUT/failed-units.txt" >&2; }

# ---------------------------------------------------------------- test
# The test runs as a transient service INSIDE the container (proper cgroup, killed cleanly by the
# container's systemd). Only the short-lived systemd-run client lives under nsenter: running the test
# itself directly under nsenter leaves host-parented processes in the container's PID namespace whose
# orphans/zombies go to the *host* init and stall systemd-shutdown.
log "running test: $*"
set +e
( timeout --kill-after=10 $((TIMEOUT + 60)) "${IN[@]}" systemd-run --unit=sysd-test --wait --pipe --quiet \
      --collect --service-type=exec -p WorkingDirectory="$CWD" -p RuntimeMaxSec="$TIMEOUT" \
      -p TimeoutStopSec=10 -E HOME=/root -E LANG=C.UTF-8 -E TERM=dumb -E SYSTEMD_PAGER=cat -E SYSTEMD_COLORS=0 \
      -- /bin/bash -c 'exec "$@"' bash "$@" 2>&1 </dev/null | tee "$OUT/test-output.txt"; exit "${PIPESTATUS[0]}" ) &
TPID=$!
wait "$TPID"                                      # in background so INT/TERM traps fire immediately
TEST_RC=$?
TPID=""
set -e
"${IN[@]}" journalctl -b --no-pager -o short-monotonic >"$OUT/journal.txt" 2>&1 || true
grep -q "sysd-test.service: Service reached runtime time limit" "$OUT/journal.txt" && { log "test timed out after ${TIMEOUT}s"; TEST_RC=124; }
log "test exit status $TEST_RC"
exit "$TEST_RC"
