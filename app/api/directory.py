"""Orthanc's automatic directories: ``GET`` on an inner node of the REST tree.

Orthanc's REST API is a tree (``RestApiHierarchy``); a ``GET`` on a node that has no
``GET`` handler of its own but has children answers the sorted names of its fixed
children: ``/tools`` lists ``find``, ``lookup``, ``now``..., ``/instances/{id}/frames/0``
lists ``image-uint8``, ``preview``, ``rendered``... Clients (and Orthanc's own suite) use
it to discover routes. Here the tree is built once from the app's route table, so a new
route shows up in its parent's listing by itself; ``{parameter}`` segments match any
segment and are not listed, as Orthanc's wildcard children are not.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from starlette.requests import Request


@dataclass
class _Node:
    children: dict[str, _Node] = field(default_factory=dict)
    wildcard: _Node | None = None

    def child(self, segment: str) -> _Node:
        if segment.startswith("{") and segment.endswith("}"):
            if self.wildcard is None:
                self.wildcard = _Node()
            return self.wildcard
        return self.children.setdefault(segment, _Node())


def _tree(request: Request) -> _Node:
    """The route tree of the app, built on first use (routes are fixed after start)."""
    state = request.app.state
    tree = getattr(state, "route_tree", None)
    if tree is None:
        tree = _Node()
        for route in request.app.router.routes:
            path = getattr(route, "path", "")
            node = tree
            for segment in path.strip("/").split("/"):
                if segment:
                    node = node.child(segment)
        state.route_tree = tree
    return tree


def listing(request: Request) -> list[str] | None:
    """The directory Orthanc answers for a GET on this path, or None when the path is no
    inner node of the tree (a fixed child wins over a wildcard at each segment)."""
    if request.method != "GET":
        return None
    node: _Node | None = _tree(request)
    for segment in request.url.path.strip("/").split("/"):
        if not segment or node is None:
            continue
        node = node.children.get(segment) or node.wildcard
    if node is None or node is _tree(request) or not node.children:
        return None
    return sorted(node.children)
