"""Model helpers. ``airpods.models.tiny`` writes a tiny random-weight GGUF for tests and demos.

The writer needs the optional ``gguf`` and ``numpy`` packages (``pip install 'airpods[models]'``);
they are imported lazily so that importing this package never requires them.
"""

from __future__ import annotations

from pathlib import Path

__all__ = ["write_tiny_gguf"]


def write_tiny_gguf(path: Path, **kwargs) -> Path:
    """Write a tiny llama-architecture GGUF to ``path``; see :mod:`airpods.models.tiny`."""
    from airpods.models.tiny import write_tiny_gguf as _write

    return _write(path, **kwargs)
