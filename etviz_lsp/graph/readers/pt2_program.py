"""A serialized program (``pt2_schema.Program``) -> the record ``fx_reader`` makes.

Mirrors torch's deserializer (``serialize.py``, ``GraphModuleDeserializer``): the same
node names (FX's name picker, :class:`_Namespace`), the ``getitem`` nodes it adds for
multi-output ops, the same split of arguments into positional and keyword, the same
metadata. Text of targets, tensors and literals comes from ``pt2_text``.
"""

from __future__ import annotations

import keyword
import re
from collections.abc import Iterator
from typing import Any

from etviz_lsp.graph.core import ir
from etviz_lsp.graph.readers import pt2_schema, pt2_text

# Argument kinds that can refer to graph nodes (see _GraphReader._nodes_in).
_NODE_KINDS = frozenset(
    {"as_tensor", "as_tensors", "as_sym_int", "as_sym_float", "as_sym_bool",
     "as_optional_tensor", "as_sym_ints", "as_sym_floats", "as_sym_bools",
     "as_optional_tensors", "as_nested_tensors", "as_graph", "as_custom_obj",
     "as_string_to_argument"}
)  # fmt: skip
_POSITIONAL, _KEYWORD = 1, 2
# How a node's literal arguments are named: schema names (OpOverloads), Python parameter
# names (symbolic ops: torch stores them), position (higher-order ops: no names stored).
_BY_SCHEMA, _BY_NAME, _BY_POSITION = "schema", "name", "position"


class ProgramReader:
    def __init__(
        self, program: pt2_schema.Program, weights: dict[str, pt2_schema.WeightEntry]
    ) -> None:
        self.graph = program.graph_module.graph
        self.signature = program.graph_module.signature
        self.weights = weights
        self.input_specs: list[dict[str, Any]] = self.signature.get("input_specs", [])
        self.tensors = pt2_text.TensorInfos()

    def read(self, name: str) -> ir.ProgramRecord:
        kinds = self._placeholder_kinds()
        record = _GraphReader(self.graph, self.input_specs, kinds, self.tensors).read(name)
        self._mark_mutations(record)
        self._parameters(record)
        return record

    def _placeholder_kinds(self) -> dict[str, tuple[str, str]]:
        """Placeholder name -> (record kind, fully-qualified target), as fx_reader's."""
        kinds: dict[str, tuple[str, str]] = {}
        for spec in self.input_specs:
            ((kind, body),) = spec.items()
            arg_name = _spec_arg_name(kind, body)
            state = _STATE_INPUTS.get(kind)
            if state is None:
                kinds[arg_name] = (ir.USER_INPUT, "")
            else:
                record_kind, target_field = state
                target = pt2_text.expect_text(body[target_field], target_field)
                kinds[arg_name] = (record_kind, target)
        return kinds

    def _mark_mutations(self, record: ir.ProgramRecord) -> None:
        targets = {"buffer_mutation": "buffer_name", "user_input_mutation": "user_input_name"}
        by_name: dict[str, ir.NodeRecord] = {}  # made at the first mutation: most have none
        for spec in self.signature.get("output_specs", []):
            ((kind, body),) = spec.items()
            if kind not in targets:
                continue
            by_name = by_name or {node.name: node for node in record.nodes}
            node = by_name.get(body["arg"]["name"])
            if node is not None and body.get(targets[kind]):
                node.attrs["mutates"] = pt2_text.expect_text(body[targets[kind]], targets[kind])

    def _parameters(self, record: ir.ProgramRecord) -> None:
        """Parameter shapes from the weights config (never the weights themselves)."""
        tensor_values = self.graph.tensor_values
        for spec in self.input_specs:
            body = spec.get("parameter")
            if body is None:
                continue
            fqn = body["parameter_name"]
            entry = self.weights.get(fqn)
            meta = entry.tensor_meta if entry else pt2_schema.NULL
            if not self.weights:  # an old archive: the graph's own meta
                meta = tensor_values.get(body["arg"]["name"], pt2_schema.NULL)
            info = self.tensors.info(meta)
            if info is not None:
                record.parameters[fqn] = info


# Serialized input spec kind -> (record kind, the field naming its fully-qualified target).
_STATE_INPUTS = {
    "parameter": (ir.PARAMETER, "parameter_name"),
    "buffer": (ir.BUFFER, "buffer_name"),
    "tensor_constant": (ir.CONSTANT, "tensor_constant_name"),
    "custom_obj": (ir.CONSTANT, "custom_obj_name"),
}


def _spec_arg_name(kind: str, body: dict[str, Any]) -> str:
    """The placeholder an input spec names (as torch's ``deserialize_input_spec``)."""
    if kind == "constant_input":
        return str(body.get("name", ""))
    arg = body.get("arg", {})
    if kind != "user_input":
        return str(arg.get("name", ""))
    ((arg_kind, value),) = arg.items()
    if arg_kind in ("as_tensor", "as_custom_obj"):
        return str(value["name"])
    if arg_kind in ("as_sym_int", "as_sym_float"):
        return str(value.get("as_name", ""))
    return ""


class _GraphReader:
    """One serialized graph (top level or a nested cond/while_loop body) -> a record."""

    def __init__(
        self,
        graph: pt2_schema.Graph,
        input_specs: list[dict[str, Any]],
        kinds: dict[str, tuple[str, str]],
        tensors: pt2_text.TensorInfos,
    ) -> None:
        self.graph = graph
        self.input_specs = input_specs
        self.kinds = kinds
        self.tensors = tensors
        self.tensor_values = graph.tensor_values
        self.sym_values: dict[str, tuple[str, Any]] = {}
        for values, dtype in (
            (graph.sym_int_values, "SymInt"),
            (graph.sym_float_values, "SymFloat"),
            (graph.sym_bool_values, "SymBool"),
        ):
            for value_name, value in values.items():
                self.sym_values[value_name] = (dtype, value)
        self.names = _Namespace()
        self.known: set[str] = set()  # serialized value names that are graph nodes
        # Graph name -> the get_attr node that loads it for the node being read (FX
        # names that node: ``repeated_subgraph0_1`` for a second call of one graph).
        self.graph_loads: dict[str, str] = {}
        self.scope_cache: dict[str, list[ir.Scope]] = {}

    def read(self, name: str) -> ir.ProgramRecord:
        self.record = ir.ProgramRecord(name=name)
        for index, graph_input in enumerate(self.graph.inputs):
            self._placeholder(index, graph_input)
        for node in self.graph.nodes:
            self._node(pt2_schema.decode_node(node))
        self._output()
        # A damaged file can have a list or a number where an input's name goes.
        if {type(src) for rec in self.record.nodes for src, _ in rec.inputs} - {str}:
            raise pt2_text.UnknownConstruct("an input that is not a node name")
        ir.link_subgraphs(self.record)
        return self.record

    # -- values -------------------------------------------------------------------------

    def _value(self, name: str) -> ir.ValueInfo:
        """What torch's deserializer puts in ``meta["val"]`` for a value name."""
        raw = self.tensor_values.get(name)
        if raw is not None:
            info = self.tensors.info(raw)
            if info is not None:
                return info
        sym = self.sym_values.get(name)
        if sym is not None:
            return pt2_text.sym_info(*sym)
        if name in self.graph.custom_obj_values:
            return ir.ValueInfo(dtype="CustomObjArgument")
        raise pt2_text.UnknownConstruct(f"no type recorded for value '{name}'")

    # -- nodes --------------------------------------------------------------------------

    def _add(
        self,
        name: str,
        kind: str,
        target: str = "",
        outputs: list[ir.ValueInfo] | None = None,
        meta: pt2_schema.NodeMetadata | None = None,
    ) -> ir.NodeRecord:
        rec = ir.NodeRecord(name=name, kind=kind, target=target, outputs=outputs or [])
        if meta is not None:
            rec.scopes = self._scopes(meta.nn_module_stack)
            rec.stack_trace = meta.stack_trace or None
        self.record.nodes.append(rec)
        self.known.add(name)
        return rec

    def _placeholder(self, index: int, graph_input: dict[str, Any]) -> None:
        ((kind, value),) = graph_input.items()
        if kind in ("as_tensor", "as_custom_obj"):
            name, info = value["name"], self._value(value["name"])
        elif kind == "as_sym_int" and "as_name" in value:
            name, info = value["as_name"], self._value(value["as_name"])
        elif kind in ("as_int", "as_float", "as_bool", "as_none", "as_string"):
            spec_name = ""
            if index < len(self.input_specs):
                ((spec_kind, body),) = self.input_specs[index].items()
                spec_name = _spec_arg_name(spec_kind, body)
            name, info = spec_name or f"arg{index}", pt2_text.constant_info(kind, value)
        else:
            raise pt2_text.UnknownConstruct(f"graph input of kind '{kind}'")
        self.names.create(name)
        node_kind, fqn = self.kinds.get(name, (ir.USER_INPUT, ""))
        rec = self._add(name, node_kind, outputs=[info])
        if fqn:
            rec.attrs["fqn"] = fqn

    def _node(self, node: pt2_schema.Node) -> None:
        target, is_sym_op, is_hop, has_schema = pt2_text.target_kind(node.target)
        meta = node.metadata or _NO_METADATA
        ordered = _ordered_inputs(node.inputs, is_sym_op, has_schema)
        if self.graph_loads:
            self.graph_loads = {}
        if not has_schema and not is_sym_op:  # nested graphs (cond, while_loop) become
            # get_attr nodes, placed before the node that runs them, as torch places them
            for item in ordered:
                if "as_graph" in item.arg:
                    self._graph_arg(item.arg["as_graph"], meta)
        name = node.name or self._fallback_name(node, is_sym_op)
        inputs, attrs = self._arguments(ordered, _naming_rule(has_schema, is_sym_op, is_hop))
        rec = ir.NodeRecord(
            name=name,
            kind=ir.OP,
            target=target,
            inputs=inputs,
            outputs=[],
            scopes=self._scopes(meta.nn_module_stack),
            stack_trace=meta.stack_trace or None,
            attrs=attrs,
        )
        if meta.debug_handle is not None:  # as fx_reader records node.meta["debug_handle"]
            rec.attrs["debug_handle"] = meta.debug_handle
        self.names.create(name)
        self.record.nodes.append(rec)
        self.known.add(name)
        if is_sym_op:
            outputs = node.outputs
            rec.name = outputs[0][next(iter(outputs[0]))]["as_name"]
            rec.outputs = [self._value(rec.name)]
            self.known.add(rec.name)
            return
        self._outputs(rec, node, meta, is_hop)

    def _arguments(
        self, ordered: list[pt2_schema.NamedArgument], naming_rule: str | None
    ) -> tuple[list[tuple[str, int]], dict[str, str]]:
        """A node's inputs (producer, output index), and its literal arguments as attrs
        (named as fx_reader names them: schema name, Python parameter name, position)."""
        inputs: list[tuple[str, int]] = []
        attrs: dict[str, str] = {}
        for position, item in enumerate(ordered):
            arg = item.arg
            tensor = arg.get("as_tensor")
            if tensor is not None:  # the common case, kept short
                inputs.append((tensor["name"], 0))
                continue
            ((kind, value),) = arg.items()
            if kind in _NODE_KINDS:
                inputs.extend((src, 0) for src in self._nodes_in(kind, value))
            if naming_rule is not None:
                text = pt2_text.literal_text(kind, value, self._symbol)
                if text is not None:
                    attrs[_argument_key(item, position, naming_rule)] = text
        return inputs, attrs

    def _symbol(self, name: str) -> str | None:
        """The value of a symbolic node (``s77``), as torch prints the loaded SymInt."""
        sym = self.sym_values.get(name)
        return pt2_text.sym_info(*sym).value if sym is not None else None

    def _fallback_name(self, node: pt2_schema.Node, is_sym_op: bool) -> str:
        """Archives before node names were stored: torch names a node after its output."""
        outputs = node.outputs
        if outputs:
            ((kind, value),) = outputs[0].items()
            if kind == "as_tensor" and len(outputs) == 1:
                return str(value["name"])
            if is_sym_op and isinstance(value, dict) and "as_name" in value:
                return str(value["as_name"])
        return self.names.peek(pt2_text.op_base_name(node.target))

    def _outputs(
        self,
        rec: ir.NodeRecord,
        node: pt2_schema.Node,
        meta: pt2_schema.NodeMetadata,
        is_hop: bool,
    ) -> None:
        """Mirror torch's ``deserialize_outputs``: the node's name, value, getitems."""
        outputs = node.outputs
        if not outputs:
            return
        ((kind, value),) = outputs[0].items()
        if (
            len(outputs) == 1
            and is_hop
            and node.is_hop_single_tensor_return is not True
            and kind != "as_none"
        ):
            # A higher-order op returning a one-element tuple: one getitem reads it.
            item = value["name"] if kind == "as_tensor" else value.get("as_name")
            if item is None:
                raise pt2_text.UnknownConstruct(f"output of kind '{kind}' on '{rec.name}'")
            info = self._getitem(rec.name, str(item), 0, meta)
            rec.outputs = [info]
            return
        if len(outputs) == 1 and kind == "as_tensor":
            self._rename(rec, value["name"])
            rec.outputs = [self._value(rec.name)]
            return
        if len(outputs) == 1 and kind in ("as_sym_int", "as_sym_bool", "as_sym_float"):
            self._rename(rec, value["as_name"])
            rec.outputs = [self._value(rec.name)]
            return
        if len(outputs) == 1 and kind == "as_none":
            self._rename(rec, self.names.create(f"{pt2_text.op_base_name(node.target)}_unused"))
            rec.outputs = [ir.ValueInfo(dtype="None")]
            return
        if len(outputs) == 1:
            if kind != "as_tensors":
                raise pt2_text.UnknownConstruct(f"output of kind '{kind}' on '{rec.name}'")
            items = [{"as_tensor": item} for item in value]
        else:
            items = outputs
        rec.outputs = self._getitems(rec.name, items, meta)

    def _getitems(
        self, parent: str, items: list[dict[str, Any]], meta: pt2_schema.NodeMetadata
    ) -> list[ir.ValueInfo]:
        infos = []
        for index, item in enumerate(items):
            ((kind, value),) = item.items()
            if kind == "as_tensor":
                infos.append(self._getitem(parent, value["name"], index, meta))
            elif kind in ("as_sym_int", "as_sym_float"):
                infos.append(self._getitem(parent, value["as_name"], index, meta))
            elif kind == "as_none":
                name = self.names.create("as_none")
                rec = self._add(name, ir.OP, "operator.getitem", [ir.ValueInfo("None")], meta)
                rec.inputs = [(parent, index)]
                infos.append(ir.ValueInfo(dtype="None"))
            elif kind in ("as_tensors", "as_sym_ints", "as_sym_floats"):
                name = self.names.create("getitem")
                rec = self._add(name, ir.OP, "operator.getitem", None, meta)
                rec.inputs = [(parent, index)]
                nested = [{kind[:-1]: element} for element in value]
                rec.outputs = self._getitems(name, nested, meta)
                infos.append(ir.ValueInfo(dtype="list"))
            else:
                raise pt2_text.UnknownConstruct(f"output of kind '{kind}' on '{parent}'")
        return infos

    def _getitem(
        self, parent: str, name: str, index: int, meta: pt2_schema.NodeMetadata
    ) -> ir.ValueInfo:
        self.names.create(name)
        info = self._value(name)
        rec = self._add(name, ir.OP, "operator.getitem", [info], meta)
        rec.inputs = [(parent, index)]
        return info

    def _rename(self, rec: ir.NodeRecord, name: str) -> None:
        """torch renames a single-output node after its output value."""
        rec.name = name
        self.known.add(name)

    def _output(self) -> None:
        sources = []
        texts: list[str] = []  # every output in order: node names and constants
        for graph_output in self.graph.outputs:
            ((kind, value),) = graph_output.items()
            if kind == "as_tensor":
                sources.append(value["name"])
            elif kind in ("as_sym_int", "as_sym_bool", "as_sym_float") and "as_name" in value:
                sources.append(value["as_name"])
            elif kind in ("as_int", "as_float", "as_bool", "as_none", "as_string"):
                texts.append(pt2_text.scalar_text(kind, value) or "None")
                continue
            else:
                raise pt2_text.UnknownConstruct(f"graph output of kind '{kind}'")
            texts.append(sources[-1])
        name = self.names.create("output")
        rec = self._add(name, ir.OUTPUT)
        rec.inputs = [(src, 0) for src in sources]
        if len(texts) != len(sources):  # some outputs are constants: show them all
            rec.attrs["values"] = "[" + ", ".join(texts) + "]"

    # -- inputs -------------------------------------------------------------------------

    def _graph_arg(self, value: dict[str, Any], meta: pt2_schema.NodeMetadata) -> None:
        """A get_attr node loading the graph; FX names it (a second load of one shared
        graph is ``<graph>_1``), the graph itself is read once."""
        graph_name = pt2_text.expect_text(value["name"], "as_graph.name")
        node_name = self.names.create(graph_name)
        self.graph_loads[graph_name] = node_name
        rec = self._add(node_name, ir.GET_ATTR, graph_name, [], meta)
        rec.subgraphs = [graph_name]
        if graph_name not in self.record.subprograms:
            graph = pt2_schema.graph_from_argument(value["graph"])
            sub = _GraphReader(graph, self.input_specs, {}, self.tensors)
            self.record.subprograms[graph_name] = sub.read(f"{self.record.name}/{graph_name}")

    def _nodes_in(self, kind: str, value: Any) -> Iterator[str]:
        """The nodes an argument of kind ``kind`` (one of ``_NODE_KINDS``) refers to."""
        if kind == "as_tensor":
            yield value["name"]
        elif kind in ("as_tensors",):
            for item in value:
                yield item["name"]
        elif kind in ("as_sym_int", "as_sym_float", "as_sym_bool", "as_optional_tensor"):
            yield from _named(value)
        elif kind in ("as_sym_ints", "as_sym_floats", "as_sym_bools", "as_optional_tensors"):
            for item in value:
                yield from _named(item)
        elif kind == "as_nested_tensors":
            for inner in value:
                for item in inner:
                    yield item["name"]
        elif kind == "as_graph":
            yield self.graph_loads.get(value["name"], value["name"])
        elif kind == "as_custom_obj":
            if value["name"] in self.known:
                yield value["name"]
        elif kind == "as_string_to_argument":
            for item in value.values():
                ((item_kind, item_value),) = item.items()
                yield from self._nodes_in(item_kind, item_value)

    def _scopes(self, stack: str | None) -> list[ir.Scope]:
        if not stack:
            return []
        found = self.scope_cache.get(stack)
        if found is None:
            found = pt2_text.module_stack_scopes(stack)
            self.scope_cache[stack] = found
        return found  # shared between nodes: records are read, never changed, past here


_NO_METADATA = pt2_schema.NodeMetadata()  # shared, never changed


def _ordered_inputs(
    inputs: list[pt2_schema.NamedArgument], is_sym_op: bool, has_schema: bool
) -> list[pt2_schema.NamedArgument]:
    """A node's arguments in the order torch passes them: args, then kwargs."""
    if is_sym_op:
        return inputs
    for item in inputs:
        if item.kind != _POSITIONAL:
            break
    else:  # all positional: the common case, in order already
        return inputs
    args: list[pt2_schema.NamedArgument] = []
    kwargs: dict[str, pt2_schema.NamedArgument] = {}
    for item in inputs:
        if has_schema:
            if item.kind == _KEYWORD and not keyword.iskeyword(item.name):
                kwargs[item.name] = item
            else:
                args.append(item)
        elif item.kind == _POSITIONAL or item.name == "":
            args.append(item)
        else:
            kwargs[item.name] = item
    return [*args, *kwargs.values()]


def _argument_key(item: pt2_schema.NamedArgument, position: int, naming_rule: str) -> str:
    """A literal's attr key: its name, or for a higher-order op's positional argument
    its position (``arg 1``), as ``fx_reader`` keys them."""
    if naming_rule != _BY_POSITION:
        return item.name
    positional = item.kind == _POSITIONAL or item.name == ""  # as _ordered_inputs splits
    return f"arg {position}" if positional else item.name


def _naming_rule(has_schema: bool, is_sym_op: bool, is_hop: bool) -> str | None:
    if has_schema:
        return _BY_SCHEMA
    if is_sym_op:
        return _BY_NAME
    return _BY_POSITION if is_hop else None


def _named(value: dict[str, Any]) -> Iterator[str]:
    """The node a Sym*Argument / OptionalTensorArgument refers to, if any."""
    if "as_name" in value:
        yield value["as_name"]
    elif "as_tensor" in value:
        yield value["as_tensor"]["name"]



class _Namespace:
    """FX's node-name picker (``torch.fx.graph._Namespace.create_name``), for the names
    torch's deserializer lets FX choose (``getitem``, ``as_none``, ``output``).

    Serialized names are taken as they are; only their numeric suffixes matter (FX
    counts from the last one it saw per base name), so those are parsed lazily, the
    first time FX's choice is needed.
    """

    _NAME = re.compile(r"^([a-zA-Z_][0-9a-zA-Z_]*?)(?:_(\d+))?$")

    def __init__(self) -> None:
        self.used: set[str] = set()
        self.base_count: dict[str, int] = {}
        self.pending: list[str] = []

    def create(self, candidate: str) -> str:
        if candidate not in self.used and candidate.isidentifier():
            self.used.add(candidate)
            if candidate[-1].isdigit():
                self.pending.append(candidate)
            return candidate
        self._settle()
        name, base, num = self._pick(candidate)
        self.used.add(name)
        self.base_count[base] = num
        return name

    def peek(self, candidate: str) -> str:
        self._settle()
        return self._pick(candidate)[0]

    def _settle(self) -> None:
        """Counters of the names taken as they were (FX keeps a name's own suffix)."""
        for name in self.pending:
            match = self._NAME.match(name)
            if match is not None and match.group(2) is not None:
                self.base_count[match.group(1)] = int(match.group(2))
        self.pending.clear()

    def _pick(self, candidate: str) -> tuple[str, str, int]:
        match = self._NAME.match(candidate)
        if match is None:
            candidate = re.sub(r"[^0-9a-zA-Z_]+", "_", candidate) or "_unnamed"
            if candidate[0].isdigit():
                candidate = f"_{candidate}"
            match = self._NAME.match(candidate)
            assert match is not None
        base, digits = match.group(1), match.group(2)
        if digits is None or candidate in self.used:
            num = self.base_count.get(base, 0)
        else:
            num = int(digits)
        while candidate in self.used:
            num += 1
            candidate = f"{base}_{num}"
        return candidate, base, num
