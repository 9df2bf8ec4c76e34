r"""The engines that evaluate a sweep's blocks (``local``: this process; ``dask``: a cluster), and
:func:`sweep` and :func:`evaluate`, which choose one.
"""

from __future__ import annotations

import math
import os
import re

from perfmodel.errors import PlanError, SweepError, did_you_mean
from perfmodel.sweeps.block import evaluate_block, sweep_default_stack
from perfmodel.sweeps.grid import make_spec, split_grid
from perfmodel.sweeps.progress import as_bar
from perfmodel.sweeps.result import Assembler, Evaluation

__all__ = ["sweep", "evaluate", "load_model_and_system", "DENSE_LIMIT"]

DENSE_LIMIT = 5000  # configurations of a non-transformer model, predicted one at a time


def load_model_and_system(model, system):
    """``model`` and ``system`` loaded when given by name or path (loaded objects pass through)."""
    from perfmodel.specs.registry import load_system
    from perfmodel.workloads import load_model

    if not hasattr(model, "n_params"):
        model = load_model(model)
    if isinstance(system, str):
        system = load_system(system)
    return model, system


def evaluate(model, system, grid, *, engine: str = "local", scheduler=None, progress: bool = False,
             partitions: int | None = None, **fixed) -> Evaluation:
    """:func:`sweep` without building the DataFrame (flat numpy arrays; pandas is not imported)."""
    from perfmodel.workloads.transformer import TransformerModel

    if engine not in ("local", "dask"):
        raise PlanError(f"engine: expected one of local, dask, got {engine!r}"
                        f"{did_you_mean(str(engine), ('local', 'dask'))}")
    if isinstance(scheduler, str):
        scheduler_address(scheduler)  # a malformed address fails before anything is loaded
    model, system = load_model_and_system(model, system)
    spec = make_spec(grid, fixed, system)
    if not isinstance(model, TransformerModel) and spec.n_rows > DENSE_LIMIT:
        raise SweepError(f"{model.name} is not a transformer: its sweeps call predict once per configuration and "
                         f"are limited to {DENSE_LIMIT} configurations; this grid has {spec.n_rows:,}")
    if engine == "dask":
        ev = _run_dask(model, system, spec, scheduler, progress, partitions)
    else:
        out = Assembler(spec)
        with as_bar(progress) as bar:
            advance = bar.phase("evaluate", spec.n_rows)
            for block in split_grid(spec):
                out.add(block, evaluate_block(model, system, spec, block, advance))
        ev = out.finish()
    ev.default_stack = sweep_default_stack(system, model)
    return ev


def sweep(model, system, grid, *, engine: str = "local", scheduler=None, progress: bool = False,
          partitions: int | None = None, **fixed):
    """Evaluate every configuration of ``grid`` for ``model`` on ``system``: a pandas DataFrame.

    ``grid``: ``{"tp": [1, 2, 4, 8], "network.link.bandwidth": ["100 Gb/s", "200 Gb/s"]}`` or the CLI
    string ``"tp=1,2,4,8;pp=1,2"``; keys are plan fields and the dotted hardware names of
    ``SWEEPABLE`` (a swept ``device.peak`` scales ``gemm_scale`` by new peak / datasheet peak).
    ``**fixed``: plan fields (or hardware keys) held for every row, e.g. ``devices=1024``.
    ``engine``: ``"local"`` or ``"dask"`` (``scheduler``: address, ``distributed.Client`` or None for a
    LocalCluster; ``partitions``: how many blocks to send, default twice the cluster's threads).
    ``progress``: a rich progress bar on stderr (True, or a :class:`~perfmodel.sweeps.progress.ProgressBar`
    the caller keeps running for its own later phases). Unknown keys raise UnknownNameError, malformed
    values PlanError / UnitError; configurations plan.resolve refuses get a ``reason``. See the module
    docstring for the columns.
    """
    return evaluate(model, system, grid, engine=engine, scheduler=scheduler, progress=progress,
                    partitions=partitions, **fixed).to_frame()


CONNECT_TIMEOUT_S = 5  # seconds to reach a scheduler and hear it answer (a live one answers in ms)
_ADDRESS = re.compile(r"^(?:(tcp|tls)://)?(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9][A-Za-z0-9.-]*):(\d{1,5})$")


def scheduler_address(text) -> str:
    """``tcp://host:port`` (or ``tls://``; ``host:port`` means tcp) checked and normalised; anything
    else (an empty string, ``inproc://``, ``ucx://``, no port) raises a one-line SweepError."""
    m = _ADDRESS.match(text.strip()) if isinstance(text, str) else None
    if m is None or not 0 < int(m.group(3)) < 65536:
        raise SweepError(f"--scheduler: expected a dask scheduler address tcp://HOST:PORT (or tls://HOST:PORT), "
                         f"got {text!r}")
    return f"{m.group(1) or 'tcp'}://{m.group(2)}:{m.group(3)}"


def _probe(address: str) -> None:
    """Ask the scheduler who it is, within a hard deadline: ``Client(timeout=...)`` bounds the TCP
    connect but not the handshake, so a port that accepts and never answers would hang it."""
    import asyncio

    from distributed.core import rpc

    async def identity():
        r = rpc(address, timeout=CONNECT_TIMEOUT_S)
        try:
            return await r.identity()
        finally:
            await r.close_rpc()

    try:
        asyncio.run(asyncio.wait_for(identity(), CONNECT_TIMEOUT_S))
    except (asyncio.TimeoutError, TimeoutError):
        raise SweepError(f"the dask scheduler at {address} did not answer within {CONNECT_TIMEOUT_S} s") from None
    except (OSError, ValueError) as exc:
        raise SweepError(f"cannot reach the dask scheduler at {address}: {exc}") from None


def _run_dask(model, system, spec, scheduler, progress, partitions) -> Evaluation:
    try:
        from distributed import Client, LocalCluster, as_completed
    except ImportError:
        raise SweepError("engine 'dask' needs dask.distributed: pip install 'dask[distributed]'") from None
    import logging

    owned = []
    quiet = logging.getLogger("distributed")
    level = quiet.level
    try:
        if scheduler is None:
            # threads, not processes: numpy releases the GIL in the large array operations, and
            # nothing is pickled. A random dashboard port; the cluster's INFO logs stay quiet.
            quiet.setLevel(logging.ERROR)
            cluster = LocalCluster(processes=False, n_workers=1, threads_per_worker=os.cpu_count() or 1,
                                   dashboard_address=":0")
            owned.append(cluster)
            client = Client(cluster)
            owned.append(client)
        elif isinstance(scheduler, str):
            address = scheduler_address(scheduler)
            _probe(address)
            try:
                client = Client(address, timeout=f"{CONNECT_TIMEOUT_S}s")
            except (OSError, TimeoutError) as exc:
                raise SweepError(f"cannot reach the dask scheduler at {scheduler!r}: {exc}") from None
            owned.append(client)
        else:
            client = scheduler
        threads = sum(client.nthreads().values()) or 1
        blocks = split_grid(spec, min_blocks=partitions or 2 * threads)
        model_f, system_f = client.scatter([model, system], broadcast=True)
        futures = [client.submit(evaluate_block, model_f, system_f, spec, b, pure=False) for b in blocks]
        block_of = {f.key: block for f, block in zip(futures, blocks)}
        out = Assembler(spec)
        with as_bar(progress) as bar:
            advance = bar.phase("evaluate", spec.n_rows)
            for f in as_completed(futures):
                block = block_of[f.key]
                out.add(block, f.result())
                f.release()
                advance(math.prod(b - a for a, b in block))
        del futures
    finally:
        for obj in reversed(owned):
            obj.close()
        quiet.setLevel(level)
    return out.finish()
