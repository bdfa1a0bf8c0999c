#!/usr/bin/env bash
# Wheels as users get them: for each Python on the machine (3.10-3.14, or the versions given as arguments),
# build a wheel with `python -m build --wheel`, install it with the test extra into a fresh venv, check that
# the hot path in it is compiled and that the installed wheel (not src/) is what is imported, and run the
# suite from this checkout's tests/ against it.
#
#     bash .ci/wheels.sh              # every Python among 3.10-3.14 found on the machine
#     bash .ci/wheels.sh 3.12 3.13    # just these
#
# About 1 min to build and 1-1.5 min of tests per Python on 2 cores. A Python not on the machine is skipped
# with a note; any failure stops the script with a non-zero status.
set -euo pipefail
cd "$(dirname "$0")/.."

find_python() {  # as .ci/run finds them: on PATH, else under pyenv's versions
    if "python$1" -c "" 2>/dev/null; then
        echo "python$1"
        return
    fi
    for candidate in "$HOME"/.pyenv/versions/"$1"*/bin/"python$1"; do
        [ -x "$candidate" ] && echo "$candidate" && return
    done
    return 0  # not found: the caller sees an empty answer (under set -e a failing status would end the run)
}

wheel_run() {  # VERSION
    local version=$1 py builder=".ci-venv-wheel-build-$1" venv=".ci-venv-wheel-$1" dist=".ci-dist-$1" wheel
    py=$(find_python "$version")
    if [ -z "$py" ]; then
        echo "Python $version is not on this machine: skipped."
        return
    fi
    echo "== Python $version ($py): wheel"
    rm -rf "$builder" "$venv" "$dist" build
    "$py" -m venv "$builder"
    "$builder"/bin/python -m pip install -q --upgrade pip build
    "$builder"/bin/python -m build --wheel --outdir "$dist" . >"$dist.log" 2>&1 || { cat "$dist.log"; return 1; }
    rm -rf build "$builder"
    wheel=$(ls "$dist"/hatchway-*.whl)
    echo "built $wheel"
    case "$wheel" in
        *-none-any.whl) echo "error: $wheel is pure Python: the hot path did not compile"; cat "$dist.log"; return 1 ;;
    esac

    "$py" -m venv "$venv"
    "$venv"/bin/python -m pip install -q --upgrade pip
    "$venv"/bin/pip install -q "$wheel[test]"
    # The suite runs from this checkout, whose src/ must not shadow the wheel: check what is imported.
    "$venv"/bin/python - "$venv" <<'EOF'
import os
import sys

import hatchway
import hatchway._http.protocol as protocol

venv = os.path.realpath(sys.argv[1])
print("hatchway from", hatchway.__file__)
print("hot path from", protocol.__file__)
assert os.path.realpath(hatchway.__file__).startswith(venv), "the suite would not test the installed wheel"
assert not protocol.__file__.endswith(".py"), "the installed hot path is not compiled"
EOF
    echo "== Python $version: the suite against the wheel"
    "$venv"/bin/python -m pytest -q -n 2 -p no:cacheprovider
    rm -rf "$dist" "$dist.log"
}

versions=("$@")
[ ${#versions[@]} -gt 0 ] || versions=(3.10 3.11 3.12 3.13 3.14)
for version in "${versions[@]}"; do
    wheel_run "$version"
done
