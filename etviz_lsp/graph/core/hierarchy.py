"""The nn.Module hierarchy as Model Explorer layers (namespaces).

One layer per module instance, named ``attr (Class)``, nested as the modules were
called. Parameters and buffers go into the layer of the module that owns them, so a
collapsed layer hides its weights; state owned by the root goes into a layer of its own
(``parameters``, ``buffers``, ``constants``) so it does not drown the top level.
"""

from __future__ import annotations

from etviz_lsp.graph.core import ir, naming

ROOT_STATE_LAYERS = {ir.PARAMETER: "parameters", ir.BUFFER: "buffers", ir.CONSTANT: "constants"}


class Hierarchy:
    def __init__(self) -> None:
        # Keyed by the scopes, with the partition layer in front when there is one.
        self._by_scopes: dict[tuple[object, ...], str] = {}
        # Namespace of each layer -> the module it stands for (None for root state layers).
        self.layers: dict[str, ir.Scope | None] = {}
        # (partition layer, module path) -> the first namespace it was seen under there
        # (where its weights go).
        self._by_path: dict[tuple[str, str], str] = {}
        # Layers made for the owner of some state that runs no op in the graph.
        self.not_called: set[str] = set()

    def namespace(
        self, scopes: list[ir.Scope], prefix: str = "", base: ir.Scope | None = None
    ) -> str:
        """The layer path of ``scopes``, under the layer ``prefix`` (a partition) if given.

        ``base`` is the module the ``prefix`` layer sits in (a partition nested in the
        module it serves): ``scopes`` continue below it, so their layers are named
        relative to it. ``prefix`` alone decides the key: one prefix has one base.
        """
        key: tuple[object, ...] = (prefix, *scopes) if prefix else tuple(scopes)
        found = self._by_scopes.get(key)
        if found is None:
            found = self._by_scopes[key] = self._extend(scopes, prefix, base)
        return found

    def place_prefix(self, prefix: str, base: ir.Scope) -> None:
        """State owned by ``base`` and placed under ``prefix`` goes into ``prefix`` itself."""
        self._by_path.setdefault((prefix, base.path), prefix)

    def _extend(self, scopes: list[ir.Scope], prefix: str, base: ir.Scope | None) -> str:
        """A new stack's layer path: its parent stack's, then the layers of its last scope.

        Stacks share their parents (every node of ``layers.3.attn`` has ``layers.3``
        above it), so each stack adds one step to a path already known.
        """
        parent: ir.Scope | None = base
        namespace = prefix
        if len(scopes) > 1:
            parent = scopes[-2]
            namespace = self.namespace(scopes[:-1], prefix, base)
        for scope in _steps(parent, scopes[-1]):
            piece = naming.segment(scope, parent)
            namespace = self._claim(f"{namespace}/{piece}" if namespace else piece, scope)
            self._by_path.setdefault((prefix, scope.path), namespace)
            parent = scope
        return namespace

    def _claim(self, namespace: str, scope: ir.Scope | None) -> str:
        """``namespace`` for ``scope``'s layer, or ``namespace #2`` ... when another module
        (or the root's state) already has a layer of that name: two modules never share
        a layer, whatever their names spell (a container ``a (Linear)`` next to a Linear
        ``a``, a module ``constants`` next to the root's constants)."""
        found, number = namespace, 1
        while found in self.layers:
            held = self.layers[found]
            if (held.path if held else None) == (scope.path if scope else None):
                return found
            number += 1
            found = f"{namespace} #{number}"
        self.layers[found] = scope
        return found

    def state_namespace(self, fqn: str, kind: str, prefix: str = "") -> str:
        """Layer for a parameter/buffer/constant: its owner's, whatever its name holds.

        An owner that runs no op in this graph (its ops sit in a nested graph, a cond
        branch or loop body, or it is never called) gets a layer of its own under its
        nearest ancestor that has one; only state of the root module goes to the root
        state layers.
        """
        owner = fqn.rsplit(".", 1)[0] if "." in fqn else ""
        if not owner:
            layer = ROOT_STATE_LAYERS.get(kind, "constants")
            return self._claim(f"{prefix}/{layer}" if prefix else layer, None)
        found = self._by_path.get((prefix, owner))
        if found is None:
            found = self._owner_layer(owner, prefix)
        return found

    def _owner_layer(self, owner: str, prefix: str) -> str:
        pieces = owner.split(".")
        depth = len(pieces) - 1
        while depth > 0 and (prefix, ".".join(pieces[:depth])) not in self._by_path:
            depth -= 1
        parent_path = ".".join(pieces[:depth])
        namespace = self._by_path[(prefix, parent_path)] if depth else prefix
        for end in range(depth + 1, len(pieces) + 1):
            path = ".".join(pieces[:end])
            piece = naming.escape_segment(pieces[end - 1])
            scope = ir.Scope(path=path, cls="")
            namespace = self._claim(f"{namespace}/{piece}" if namespace else piece, scope)
            self._by_path[(prefix, path)] = namespace
            self.not_called.add(namespace)
        return namespace

    def layer_attrs(self, parameters: dict[str, ir.ValueInfo]) -> dict[str, dict[str, str]]:
        counts = _parameter_counts(parameters)
        attrs: dict[str, dict[str, str]] = {}
        for namespace, scope in self.layers.items():
            if scope is None:
                attrs[namespace] = {"kind": "module state owned by the root module"}
                continue
            unknown = "(not called in this graph)" if namespace in self.not_called else (
                "(container, not called)"
            )
            attrs[namespace] = {
                "class": scope.cls or unknown,
                "path": scope.path,
                "parameters": f"{counts.get(scope.path, 0):,}",
            }
        return attrs


def _steps(parent: ir.Scope | None, scope: ir.Scope) -> list[ir.Scope]:
    """The layers from ``parent`` down to ``scope``: first those of modules that hold
    children but are never called themselves, then ``scope``.

    ``self.stages[0](x)`` records ``stages.0`` right under the root: the ModuleList
    ``stages`` gets a layer of its own (class unknown, so the name is just ``stages``).
    """
    parent_path = parent.path if parent is not None else ""
    steps: list[ir.Scope] = []
    if not parent_path or scope.path.startswith(parent_path + "."):
        rest = scope.path[len(parent_path) + 1 :] if parent_path else scope.path
        pieces = rest.split(".")
        for depth in range(1, len(pieces)):
            prefix = ".".join(pieces[:depth])
            path = f"{parent_path}.{prefix}" if parent_path else prefix
            steps.append(ir.Scope(path=path, cls=""))
    steps.append(scope)
    return steps


def _parameter_counts(parameters: dict[str, ir.ValueInfo]) -> dict[str, int]:
    """Module path -> number of parameter elements under it (all prefixes at once)."""
    counts: dict[str, int] = {}
    for fqn, info in parameters.items():
        size = info.numel()
        parts = fqn.split(".")[:-1]
        for depth in range(1, len(parts) + 1):
            path = ".".join(parts[:depth])
            counts[path] = counts.get(path, 0) + size
    return counts

