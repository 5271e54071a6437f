"""Exports written by gankit before the architecture redesign (issue 16) still load and draw the same bytes.

``tests/fixtures/exports/*.safetensors`` were written by the pre-redesign code
(``benchmarks/behaviour_fingerprint.py --fixtures``); ``tests/fixtures/behaviour.json`` holds the hashes
of what each one drew then, through the public sampling API, with every kind of condition.
"""

import importlib.util
import json
from pathlib import Path

import pytest

FIXTURES = Path(__file__).parent / "fixtures"
RECORDED = json.loads((FIXTURES / "behaviour.json").read_text())


def fingerprint_module():
    path = Path(__file__).parents[1] / "benchmarks" / "behaviour_fingerprint.py"
    spec = importlib.util.spec_from_file_location("behaviour_fingerprint", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("family", sorted(RECORDED))
def test_an_export_written_before_the_redesign_draws_the_same_bytes(family):
    export = FIXTURES / "exports" / f"{family}.safetensors"
    with pytest.warns(UserWarning, match="written before gankit recorded checksums"):  # and loads all the same
        assert fingerprint_module().sample_hashes(export) == RECORDED[family]["samples"]
