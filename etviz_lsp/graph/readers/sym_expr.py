"""Symbolic sizes as torch prints them, from the ``srepr`` text a ``.pt2`` stores.

``torch.export.save`` writes each symbolic size as sympy's ``srepr`` (``Mul(Integer(16),
Symbol('s27', positive=True, integer=True))``); a loaded program prints the same size as
``16*s27`` (sympy's ``str``). The archive reader must show what the load path shows, so
this module parses ``srepr`` and prints it the way sympy's ``StrPrinter`` does for the
expressions torch builds from sizes (integers, symbols, sums, products, powers, and
torch's own ``FloorDiv``, ``Mod``, ``Max``...). It needs neither sympy nor torch, which
would cost the fast path a second or more to import.

Spaces do not matter: ``naming.sym_text`` drops them from both readers' text.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from fractions import Fraction

# sympy's printing precedences (sympy/printing/precedence.py).
_ADD, _MUL, _POW, _FUNC, _ATOM = 40, 50, 60, 70, 1000
# torch's FloorDiv, ModularIndexing, Where, PythonMod, Mod, IntTrueDiv... print themselves
# or as functions but declare precedence 35 (torch/utils/_sympy/functions.py).
_TORCH_LOW_PRECEDENCE = frozenset(
    {"FloorDiv", "ModularIndexing", "Where", "PythonMod", "Mod", "FloatTrueDiv", "IntTrueDiv"}
)
_TORCH_PRECEDENCE = {"PowByNatural": _MUL, "FloatPow": _POW}

_TOKEN = re.compile(
    r"\s*(?:(?P<name>[A-Za-z_][A-Za-z0-9_]*)"
    r"|(?P<num>-?\d+(?:\.\d*)?(?:[eE][-+]?\d+)?)"
    r"|(?P<str>'[^']*'|\"[^\"]*\")"
    r"|(?P<punct>[(),=]))"
)


class SymExprError(ValueError):
    """The text is not an ``srepr`` expression this module understands."""


@dataclass(slots=True)
class Expr:
    """One parsed ``srepr`` call: ``head(args..., key=value...)``, or a bare literal."""

    head: str
    args: list[Expr] = field(default_factory=list)
    literal: int | str | float | bool | None = None


def to_text(srepr: str) -> str:
    """``srepr`` text -> what ``str()`` of the torch SymInt shows (spaces kept)."""
    return _print(parse(srepr))


def parse(text: str) -> Expr:
    tokens = _tokens(text)
    try:
        expr, pos = _parse(tokens, 0)
    except IndexError:  # the text ended inside a call
        raise SymExprError(f"symbolic expression {text!r} ends early") from None
    if pos != len(tokens):
        raise SymExprError(f"trailing text in symbolic expression {text!r}")
    return expr


def _tokens(text: str) -> list[tuple[str, str]]:
    out: list[tuple[str, str]] = []
    pos = 0
    text = text.strip()
    while pos < len(text):
        match = _TOKEN.match(text, pos)
        if match is None or match.end() == pos:
            raise SymExprError(f"cannot read symbolic expression {text!r}")
        kind = match.lastgroup or ""
        out.append((kind, match.group(kind)))
        pos = match.end()
    return out


def _parse(tokens: list[tuple[str, str]], pos: int) -> tuple[Expr, int]:
    if pos >= len(tokens):
        raise SymExprError("symbolic expression ends early")
    kind, text = tokens[pos]
    if kind == "num":
        value: int | float = float(text) if any(c in text for c in ".eE") else int(text)
        return Expr("literal", literal=value), pos + 1
    if kind == "str":
        return Expr("literal", literal=text[1:-1]), pos + 1
    if kind != "name":
        raise SymExprError(f"unexpected {text!r} in symbolic expression")
    if pos + 1 >= len(tokens) or tokens[pos + 1][1] != "(":
        if text in ("True", "False"):
            return Expr("literal", literal=text == "True"), pos + 1
        return Expr(text), pos + 1  # a bare singleton such as ``oo`` or ``zoo``
    expr = Expr(text)
    pos += 2
    while tokens[pos][1] != ")":
        is_keyword = (
            tokens[pos][0] == "name" and pos + 1 < len(tokens) and tokens[pos + 1][1] == "="
        )
        if is_keyword:  # assumptions such as positive=True: not printed
            _, pos = _parse(tokens, pos + 2)
        else:
            arg, pos = _parse(tokens, pos)
            expr.args.append(arg)
        if tokens[pos][1] == ",":
            pos += 1
    return expr, pos + 1


# ---- numbers -------------------------------------------------------------------------


def _number(expr: Expr) -> Fraction | None:
    """Value of Integer / Rational / the singletons One, Zero, NegativeOne, Half."""
    head = expr.head
    if head == "Integer" and expr.args and isinstance(expr.args[0].literal, int):
        return Fraction(expr.args[0].literal)
    if head == "Rational" and len(expr.args) == 2:
        p, q = expr.args[0].literal, expr.args[1].literal
        if isinstance(p, int) and isinstance(q, int):
            return Fraction(p, q)
    return {"One": Fraction(1), "Zero": Fraction(0), "NegativeOne": Fraction(-1),
            "Half": Fraction(1, 2)}.get(head)


def _number_text(value: Fraction) -> str:
    if value.denominator == 1:
        return str(value.numerator)
    return f"{value.numerator}/{value.denominator}"


def _precedence(expr: Expr) -> int:
    value = _number(expr)
    if value is not None:
        if value < 0:
            return _ADD
        return _ATOM if value.denominator == 1 else _MUL
    head = expr.head
    if head == "Add":
        return _ADD
    if head == "Mul":
        coeff = _number(expr.args[0]) if expr.args else None
        return _ADD if coeff is not None and coeff < 0 else _MUL
    if head == "Pow":
        return _POW
    if head in _TORCH_LOW_PRECEDENCE:
        return 35
    if head in _TORCH_PRECEDENCE:
        return _TORCH_PRECEDENCE[head]
    if head in ("Symbol", "Dummy", "literal") or not expr.args:
        return _ATOM
    return _FUNC


def _paren(expr: Expr, level: int) -> str:
    text = _print(expr)
    return f"({text})" if _precedence(expr) < level else text


# ---- printing ------------------------------------------------------------------------


def _print(expr: Expr) -> str:
    value = _number(expr)
    if value is not None:
        return _number_text(value)
    head = expr.head
    if head == "literal":
        return str(expr.literal)
    if head in ("Symbol", "Dummy"):
        return str(expr.args[0].literal) if expr.args else head
    if head == "Add":
        return _print_add(expr)
    if head == "Mul":
        return _print_mul(expr)
    if head == "Pow":
        return _print_pow(expr)
    if head == "FloorDiv":  # torch prints it itself: ``(base//divisor)``
        base, divisor = (_paren(arg, _ATOM) for arg in expr.args)
        return f"({base}//{divisor})"
    if head == "Identity":
        return f"({_print(expr.args[0])})"
    if head in ("Float",) and expr.args:
        return str(expr.args[0].literal)
    if head in ("BooleanTrue", "true"):
        return "True"
    if head in ("BooleanFalse", "false"):
        return "False"
    if head == "Infinity":
        return "oo"
    if head == "NegativeInfinity":
        return "-oo"
    if head in ("Equality", "Unequality"):
        left, right = (_print(arg) for arg in expr.args)
        return f"{'Eq' if head == 'Equality' else 'Ne'}({left}, {right})"
    if head in _RELATIONS:
        left, right = (_paren(arg, 35) for arg in expr.args)
        return f"{left} {_RELATIONS[head]} {right}"
    if not expr.args:
        return head
    return f"{head}({', '.join(_print(arg) for arg in expr.args)})"


_RELATIONS = {
    "StrictLessThan": "<", "LessThan": "<=",
    "StrictGreaterThan": ">", "GreaterThan": ">=",
}


def _print_pow(expr: Expr) -> str:
    base, exp = expr.args
    exp_value = _number(exp)
    if exp_value == Fraction(1, 2):
        return f"sqrt({_print(base)})"
    if exp_value == -1:
        return f"1/{_paren(base, _POW)}"
    return f"{_paren(base, _POW)}**{_paren(exp, _POW)}"


def _print_mul(expr: Expr) -> str:
    prec = _precedence(expr)
    factors = list(expr.args)
    coeff = _number(factors[0]) if factors else None
    if coeff is not None:
        factors = factors[1:]
    else:
        coeff = Fraction(1)
    sign = ""
    if coeff < 0:
        sign, coeff = "-", -coeff
    numer: list[str] = []
    denom: list[str] = []
    if coeff.numerator != 1:
        numer.append(str(coeff.numerator))
    if coeff.denominator != 1:
        denom.append(str(coeff.denominator))
    for factor in factors:
        if factor.head == "Pow" and (_number(factor.args[1]) or 0) < 0:
            exp = -(_number(factor.args[1]) or Fraction(0))
            base = factor.args[0]
            inverse = base if exp == 1 else Expr("Pow", [base, _integer(exp)])
            denom.append(_paren(inverse, prec))
        else:
            numer.append(_paren(factor, prec))
    text = "*".join(numer) or "1"
    if len(denom) > 1:
        return f"{sign}{text}/({'*'.join(denom)})"
    if denom:
        return f"{sign}{text}/{denom[0]}"
    return sign + text


def _integer(value: Fraction) -> Expr:
    if value.denominator == 1:
        return Expr("Integer", [Expr("literal", literal=value.numerator)])
    return Expr(
        "Rational",
        [Expr("literal", literal=value.numerator), Expr("literal", literal=value.denominator)],
    )


def _print_add(expr: Expr) -> str:
    pieces: list[str] = []
    for term in _ordered_terms(expr.args):
        text = _print(term)
        if text.startswith("-") and term.head != "Add":
            sign, text = "-", text[1:]
        else:
            sign = "+"
        if _precedence(term) < _ADD or term.head == "Add":
            text = f"({text})"
        pieces.extend([sign, text])
    first = pieces.pop(0)
    return ("" if first == "+" else first) + " ".join(pieces)


def _ordered_terms(terms: list[Expr]) -> list[Expr]:
    """sympy's default (lex) term order: by monomial, highest first; numbers last.

    Except its one special case: ``1 - s0`` (a positive number plus a negated term) keeps
    the number first (``Expr.as_ordered_terms``).
    """
    if len(terms) == 2 and (_number(terms[0]) or 0) > 0 and terms[1].head == "Mul":
        factors = terms[1].args
        if len(factors) == 2 and (_number(factors[0]) or 0) < 0:
            return list(terms)
    monomials = [_monomial(term) for term in terms]
    generators = sorted({gen for mono in monomials for gen in mono}, key=_generator_key)
    def key(index: int) -> tuple[int, ...]:
        mono = monomials[index]
        return tuple(mono.get(gen, 0) for gen in generators)

    order = sorted(range(len(terms)), key=key, reverse=True)
    return [terms[i] for i in order]


def _monomial(term: Expr) -> dict[str, int]:
    """Generator text -> exponent for one term (its numeric coefficient dropped)."""
    factors = term.args if term.head == "Mul" else [term]
    mono: dict[str, int] = {}
    for factor in factors:
        if _number(factor) is not None:
            continue
        exp = 1
        if factor.head == "Pow":
            value = _number(factor.args[1])
            if value is not None and value.denominator == 1:
                factor, exp = factor.args[0], int(value)
        gen = _print(factor)
        mono[gen] = mono.get(gen, 0) + exp
    return mono


def _generator_key(text: str) -> tuple[int, str]:
    """Symbols sort before compound generators (function calls); then by name."""
    return (0 if text.isidentifier() else 1, text)
