"""Coverage-guided fuzzing of both codecs with atheris (libFuzzer): never raise, well-formed events, agreement.

    /work/venv/bin/pip install atheris
    /work/venv/bin/python fuzz/atheris_codecs.py -atheris_runs=2000000 fuzz/corpus   # or -max_total_time=600

The first byte picks how the input is split into reads, so split-dependent bugs are reachable too. The corpus
directory is seeded with the shared table's valid requests on first use.
"""

from __future__ import annotations

import sys
from pathlib import Path

import atheris

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

# Coverage feedback from the parsers only (h11, hatchway's codecs and checks); llhttp is C and not instrumented.
with atheris.instrument_imports(include=["hatchway", "h11"]):
    import h11  # noqa: F401

    import hatchway._http.h11_codec
    import hatchway._http.httptools_codec
    import hatchway._http.validate  # noqa: F401

from fuzz_codecs import CODECS, KNOWN_DIFFERENCES, VALID, check_well_formed, run, verdict


def test_one_input(data: bytes) -> None:
    if not data:
        return
    step = data[0] or len(data)
    body = data[1:]
    pieces = [body[i : i + step] for i in range(0, len(body), step)] or [b""]
    verdicts = []
    for make in CODECS.values():
        events = run(make(), pieces)
        check_well_formed(events)
        verdicts.append(verdict(run(make(), [body + b"\r\n\r\n"])))
    # Both parsers accept or refuse alike (outside the documented differences), once both can decide.
    if None not in verdicts and not any(known(body) for known in KNOWN_DIFFERENCES):
        assert verdicts[0] == verdicts[1], (verdicts, body)


def seed(corpus: Path) -> None:
    corpus.mkdir(parents=True, exist_ok=True)
    if not any(corpus.iterdir()):
        for index, raw in enumerate(VALID):
            (corpus / f"valid-{index}").write_bytes(b"\x00" + raw)


if __name__ == "__main__":
    dirs = [Path(arg) for arg in sys.argv[1:] if not arg.startswith("-")]
    for directory in dirs:
        seed(directory)
    atheris.Setup(sys.argv, test_one_input)
    atheris.Fuzz()
