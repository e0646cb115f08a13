"""Read an ExecuTorch program (``.pte``) without torch: one graph per method.

A ``.pte`` is a FlatBuffer (``program.fbs``, shipped in the executorch wheel and read
through :mod:`flatbuf`), then the segments it points to (delegate blobs, weights). Each
execution plan (a method: ``forward`` ...) holds a table of values (EValues: tensors,
ints, lists), its inputs and outputs as value indices, and a chain of instructions:

- ``KernelCall(op_index, args)``: a portable/optimized CPU kernel (``aten::cumsum.out``).
  By the out-variant convention its arguments are the schema's inputs, then the out
  tensors, then the returned values again (the same indices as the outs);
- ``DelegateCall(delegate_index, args)``: a backend blob (``XnnpackBackend``), inputs
  then outputs;
- ``MoveCall``, ``JumpFalseCall``, ``FreeCall``: control and memory.

One node per instruction, wired by value: an instruction's inputs come from whichever
node last wrote them (a method input, a constant, an earlier instruction's out). Which
arguments an instruction writes is not stored; it is the convention above: the trailing
arguments that hold no value yet (not an input, not a constant, not written before).

With an ETRecord (named, or the one ``inputs.companion`` found beside it), each instruction
also names the edge ops it came from (their debug handles) and the user's source line.
"""

from __future__ import annotations

import contextlib
import mmap
import struct
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from etviz_lsp.errors import EtvizError
from etviz_lsp.graph.backends import registry
from etviz_lsp.graph.binary import executorch_files, flatbuf
from etviz_lsp.graph.core import builder, ids, ir, model, not_delegated, palette
from etviz_lsp.graph.memory import memory_plan
from etviz_lsp.graph.readers.links import Links

# Bounds on what one file may cost (a damaged or hostile file claims any count).
MAX_PROGRAM_BYTES = 256 * 1024 * 1024  # the FlatBuffer part (weights live in segments)
MAX_PLANS = 256
MAX_VALUES = 2_000_000
MAX_INSTRUCTIONS = 500_000

_IDENTIFIER = b"ET12"
_EXTENDED_HEADER = b"eh00"

# program.fbs ScalarType -> how torch spells the dtype.
DTYPES = {
    "BYTE": "uint8", "CHAR": "int8", "SHORT": "int16", "INT": "int32", "LONG": "int64",
    "HALF": "float16", "FLOAT": "float32", "DOUBLE": "float64", "BOOL": "bool",
    "QINT8": "qint8", "QUINT8": "quint8", "QINT32": "qint32", "BFLOAT16": "bfloat16",
    "QUINT4X2": "quint4x2", "QUINT2X4": "quint2x4", "BITS16": "bits16",
    "FLOAT8E5M2": "float8_e5m2", "FLOAT8E4M3FN": "float8_e4m3fn",
    "FLOAT8E5M2FNUZ": "float8_e5m2fnuz", "FLOAT8E4M3FNUZ": "float8_e4m3fnuz",
    "UINT16": "uint16", "UINT32": "uint32", "UINT64": "uint64",
}  # fmt: skip

KERNEL, DELEGATE = "KernelCall", "DelegateCall"
RUNS_ON = "runs on"
UNLINKED = "not linked: the ETRecord names no edge op of this call for them"
CPU = "CPU (portable/optimized kernel)"


def program_schema() -> flatbuf.Schema:
    """``program.fbs`` from the installed executorch."""
    return executorch_files.schema("exir/_serialize/program.fbs")


def read_pte(
    path: Path, *, allow_pickle: bool = False, etrecord: Path | None = None,
    beside: Path | None = None,
) -> model.GraphCollection:
    """The ``.pte`` row of ``inputs.KINDS``: never unpickles: ``allow_pickle`` changes nothing.
    ``etrecord``: named by the user (a bad one is an error); ``beside``: the one the table
    found beside the file (``inputs.companion``: a bad one leaves the graph unlinked)."""
    links = _links_for(etrecord, beside)
    collection = model.GraphCollection(label=path.name)
    plans: list[memory_plan.MemoryPlan] = []
    collection.graphs.extend(read_graphs(path, links, plans))
    collection.extras[memory_plan.EXTRAS_KEY] = plans
    return collection


def _links_for(etrecord: Path | None, beside: Path | None) -> Links | None:
    from etviz_lsp.graph.readers import etrecord as etrecord_reader

    if etrecord is not None:  # named by the user: a bad one is an error
        return etrecord_reader.links(etrecord)
    if beside is None:
        return None
    try:
        return etrecord_reader.links(beside)
    except EtvizError as exc:  # the program still opens; the graph says why it is unlinked
        return Links(source=beside.name, error=exc.cause)


def read_graphs(
    path: Path, links: Links | None = None, plans: list[memory_plan.MemoryPlan] | None = None
) -> list[model.Graph]:
    """The graphs of every method; their memory plans appended to ``plans``."""
    with _mapped(path) as buf:
        try:
            return _Program(path, buf, links).graphs(plans if plans is not None else [])
        except flatbuf.Damaged as exc:
            raise EtvizError(str(path), f"damaged .pte program ({exc})") from None
        except (KeyError, IndexError, ValueError, UnicodeError, struct.error,
                RecursionError) as exc:
            cause = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            raise EtvizError(str(path), f"damaged .pte program ({cause})") from None


@contextlib.contextmanager
def _mapped(path: Path) -> Iterator[memoryview]:
    """The file mapped read-only (a big ``.pte`` is mostly weights this reader never reads)."""
    if not path.exists():
        raise EtvizError(str(path), "no such file")
    if path.is_dir():
        raise EtvizError(str(path), "is a directory, not a .pte file")
    try:
        with path.open("rb") as handle:
            if path.stat().st_size < 8:
                raise EtvizError(str(path), "not an ExecuTorch program (too short for a .pte)")
            mapped = mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_READ)
    except PermissionError as exc:
        raise EtvizError(str(path), "permission denied") from exc
    except OSError as exc:
        raise EtvizError(str(path), f"cannot read: {exc.strerror or exc}") from exc
    view = memoryview(mapped)
    try:
        yield view
    finally:
        view.release()
        with contextlib.suppress(BufferError):  # a slice still held: the GC unmaps it later
            mapped.close()


@dataclass(slots=True)
class _Header:
    """The extended header ExecuTorch writes after the FlatBuffer's identifier."""

    program_size: int
    segment_base: int


def _header(path: Path, buf: memoryview) -> _Header:
    if bytes(buf[4:8]) != _IDENTIFIER:
        if bytes(buf[:4]) == b"PK\x03\x04":
            raise EtvizError(str(path), "a zip file, not an ExecuTorch program (.pte)")
        raise EtvizError(
            str(path), f"not an ExecuTorch program (no '{_IDENTIFIER.decode()}' identifier)"
        )
    if bytes(buf[8:12]) != _EXTENDED_HEADER or len(buf) < 32:
        return _Header(program_size=len(buf), segment_base=len(buf))
    _length, program_size, segment_base = struct.unpack_from("<IQQ", buf, 12)
    if program_size > len(buf) or segment_base > len(buf):
        raise EtvizError(
            str(path),
            f"truncated .pte: its header says {max(program_size, segment_base):,} bytes, "
            f"the file has {len(buf):,}",
        )
    return _Header(program_size=program_size or len(buf), segment_base=segment_base)


class _Program:
    def __init__(self, path: Path, buf: memoryview, links: Links | None) -> None:
        self.path = path
        self.header = _header(path, buf)
        if self.header.program_size > MAX_PROGRAM_BYTES:
            raise EtvizError(
                str(path),
                f"program of {self.header.program_size:,} bytes is over this reader's limit "
                f"({MAX_PROGRAM_BYTES:,})",
            )
        self.file = buf  # segments (delegate blobs) lie past the program
        self.buf = buf[: self.header.program_size]
        self.root = flatbuf.Table.root(self.buf, program_schema())
        self.links = links
        self.segments = [
            (seg.get("offset"), seg.get("size")) for seg in self._bounded("segments", MAX_VALUES)
        ]
        for index, (offset, size) in enumerate(self.segments):
            end = self.header.segment_base + offset + size
            if end > len(buf):  # an interrupted copy: the blobs and weights are cut off
                raise EtvizError(
                    str(path),
                    f"truncated .pte: segment {index} ends at byte {end:,}, "
                    f"the file has {len(buf):,}",
                )

    def _bounded(
        self, name: str, limit: int, table: flatbuf.Table | None = None
    ) -> list[flatbuf.Table]:
        table = table or self.root
        count = table.vector_len(name)
        if count > limit:
            raise EtvizError(
                str(self.path), f"{count:,} {name} is over this reader's limit ({limit:,})"
            )
        return list(table.vector(name))

    def graphs(self, memory: list[memory_plan.MemoryPlan]) -> list[model.Graph]:
        plans = self._bounded("execution_plan", MAX_PLANS)
        if not plans:
            raise EtvizError(str(self.path), "an ExecuTorch program with no methods")
        graphs: list[model.Graph] = []
        taken: set[str] = set()  # graph ids: a delegate's never collides with another's
        for plan in plans:
            method = _Plan(self, plan)
            graphs.extend(method.graph(taken))
            memory.append(method.memory)
        return graphs

    def segment(self, index: int) -> memoryview:
        offset, size = self.segments[index]
        start = self.header.segment_base + offset
        return self.file[start : start + size]

    def delegate_blob(self, processed: flatbuf.Table | None) -> tuple[memoryview, str]:
        """The delegate's payload and where it lives (``segment 1``, ``inline 0``)."""
        if processed is None:
            return memoryview(b""), "(none)"
        index = processed.get("index")
        if processed.enum_name("location") == "SEGMENT":
            if index >= len(self.segments):
                raise flatbuf.Damaged(f"delegate data in segment {index} of {len(self.segments)}")
            return self.segment(index), f"segment {index}"
        inline = self._bounded("backend_delegate_data", MAX_VALUES)
        if index >= len(inline):
            raise flatbuf.Damaged(f"inline delegate data {index} of {len(inline)}")
        return inline[index].vector_bytes("data"), f"inline {index}"


class _Plan:
    """One execution plan -> a record -> a Model Explorer graph."""

    def __init__(self, program: _Program, plan: flatbuf.Table) -> None:
        self.program = program
        self.plan = plan
        self.name = plan.get("name") or "method"
        self.values = program._bounded("values", MAX_VALUES, plan)
        self.kinds: list[str] = []
        self.tensors: dict[int, flatbuf.Table] = {}
        for index, value in enumerate(self.values):
            kind, table = value.union("val")
            self.kinds.append(kind)
            if kind == "Tensor" and table is not None:
                self.tensors[index] = table
        self.written: dict[int, tuple[str, int]] = {}  # value -> (node, output index)
        self.record = ir.ProgramRecord(name=self.name)
        self.kernels: list[str] = []
        self.delegates: dict[str, ir.PartitionInfo] = {}
        self.inner_facts: dict[str, dict[str, str]] = {}  # delegate label -> its payload's
        self.links = program.links
        self.uses: list[list[int]] = []  # per instruction: the tensors it names
        self.made: memory_plan.Makers = {}  # value -> the instruction out that wrote it first
        self.memory = memory_plan.MemoryPlan(self.name, 0)

    # ---- values --------------------------------------------------------------------------

    def _check(self, index: int) -> int:
        if not 0 <= index < len(self.values):
            raise flatbuf.Damaged(f"value index {index} of {len(self.values)}")
        return index

    def value_info(self, index: int) -> ir.ValueInfo:
        kind = self.kinds[self._check(index)]
        if kind == "Tensor":
            tensor = self.tensors[index]
            dtype = tensor.enum_name("scalar_type")
            shape = tuple(map(str, tensor.vector("sizes")))
            return ir.ValueInfo(DTYPES.get(dtype, dtype.lower()), shape)
        return ir.ValueInfo(kind.lower(), value=self.literal(index))

    def literal(self, index: int) -> str:
        kind = self.kinds[self._check(index)]
        _, table = self.values[index].union("val")
        if table is None or kind == "Null":
            return "None"
        if kind in ("Int", "Bool", "Double"):
            return str(table.get(f"{kind.lower()}_val"))
        if kind == "String":
            return repr(table.get("string_val"))
        if kind in ("IntList", "DoubleList", "BoolList"):
            items = table.vector("items")
            if kind == "IntList":  # an IntList holds value indices of Ints (SymInt lists)
                return "[" + ", ".join(self._int_item(i) for i in items[:64]) + "]"
            return str(items[:64])
        return f"<{kind}>"

    def _int_item(self, index: int) -> str:
        return self.literal(index) if self.kinds[self._check(index)] == "Int" else "?"

    def _tensor_items(self, index: int) -> list[int]:
        """The tensors a (optional) tensor list holds; anything else in it is skipped."""
        _, table = self.values[index].union("val")
        items = table.vector("items") if table is not None else []
        return [i for i in items if i >= 0 and self.kinds[self._check(i)] == "Tensor"]

    def is_constant(self, index: int) -> bool:
        tensor = self.tensors.get(index)
        if tensor is None:
            return False
        extra = tensor.get("extra_tensor_info")
        return tensor.get("data_buffer_idx") > 0 or (
            extra is not None and extra.enum_name("location") == "EXTERNAL"
        )

    def is_fresh(self, index: int) -> bool:
        """A tensor (list) nothing has written yet: an instruction's out argument."""
        kind = self.kinds[self._check(index)]
        if kind == "TensorList":
            items = self._tensor_items(index)
            return bool(items) and all(self.is_fresh(i) for i in items)
        return kind == "Tensor" and index not in self.written and not self.is_constant(index)

    def source_of(self, index: int) -> Iterator[tuple[str, int]]:
        """The producers feeding argument ``index`` (a list feeds each item)."""
        kind = self.kinds[self._check(index)]
        if kind in ("TensorList", "OptionalTensorList"):
            for item in self._tensor_items(index):
                yield from self.source_of(item)
            return
        if kind == "Tensor":
            if index not in self.written:
                self._constant_node(index)
            yield self.written[index]

    def _constant_node(self, index: int) -> None:
        tensor = self.tensors[index]
        extra = tensor.get("extra_tensor_info")
        fqn = extra.get("fully_qualified_name") if extra is not None else None
        name = f"value_{index}"
        attrs = {"fqn": fqn or f"constant {index}", "value index": str(index)}
        if tensor.get("data_buffer_idx"):
            attrs["constant buffer"] = str(tensor.get("data_buffer_idx"))
        rec = ir.NodeRecord(name, ir.CONSTANT, outputs=[self.value_info(index)], attrs=attrs)
        self.record.nodes.append(rec)
        self.written[index] = (name, 0)

    def memory_text(self, index: int) -> str | None:
        tensor = self.tensors.get(index)
        alloc = tensor.get("allocation_info") if tensor is not None else None
        if alloc is None:
            return None
        offset = alloc.get("memory_offset_low") | (alloc.get("memory_offset_high") << 32)
        return f"buffer {alloc.get('memory_id')} @ {offset:,}"

    # ---- instructions --------------------------------------------------------------------

    def graph(self, taken: set[str]) -> list[model.Graph]:
        for position, index in enumerate(self.plan.vector("inputs")):
            name = f"input_{position}"
            attrs = {"value index": str(index)}
            memory = self.memory_text(self._check(index))
            if memory:
                attrs["memory"] = memory
            outputs = [self.value_info(index)]
            rec = ir.NodeRecord(name, ir.USER_INPUT, outputs=outputs, attrs=attrs)
            self.record.nodes.append(rec)
            self.written[index] = (name, 0)
        chains = self.plan.vector("chains")
        total = sum(chain.vector_len("instructions") for chain in chains)
        if total > MAX_INSTRUCTIONS:
            raise EtvizError(
                str(self.program.path),
                f"{total:,} instructions is over this reader's limit ({MAX_INSTRUCTIONS:,})",
            )
        operators = [
            (op.get("name") or "?", op.get("overload") or "")
            for op in self.plan.vector("operators")
        ]
        delegates = self.plan.vector("delegates")
        instruction_id = 0
        for chain_index, chain in enumerate(chains):
            for instruction in chain.vector("instructions"):
                kind, args = instruction.union("instr_args")
                rec = self._instruction(instruction_id, kind, args, operators, delegates)
                self.uses.append(self._named_tensors(kind, args))
                if len(chains) > 1:
                    rec.attrs["chain"] = str(chain_index)
                self.record.nodes.append(rec)
                instruction_id += 1
        self._output()
        mismatch = self._mismatch(instruction_id)
        if mismatch:  # another program's ETRecord: its handles would name the wrong ops
            inner = [rec for sub in self.record.subprograms.values() for rec in sub.nodes]
            for rec in [*self.record.nodes, *inner]:
                for key in ("debug handles", "edge ops", "source", "sources", not_delegated.KEY):
                    rec.attrs.pop(key, None)
        graph_id = ids.claim(self.name, taken)  # two methods of one name: a damaged file
        graphs = builder.build_graphs(self.record, graph_id=graph_id, taken=taken)
        self._decorate(graphs[0], instruction_id)
        not_delegated.describe(graphs[0])
        labels = {sub: self.delegates[node["id"]].label for node in graphs[0].nodes
                  for sub in node.get("subgraphIds", []) if node["id"] in self.delegates}
        for nested in graphs[1:]:  # a delegate's own graph: say whose it is
            self._describe_nested(nested, labels.get(nested.id, nested.id))
        if self.links is not None:
            graphs[0].group_attrs[""]["etrecord"] = (
                f"{self.links.source}: not linked, {mismatch}" if mismatch else self.links.source
            )
        self.memory = memory_plan.analyse(self._memory_method(graphs[0].id))
        memory_plan.annotate(graphs[0], self.memory)  # after the links: sources of makers
        return graphs

    def _memory_method(self, graph_id: str) -> memory_plan.Method:
        makers = {value: (node, out, -1) for value, (node, out) in self.written.items()}
        makers.update(self.made)
        return memory_plan.Method(
            graph_id, self.plan.vector("non_const_buffer_sizes"), self.tensors, self.value_info,
            self.plan.vector("inputs"), self.plan.vector("outputs"), self.uses, makers,
        )

    def _named_tensors(self, kind: str, args: flatbuf.Table | None) -> list[int]:
        """The tensors an instruction's arguments name (lists' items too)."""
        fields = {KERNEL: None, DELEGATE: None, "MoveCall": ("move_from", "move_to"),
                  "JumpFalseCall": ("cond_value_index",), "FreeCall": ("value_index",)}
        if args is None or kind not in fields:
            return []
        names = fields[kind]
        named = args.vector("args") if names is None else [args.get(n) for n in names]
        tensors: list[int] = []
        for index in named:
            kind_of = self.kinds[self._check(index)]
            if kind_of == "Tensor":
                tensors.append(index)
            elif kind_of in ("TensorList", "OptionalTensorList"):
                tensors.extend(self._tensor_items(index))
        return tensors

    def _mismatch(self, instructions: int) -> str:
        """Why the ETRecord is not this program's ("" when it matches)."""
        if self.links is None:
            return ""
        if self.links.error:
            return f"it cannot be read ({self.links.error})"
        if self.name not in self.links.handles:
            return f"it has no method {self.name!r}"
        beyond = [i for i in self.links.handles[self.name] if i >= instructions]
        if beyond:
            return f"it names instruction {beyond[0]}, this method has {instructions}"
        for instruction, backend in self.links.delegates.get(self.name, {}).items():
            info = self.delegates.get(f"instruction_{instruction}")
            if info is None or info.backend != backend:
                return f"its instruction {instruction} is a {backend} call, here it is not"
        return ""

    def _instruction(
        self,
        instruction_id: int,
        kind: str,
        args: flatbuf.Table | None,
        operators: list[tuple[str, str]],
        delegates: list[flatbuf.Table],
    ) -> ir.NodeRecord:
        rec = ir.NodeRecord(f"instruction_{instruction_id}", ir.OP)
        rec.attrs["instruction"] = str(instruction_id)
        if args is None:
            rec.target = kind
            return rec
        if kind == KERNEL:
            op_index = args.get("op_index")
            if not 0 <= op_index < len(operators):
                raise flatbuf.Damaged(f"operator {op_index} of {len(operators)}")
            op, overload = operators[op_index]
            rec.target = op
            rec.attrs["overload"] = overload
            rec.attrs[RUNS_ON] = CPU
            self.kernels.append(rec.name)
            self._wire(rec, args.vector("args"), strip_returns=True)
        elif kind == DELEGATE:
            self._delegate(rec, args, delegates)
        elif kind == "MoveCall":
            rec.target = "move"
            source, target = self._check(args.get("move_from")), self._check(args.get("move_to"))
            rec.inputs = list(self.source_of(source))
            rec.outputs = [self.value_info(target)]
            self.written[target] = (rec.name, 0)
        elif kind == "JumpFalseCall":
            rec.target = "jump_false"
            rec.inputs = list(self.source_of(self._check(args.get("cond_value_index"))))
            rec.attrs["destination"] = f"instruction {args.get('destination_instruction')}"
        elif kind == "FreeCall":
            rec.target = "free"
            rec.inputs = list(self.source_of(self._check(args.get("value_index"))))
        else:
            rec.target = kind
        self._link(rec, instruction_id)
        return rec

    def _delegate(
        self, rec: ir.NodeRecord, args: flatbuf.Table, delegates: list[flatbuf.Table]
    ) -> None:
        index = args.get("delegate_index")
        if not 0 <= index < len(delegates):
            raise flatbuf.Damaged(f"delegate {index} of {len(delegates)}")
        delegate = delegates[index]
        backend = delegate.get("id") or "backend"
        number = sum(1 for info in self.delegates.values() if info.backend == backend)
        blob, where = self.program.delegate_blob(delegate.get("processed"))
        info = ir.PartitionInfo(backend, number, f"{backend} #{number}")
        self.delegates[rec.name] = info
        rec.target = info.label
        rec.attrs.update({
            "backend": backend, "partition": f"{backend}#{number}", "delegate index": str(index),
            "blob size": f"{len(blob):,} bytes", "blob": where, RUNS_ON: backend,
        })  # fmt: skip
        for spec in delegate.vector("compile_specs"):
            value = bytes(spec.vector_bytes("value"))
            text = value.decode() if len(value) <= 64 and value.isascii() else None
            rec.attrs[f"compile spec {spec.get('key')}"] = text or f"<{len(value)} bytes>"
        self._open_payload(rec, info, blob)
        self._wire(rec, args.vector("args"), strip_returns=False)

    def _open_payload(self, rec: ir.NodeRecord, info: ir.PartitionInfo, blob: memoryview) -> None:
        """The payload's ops as a nested graph the delegate's node opens, as its backend's
        module reads them (``registry``); what it cannot read stays a fact on the node."""
        payload = registry.open_payload(info.backend, blob, info.label)
        rec.attrs.update(payload.facts)
        self.inner_facts[info.label] = payload.facts
        if payload.graph is None:
            return
        instruction = int(rec.attrs["instruction"])
        linked = [self._link_inner(op, instruction) for op in payload.graph.nodes]
        if self.links is not None and not self.links.error and False in linked:
            tried = sum(1 for found in linked if found is not None)
            rec.attrs["edge ops inside"] = f"{linked.count(False)} of {tried} {UNLINKED}"
        self.record.subprograms[info.label] = payload.graph
        rec.subgraphs = [info.label]

    def _link_inner(self, rec: ir.NodeRecord, instruction: int) -> bool | None:
        """An op inside a delegate -> the edge ops it came from, through the ETRecord: by its
        own debug handle (XNNPACK), or its key in the delegate map (Vulkan, Core ML), used
        only when the handles are this call's. None: nothing to link; False: not linked."""
        handle, key = rec.attrs.get("debug_handle", ""), rec.attrs.get(registry.DELEGATE_DEBUG_ID)
        if self.links is None or rec.kind != ir.OP or not (handle.isdigit() or key):
            return None
        own = self.links.handles.get(self.name, {}).get(instruction, [])
        handles = [int(handle)] if handle.isdigit() else (
            self.links.delegate_ids.get(self.name, {}).get(instruction, {}).get(key or "", [])
        )
        if key and not set(handles) <= set(own):
            return False  # numbered in the backend's own graph, not in this method's
        by_handle = self.links.ops.get(self.name, {})
        ops = [op for h in sorted(set(handles)) for op in by_handle.get(h, [])]
        if not ops:
            return False
        rec.attrs["edge ops"] = ", ".join(name for name, _ in ops)
        where = next((place for _, place in ops if place), "")
        if where:
            rec.attrs["source"] = where
        return True

    def _wire(self, rec: ir.NodeRecord, arg_values: list[int], strip_returns: bool) -> None:
        args = [self._check(i) for i in arg_values]
        if strip_returns:  # the returned values repeat the outs at the end
            while len(args) > 1 and args[-1] in args[:-1] and self.is_fresh(args[-1]):
                args.pop()
        first_out = len(args)
        while first_out > 0 and self.is_fresh(args[first_out - 1]):
            first_out -= 1
        for position, index in enumerate(args[:first_out]):
            if self.kinds[index] in ("Tensor", "TensorList", "OptionalTensorList"):
                rec.inputs.extend(self.source_of(index))
            else:
                rec.attrs[f"args[{position}]"] = self.literal(index)
        outs: list[int] = []
        for index in args[first_out:]:
            if self.kinds[index] == "TensorList":
                outs.extend(self._tensor_items(index))
            else:
                outs.append(index)
        for out_index, index in enumerate(outs):
            rec.outputs.append(self.value_info(index))
            self.written[index] = (rec.name, out_index)
            self.made.setdefault(index, (rec.name, out_index, int(rec.attrs["instruction"])))
            memory = self.memory_text(index)
            if memory:
                rec.attrs[f"out {out_index} memory"] = memory

    def _link(self, rec: ir.NodeRecord, instruction_id: int) -> None:
        """Edge ops and source of this instruction, from the ETRecord's debug handles."""
        if self.links is None:
            return
        handles = self.links.handles.get(self.name, {}).get(instruction_id)
        if not handles:
            return
        unique = sorted(set(handles))
        rec.attrs["debug handles"] = ", ".join(map(str, unique))
        by_handle = self.links.ops.get(self.name, {})
        ops = [op for handle in unique for op in by_handle.get(handle, [])]
        if ops:
            rec.attrs["edge ops"] = ", ".join(name for name, _ in ops)
            places = list(dict.fromkeys(where for _, where in ops if where))
            if places:
                rec.attrs["source"] = places[0]
                if len(places) > 1:
                    rec.attrs["sources"] = ", ".join(places)
        said = self._not_delegated(unique) if rec.attrs.get(RUNS_ON) == CPU else []
        if said:
            rec.attrs[not_delegated.KEY] = "\n".join(said)

    def _not_delegated(self, handles: list[int]) -> list[str]:
        """Why the partitioners left these handles' edge ops on the CPU, as the run that
        saved the ETRecord heard it (``not_delegated_file``): lines kept for an edge op of
        the same name only."""
        assert self.links is not None
        by_handle = self.links.ops.get(self.name, {})
        lines: list[str] = []
        for handle in handles:
            names = {name for name, _ in by_handle.get(handle, [])}
            for node, _op, said in self.links.not_delegated.get(handle, []):
                if node in names:
                    lines.extend(line for line in said if line not in lines)
        return lines

    def _output(self) -> None:
        rec = ir.NodeRecord("output", ir.OUTPUT)
        for index in self.plan.vector("outputs"):
            rec.inputs.extend(self.source_of(self._check(index)))
        self.record.nodes.append(rec)

    # ---- the graph -----------------------------------------------------------------------

    def _describe_nested(self, graph: model.Graph, label: str) -> None:
        call = next((name for name, info in self.delegates.items() if info.label == label), "")
        call_attrs = next((r.attrs for r in self.record.nodes if r.name == call), {})
        summary = graph.group_attrs.setdefault("", {})
        for builder_count in ("parameters", "module layers", "operator calls"):
            summary.pop(builder_count, None)
        summary.update({
            "program": f"{self.program.path.name} (method {self.name}): {label}",
            "delegate call": f"instruction {call_attrs.get('instruction', '?')}",
            "blob size": call_attrs.get("blob size", "?"),
            **self.inner_facts.get(label, {}),  # what its backend's reader says of it
        })  # fmt: skip

    def _decorate(self, graph: model.Graph, instructions: int) -> None:
        """CPU kernels and delegate calls coloured apart; the memory plan on the graph."""
        for node in graph.nodes:
            info = self.delegates.get(node["id"])
            if info is not None:
                node["style"] = palette.delegate_call_style(info)
            elif node["id"] in self.kernels:
                node["style"] = palette.cpu_kernel_style()
        summary = graph.group_attrs.setdefault("", {})
        for builder_count in ("parameters", "module layers", "operator calls"):
            summary.pop(builder_count, None)  # "instructions" and the counts below say it
        sizes = self.plan.vector("non_const_buffer_sizes")
        summary.update({
            "program": f"{self.program.path.name} (method {self.name})",
            "instructions": str(instructions),
            "kernel calls (CPU)": str(len(self.kernels)),
            "delegate calls": ", ".join(i.label for i in self.delegates.values()) or "(none)",
            "memory plan": ", ".join(
                f"buffer {i}: {size:,} bytes" for i, size in enumerate(sizes) if i > 0
            ) or "(no planned buffers)",
            "planned bytes": f"{sum(sizes):,}",
            "values": str(len(self.values)),
        })  # fmt: skip
