"""The parser-seam fuzz properties (``fuzz/fuzz_codecs.py``), briefly; set HATCHWAY_FUZZ_EXAMPLES for more."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

_PATH = Path(__file__).resolve().parent.parent / "fuzz" / "fuzz_codecs.py"
_spec = importlib.util.spec_from_file_location("fuzz_codecs", _PATH)
assert _spec is not None
assert _spec.loader is not None
fuzz_codecs = importlib.util.module_from_spec(_spec)
sys.modules["fuzz_codecs"] = fuzz_codecs
_spec.loader.exec_module(fuzz_codecs)

test_codecs_never_raise_and_emit_well_formed_events = (
    fuzz_codecs.test_codecs_never_raise_and_emit_well_formed_events
)
test_valid_corpus_accepted_identically = fuzz_codecs.test_valid_corpus_accepted_identically
test_codecs_agree_on_mutated_requests = fuzz_codecs.test_codecs_agree_on_mutated_requests


def test_corpus_is_not_empty() -> None:
    assert len(fuzz_codecs.VALID) > 20
