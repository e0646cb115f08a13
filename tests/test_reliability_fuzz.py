"""Fuzzing the direct ``.pt2`` reader with mutated real archives (hypothesis).

Whatever the bytes, the default path (``convert.from_pt2(path)``, no pickle opt-in: what
the command line and the language server do unless the user allows unpickling) either
gives a graph collection that serializes, or raises our one-line ``EtvizError`` naming
the file. Any
other exception, a hang or a payload run is a failure. Example counts are bounded so the
module stays well under a minute on a shared 2-core machine.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import time
import tracemalloc
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from etviz_lsp.errors import EtvizError
from etviz_lsp.graph import convert
from etviz_lsp.graph.binary import limits
from etviz_lsp.graph.readers import pt2_archive
from tests import corpus, crafted_zip

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


def zipped(files: dict[str, bytes], compression: int = zipfile.ZIP_STORED) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", compression=compression) as archive:
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


# ---- the limits: lying headers, deep nesting, huge strings and counts ----------------------
#
# Every case below must end as above (a graph, or one line naming the file) within a time
# and memory bound. Time is the CPU the process spent (a busy shared machine stretches the
# wall clock two to three times, not the work). Memory is what Python allocated at the peak
# (tracemalloc: the decoded JSON, the inflated bytes), over what it held before.

BOUNDED_SECONDS = 5.0  # CPU seconds, tracemalloc on; well under in practice
BOUNDED_MB = 300


@contextlib.contextmanager
def bounded(seconds: float = BOUNDED_SECONDS, megabytes: int = BOUNDED_MB) -> Iterator[None]:
    tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    started = time.process_time()
    try:
        yield
    finally:
        took = time.process_time() - started
        peak = (tracemalloc.get_traced_memory()[1] - before) / (1 << 20)
        tracemalloc.stop()
    assert took < seconds, f"took {took:.1f} s of CPU"
    assert peak < megabytes, f"peak {peak:.0f} MB"


def bounded_error(path: Path, members: list[crafted_zip.Member]) -> None:
    crafted_zip.write(path, members)
    with bounded():
        only_our_error(path, path.read_bytes())


def members_of(data: bytes) -> list[crafted_zip.Member]:
    return [crafted_zip.stored(name, body) for name, body in entries(data).items()]


BLANKS = b" " * (4 << 20)


def edited_program(
    seeds: dict[str, bytes], edit: Callable[[dict[str, Any]], bytes | None],
    compression: int = zipfile.ZIP_STORED,
) -> bytes:
    """The mutation model's archive with its program JSON edited: ``edit`` changes the
    program in place (None) or returns the new JSON text itself."""
    files = entries(seeds["mutation_model"])
    name = program_name(files)
    program = json.loads(files[name])
    text = edit(program)
    files[name] = text if text is not None else json.dumps(program).encode()
    return zipped(files, compression)


@FUZZ
@given(data=st.data())
def test_lying_zip_headers_only_raise_our_error_bounded(
    seeds: dict[str, bytes], target: Path, data: st.DataObject
) -> None:
    """The program JSON, maybe followed by up to 128 MiB of blanks (valid JSON still),
    stored or deflated, under headers that may lie about both sizes and the CRC."""
    members = members_of(seeds[data.draw(st.sampled_from(sorted(seeds)))])
    index = next(i for i, m in enumerate(members) if "/models/" in m.name)
    program = members[index]
    repeat = data.draw(st.sampled_from([0, 1, 3, 32]))
    if data.draw(st.booleans()):
        member = crafted_zip.deflated(program.name, program.data, BLANKS, repeat)
    else:  # stored blanks are real bytes on disk: keep them small
        member = crafted_zip.stored(program.name, program.data + BLANKS[: repeat << 10])
    true_size, true_packed = member.size, len(member.data)
    lies = st.sampled_from([None, 0, 1, 2, 100])  # None: the truth; else a factor / 10
    size, packed = data.draw(lies), data.draw(lies)
    member = replace(
        member,
        size=true_size if size is None else true_size * size // 10,
        compressed_size=None if packed is None else true_packed * packed // 10,
        crc=member.crc if data.draw(st.booleans()) else member.crc ^ 1,
    )
    members[index] = member
    bounded_error(target, members)


def nested(depth: int, leaf: Any) -> Any:
    value = leaf
    for level in range(depth):
        value = [value] if level % 2 else {"as_int": value}
    return value


NEST_SITES = ["signature", "schema_version", "graph input", "node argument", "tensor value"]


def put(program: dict[str, Any], site: str, value: Any) -> None:
    graph = program["graph_module"]["graph"]
    if site == "signature":
        program["graph_module"]["signature"]["input_specs"] = value
    elif site == "schema_version":
        program["schema_version"] = value
    elif site == "graph input":
        graph["inputs"].append(value)
    elif site == "node argument":
        graph["nodes"][0]["inputs"][0]["arg"] = value
    else:
        graph["tensor_values"][next(iter(graph["tensor_values"]))] = value


@pytest.mark.parametrize("site", NEST_SITES)
@pytest.mark.parametrize("depth", [200, 900, 5_000, 200_000])
def test_deep_nesting_only_raises_our_error_bounded(
    seeds: dict[str, bytes], target: Path, site: str, depth: int
) -> None:
    def edit(program: dict[str, Any]) -> bytes | None:
        if depth >= 900:  # json.dumps recurses too: the nest's text is written by hand
            return nest_text(program, site, depth)
        put(program, site, nested(depth, 1))
        return None

    with bounded():
        only_our_error(target, edited_program(seeds, edit))


def nest_text(program: dict[str, Any], site: str, depth: int) -> bytes:
    put(program, site, "NEST")
    opening = "".join("[" if level % 2 else '{"as_int": ' for level in reversed(range(depth)))
    closing = "".join("]" if level % 2 else "}" for level in range(depth))
    return json.dumps(program).replace('"NEST"', opening + "1" + closing, 1).encode()


STRING_SITES = ["target", "name", "stack_trace", "nn_module_stack", "tensor name"]


@pytest.mark.parametrize("site", STRING_SITES)
def test_huge_strings_only_raise_our_error_bounded(
    seeds: dict[str, bytes], target: Path, site: str
) -> None:
    """An 8 MiB string where a name, target or metadata text goes."""
    huge = "x" * (8 << 20)

    def edit(program: dict[str, Any]) -> None:
        node = program["graph_module"]["graph"]["nodes"][0]
        if site in ("target", "name"):
            node[site] = huge
        elif site == "tensor name":
            node["outputs"][0]["as_tensor"]["name"] = huge
        else:
            node.setdefault("metadata", {})[site] = huge

    with bounded(megabytes=600):  # the graph itself holds the string, a few times over
        only_our_error(target, edited_program(seeds, edit))


@pytest.mark.parametrize(
    "what", ["empty nodes", "copied nodes", "graph inputs", "int list", "tensor values"]
)
def test_huge_counts_only_raise_our_error_bounded(
    seeds: dict[str, bytes], target: Path, what: str
) -> None:
    """Lists of a million entries (deflated: the archive stays small)."""

    def edit(program: dict[str, Any]) -> None:
        graph = program["graph_module"]["graph"]
        if what == "empty nodes":
            graph["nodes"] = [{}] * 1_000_000
        elif what == "copied nodes":
            graph["nodes"] = graph["nodes"][:1] * 200_000
        elif what == "graph inputs":
            graph["inputs"] = [{"as_none": True}] * 1_000_000
        elif what == "int list":
            graph["nodes"][0]["inputs"][0]["arg"] = {"as_ints": [7] * 1_000_000}
        else:
            graph["tensor_values"] = {f"t{i}": {"dtype": 7, "sizes": []} for i in range(300_000)}

    crafted = edited_program(seeds, edit, zipfile.ZIP_DEFLATED)
    with bounded(seconds=15.0, megabytes=600):
        only_our_error(target, crafted)


def test_more_nodes_than_the_limit_are_refused_unread(
    seeds: dict[str, bytes], target: Path
) -> None:
    def edit(program: dict[str, Any]) -> None:
        program["graph_module"]["graph"]["nodes"] *= 500  # ~1,500 nodes, limit 1,000 below

    target.write_bytes(edited_program(seeds, edit))
    with pytest.raises(limits.LimitExceeded) as caught:
        pt2_archive.read_records(target, limits.Limits(max_nodes=1_000))
    text = str(caught.value)
    assert "\n" not in text and text.startswith(str(target)), text
    assert "over the limit of 1,000" in text and "refused unread" in text
