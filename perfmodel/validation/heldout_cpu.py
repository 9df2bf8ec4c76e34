"""The held-out CPU dataset: published training runs on server CPUs, used for nothing but this report.

``heldout-cpu`` reads ``perfmodel/data/validation/heldout_cpu_training_runs.csv``: each row names the
bundled system and preset model that reproduce it, the plan (devices = sockets, data parallelism
only: one rank per socket, as the runs place them), the precision and the software stack closest
to the run's, and the published throughput with its source. No number of the model was fitted or
tuned on these runs. The step time measured is global batch / throughput.
"""

from __future__ import annotations

from perfmodel.plan import Plan
from perfmodel.validation.results import HELD_OUT, Dataset, ValidationCase, read_rows

__all__ = ["DATASETS", "CPU_FILE"]

CPU_FILE = "heldout_cpu_training_runs.csv"


def _cases() -> list:
    from perfmodel.workloads import load_model

    out = []
    for row in read_rows(CPU_FILE):
        global_batch = int(row["global_batch"])
        if row["metric"] != "samples_per_s":
            raise ValueError(f"{CPU_FILE} {row['case']}: metric {row['metric']!r} is not samples_per_s")
        plan = Plan(devices=int(row["devices"]), micro_batch=int(row["micro_batch"]), global_batch=global_batch,
                    dtype=row["dtype"], stack=row["stack"])
        out.append(ValidationCase(case=row["case"], measured_s=global_batch / float(row["value"]),
                                  model=load_model(row["model"]), system=row["system"], plan=plan, group=row["group"],
                                  note=row["notes"].split(".")[0]))
    return out


DATASETS = {
    "heldout-cpu": Dataset(
        "ResNet-50 training on 16 nodes of 2 x Xeon Platinum 8480+ (AMX, BF16) from MLPerf Training v3.0",
        "mlcommons/training_results_v3.0 (Intel's logs and system descriptions; "
        "perfmodel/data/validation/" + CPU_FILE + ", sources per row)",
        _cases,
        ("measured seconds: global batch / the run's logged training throughput",
         "one rank per socket: each socket is one device of the bundled cpu-cluster system, data parallelism only",
         "stack pytorch-eager for PyTorch with IPEX (oneDNN kernels; no Megatron-style fusion)"),
        HELD_OUT, "nothing"),
}
