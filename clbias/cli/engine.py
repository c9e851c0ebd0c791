"""`--engine local|ray` and the Ray connection options, shared by `clbias audit` and `clbias embed`."""
from __future__ import annotations

import argparse
from typing import Any

from ..engine import ENGINES
from ..errors import InputError


def add_engine_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--engine", choices=ENGINES, default="local",
                   help="local (this process) or ray (Ray Data actors; extra 'ray'; default local)")
    p.add_argument("--ray-address", help="existing Ray cluster, e.g. ray://head:10001 (default: $RAY_ADDRESS, "
                                         "else a local Ray instance is started and stopped)")
    p.add_argument("--ray-actors", type=int, help="encoder actors (default: cluster CPUs / --ray-threads)")
    p.add_argument("--ray-threads", type=int, default=1, help="onnxruntime threads per actor (default 1)")


def ray_options(args: argparse.Namespace) -> Any:
    """RayOptions for --engine ray (None for local), checked before any expensive work: the extra is
    installed and the address, if one is given, answers."""
    if args.engine != "ray":
        if args.ray_address or args.ray_actors:
            raise InputError("needs --engine ray", field="--ray-address/--ray-actors")
        return None
    import os

    from ..engine.ray_engine import RayOptions, _check_reachable, _import_ray

    if args.ray_actors is not None and args.ray_actors < 1 or args.ray_threads < 1:
        raise InputError("must be >= 1", field="--ray-actors/--ray-threads")
    _import_ray()
    address = args.ray_address or os.environ.get("RAY_ADDRESS") or None
    if address:
        _check_reachable(address)
    return RayOptions(address=address, actors=args.ray_actors, threads=args.ray_threads)
