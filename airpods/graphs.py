"""Walks over small graphs of names (services' depends_on, the gateway's fallbacks)."""

from __future__ import annotations


def find_cycle(graph: dict[str, list[str]]) -> list[str] | None:
    """The first cycle in `graph` as [a, b, ..., a], or None.

    Iterative (an explicit stack): a chain thousands of nodes deep is no RecursionError.
    """
    state: dict[str, int] = {}  # 1 = on the current path, 2 = done
    for start in graph:
        if start in state:
            continue
        path = [start]
        todo = [iter(graph.get(start, []))]
        state[start] = 1
        while todo:
            nxt = next(todo[-1], None)
            if nxt is None:
                state[path.pop()] = 2
                todo.pop()
            elif state.get(nxt) == 1:
                return [*path[path.index(nxt) :], nxt]
            elif nxt not in state:
                state[nxt] = 1
                path.append(nxt)
                todo.append(iter(graph.get(nxt, [])))
    return None
