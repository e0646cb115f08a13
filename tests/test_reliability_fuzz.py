"""Fuzzing the direct ``.pt2`` reader with mutated real archives (hypothesis).

Whatever the bytes, the default path (``convert.from_pt2(path)``, no pickle opt-in: what
the command line and the language server do unless the user allows unpickling) either
gives a graph collection that serializes, or raises our one-line ``EtvizError`` naming
the file. Any
other exception, a hang or a payload run is a failure. Example counts are bounded so the
module stays well under a minute on a shared 2-core machine.
"""

from __future__ import annotations

import io
import json
import os
import zipfile
from pathlib import Path
from typing import Any

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from etviz_lsp.errors import EtvizError
from etviz_lsp.graph import convert
from tests import corpus

FUZZ = settings(
    max_examples=int(os.environ.get("ETVIZ_FUZZ_EXAMPLES", "150")),
    deadline=None,
    derandomize="ETVIZ_FUZZ_EXAMPLES" not in os.environ,  # fixed examples in make test
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


@pytest.fixture(scope="module")
def seeds(tmp_path_factory: pytest.TempPathFactory) -> dict[str, bytes]:
    """Real archives written by torch.export.save: nested layers, a mutation, torch.cond."""
    folder = tmp_path_factory.mktemp("fuzz-seeds")
    found = {}
    for name in ("mutation_model", "cond_model", "symint_model"):
        path = folder / f"{name}.pt2"
        torch.export.save(corpus.CORPUS[name](), str(path))
        found[name] = path.read_bytes()
    return found


@pytest.fixture(scope="module")
def target(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("fuzz") / "mutated.pt2"


def only_our_error(path: Path, data: bytes) -> None:
    path.write_bytes(data)
    try:
        collection = convert.from_pt2(path)
    except EtvizError as error:
        text = str(error)
        assert "\n" not in text, text
        assert text.startswith(str(path)), text
        return
    json.dumps(collection.to_json())  # what was read must also be writable


def entries(data: bytes) -> dict[str, bytes]:
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        return {name: archive.read(name) for name in archive.namelist()}


def zipped(files: dict[str, bytes]) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as archive:
        for name, data in files.items():
            archive.writestr(name, data)
    return out.getvalue()


def program_name(files: dict[str, bytes]) -> str:
    return next(n for n in files if "/models/" in n and n.endswith(".json"))


json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-3, 3) | st.floats(allow_nan=False)
    | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner,
                                                                 max_size=3),
    max_leaves=6,
)


def containers(value: Any, found: list[Any]) -> list[Any]:
    """Every dict and list inside ``value`` (depth first), the mutation sites."""
    if isinstance(value, dict):
        found.append(value)
        for item in value.values():
            containers(item, found)
    elif isinstance(value, list):
        found.append(value)
        for item in value:
            containers(item, found)
    return found


def mutate(data: st.DataObject, program: Any, rounds: int) -> None:
    """Delete, replace or retype values at random places of the serialized program."""
    sites = containers(program, [])
    for _ in range(rounds):
        site = data.draw(st.sampled_from(sites))
        if not site:
            continue
        key = data.draw(st.sampled_from(list(site.keys()) if isinstance(site, dict)
                                        else list(range(len(site)))))
        action = data.draw(st.sampled_from(["delete", "replace", "stringify", "empty"]))
        if action == "delete":
            del site[key]
        elif action == "replace":
            site[key] = data.draw(json_values)
        elif action == "stringify":
            site[key] = json.dumps(site[key])[:20]
        else:
            site[key] = type(site[key])() if isinstance(site[key], (dict, list, str)) else None


@FUZZ
@given(data=st.data())
def test_mutated_program_json_only_raises_our_error(
    seeds: dict[str, bytes], target: Path, data: st.DataObject
) -> None:
    files = entries(seeds[data.draw(st.sampled_from(sorted(seeds)))])
    name = program_name(files)
    program = json.loads(files[name])
    mutate(data, program, data.draw(st.integers(1, 4)))
    files[name] = json.dumps(program).encode()
    only_our_error(target, zipped(files))


@FUZZ
@given(data=st.data())
def test_mutated_weights_config_only_raises_our_error(
    seeds: dict[str, bytes], target: Path, data: st.DataObject
) -> None:
    files = entries(seeds["mutation_model"])
    name = next(n for n in files if n.endswith("model_weights_config.json"))
    config = json.loads(files[name])
    mutate(data, config, data.draw(st.integers(1, 3)))
    files[name] = json.dumps(config).encode()
    only_our_error(target, zipped(files))


@FUZZ
@given(data=st.data())
def test_flipped_bytes_and_cuts_only_raise_our_error(
    seeds: dict[str, bytes], target: Path, data: st.DataObject
) -> None:
    raw = bytearray(seeds[data.draw(st.sampled_from(sorted(seeds)))])
    for _ in range(data.draw(st.integers(1, 8))):
        raw[data.draw(st.integers(0, len(raw) - 1))] = data.draw(st.integers(0, 255))
    if data.draw(st.booleans()):
        raw = raw[: data.draw(st.integers(0, len(raw)))]
    only_our_error(target, bytes(raw))


@FUZZ
@given(data=st.data())
def test_renamed_dropped_and_extra_entries_only_raise_our_error(
    seeds: dict[str, bytes], target: Path, data: st.DataObject
) -> None:
    files = entries(seeds[data.draw(st.sampled_from(sorted(seeds)))])
    names = sorted(files)
    for _ in range(data.draw(st.integers(1, 3))):
        name = data.draw(st.sampled_from(names))
        if name not in files:
            continue
        action = data.draw(st.sampled_from(["drop", "rename", "garbage", "not-an-object"]))
        if action == "drop":
            del files[name]
        elif action == "rename":
            files[data.draw(st.sampled_from(["x/models/", "models/", "x/data/", ""]))
                  + data.draw(st.text("abc./", min_size=1, max_size=6))] = files.pop(name)
        elif action == "garbage":
            files[name] = data.draw(st.binary(max_size=64))
        else:
            files[name] = json.dumps(data.draw(json_values)).encode()
    only_our_error(target, zipped(files))
