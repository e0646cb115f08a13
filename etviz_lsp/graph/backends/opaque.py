"""Backends whose payloads etviz does not open: a colour, a label and one line each.

Their delegate calls stay one node with what the ``.pte`` itself says (backend, payload
size and where it lies, compile specs) and the line below. Reading one of them is a
module of its own (as ``vulkan.py``), which then replaces its entry here.
"""

from __future__ import annotations

from etviz_lsp.graph.backends import registry

_NOT_READ = "not read: etviz does not read {} payloads"

# Hues: the palette's before backends registered theirs (OpenVINO: the one its name gave).
BACKENDS = registry.register_unread(
    (
        ("QnnBackend", "QNN (Qualcomm context binary)", 140),
        ("MPSBackend", "MPS", 318),
        ("NeutronBackend", "NXP Neutron", 100),
        ("OpenvinoBackend", "OpenVINO", 225),
    ),
    _NOT_READ,
)
