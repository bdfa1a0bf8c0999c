#!/usr/bin/env bash
# The documentation site: build it from docs/ with MkDocs + Material in strict mode (every warning, broken link
# or anchor fails the build), then look at it in headless Chromium (scripts/check_site.py): every page renders,
# no image or asset is broken, the search index loads and a query lists results.
#
# Usage: .ci/docs.sh [PYTHON]     PYTHON defaults to python3. The site is left in site/ (gitignored).
# Installs Debian's chromium with apt-get when no Chromium is on PATH (set $CHROMIUM to use another binary).
set -euo pipefail
cd "$(dirname "$0")/.."
python=${1:-python3}
venv=.ci-venv-docs

if [ -z "${CHROMIUM:-}" ] && ! command -v chromium >/dev/null 2>&1; then
    apt-get update -qq && apt-get install -y -qq chromium >/dev/null
fi

"$python" -m venv "$venv"
"$venv"/bin/python -m pip install -q --upgrade pip
# The tools only (the docs extra), not hatchway itself: the site is built from the Markdown. websockets drives
# Chromium.
"$venv"/bin/pip install -q "mkdocs>=1.6,<2" "mkdocs-material>=9.5,<10" "websockets>=14"

# The versions above are the docs extra's (pyproject.toml); keep the two in step.
"$venv"/bin/python - <<'PY'
import re, sys, tomllib
extras = tomllib.load(open("pyproject.toml", "rb"))["project"]["optional-dependencies"]["docs"]
script = open(".ci/docs.sh").read()
missing = [pin for pin in extras if f'"{pin}"' not in script]
sys.exit(f".ci/docs.sh installs other versions than the docs extra: {missing}" if missing else 0)
PY

export NO_MKDOCS_2_WARNING=1
"$venv"/bin/mkdocs build --strict --clean
"$venv"/bin/python scripts/check_site.py site
