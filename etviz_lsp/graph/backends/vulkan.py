"""The Vulkan backend (``VulkanBackend``, ``VulkanPartitioner`` in the executorch wheel)."""

from __future__ import annotations

from etviz_lsp.graph.backends import partitioner_reasons

# ---- why not delegated (issue 26): how VulkanPartitioner's reasons are collected -----------
#
# Its operator support (``VulkanSupportedOperators`` in
# ``backends/vulkan/partitioner/vulkan_partitioner.py``) says why it skips a node through
# ``log_skip(node, reason)`` (an INFO line on the root logger: "[Vulkan Partitioner] Due to
# [no operator implementation], skipping ..."); a node it refuses without a word is "not
# supported by its operator support".

VULKAN_PARTITIONER = "executorch.backends.vulkan.partitioner.vulkan_partitioner"

NOT_DELEGATED = partitioner_reasons.ReasonSource(
    "VulkanPartitioner",
    said=(
        partitioner_reasons.Said(
            VULKAN_PARTITIONER, "VulkanSupportedOperators", "log_skip", node="node", reason="reason"
        ),
    ),
    check=partitioner_reasons.Check(VULKAN_PARTITIONER, "VulkanSupportedOperators"),
)
