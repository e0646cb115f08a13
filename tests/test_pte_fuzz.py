"""Fuzzing the ``.pte`` and ETRecord readers with mutated real files (hypothesis).

Whatever the bytes, opening gives a graph collection that serializes, or our one-line
``EtvizError`` naming the file; any other exception or a hang is a failure. Counts are
bounded (``ETVIZ_FUZZ_EXAMPLES``) as in ``test_reliability_fuzz.py``.
"""

from __future__ import annotations

import io
import json
import os
import zipfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from etviz_lsp.errors import EtvizError
from etviz_lsp.graph import inputs
from tests.test_pte_etrecord import artifacts  # noqa: F401 (the session fixture)

FUZZ = settings(
    max_examples=int(os.environ.get("ETVIZ_FUZZ_EXAMPLES", "150")),
    deadline=None,
    derandomize="ETVIZ_FUZZ_EXAMPLES" not in os.environ,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
EDITS = st.lists(st.tuples(st.floats(0, 1, exclude_max=True), st.integers(0, 255)), max_size=8)


def _mutated(data: bytes, edits: list[tuple[float, int]], cut: float | None) -> bytes:
    buf = bytearray(data)
    for where, value in edits:
        buf[int(where * len(buf))] = value
    return bytes(buf[: int(cut * len(buf))] if cut is not None else buf)


def _opens_or_says_why(path: Path) -> None:
    try:
        collection = inputs.known_kind(path).read(path)
    except EtvizError as exc:
        assert str(exc).startswith(str(path)) and "\n" not in str(exc), str(exc)
        return
    json.dumps(collection.to_json())


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("fuzz-pte")


@FUZZ
@given(part=st.sampled_from(["program", "blobs"]), edits=EDITS, cut=st.none() | st.floats(0, 1))
def test_mutated_pte(artifacts, folder: Path, part: str, edits, cut) -> None:  # noqa: F811
    # The program FlatBuffer (the first ~1.9 KB) or the XNNPACK blobs after it (their own
    # header and FlatBuffer, read for the delegates' nested graphs).
    data = artifacts.pte.read_bytes()
    start, end = (0, 1920) if part == "program" else (1920, len(data))
    middle = _mutated(data[start:end], edits, None)
    path = folder / "mutated.pte"
    path.write_bytes(_mutated(data[:start] + middle + data[end:], [], cut))
    _opens_or_says_why(path)


@FUZZ
@given(member=st.sampled_from(["edge_dialect_exported_program/forward", "exported_program",
                               "debug_handle_map", "delegate_map"]),
       edits=EDITS, cut=st.none() | st.floats(0, 1))
def test_mutated_etrecord(artifacts, folder: Path, member: str, edits, cut) -> None:  # noqa: F811
    out = io.BytesIO()
    with zipfile.ZipFile(artifacts.etrecord) as src, zipfile.ZipFile(out, "w") as dst:
        for info in src.infolist():
            data = src.read(info)
            dst.writestr(info, _mutated(data, edits, cut) if info.filename == member else data)
    path = folder / "mutated.etrecord"
    path.write_bytes(out.getvalue())
    _opens_or_says_why(path)
    beside = folder / "mutated.pte"  # and a .pte with that ETRecord beside it still opens
    beside.write_bytes(artifacts.pte.read_bytes())
    _opens_or_says_why(beside)
