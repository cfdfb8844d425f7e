"""Which environment values are secret, and how they are shown: one definition for every command.

Light on purpose (no pydantic): `status`, `start --dry-run` and `config show` all use it.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

# Env keys whose values are never shown (dry-run, status, config show).
SECRET_KEY_RE = re.compile(r"(KEY|SECRET|TOKEN|PASSWORD|PASSWD)", re.IGNORECASE)
MASK = "****"


def is_secret_key(key: str) -> bool:
    return SECRET_KEY_RE.search(key) is not None


def mask_env(env: Mapping[str, str], secret_keys: frozenset[str] = frozenset()) -> dict[str, str]:
    """A copy of `env` with the (non-empty) values of secret keys replaced by MASK."""
    return {
        k: (MASK if (k in secret_keys or is_secret_key(k)) and v else v) for k, v in env.items()
    }
