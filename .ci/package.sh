#!/usr/bin/env bash
# Release artefacts: build the sdist and wheel with `python -m build`, check them with `twine check`, install
# the wheel into a fresh virtual environment and smoke-test it from a temporary directory (no checkout on
# sys.path): `hatchway --version`, `hatchway explain HW201` from the docs the wheel carries, and the demo app
# served on a free port and fetched over HTTP.
#
# Usage: .ci/package.sh [PYTHON]     PYTHON defaults to python3; the artefacts are left in dist/.
# Environment: HATCHWAY_COMPILE=0 builds the pure-Python wheel (faster); by default the wheel is compiled
# with mypyc where setup.py compiles (CPython), and the script checks that it is.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
python=${1:-python3}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

step() { printf '\n== %s\n' "$*"; }

step "build tools"
"$python" -m venv "$work/tools"
"$work/tools/bin/python" -m pip install -q --upgrade pip
"$work/tools/bin/pip" install -q "build>=1.2" "twine>=5"

step "sdist and wheel (python -m build: the wheel is built from the sdist)"
rm -rf dist
"$work/tools/bin/python" -m build --outdir dist . >"$work/build.log" 2>&1 || { cat "$work/build.log"; exit 1; }
grep -E "^(hatchway: |Successfully built)" "$work/build.log" || true
ls -l dist
sdist=$(ls dist/hatchway-*.tar.gz)
wheel=$(ls dist/hatchway-*.whl)

step "twine check"
"$work/tools/bin/twine" check --strict dist/*

step "contents: the sdist carries docs/, the wheel the pages explain prints"
tar tzf "$sdist" >"$work/sdist.txt"
grep -q '/docs/errors.md$' "$work/sdist.txt"
grep -q '/LICENSE$' "$work/sdist.txt"
"$work/tools/bin/python" - "$wheel" "$root/docs" <<'PY'
import sys, zipfile
from pathlib import Path
wheel, docs = zipfile.ZipFile(sys.argv[1]), Path(sys.argv[2])
names = set(wheel.namelist())
expected = ["errors.md", "checker.md", *(f"rules/{p.name}" for p in sorted((docs / "rules").glob("HW*.md")))]
for page in expected:
    packaged = wheel.read(f"hatchway/_docs/{page}")
    assert packaged == (docs / page).read_bytes(), f"hatchway/_docs/{page} differs from docs/{page}"
assert any(n.startswith("hatchway-") and n.endswith("/licenses/LICENSE") for n in names), "no LICENSE in the wheel"
print(f"{len(expected)} pages in the wheel, equal to docs/; LICENSE present")
PY

step "install the wheel into a fresh venv"
"$python" -m venv "$work/venv"
"$work/venv/bin/python" -m pip install -q --upgrade pip
"$work/venv/bin/pip" install -q "$wheel"

step "smoke test, from a directory without the checkout"
mkdir "$work/elsewhere"
cd "$work/elsewhere"
export PATH="$work/venv/bin:$PATH"
hatchway --version
hatchway explain HW201 >"$work/explain.txt"
head -3 "$work/explain.txt"
grep -q "Could not import module" "$work/explain.txt"
hatchway explain HW001 >"$work/explain.txt"
head -1 "$work/explain.txt"
python -c "import hatchway, sys; assert '/site-packages/' in hatchway.__file__, hatchway.__file__; print(hatchway.__file__)"
if [ "${HATCHWAY_COMPILE:-1}" != 0 ]; then
    # Compiled wherever setup.py compiles (CPython; pure Python elsewhere).
    python - <<'PY'
import platform, sys
import hatchway._http.protocol as protocol
compiled = not protocol.__file__.endswith(".py")
wanted = platform.python_implementation() == "CPython"
print("hot path:", "compiled" if compiled else "pure Python", protocol.__file__)
sys.exit(compiled != wanted)
PY
fi
python - <<'PY'
"""Serve the demo app on a free port, read the real address from the start-up line, fetch the page, stop."""
import queue, re, signal, subprocess, threading, urllib.request

proc = subprocess.Popen(
    ["hatchway", "hatchway.demo:app", "--port", "0"],
    stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
)
lines: "queue.Queue[str]" = queue.Queue()
threading.Thread(target=lambda: [lines.put(line) for line in proc.stdout], daemon=True).start()
try:
    while True:
        line = lines.get(timeout=30)
        print(line, end="")
        match = re.search(r"running on (http://\S+)", line)
        if match:
            break
    with urllib.request.urlopen(match.group(1) + "/", timeout=10) as response:
        body = response.read()
        assert response.status == 200, response.status
    assert b"hatchway" in body.lower(), body[:200]
    print(f"GET {match.group(1)}/ -> 200, {len(body)} bytes")
finally:
    proc.send_signal(signal.SIGINT)
    code = proc.wait(timeout=15)
assert code == 0, f"exit status {code}"
print("stopped cleanly")
PY
cd "$root"
step "ok: $(basename "$sdist") $(basename "$wheel")"
