"""How things are spelled in the graph: op labels, dtypes, symbols, literals, scopes.

Shared by both readers (live FX graph and ``.pt2`` archive) so that they agree on every
string. No torch import here.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from functools import lru_cache
from typing import Any

from etviz_lsp.graph.core import ir

# Entries torch puts on nn_module_stack that are not modules of the user's model.
_BOGUS_STACK_PREFIXES = ("_empty_nn_module_stack", "L__self__")


@lru_cache(maxsize=4096)  # asked several times per node; a program has few distinct targets
def short_label(target: str) -> str:
    """``aten.conv2d.default`` -> ``conv2d``; ``operator.getitem`` -> ``getitem``."""
    parts = target.split(".")
    if len(parts) >= 3 and parts[0] not in ("operator", "higher_order"):
        return parts[-2]
    return parts[-1] if parts else target


def dtype_name(text: str) -> str:
    """``torch.float32`` -> ``float32``."""
    return text.removeprefix("torch.")


def sym_text(text: str) -> str:
    """Symbolic expressions as torch prints them, without spaces to vary on."""
    return text.replace(" ", "")


def float_text(value: float) -> str:
    return repr(float(value))


def complex_text(real: float, imag: float) -> str:
    """``1j``, ``(2+0.5j)``: as Python prints a complex."""
    return repr(complex(real, imag))


def enum_text(text: str) -> str:
    """``torch.contiguous_format`` -> ``contiguous_format``; devices stay ``cpu``."""
    return text.removeprefix("torch.")


@lru_cache(maxsize=4096)
def class_name(qualname: str) -> str:
    """Last piece of a dotted class name: ``torch.nn.modules.conv.Conv2d`` -> ``Conv2d``.

    Works for ``<locals>`` classes too (``...<locals>.Wrapper`` -> ``Wrapper``).
    """
    text = qualname.strip()
    if text.startswith("<class '") and text.endswith("'>"):
        text = text[len("<class '") : -2]
    return text.rsplit(".", 1)[-1] or text


def scopes_from_stack(stack: list[tuple[str, str]]) -> list[ir.Scope]:
    """Clean an ``nn_module_stack``: drop the root, torch's placeholders and repeats."""
    return unique_scopes([module_scope(path, cls) for path, cls in stack])


def unique_scopes(scopes: Iterable[ir.Scope | None]) -> list[ir.Scope]:
    """``scopes`` in order, less the Nones (see ``module_scope``) and repeated paths."""
    unique: list[ir.Scope] = []
    seen: set[str] = set()
    for scope in scopes:
        if scope is not None and scope.path not in seen:
            seen.add(scope.path)
            unique.append(scope)
    return unique


@lru_cache(maxsize=16384)  # one Scope per module, shared by every stack it is on
def module_scope(path: str, cls: str) -> ir.Scope | None:
    """One ``nn_module_stack`` entry; None for the root module and torch's placeholders."""
    path = _clean_path(path)
    if not path or path.startswith(_BOGUS_STACK_PREFIXES):
        return None
    return ir.Scope(path, class_name(cls))


_INDEX = re.compile(r"\[(\d+)\]")


def _clean_path(path: str) -> str:
    """Older torch wrote ``L['self'].layers[0]``; newer writes ``layers.0``."""
    if "[" in path:  # (a test first: the regular expression costs more than the test)
        path = path.replace("L['self'].", "").replace("L['self']", "")
        path = _INDEX.sub(r".\1", path)
    return path.strip(".")  # a name may hold "/" ("a/b" is legal): kept, escaped in layers


def segment(scope: ir.Scope, parent: ir.Scope | None) -> str:
    """The layer name: the attribute under its parent, then the class: ``conv (Conv2d)``."""
    attr = scope.path
    if parent is not None and attr.startswith(parent.path + "."):
        attr = attr[len(parent.path) + 1 :]
    return escape_segment(f"{attr} ({scope.cls})" if scope.cls else attr)


def escape_segment(text: str) -> str:
    r"""One namespace segment as Model Explorer reads it (its ``splitNamespace``).

    It splits a namespace at ``/`` except ``\/``, and shows ``\/`` as ``/``: a module
    ``a/b`` is the layer ``a\/b``, apart from ``a_b``. It also keeps only the text after
    the last ``;`` and would read a trailing ``\`` as escaping the separator after it:
    those two become look-alikes (fullwidth ``；``, ``⧵``).
    """
    if "/" in text or ";" in text or text.endswith("\\"):
        text = text.replace("/", "\\/").replace(";", "\uff1b")
        if text.endswith("\\"):
            text = text[:-1] + "\u29f5"
    return text


def tensor_shape_text(value: ir.ValueInfo) -> str:
    """What Model Explorer shows on an edge: ``float32[1, s0, 32]`` or ``SymInt: s0``."""
    if value.shape is not None:
        return f"{value.dtype}[{', '.join(value.shape)}]"
    if value.value is not None:
        return f"{value.dtype}: {value.value}"
    return value.dtype


def compile_spec_attrs(specs: Iterable[tuple[Any, Any]]) -> dict[str, str]:
    """``compile spec <key>`` -> value as text, or its size when it is not printable."""
    return {f"compile spec {key}": _spec_text(value) for key, value in specs}


def _spec_text(value: Any) -> str:
    if isinstance(value, (bytes, bytearray)):
        try:
            text = bytes(value).decode("utf-8")
        except UnicodeDecodeError:
            return f"<{len(value)} bytes>"
        return text if text.isprintable() else f"<{len(value)} bytes>"
    return str(value)
