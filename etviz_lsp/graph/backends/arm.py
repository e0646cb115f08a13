"""Arm's backends: TOSA, Ethos-U (a Vela command stream), VGF. Their payloads are not read
yet: each delegate call stays one node with its compile specs and size.

TOSA's FlatBuffer schemas ship in the executorch wheel (``backends/arm/tosa/schemas/``), so a
reader is possible (issue 26); lowering needs Arm's ``tosa_serializer``, which no registry
here serves, so no real payload could be made to test one against.
"""

from __future__ import annotations

from etviz_lsp.graph.backends import registry

_WHY = "not read: etviz does not read {} payloads yet"

# Hues: the palette's before backends registered theirs (TOSA: the one its name gave).
BACKENDS = registry.register_unread(
    (
        ("EthosUBackend", "Arm Ethos-U", 0),
        ("TOSABackend", "Arm TOSA", 160),
        ("VgfBackend", "Arm VGF", 250),
    ),
    _WHY,
)
