"""Symbolic sizes read from a .pt2's srepr text print as torch prints the loaded SymInt."""

from __future__ import annotations

import pytest
import sympy
from torch.utils._sympy.functions import CeilDiv, FloorDiv, Mod, PythonMod

from etviz_lsp.graph.core import naming
from etviz_lsp.graph.readers import sym_expr

s0, s1, s27 = (sympy.Symbol(n, positive=True, integer=True) for n in ("s0", "s1", "s27"))
u0 = sympy.Symbol("u0", integer=True)

EXPRESSIONS = [
    s27, 16 * s27, 48 * s27, s27**2, s0 + 1, s0 - 1, 2 * s0 + 1, s0 + s1, s0 * s1,
    s0 * s1 + s0 + 1, -s0, 1 - s0, s1 - s0, 3 * s0 * s1 - 7, s0 / 2, s0 + s1 + s27,
    FloorDiv(s0, 2), FloorDiv(s0 + 1, 2), 2 * FloorDiv(s0, 2), FloorDiv(s0, 2) + 1,
    FloorDiv(s0 * s1, 4), s0 * FloorDiv(s1, 2), CeilDiv(s0, 3), Mod(s0, 2), PythonMod(s0, 4),
    sympy.Max(s0, s1), sympy.Min(2, s0), s0**2 + 2 * s0 + 1, s0**3, 2 * s0**2, (s0 + 1) ** 2,
    sympy.Integer(5), sympy.Integer(-3), u0 + 1, sympy.Eq(s0, 4), s0 >= 2, s1 < s0,
]  # fmt: skip


@pytest.mark.parametrize("expr", EXPRESSIONS, ids=str)
def test_srepr_prints_like_sympy_str(expr: sympy.Expr) -> None:
    """torch saves sizes with sympy.srepr; a loaded SymInt prints with str(expr)."""
    expected = naming.sym_text(str(expr))
    assert naming.sym_text(sym_expr.to_text(sympy.srepr(expr))) == expected


@pytest.mark.parametrize("text", ["Mul(Integer(2)", "Symbol('s0'", "%%%", ""])
def test_unreadable_text_is_an_error_not_a_guess(text: str) -> None:
    with pytest.raises(sym_expr.SymExprError):
        sym_expr.to_text(text)
