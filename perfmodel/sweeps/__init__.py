r"""Sweeps: every configuration of a grid of plan and hardware values, evaluated on numpy arrays.

    >>> import perfmodel as pm
    >>> df = pm.sweep("gpt2-124m", "dgx-a100", "tp=1,2,4;micro_batch=1,2", devices=8, global_batch=64)
    >>> len(df), list(df.columns[:4])
    (6, ['tp', 'micro_batch', 'devices', 'dp'])

**Grid.** A mapping ``key -> list of values`` (or the CLI string ``"tp=1,2,4,8;pp=1,2;recompute=
none,selective"``: ``;`` between keys, ``,`` between values, nothing evaluated). Keys are the plan
fields (:data:`PLAN_KEYS`) and the hardware numbers of :data:`perfmodel.prediction.hardware.SWEEPABLE`
by their dotted names (``network.link.bandwidth``, ``device.peak``, ...). Hardware values are SI
numbers or strings with units (``"200 Gb/s"``, ``"2 us"``, ``"80 GiB"``), read by
:func:`perfmodel.units.parse_quantity` with the field's dimension. A swept ``device.peak`` is the
peak of the row's dtype; it also scales the measured GEMM and attention curves by
``new peak / datasheet peak`` (``HwParams.gemm_scale``), i.e. the device is assumed to reach the
same fraction of a higher peak. Keyword arguments of :func:`sweep` fix a key for every row
(they are not columns).

**Result.** One row per configuration. Columns: every grid key — the categorical ones first, then
the numeric and hardware ones, each group in grid order — with the rows in the order of the
cartesian product of the keys in that column order (the last varies fastest: each combination of
the categorical keys is one contiguous run of rows, written at memory speed); the derived plan
numbers ``devices``, ``dp``, ``global_batch`` (when not grid keys) and ``n_microbatches``
(nullable integers, missing where they are not whole numbers); ``step_time_s``; ``breakdown_<part>_s`` for each part of
:data:`~perfmodel.prediction.result.BREAKDOWN_KEYS` (the names of ``perfmodel predict --format
csv``); ``comm_total_s``; ``memory_<part>_bytes`` for each part of ``MEMORY_KEYS``;
``fits_in_memory``; ``mfu``; ``tokens_per_s``; ``bound`` and ``reason`` (categoricals). A
configuration :func:`perfmodel.plan.resolve` would refuse has ``reason`` = the message of the
:class:`~perfmodel.errors.PlanError` it would raise, NaN numbers, ``fits_in_memory`` False and a
missing ``bound``; valid rows have a missing ``reason``.

**How it is fast.** The categorical fields (dtype, recompute, sequence parallel, schedule, ZeRO,
gradient sync, overlap, optimizer, stack) select formulas, so there is one call of
:func:`perfmodel.prediction.step.transformer_terms` per combination of them (the function
``predict`` calls with floats). The numeric keys enter that call as numpy arrays shaped to
broadcast against each other (key ``i`` along axis ``i``), so every intermediate quantity is
computed only over the keys it depends on — a layer's time over (tp, micro-batch, seq), the
data-parallel sync over (tp, pp, dp, bandwidth) — and the unique combinations that matter are
evaluated once each, without ``np.unique``. The validity rules of ``plan.resolve`` run the same
way. No Python code runs per configuration.

**Engines.** ``engine="local"`` evaluates blocks of the grid in this process;
``engine="dask"`` sends the same blocks to a ``dask.distributed`` cluster (``scheduler``: an
address, a ``Client``, or None for a LocalCluster) and gathers them into the identical frame.
Non-transformer models (CNNs, MLPs) have no vectorised path: up to :data:`DENSE_LIMIT`
configurations are predicted one by one; larger grids raise :class:`SweepError`.

**Modules.** :mod:`~perfmodel.sweeps.grid` (keys, parsing, blocks), :mod:`~perfmodel.sweeps.validity`
(plan.resolve's rules on arrays), :mod:`~perfmodel.sweeps.block` (one block through the formulas),
:mod:`~perfmodel.sweeps.result` (assembly and the DataFrame), :mod:`~perfmodel.sweeps.engines`
(local and dask; :func:`sweep` and :func:`evaluate`).
"""

from perfmodel.errors import SweepError
from perfmodel.sweeps.engines import DENSE_LIMIT, evaluate, sweep
from perfmodel.sweeps.grid import GRID_KEYS, PLAN_KEYS, make_spec, parse_grid
from perfmodel.sweeps.result import Evaluation, result_columns

__all__ = ["sweep", "evaluate", "parse_grid", "make_spec", "Evaluation", "SweepError", "PLAN_KEYS", "GRID_KEYS",
           "DENSE_LIMIT", "result_columns"]
