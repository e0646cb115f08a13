"""Bounds on the work any input file may cost, for every reader of a user's file.

A viewer opens files it did not make: a 4 MB zip can inflate to 4 GiB of JSON, a header
can declare one size and hold another. Each reader (``pt2_archive`` today; the ``.pte``,
ETRecord and ETDump readers as they come) checks its input against one :class:`Limits`
through a :class:`Budget` it makes per file:

* **inflated bytes**: what one file's members inflate to, in all, at most
  ``max_inflated`` (2 GiB: a 20k-node program's JSON is 22 MB), and past ``ratio_from``
  (16 MiB) at most ``max_ratio`` times the compressed bytes read so far (real program
  JSON deflates 10-20x; a zip bomb ~1000x). Checked up front against what the zip
  header declares, and again while streaming, since headers can lie: a refusal costs at
  most ``ratio_from`` bytes of inflating (a few milliseconds), never the whole bomb.
* **counts**: ``max_nodes`` graph nodes per program (20,016 at 20k), checked before
  any node is read.
* **nesting depth**: msgspec refuses JSON nested deeper than the interpreter's recursion
  limit (1,000 frames) with ``RecursionError``, which every reader turns into a one-line
  error; :func:`json_depth` names that bound.

Decoding can still make ~20 bytes of objects per byte of JSON (``[{},{},...]``); the byte
bounds above are what keep that finite. ``ETVIZ_MAX_INFLATED_BYTES`` in the environment
sets ``max_inflated`` (for a larger program, or a tighter machine).

Every refusal is a :class:`LimitExceeded`: an :class:`EtvizError`, one line naming the
file, the limit and how to raise it.
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass

from etviz_lsp.errors import EtvizError

MIB = 1 << 20
GIB = 1 << 30
ENV_MAX_INFLATED = "ETVIZ_MAX_INFLATED_BYTES"


class LimitExceeded(EtvizError):
    """The file would cost more than a limit allows; refused before it does."""


@dataclass(frozen=True, slots=True)
class Limits:
    max_inflated: int = 2 * GIB  # bytes a file's members may inflate to, in all
    max_ratio: int = 100  # inflated / compressed bytes, once past ratio_from
    ratio_from: int = 16 * MIB  # below this, any ratio: small JSON compresses very well
    max_nodes: int = 2_000_000  # graph nodes in one program
    chunk: int = 1 * MIB  # bytes inflated per step: between two checks

    def budget(self, path: str) -> Budget:
        return Budget(self, path)


def current() -> Limits:
    """The default limits, with ``ETVIZ_MAX_INFLATED_BYTES`` applied if it is set."""
    raw = os.environ.get(ENV_MAX_INFLATED)
    if raw is None:
        return Limits()
    try:
        value = int(raw)
    except ValueError:
        value = 0
    if value <= 0:
        raise EtvizError(ENV_MAX_INFLATED, f"must be a positive number of bytes, got {raw!r}")
    return Limits(max_inflated=value)


def json_depth() -> int:
    """How deep JSON may nest: msgspec stops at the interpreter's recursion limit."""
    return sys.getrecursionlimit()


@dataclass(slots=True)
class Budget:
    """What one file has cost so far: inflated bytes and the compressed bytes read."""

    limits: Limits
    path: str
    inflated: int = 0
    compressed: int = 0

    def declared(self, member: str, compressed: int, inflated: int) -> None:
        """Refuse a member whose header already says it is over a limit."""
        self._check(member, self.inflated + inflated, self.compressed + compressed, "would inflate")

    def streamed(self, member: str, compressed: int, inflated: int) -> None:
        """Count bytes just read (``compressed``) and inflated; refuse once over a limit."""
        self.compressed += compressed
        self.inflated += inflated
        self._check(member, self.inflated, self.compressed, "inflates")

    def count(self, what: str, count: int, limit: int) -> None:
        if count > limit:
            raise LimitExceeded(
                self.path, f"{count:,} {what}, over the limit of {limit:,}: refused unread"
            )

    def _check(self, member: str, inflated: int, compressed: int, verb: str) -> None:
        limits = self.limits
        if inflated > limits.max_inflated:
            raise LimitExceeded(
                self.path,
                f"{member} {verb} past {_size(limits.max_inflated)}, the limit for "
                f"one file: refused unread (set {ENV_MAX_INFLATED} to allow more)",
            )
        if inflated > limits.ratio_from and inflated > limits.max_ratio * max(compressed, 1):
            raise LimitExceeded(
                self.path,
                f"{member} {verb} to over {limits.max_ratio} times its compressed size "
                f"({_size(inflated)} from {_size(compressed)}; a zip bomb?): refused unread",
            )


def _size(count: int) -> str:
    if count >= GIB:
        return f"{count / GIB:.1f} GiB"
    if count >= MIB:
        return f"{count / MIB:.1f} MiB"
    return f"{count:,} bytes"
