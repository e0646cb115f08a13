"""Read an ETRecord (``.etrecord``) without torch and without unpickling.

An ETRecord is a zip that ``to_edge_transform_and_lower(..., generate_etrecord=True)``
writes next to a ``.pte``. Its programs (``exported_program``,
``edge_dialect_exported_program/<method>``) are the serialized-program JSON a ``.pt2``
holds, written by ExecuTorch's copy of torch's serializer (schema 5.x), so the ``.pt2``
reader (``pt2_archive.read_member``) reads them. ``debug_handle_map``, ``delegate_map``
and ``instruction_id_to_num_outs_map`` (JSON) say which edge ops (by debug handle) each
``.pte`` instruction runs, and on which backend. The ``*_state_dict``, ``*_constants``,
``*_example_inputs``, ``reference_outputs`` and ``representative_inputs`` entries are
pickles: they are never opened.

The graphs: the exported program, the edge program of each method (ExecuTorch 1.5 stores it
before delegation), and the lowered view: the same edge program with every op a delegate
took over inside its partition layer (``XnnpackBackend #0``), as for a lowered script.
"""

from __future__ import annotations

import json
import zipfile
from pathlib import Path
from typing import Any

import msgspec

from etviz_lsp.errors import EtvizError
from etviz_lsp.graph.binary import limits
from etviz_lsp.graph.core import builder, ir, model, source
from etviz_lsp.graph.readers import not_delegated_file, pt2_archive, pt2_schema, pt2_zip
from etviz_lsp.graph.readers.links import Links

IDENTIFIER = "ETRECORD_V0"
EXPORTED = "exported_program"
EDGE_PREFIX = "edge_dialect_exported_program/"
EXECUTORCH_SCHEMA_MAJOR = 5  # exir/serde/schema.py in executorch 1.5
MAX_MAP_BYTES = 64 * 1024 * 1024  # the JSON maps: a few bytes per instruction
_MAPS = ("debug_handle_map", "delegate_map", "instruction_id_to_num_outs_map")
# Entries that are pickles (torch.save): listed on the graph, never read.
_PICKLED_SUFFIXES = ("_state_dict", "_constants", "_example_inputs")


def read_etrecord(
    path: Path, *, allow_pickle: bool = False, etrecord: Path | None = None,
    beside: Path | None = None,
) -> model.GraphCollection:
    """The ``.etrecord`` row of ``inputs.KINDS``: its pickles stay closed, opt-in or not."""
    contents = _Contents(path)
    collection = model.GraphCollection(label=path.name)
    for name, record in contents.stages():
        collection.graphs.extend(builder.build_graphs(record, graph_id=name))
    return collection


def links(path: Path) -> Links:
    """What a ``.pte`` beside this ETRecord needs: instruction -> handles -> edge ops."""
    contents = _Contents(path)
    found = Links(source=path.name)
    for method, record in contents.edge_records():
        found.handles[method] = contents.instruction_handles(method)
        by_handle: dict[int, list[tuple[str, str]]] = {}
        for rec in record.nodes:
            handle = _handle(rec)
            if handle is not None:
                where = source.user_location(rec.stack_trace) or ""
                by_handle.setdefault(handle, []).append((rec.name, where))
        found.ops[method] = by_handle
        found.delegates[method] = contents.delegate_backends(method)
        found.delegate_ids[method] = contents.delegate_ids(method)
    found.not_delegated = not_delegated_file.read(path)
    return found


def exported_handles(path: Path) -> dict[str, int]:
    """The ETRecord's exported program: op name -> the debug handle of the edge ops made
    from it, found through torch's provenance (``from_node``: each node's ancestors, named
    with their graph's id) as ExecuTorch's Inspector propagates handles back: an op whose
    own name in the exported graph (``export_graph_id``), or failing that one of its own
    ancestors, is an ancestor of an edge op with a handle. Ops no edge op came from (removed
    by ``to_edge``) are left out."""
    contents = _Contents(path)
    graph_id = contents.text("export_graph_id")
    methods = contents.methods()
    if EXPORTED not in contents.names or not graph_id or not methods:
        raise EtvizError(str(path), "an ETRecord with no exported program and its graph id")
    method = "forward" if "forward" in methods else methods[0]
    by_ancestor: dict[str, int] = {}
    for meta in contents.metadata(EDGE_PREFIX + method):
        handle = meta.debug_handle or ""
        for ancestor in _ancestors(meta.from_node) if handle.isdigit() else ():
            by_ancestor.setdefault(ancestor, int(handle))
    found: dict[str, int] = {}
    for name, meta in contents.named_metadata(EXPORTED):
        for ancestor in (f"{name}.{graph_id}", *_ancestors(meta.from_node)):
            if ancestor in by_ancestor:
                found[name] = by_ancestor[ancestor]
                break
    return found


def _ancestors(from_node: str | None) -> list[str]:
    """``name.graph_id`` of each ancestor, nearest first (the last source at each level)."""
    try:
        sources = json.loads(from_node) if from_node else []
    except (ValueError, RecursionError):
        return []
    found: list[str] = []
    while isinstance(sources, list) and sources and isinstance(sources[-1], dict):
        source = sources[-1]
        found.append(f"{source.get('name')}.{source.get('graph_id')}")
        sources = source.get("from_node")
    return found


def _handle(rec: ir.NodeRecord) -> int | None:
    text = rec.attrs.get("debug_handle", "")
    return int(text) if text.isdigit() else None


class _Contents:
    def __init__(self, path: Path) -> None:
        self.path = path
        # One budget for the whole file: its members together stay within the limits.
        self.budget = limits.current().budget(str(path))
        self.archive = _open(path)
        names = set(self.archive.namelist())
        if IDENTIFIER not in names:
            raise EtvizError(str(path), f"a zip file but not an ETRecord (no {IDENTIFIER} entry)")
        self.names = names
        self.maps = {key: self._json(key) for key in _MAPS}

    def _json(self, key: str) -> dict[str, Any]:
        if key not in self.names:
            return {}
        info = self.archive.getinfo(key)
        if info.file_size > MAX_MAP_BYTES:
            raise EtvizError(str(self.path), f"{key} of {info.file_size:,} bytes is over the limit")
        try:
            data = pt2_zip.read_bytes(self.path, self.archive, key, self.budget)
        except EtvizError as exc:
            raise _as_etrecord(exc) from None
        try:
            value = json.loads(bytes(data))
        except (ValueError, RecursionError):
            raise EtvizError(str(self.path), f"damaged ETRecord: {key} is not valid JSON") from None
        if not isinstance(value, dict):
            raise EtvizError(str(self.path), f"damaged ETRecord: {key} is not a JSON object")
        return value

    def text(self, key: str) -> str:
        """A small plain-text member (``export_graph_id``); "" when absent."""
        if key not in self.names or self.archive.getinfo(key).file_size > 64:
            return ""
        data = bytes(pt2_zip.read_bytes(self.path, self.archive, key, self.budget))
        return data.decode("ascii", "replace").strip()

    def named_metadata(self, member: str) -> list[tuple[str, pt2_schema.NodeMetadata]]:
        """Each node's name and metadata, straight from the serialized program."""
        try:
            program = pt2_zip.read_program(self.path, self.archive, member, self.budget,
                                           EXECUTORCH_SCHEMA_MAJOR)
            nodes = [pt2_schema.decode_node(raw) for raw in program.graph_module.graph.nodes]
        except EtvizError as exc:
            raise _as_etrecord(exc) from None
        except msgspec.ValidationError as exc:
            raise EtvizError(str(self.path), f"damaged ETRecord: {member}: {exc}") from None
        return [(node.name or "", node.metadata or pt2_schema.NodeMetadata()) for node in nodes]

    def metadata(self, member: str) -> list[pt2_schema.NodeMetadata]:
        return [meta for _, meta in self.named_metadata(member)]

    def _record(self, member: str, name: str) -> ir.ProgramRecord:
        try:
            return pt2_archive.read_member(
                self.path, self.archive, member, name, schema_major=EXECUTORCH_SCHEMA_MAJOR,
                budget=self.budget,
            )
        except pt2_archive.UnsupportedArchive as exc:  # no unpickling fallback here
            raise EtvizError(exc.path, f"{member}: {exc.cause}") from None
        except EtvizError as exc:
            raise _as_etrecord(exc) from None

    def methods(self) -> list[str]:
        return sorted(
            n[len(EDGE_PREFIX):] for n in self.names
            if n.startswith(EDGE_PREFIX) and not n.endswith(_PICKLED_SUFFIXES)
        )  # fmt: skip

    def edge_records(self) -> list[tuple[str, ir.ProgramRecord]]:
        return [(m, self._record(EDGE_PREFIX + m, f"{m} (edge)")) for m in self.methods()]

    def stages(self) -> list[tuple[str, ir.ProgramRecord]]:
        stem = self.path.stem
        found: list[tuple[str, ir.ProgramRecord]] = []
        if EXPORTED in self.names:
            found.append((f"{stem} (exported)", self._record(EXPORTED, f"{stem} (exported)")))
        for method in self.methods():
            member = EDGE_PREFIX + method
            found.append((f"{method} (edge)", self._record(member, f"{method} (edge)")))
            if method in self.maps["delegate_map"]:
                lowered = self._record(member, f"{method} (lowered)")
                self._partition(method, lowered)
                found.append((f"{method} (lowered)", lowered))
        if not found:
            raise EtvizError(str(self.path), "an ETRecord with no programs in it")
        return found

    def instruction_handles(self, method: str) -> dict[int, list[int]]:
        return instruction_handles(self.maps["debug_handle_map"].get(method, {}))

    def delegate_backends(self, method: str) -> dict[int, str]:
        return delegate_backends(self.maps["delegate_map"].get(method, {}))

    def delegate_ids(self, method: str) -> dict[int, dict[str, list[int]]]:
        return delegate_ids(self.maps["delegate_map"].get(method, {}))

    def _partition(self, method: str, record: ir.ProgramRecord) -> None:
        """Ops a delegate instruction runs go into that delegate's partition layer."""
        owner: dict[int | None, tuple[str, int]] = {}  # debug handle -> (key, instruction)
        counts: dict[str, int] = {}
        handles = self.instruction_handles(method)
        delegates = self.delegate_backends(method)
        for instruction, backend in sorted(delegates.items()):
            number = counts.get(backend, 0)
            counts[backend] = number + 1
            partition = f"{backend}#{number}"
            label = f"{backend or 'partition'} #{number}".replace("/", ":")
            record.partitions[partition] = ir.PartitionInfo(backend, number, label, {
                "backend": backend or "(unknown)", "partition": partition,
                "instruction": str(instruction),
                "debug handles": ", ".join(map(str, sorted(set(handles.get(instruction, []))))),
            })  # fmt: skip
            for handle in handles.get(instruction, []):
                owner[handle] = (partition, instruction)
        cpu: dict[int | None, int] = {
            h: i for i, hs in handles.items() if i not in delegates for h in hs
        }
        for rec in record.nodes:
            node_handle = _handle(rec)
            if node_handle in owner:
                rec.partition, at = owner[node_handle]
                rec.attrs["instruction"] = str(at)
            elif node_handle in cpu:
                rec.attrs["instruction"] = str(cpu[node_handle])


def instruction_handles(raw: object) -> dict[int, list[int]]:
    """One method's ``debug_handle_map``: instruction -> the debug handles it runs."""
    handles: dict[int, list[int]] = {}
    for key, value in raw.items() if isinstance(raw, dict) else []:
        items = value if isinstance(value, list) else [value]
        if str(key).isdigit():
            handles[int(key)] = [int(h) for h in items if isinstance(h, int)]
    return handles


def delegate_backends(raw: object) -> dict[int, str]:
    """One method's ``delegate_map``: delegate instruction -> its backend."""
    return {
        int(key): str(entry.get("name", ""))
        for key, entry in (raw.items() if isinstance(raw, dict) else [])
        if str(key).isdigit() and isinstance(entry, dict)
    }


def delegate_ids(raw: object) -> dict[int, dict[str, list[int]]]:
    """Per delegate instruction: the backend's id of each op inside -> debug handles."""
    found: dict[int, dict[str, list[int]]] = {}
    for key, entry in raw.items() if isinstance(raw, dict) else []:
        inner = entry.get("delegate_map") if isinstance(entry, dict) else None
        if str(key).isdigit() and isinstance(inner, dict):
            found[int(key)] = {
                str(op): [h for h in (v if isinstance(v, list) else [v]) if isinstance(h, int)]
                for op, v in inner.items()
            }
    return found


def links_from_maps(source: str, debug_handle_map: object, delegate_map: object) -> Links:
    """The handles part of :class:`Links` from the maps a live ``ExecutorchProgramManager``
    holds (``debug_handle_map``, ``delegate_map``: what an ETRecord stores), for a run that
    wrote no ETRecord; edge ops by handle stay empty (no edge program is read)."""
    found = Links(source=source)
    handle_maps = debug_handle_map if isinstance(debug_handle_map, dict) else {}
    delegate_maps = delegate_map if isinstance(delegate_map, dict) else {}
    for method in {*handle_maps, *delegate_maps}:
        found.handles[str(method)] = instruction_handles(handle_maps.get(method, {}))
        found.delegates[str(method)] = delegate_backends(delegate_maps.get(method, {}))
        found.delegate_ids[str(method)] = delegate_ids(delegate_maps.get(method, {}))
    return found


def _open(path: Path) -> zipfile.ZipFile:
    try:
        return pt2_zip.open_zip(path)
    except EtvizError as exc:
        raise _as_etrecord(exc) from None


def _as_etrecord(exc: EtvizError) -> EtvizError:
    """The zip and JSON readers of ``pt2_archive`` speak of .pt2 archives."""
    cause = exc.cause.replace("a .pt2 archive", "an ETRecord")
    return EtvizError(exc.path, cause.replace(".pt2 archive", "ETRecord"))
