#!/usr/bin/env bash
# Create (or refresh) the Python virtualenv holding the stock OpenStack
# clients and tempest, used to test Ferrostack from the outside.
#
#   tools/setup-venv.sh            # venv at $REPO/.venv
#   FERROSTACK_VENV=/x tools/setup-venv.sh
#
# Idempotent: the pins (tools/python-requirements.txt), the frozen constraints
# (tools/python-constraints.txt) and the interpreter version are hashed into
# a stamp file inside the venv; when the stamp matches nothing is installed.
# FERROSTACK_VENV_FORCE=1 reinstalls anyway. PYTHON selects the interpreter
# (default python3, needs >= 3.10).
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/.." && pwd)"
venv="${FERROSTACK_VENV:-$repo/.venv}"
python="${PYTHON:-python3}"
reqs="$here/python-requirements.txt"
cons="$here/python-constraints.txt"
stamp="$venv/.ferrostack-stamp"

log() { printf 'setup-venv: %s\n' "$*" >&2; }

if ! command -v "$python" >/dev/null 2>&1; then
    log "no '$python' on PATH (set PYTHON=...)"
    exit 1
fi
if ! "$python" -c 'import sys; sys.exit(0 if sys.version_info >= (3, 10) else 1)'; then
    log "$("$python" -V 2>&1) is too old: tempest 47 needs Python >= 3.10"
    exit 1
fi

pyver="$("$python" -c 'import sys; print("%d.%d.%d" % sys.version_info[:3])')"
want="$( { printf 'python %s\n' "$pyver"; cat "$reqs" "$cons" "$0"; } | sha256sum | cut -d' ' -f1)"

if [[ "${FERROSTACK_VENV_FORCE:-0}" != 1 && -f "$stamp" && -x "$venv/bin/python" ]] \
    && [[ "$(cat "$stamp")" == "$want" ]]; then
    log "up to date: $venv"
    exit 0
fi

if [[ ! -x "$venv/bin/python" ]]; then
    log "creating $venv with $("$python" -V 2>&1)"
    if ! "$python" -m venv "$venv"; then
        log "'$python -m venv' failed (on Debian: apt-get install python3-venv)"
        exit 1
    fi
else
    # a venv built by another interpreter version is rebuilt from scratch
    have="$("$venv/bin/python" -c 'import sys; print("%d.%d.%d" % sys.version_info[:3])' 2>/dev/null || true)"
    if [[ "$have" != "$pyver" ]]; then
        log "venv python is '$have', want $pyver: recreating $venv"
        rm -rf "$venv"
        "$python" -m venv "$venv"
    fi
fi

rm -f "$stamp"
log "installing pinned packages into $venv"
PIP_DISABLE_PIP_VERSION_CHECK=1 "$venv/bin/python" -m pip install \
    --quiet --no-input -r "$reqs" -c "$cons"
# The seed's metering client: python-ceilometerclient 2.9.0 declares
# PrettyTable<0.8, which the other clients' pin (3.x) excludes, yet runs
# with it; installed without its declared dependencies (six is the one
# the rest of the set does not bring).
PIP_DISABLE_PIP_VERSION_CHECK=1 "$venv/bin/python" -m pip install \
    --quiet --no-input --no-deps python-ceilometerclient==2.9.0 six==1.17.0

# sanity: the entry points the test scripts rely on
for exe in openstack tempest stestr subunit2csv subunit-stats pytest schemathesis ceilometer; do
    if [[ ! -x "$venv/bin/$exe" ]]; then
        log "missing $venv/bin/$exe after install"
        exit 1
    fi
done
"$venv/bin/python" -m pip check >/dev/null || log "warning: 'pip check' reports conflicts"

printf '%s\n' "$want" > "$stamp"
log "ready: $venv ($("$venv/bin/tempest" --version 2>/dev/null | head -n1 || echo tempest))"
