"""Speed of perfmodel (issue 5): sweep configurations/s, one predict, cold CLI, optimize.

    python benchmarks/bench.py            # about 30 s on a 2-core machine

Prints, with the goal next to each number:

* ``pm.sweep`` on a grid of >= 1e6 configurations (GPT-3 175B on DGX A100: devices x tp x pp x
  micro-batch x global batch x virtual stages x recompute x sequence parallel x schedule x ZeRO x
  overlap x network bandwidth), DataFrame included: the first run in a fresh process and the
  median of the next runs (goal >= 1e6 configurations/s);
* microseconds per ``perfmodel.prediction.predict`` on gpt3-175b / dgx-a100 and dgx-h100 (loaded objects);
* the cold wall time of ``perfmodel predict ...`` (a new process each time);
* the wall time of ``perfmodel optimize --model gpt3-175b --system dgx-a100 --devices 1024
  --global-batch 1536`` including start-up (goal < 2 s), and its best plan against the hand-made
  Megatron-LM plan (tp 8, pp 8, interleaved v=2, selective recompute, sequence parallel, micro-batch
  1): the best must be at least as fast, since the search space contains that plan.

Timings are medians of several runs (the machine is shared); nothing here is a test.
"""

from __future__ import annotations

import json
import os
import shutil
import statistics
import subprocess
import sys
import time

GRID = {
    "devices": [64, 128, 256, 512, 1024, 2048, 4096],
    "tp": [1, 2, 4, 8],
    "pp": [1, 2, 4, 8, 16, 32],
    "micro_batch": [1, 2, 4, 8],
    "global_batch": [512, 1024, 1536, 2048],
    "virtual_stages": [1, 2, 4],
    "recompute": ["none", "selective", "full"],
    "sequence_parallel": [False, True],
    "schedule": ["1f1b", "interleaved"],
    "zero": [0, 1],
    "overlap": [True, False],
    "network.link.bandwidth": ["100 Gb/s", "200 Gb/s", "400 Gb/s"],
}
MEGATRON = dict(devices=1024, tp=8, pp=8, micro_batch=1, global_batch=1536, recompute="selective",
                sequence_parallel=True, schedule="interleaved", virtual_stages=2)
PREDICT_ARGS = ["predict", "--model", "gpt3-175b", "--system", "dgx-a100", "--devices", "1024", "--tp", "8", "--pp",
                "8", "--global-batch", "1536", "--format", "json"]
OPTIMIZE_ARGS = ["optimize", "--model", "gpt3-175b", "--system", "dgx-a100", "--devices", "1024", "--global-batch",
                 "1536", "--format", "json"]


def _cli() -> list[str]:
    """The installed ``perfmodel`` script next to this interpreter (what a user runs), else -m."""
    script = os.path.join(os.path.dirname(sys.executable), "perfmodel")
    return [script] if os.path.exists(script) else ([shutil.which("perfmodel")] if shutil.which("perfmodel")
                                                     else [sys.executable, "-m", "perfmodel"])


def _wall(cmd: list[str]) -> tuple[float, subprocess.CompletedProcess]:
    start = time.perf_counter()
    r = subprocess.run(cmd, capture_output=True, text=True)
    return time.perf_counter() - start, r


def bench_sweep(repeats: int = 4) -> None:
    start = time.perf_counter()
    import numpy  # noqa: F401 - timed apart from the sweeps
    import pandas  # noqa: F401

    imports = time.perf_counter() - start
    import perfmodel as pm
    from perfmodel.sweeps import evaluate

    model, system = pm.load_model("gpt3-175b"), pm.load_system("dgx-a100")
    n = 1
    for v in GRID.values():
        n *= len(v)
    times, eval_times = [], []
    for i in range(repeats + 1):
        start = time.perf_counter()
        df = pm.sweep(model, system, GRID)
        times.append(time.perf_counter() - start)
        assert len(df) == n
        valid = int(df["reason"].isna().sum())
        del df
    for _ in range(repeats):
        start = time.perf_counter()
        evaluate(model, system, GRID)
        eval_times.append(time.perf_counter() - start)
    warm = statistics.median(times[1:])
    print(f"sweep: {n:,} configurations ({valid:,} valid), gpt3-175b on dgx-a100")
    print(f"  pm.sweep -> DataFrame, first run:   {times[0]:.3f} s = {n / times[0]:,.0f} configurations/s "
          f"(first touch of ~0.5 GB; numpy + pandas imported before, in {imports:.2f} s)")
    print(f"  pm.sweep -> DataFrame, warm median: {warm:.3f} s = {n / warm:,.0f} configurations/s "
          f"(best {n / min(times[1:]):,.0f}) [goal >= 1,000,000: {'met' if n / warm >= 1e6 else 'NOT met'}]")
    ev = statistics.median(eval_times)
    print(f"  arrays only (sweep.evaluate), warm: {ev:.3f} s = {n / ev:,.0f} configurations/s")


def bench_predict(loops: int = 2000, repeats: int = 5) -> None:
    import perfmodel as pm
    from perfmodel.prediction import predict

    plan = pm.Plan(**MEGATRON)
    # the A100 plan runs the shape model; the H100 its measured curves, Transformer Engine's TP
    # overlap slots and the power cap: the costlier path
    for system_name in ("dgx-a100", "dgx-h100"):
        model, system = pm.load_model("gpt3-175b"), pm.load_system(system_name)
        predict(model, system, plan)
        per_call = []
        for _ in range(repeats):
            start = time.perf_counter()
            for _ in range(loops):
                predict(model, system, plan)
            per_call.append((time.perf_counter() - start) / loops)
        us = statistics.median(per_call) * 1e6
        print(f"predict: {us:.0f} us per call (gpt3-175b, {system_name}, Megatron plan; median of {repeats} x {loops}) "
              f"[goal <= 200: {'met' if us <= 200 else 'NOT met'}]")


def bench_cli(repeats: int = 5) -> None:
    cli = _cli()
    _, probe = _wall(cli + ["predict", "--help"])
    args = PREDICT_ARGS if probe.returncode == 0 else ["hardware", "show", "dgx-a100"]
    if probe.returncode != 0:
        print("  (perfmodel predict is not registered: timing `perfmodel hardware show dgx-a100` instead)")
    walls = []
    for _ in range(repeats):
        wall, r = _wall(cli + args)
        if r.returncode != 0:
            raise SystemExit(f"perfmodel {' '.join(args)} failed: {r.stderr.strip()}")
        walls.append(wall)
    print(f"cold CLI: perfmodel {' '.join(args[:5])} ...: median {statistics.median(walls):.3f} s, "
          f"best {min(walls):.3f} s ({repeats} fresh processes)")


def bench_optimize(repeats: int = 3) -> None:
    import perfmodel as pm

    cli = _cli()
    walls, out = [], None
    for _ in range(repeats):
        wall, r = _wall(cli + OPTIMIZE_ARGS)
        if r.returncode != 0:
            raise SystemExit(f"perfmodel optimize failed: {r.stderr.strip()}")
        walls.append(wall)
        out = json.loads(r.stdout)
    wall = statistics.median(walls)
    print(f"optimize: perfmodel {' '.join(OPTIMIZE_ARGS[:-2])}")
    print(f"  wall incl. start-up: median {wall:.3f} s, best {min(walls):.3f} s [goal < 2 s: "
          f"{'met' if wall < 2 else 'NOT met'}]; {out['evaluated']:,} configurations evaluated, "
          f"{out['valid']:,} valid, {out['fit']:,} fit; search itself {out['elapsed_s']:.3f} s")
    best = out["plans"][0]
    p = best["plan"]
    megatron = pm.predict("gpt3-175b", "dgx-a100", **MEGATRON)
    print(f"  best plan:      tp {p['tp']}, pp {p['pp']}, dp {p['dp']}, micro-batch {p['micro_batch']}, "
          f"{p['schedule']} v={p['virtual_stages']}, recompute {p['recompute']}, sequence parallel "
          f"{p['sequence_parallel']}, ZeRO {p['zero']}, overlap {p['overlap']}: {best['step_time_s']:.3f} s/step, "
          f"MFU {best['mfu'] * 100:.1f} %")
    print(f"  Megatron plan:  tp 8, pp 8, dp 16, micro-batch 1, interleaved v=2, recompute selective, sequence "
          f"parallel True, ZeRO 0: {megatron.step_time_s:.3f} s/step, MFU {megatron.mfu * 100:.1f} % "
          f"(fits: {megatron.fits_in_memory})")
    ok = best["step_time_s"] <= megatron.step_time_s
    print(f"  best / Megatron = {best['step_time_s'] / megatron.step_time_s:.3f} "
          f"[{'at least as fast: ok' if ok else 'SLOWER than a plan in its own search space: a bug'}]")


def main() -> None:
    print(f"perfmodel benchmarks on {os.cpu_count()} CPU(s), Python {sys.version.split()[0]}")
    bench_sweep()
    bench_predict()
    bench_cli()
    bench_optimize()


if __name__ == "__main__":
    main()
