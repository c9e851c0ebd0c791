"""Where embedding and large-pool scoring run: `local` (this process) or `ray` (a Ray cluster, extra `ray`).

Both engines write the same embedding cache, shard by shard, so a re-audit is warm whichever engine embedded.
"""
from __future__ import annotations

from typing import Literal

EngineKind = Literal["local", "ray"]
ENGINES: tuple[str, ...] = ("local", "ray")

__all__ = ["ENGINES", "EngineKind"]
