"""Where each partitioner says why it leaves an op on the CPU (issue 26): a plain description
the run's child (``worker/not_delegated.py``) follows; nothing here imports torch.

ExecuTorch has two shared ways, both in ``executorch/exir/backend/utils.py``: a
``WhyNoPartition`` (XNNPACK's partitioner configs call one per module, which logs
``WhyNoPartition: Node X was not partitioned because REASON.`` at DEBUG on that module's
logger, below any level a user sees) and a ``WhyNoPartitionReporter`` (Arm's partitioner
fills one per call and logs it as a table at INFO). Both pass through one method with the
node and the reason as arguments: those methods are listened to for every partitioner.
A backend that says it another way names its own methods in its module (``vulkan.py``,
``coreml.py``), with its support check, and with ``ask``: what its partitioner answers,
asked afterwards, for a node it left out without a word (``xnnpack.py``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

UTILS = "executorch.exir.backend.utils"


@dataclass(frozen=True, slots=True)
class Said:
    """A method a partitioner says a reason through, listened to (and still called) for the
    length of its partition call: its module, class and name, and the names of its
    parameters that hold the node and the reason. ``node`` None: the node the partitioner's
    support check (``Check``) is looking at when it speaks."""

    module: str
    owner: str
    method: str
    node: str | None
    reason: str


@dataclass(frozen=True, slots=True)
class Check:
    """A partitioner's operator support check, ``is_node_supported(self, submodules, node)``:
    its answer for each node is kept (False with no words: "not supported by ...")."""

    module: str
    owner: str
    method: str = "is_node_supported"
    node: str = "node"


@dataclass(frozen=True, slots=True)
class ReasonSource:
    """How one partitioner's reasons are collected."""

    partitioner: str  # its class name, as users write it
    said: tuple[Said, ...] = ()
    check: Check | None = None
    # (partitioner, node) -> its own answer for a node it left out without a word, or None
    ask: Callable[[Any, Any], str | None] | None = None


# Every partitioner: ExecuTorch's shared helpers.
SHARED = (
    Said(UTILS, "WhyNoPartition", "__call__", node="node", reason="reason"),
    Said(UTILS, "WhyNoPartitionReporter", "report_reject", node="node", reason="reason"),
)


def source_for(partitioner_class: type, known: dict[str, ReasonSource]) -> ReasonSource:
    """The source of this partitioner's class or the nearest known base class (a user's
    subclass of ``XnnpackPartitioner`` speaks as it does); else only the shared helpers.
    ``known``: partitioner class name -> source (each backend module's ``NOT_DELEGATED``)."""
    for klass in partitioner_class.__mro__:
        if klass.__name__ in known:
            return known[klass.__name__]
    return ReasonSource(partitioner_class.__name__)
