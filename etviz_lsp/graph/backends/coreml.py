"""The Core ML backend (``CoreMLBackend``, ``CoreMLPartitioner``; lowering needs coremltools)."""

from __future__ import annotations

from etviz_lsp.graph.backends import partitioner_reasons

# ---- why not delegated (issue 26): how CoreMLPartitioner's reasons are collected -----------
#
# Its operator support (``_OperatorsSupportedForCoreMLBackend`` in
# ``backends/apple/coreml/partition/coreml_partitioner.py``) asks coremltools about each node
# and says why it skips one through ``log_once(message)`` ("Skipping op for CoreML delegation
# because it is not supported by CoreML: cumsum"), with no node: the node is the one its
# ``is_node_supported`` is looking at. It logs a message once per partition call; every
# call of ``log_once`` is heard, so each node gets its words.

COREML_PARTITIONER = "executorch.backends.apple.coreml.partition.coreml_partitioner"
SUPPORT = "_OperatorsSupportedForCoreMLBackend"

NOT_DELEGATED = partitioner_reasons.ReasonSource(
    "CoreMLPartitioner",
    said=(
        partitioner_reasons.Said(COREML_PARTITIONER, SUPPORT, "log_once", node=None, reason="msg"),
    ),
    check=partitioner_reasons.Check(COREML_PARTITIONER, SUPPORT),
)
