#!/usr/bin/env bash
# make test-systemd: channel-bridge under a real systemd 252 (Debian 12) booted in a container.
#
# On the host: build the wheels of the project and of its dependencies, then boot the
# container (harness.sh) with the project's files and the wheels copied in. Inside, as root,
# scenario.py installs the project offline exactly as the operator guide says, installs the
# unit, runs a feed server and a fake WAHA on loopback, and drives the service with
# systemctl (start, reload, kill -9, a stalled event loop, stop).
#
# Needs root (systemd-nspawn) and, on the first run, Debian's mirror (the rootfs is cached
# under $SYSD_WORK) and the package index (wheels). Without root it skips, saying so.
# Env: PYTHON (for pip wheel; default .venv/bin/python, else python3), TEST_SYSTEMD_OUT
# (where the journal and logs go; default build/test-systemd), and harness.sh's SYSD_*.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)

if [ "$(id -u)" != 0 ]; then
  echo "test-systemd SKIPPED: it boots systemd in a container (systemd-nspawn) and needs root;" \
       "run it as root: sudo make test-systemd" >&2
  exit 0
fi

t0=$(date +%s)
python=${PYTHON:-}
if [ -z "$python" ]; then
  if [ -x "$root/.venv/bin/python" ]; then python=$root/.venv/bin/python; else python=python3; fi
fi
out=${TEST_SYSTEMD_OUT:-$root/build/test-systemd}
rm -rf "$out"
mkdir -p "$out"

stage=$(mktemp -d "${TMPDIR:-/var/tmp}/channel-bridge-systemd.XXXXXX")
trap 'rm -rf "$stage"' EXIT
mkdir -p "$stage/payload/src" "$stage/payload/wheels"

# The project as a clone has it: the tracked files (as they are in the working tree), nothing
# else (no .venv, state, caches, or someone's untracked experiments).
if git -C "$root" rev-parse --is-inside-work-tree >/dev/null 2>&1; then
  (cd "$root" && git ls-files -z --cached) |
    (cd "$root" && while IFS= read -r -d '' f; do [ -e "$f" ] || [ -L "$f" ] && printf '%s\0' "$f"; done) |
    (cd "$root" && xargs -0 -r cp -P --parents -t "$stage/payload/src")
else
  tar -C "$root" --exclude=.venv --exclude=.git --exclude=build --exclude='*.egg-info' \
      --exclude=__pycache__ --exclude='.*_cache' --exclude='state/*' -cf - . | tar -C "$stage/payload/src" -xf -
fi

# Wheels for an offline `pip install .` inside: the project's dependencies, and the build
# backend that pip's isolated build of the project needs. They must suit the container's
# python3 (Debian 12: 3.11.2), not this one: `pip wheel` builds what has no wheel (sdists),
# then `pip download` picks, for that Python, the versions it accepts (some recent releases
# want 3.11.5 or newer).
target_python=3.11.2
echo "[test-systemd] building wheels for Python $target_python" >&2
"$python" -m pip wheel --quiet --disable-pip-version-check --wheel-dir "$stage/built" \
    "$stage/payload/src" "setuptools>=77"
rm -rf "$stage/payload/src/build" "$stage/payload/src"/*.egg-info
"$python" -m pip download --quiet --disable-pip-version-check --dest "$stage/payload/wheels" \
    --python-version "$target_python" --only-binary=:all: --find-links "$stage/built" \
    "$stage"/built/channel_bridge-*.whl "setuptools>=77"
echo "[test-systemd] wheels ready in $(( $(date +%s) - t0 ))s: $(ls "$stage/payload/wheels" | wc -l) files" >&2

# Loopback only inside: the fakes are the whole world, and nothing leaks to the host's network.
status=0
SYSD_PRIVATE_NETWORK=1 "$here/harness.sh" -s "$stage/payload" -d /opt/test -o "$out" -t 480 -- \
    python3 src/tests/systemd/scenario.py || status=$?
echo "[test-systemd] finished in $(( $(date +%s) - t0 ))s with status $status; journal and logs in $out" >&2
exit "$status"
