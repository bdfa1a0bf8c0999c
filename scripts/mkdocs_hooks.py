"""MkDocs hook (mkdocs.yml ``hooks:``): adds files that live outside docs/ to the site, without copying them.

- ``changelog.md`` is the repository's ``CHANGELOG.md``;
- ``images/benchmarks.png`` is ``benchmarks/results/latest.png``, written by ``benchmarks/run.py``.

It also lists every checker rule page (``docs/rules/HW*.md``) in the navigation under "Checker", titled by
its first heading, so a new rule needs no edit of mkdocs.yml.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from mkdocs.structure.files import File, Files

ROOT = Path(__file__).resolve().parent.parent
EXTERNAL = {
    "changelog.md": ROOT / "CHANGELOG.md",
    "images/benchmarks.png": ROOT / "benchmarks" / "results" / "latest.png",
}


def on_config(config: Any) -> Any:
    rules = []
    for page in sorted((Path(config.docs_dir) / "rules").glob("HW*.md")):
        title = page.read_text(encoding="utf-8").partition("\n")[0].lstrip("#").strip()
        rules.append({title or page.stem: f"rules/{page.name}"})
    for entry in config.nav or []:
        if isinstance(entry, dict) and "Checker" in entry:
            entry["Checker"] = [*entry["Checker"], *rules]
            break
    else:
        raise ValueError("mkdocs.yml: the nav has no 'Checker' section for the rule pages")
    return config


def on_files(files: Files, config: Any) -> Files:
    for uri, path in EXTERNAL.items():
        files.append(File.generated(config, uri, abs_src_path=str(path)))
    return files
