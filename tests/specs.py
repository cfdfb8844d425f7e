"""Every named service of a loaded config rendered into its spec, for tests that check several
at once (the product renders one at a time: `airpods.kinds.render.render_service`)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from airpods.config.schema import AirpodsConfig
from airpods.host import HostFacts
from airpods.kinds.render import render_service
from airpods.spec import ContainerSpec


def render_all(
    config: AirpodsConfig,
    host: HostFacts,
    names: Sequence[str],
    image_origins: Mapping[str, Mapping[str, str]] | None = None,
) -> list[ContainerSpec]:
    origins = image_origins or {}
    return [render_service(n, config.services[n], config, host, origins.get(n)) for n in names]
