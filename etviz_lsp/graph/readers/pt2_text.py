"""Text of a serialized program's parts, as ``fx_reader`` shows the loaded ones.

Targets (``torch.ops.aten.relu.default`` -> ``aten.relu.default``, edge dialect ops as
their aten op), tensor and symbolic values (dtype names, sizes, sympy expressions),
literal arguments and ``nn_module_stack`` texts. Each is worked out once per distinct
text: a 20k-node program repeats a few dozen of them.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from functools import lru_cache
from typing import Any, NamedTuple

import msgspec

from etviz_lsp.graph.core import ir, naming
from etviz_lsp.graph.readers import pt2_schema


class UnknownConstruct(Exception):
    """Something in the serialized program this reader does not know how to show."""


# schema.ScalarType / Layout / MemoryFormat -> how torch prints them, minus "torch.".
DTYPES = {
    1: "uint8", 2: "int8", 3: "int16", 4: "int32", 5: "int64", 6: "float16", 7: "float32",
    8: "float64", 9: "complex32", 10: "complex64", 11: "complex128", 12: "bool",
    13: "bfloat16", 28: "uint16", 29: "float8_e4m3fn", 30: "float8_e5m2",
    31: "float8_e4m3fnuz", 32: "float8_e5m2fnuz", 33: "float8_e8m0fnu", 34: "uint32",
    35: "uint64",
}  # fmt: skip
LAYOUTS = {
    1: "sparse_coo", 2: "sparse_csr", 3: "sparse_csc", 4: "sparse_bsr", 5: "sparse_bsc",
    6: "_mkldnn", 7: "strided",
}  # fmt: skip
MEMORY_FORMATS = {
    1: "contiguous_format", 2: "channels_last", 3: "channels_last_3d", 4: "preserve_format"
}

# Targets torch deserializes as "sym ops": every input positional, named by its output.
_SYM_OPS = frozenset(
    f"_operator.{name}"
    for name in [
        "eq", "ne", "le", "ge", "lt", "gt", "neg", "pos", "mul", "add", "sub", "floordiv",
        "mod", "pow", "truediv", "and_", "or_", "lshift", "rshift",
    ]  # fmt: skip
) | frozenset(
    {"math.trunc", "torch.sym_not", "torch.sym_int", "torch.sym_float", "torch.sym_ite",
     "torch.sym_max", "torch.sym_min", "torch.sym_sqrt", "torch.ops.aten.item.default"}
)  # fmt: skip
_HIGHER_ORDER = "torch.ops.higher_order."
# Argument kinds that never hold a literal (tensors, graphs, objects).
_NOT_LITERAL = frozenset(
    {"as_none", "as_tensor", "as_graph", "as_custom_obj", "as_operator", "as_complex",
     "as_optional_tensor", "as_string_to_argument"}
)  # fmt: skip


def expect_text(value: Any, field: str) -> str:
    """A value the schema says is a string (a damaged file may hold anything there)."""
    if not isinstance(value, str):
        raise UnknownConstruct(f"'{field}' is not text")
    return value



def module_stack_scopes(text: str) -> list[ir.Scope]:
    """``key,path,Class;key,path,Class`` -> scopes, as ``naming.scopes_from_stack``.

    A path may hold commas inside brackets (``L['self'].layers[0]``): torch splits at
    top-level commas only, and so do we. Repeated keys keep their first position and the
    last value, as a dict does. torch writes module names as they are, so a name holding
    ``;`` or ``,`` (legal in ``add_module``) cuts an entry in pieces, which
    ``torch.export.load`` then refuses: the pieces are joined back here.
    """
    by_key: dict[str, ir.Scope | None] = {}
    items = text.split(";")
    index = 0
    while index < len(items):
        item = items[index]
        entry = _stack_entry(item)
        while entry is None and index + 1 < len(items):  # a name holding ";"
            index += 1
            item = f"{item};{items[index]}"
            entry = _stack_entry(item)
        if entry is None:
            raise UnknownConstruct(f"nn_module_stack entry {item!r}")
        key, scope = entry
        by_key[key] = scope
        index += 1
    return naming.unique_scopes(by_key.values())


@lru_cache(maxsize=16384)  # stacks differ, their entries repeat (each layer's root, ...)
def _stack_entry(item: str) -> tuple[str, ir.Scope | None] | None:
    """``key,path,Class`` (None when it is not one, e.g. a piece of a longer entry)."""
    parts = _split_top_level(item)
    if len(parts) == 3:
        key, path, cls = parts
        return key, naming.module_scope(path, cls)
    if len(parts) < 3:
        return None
    # A name holding ",": the class (a qualified name, no commas) is last and the key
    # ends with the path (``L__self__a,b`` for ``a,b``).
    rest = parts[:-1]
    for cut in range(1, len(rest)):
        key, path = ",".join(rest[:cut]), ",".join(rest[cut:])
        if key.endswith(path):
            return key, naming.module_scope(path, parts[-1])
    return None


def _split_top_level(text: str) -> list[str]:
    if "[" not in text and "(" not in text:
        return text.split(",")
    out, start, depth = [], 0, 0
    for index, char in enumerate(text):
        if char in "[(":
            depth += 1
        elif char in ")]":
            depth -= 1
        elif char == "," and depth == 0:
            out.append(text[start:index])
            start = index + 1
    out.append(text[start:])
    return out


class TargetKind(NamedTuple):
    name: str  # as fx_reader spells it
    is_sym_op: bool
    is_hop: bool  # a higher-order op (cond, while_loop, ...)
    has_schema: bool  # an OpOverload: its arguments split into positional and keyword


_TARGET_KINDS: dict[str, TargetKind] = {}
# How ExecuTorch's serializer (an ETRecord's programs) writes an edge dialect op: the
# same operator, and fx_reader spells the live one as the aten op (``aten.relu.default``).
_EDGE_OPS = "executorch.exir.dialects.edge.ops."


def target_kind(serialized: str) -> TargetKind:
    """Worked out once per distinct target: a 20k-node program has a few dozen."""
    found = _TARGET_KINDS.get(serialized)
    if found is None and serialized.startswith(_EDGE_OPS):
        found = target_kind("torch.ops." + serialized[len(_EDGE_OPS) :])
        _TARGET_KINDS[serialized] = found
    if found is None:
        is_sym_op = serialized in _SYM_OPS
        is_hop = serialized.startswith(_HIGHER_ORDER)
        has_schema = not is_sym_op and not is_hop and serialized.startswith("torch.ops.")
        found = TargetKind(_target_name(serialized), is_sym_op, is_hop, has_schema)
        _TARGET_KINDS[serialized] = found
    return found


def _target_name(serialized: str) -> str:
    """Spell a serialized target as ``fx_reader.target_name`` spells the live one."""
    if serialized.startswith("torch.ops."):
        return serialized[len("torch.ops.") :]
    if serialized.startswith("#"):
        raise UnknownConstruct(f"extension operator '{serialized}'")
    module, _, func = serialized.rpartition(".")
    if not module:
        raise UnknownConstruct(f"unknown operator '{serialized}'")
    return f"{module.lstrip('_')}.{func}"


def op_base_name(serialized: str) -> str:
    """FX's default node name for a target: ``torch.ops.aten.foo.default`` -> ``foo``."""
    parts = serialized.split(".")
    base = parts[-2] if serialized.startswith("torch.ops.") and len(parts) >= 2 else parts[-1]
    base = re.sub(r"(?<!^)(?=[A-Z])", "_", base).lower()
    return re.sub(r"[^0-9a-zA-Z_]+", "_", base) or "_unnamed"


class TensorInfos:
    """Value infos of a program's tensors, by the raw JSON text of their metadata.

    A 20k-node program has 20k tensor values but a few dozen distinct metadata texts
    (dtype, sizes, strides ...): each text is decoded once, and nodes share its info
    (immutable). JSON ``null`` gives None.
    """

    def __init__(self) -> None:
        self._by_text: dict[bytes, ir.ValueInfo] = {}

    def info(self, raw: msgspec.Raw) -> ir.ValueInfo | None:
        text = bytes(raw)
        found = self._by_text.get(text)
        if found is None:
            meta = pt2_schema.decode_tensor_meta(raw)
            if meta is None:
                return None
            found = self._by_text[text] = _tensor_info(meta)
        return found


def _tensor_info(meta: pt2_schema.TensorMeta) -> ir.ValueInfo:
    dtype = DTYPES.get(meta.dtype)
    if dtype is None:
        raise UnknownConstruct(f"tensor dtype code {meta.dtype}")
    return ir.ValueInfo(dtype=dtype, shape=tuple([_size_text(size) for size in meta.sizes]))


def _size_text(size: dict[str, Any]) -> str:
    value = size.get("as_int")
    if value is not None:
        return str(value)
    return _expr_text(size["as_expr"]["expr_str"])


_EXPR_CACHE: dict[str, str] = {}


def _expr_text(srepr: str) -> str:
    text = _EXPR_CACHE.get(srepr)
    if text is None:
        # Imported here: only dynamic shapes have expressions, and its imports
        # (fractions, decimal) cost a static program's start time for nothing.
        from etviz_lsp.graph.readers import sym_expr

        try:
            text = naming.sym_text(sym_expr.to_text(srepr))
        except sym_expr.SymExprError as exc:
            raise UnknownConstruct(str(exc)) from None
        _EXPR_CACHE[srepr] = text
    return text


def sym_info(dtype: str, value: dict[str, Any]) -> ir.ValueInfo:
    """A SymInt/SymFloat/SymBool value; a constant one is a plain int/float/bool."""
    ((kind, body),) = value.items()
    if kind != "as_expr":
        plain = {"SymInt": "int", "SymFloat": "float", "SymBool": "bool"}[dtype]
        return ir.ValueInfo(dtype=plain, value=str(float(body) if plain == "float" else body))
    text = _expr_text(body["expr_str"])
    if dtype == "SymInt" and text.lstrip("-").isdigit():  # torch turns Integer(n) into n
        return ir.ValueInfo(dtype="int", value=str(int(text)))
    return ir.ValueInfo(dtype=dtype, value=text)


def constant_info(kind: str, value: Any) -> ir.ValueInfo:
    if kind == "as_none":
        return ir.ValueInfo(dtype="None")
    if kind == "as_string":
        return ir.ValueInfo(dtype="str")
    if kind == "as_float":
        return ir.ValueInfo(dtype="float", value=str(float(value)))
    return ir.ValueInfo(dtype=type(value).__name__, value=str(value))


def format_argument(arg: dict[str, Any]) -> str | None:
    """A serialized Argument as ``fx_reader.format_literal`` shows its loaded value."""
    ((kind, value),) = arg.items()
    return literal_text(kind, value)


def literal_text(
    kind: str, value: Any, symbol: Callable[[str], str | None] | None = None
) -> str | None:
    """A literal argument's text; ``symbol`` gives a symbolic node's value (``s77``) so
    a list of sizes shows them (``[0, s77]``)."""
    if kind in _NOT_LITERAL:
        if kind == "as_complex":
            return naming.complex_text(float(value["real"]), float(value["imag"]))
        return None
    if isinstance(value, list):
        if not value:
            return "[]"  # torch loads every empty list as [], tensors lists included
        if kind == "as_optional_tensors":
            return _optional_tensors_text(value)
        element_kind = _ELEMENT_KIND.get(kind)
        if element_kind is None:
            return None
        items = [_item_text(element_kind, item, symbol) for item in value]
        if any(item is None for item in items):
            return None
        return "[" + ", ".join(str(item) for item in items) + "]"
    return scalar_text(kind, value)


def _item_text(
    kind: str, value: Any, symbol: Callable[[str], str | None] | None
) -> str | None:
    if symbol is not None and isinstance(value, dict) and "as_name" in value:
        return symbol(value["as_name"])
    return scalar_text(kind, value)


def _optional_tensors_text(items: list[Any]) -> str | None:
    """``[None, i]`` (as fx_reader shows it); None when every item is a tensor (edges)."""
    texts = []
    for item in items:
        ((kind, value),) = item.items()
        if kind == "as_none":
            texts.append("None")
        elif kind == "as_tensor":
            texts.append(expect_text(value["name"], "as_tensor.name"))
        else:
            return None
    if "None" not in texts:
        return None
    return "[" + ", ".join(texts) + "]"


_ELEMENT_KIND = {
    "as_ints": "as_int", "as_floats": "as_float", "as_bools": "as_bool",
    "as_strings": "as_string", "as_sym_ints": "as_sym_int", "as_sym_floats": "as_sym_float",
    "as_sym_bools": "as_sym_bool", "as_int_lists": "as_ints", "as_float_lists": "as_floats",
}  # fmt: skip


def scalar_text(kind: str, value: Any) -> str | None:
    if kind == "as_int":
        return str(int(value))
    if kind == "as_float":
        return naming.float_text(float(value))  # also "Infinity"/"NaN", as torch writes them
    if kind == "as_bool":
        return str(bool(value))
    if kind == "as_string":
        return naming.enum_text(str(value))
    if kind in ("as_ints", "as_floats"):
        if not isinstance(value, list):  # a damaged file: would recurse forever
            raise ValueError(f"{kind} holds {type(value).__name__}, not a list")
        return literal_text(kind, value)
    if kind in ("as_sym_int", "as_sym_float", "as_sym_bool"):
        if "as_name" in value:
            return None  # a symbolic value is a graph node: an edge, not a literal
        ((inner, plain),) = value.items()
        return scalar_text(inner, plain)
    if kind == "as_scalar_type":
        dtype = DTYPES.get(value)
        if dtype is None:
            raise UnknownConstruct(f"dtype code {value}")
        return dtype
    if kind == "as_memory_format":
        return MEMORY_FORMATS.get(value)
    if kind == "as_layout":
        return LAYOUTS.get(value)
    if kind == "as_device":
        index = value.get("index")
        return f"{value['type']}:{index}" if index is not None else str(value["type"])
    return None

