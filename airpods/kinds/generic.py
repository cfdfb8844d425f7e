"""Any image: ports, volumes, a health path. Nothing beyond the generic behaviour."""

from __future__ import annotations

from airpods.kinds.base import Kind


class Generic(Kind):
    name = "generic"
