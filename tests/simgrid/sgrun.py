"""Run a :class:`tests.simgrid.platforms.Job` in SimGrid 4.1, one fresh engine per process.

SimGrid allows one simulation engine per process, so :func:`simulate` starts
``python -m tests.simgrid.sgrun`` for each job (pickled on stdin, JSON result on stdout) and
:func:`simulate_many` keeps two of them running at once. Inside the child, :func:`load_simgrid`
preloads ``libsimgrid.so`` with RTLD_GLOBAL before ``import simgrid``: the extension built from
PyPI's sdist looks for the library on the loader path only (site-packages would otherwise have to
be on LD_LIBRARY_PATH).

The network model is SimGrid's CM02 max-min model stripped of its TCP corrections, so that it is
the ideal latency-bandwidth model the closed forms assume (see NETWORK_CONFIG). One actor posts
every flow of a phase with ``Comm.sendto_async`` and waits for all of them before the next phase
(synchronous phases).
"""

from __future__ import annotations

import concurrent.futures
import ctypes
import glob
import importlib.util
import json
import os
import pickle
import subprocess
import sys
import time

# CM02 without its corrections: the default model multiplies latency by 13.01 and bandwidth by
# 0.97 and caps each flow at TCP-gamma / (2 latency) (a TCP window); weight-S would penalise
# long routes; crosstraffic would load the reverse direction with acknowledgements.
# TCP-gamma:0 removes the window cap (network_cm02.cpp applies it only when gamma > 0).
NETWORK_CONFIG = (
    "network/model:CM02",
    "network/latency-factor:1",
    "network/bandwidth-factor:1",
    "network/weight-S:0",
    "network/TCP-gamma:0",
    "network/crosstraffic:0",
)


class SimGridUnavailable(RuntimeError):
    """The simgrid Python package (4.1, built from the PyPI sdist) cannot be imported."""


def _library_candidates(spec_origin):
    here = os.path.dirname(spec_origin)
    dirs = [here, os.path.join(here, "lib"), os.path.join(here, "simgrid.libs")]
    found = []
    for d in dirs:
        found += sorted(glob.glob(os.path.join(d, "libsimgrid.so*")))
    return found


def load_simgrid():
    """Import simgrid after preloading libsimgrid.so; raise SimGridUnavailable with the reason."""
    spec = importlib.util.find_spec("simgrid")
    if spec is None or spec.origin is None:
        raise SimGridUnavailable(
            f"the 'simgrid' package is not installed in {sys.prefix} (install: apt-get install "
            "libboost-dev; pip install 'pybind11<3'; pip install --no-build-isolation simgrid==4.1)")
    for lib in _library_candidates(spec.origin):
        try:
            ctypes.CDLL(lib, mode=ctypes.RTLD_GLOBAL)
            break
        except OSError:
            continue
    try:
        import simgrid
    except ImportError as exc:
        raise SimGridUnavailable(f"import simgrid failed: {exc}") from exc
    return simgrid


# --- inside the child process --------------------------------------------------------------------


def run_job_here(job):
    """Build the platform, run the phases, return {"total_s", "phase_s", "version"}.

    Must run in a process that has not created a SimGrid engine yet.
    """
    sg = load_simgrid()
    engine = sg.Engine(["perfmodel-oracle", "--log=root.thresh:critical"]
                       + [f"--cfg={c}" for c in NETWORK_CONFIG])
    zone = engine.netzone_root
    hosts = [zone.add_host(f"h{i}", 1.0).seal() for i in range(job.n_hosts)]
    links = {}
    for name, (bandwidth, latency, policy) in job.links.items():
        if policy == "SPLITDUPLEX":  # full duplex: UP and DOWN each carry `bandwidth`
            link = zone.add_split_duplex_link(name, bandwidth)
        elif policy == "SHARED":  # one capacity for all flows, both directions (a backplane)
            link = zone.add_link(name, bandwidth)
        else:
            raise ValueError(f"link {name}: unknown sharing policy {policy!r}")
        links[name] = link.set_latency(latency).seal()
    direction = {"UP": sg.LinkInRoute.Direction.UP, "DOWN": sg.LinkInRoute.Direction.DOWN,
                 "NONE": sg.LinkInRoute.Direction.NONE}
    for (src, dst), route in job.routes.items():
        zone.add_route(hosts[src], hosts[dst],
                       [sg.LinkInRoute(links[name], direction[d]) for name, d in route], False)
    zone.seal()

    phase_times = []

    def driver():
        for flows, repeat in job.phases:
            for _ in range(repeat):
                start = sg.Engine.clock
                pending = sg.ActivitySet()
                for src, dst, nbytes in flows:
                    pending.push(sg.Comm.sendto_async(hosts[src], hosts[dst], nbytes))
                pending.wait_all()
                phase_times.append(sg.Engine.clock - start)

    hosts[0].add_actor("driver", driver)
    engine.run()
    return {"total_s": sg.Engine.clock, "phase_s": phase_times,
            "version": getattr(sg, "simgrid_version", "unknown")}


def _child_main():
    job = pickle.load(sys.stdin.buffer)
    try:
        result = run_job_here(job)
    except SimGridUnavailable as exc:
        result = {"unavailable": str(exc)}
    json.dump(result, sys.stdout)


# --- in the test process ---------------------------------------------------------------------------


def _repo_root():
    return os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def simulate(job, timeout=600):
    """Run ``job`` in a fresh interpreter; return the child's result dict plus ``wall_s``."""
    t0 = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "tests.simgrid.sgrun"], input=pickle.dumps(job),
                          capture_output=True, cwd=_repo_root(), timeout=timeout, check=False)
    if proc.returncode != 0:
        raise RuntimeError(f"SimGrid child failed (exit {proc.returncode}):\n"
                           f"{proc.stderr.decode(errors='replace')[-3000:]}")
    result = json.loads(proc.stdout)
    if "unavailable" in result:
        raise SimGridUnavailable(result["unavailable"])
    result["wall_s"] = time.perf_counter() - t0
    return result


def simulate_many(jobs, workers=2):
    """{key: job} -> {key: result or exception}, ``workers`` child processes at a time."""
    with concurrent.futures.ThreadPoolExecutor(max_workers=workers) as pool:
        futures = {key: pool.submit(simulate, job) for key, job in jobs.items()}
        out = {}
        for key, fut in futures.items():
            try:
                out[key] = fut.result()
            except Exception as exc:  # noqa: BLE001 - handed to the test that asked for it
                out[key] = exc
        return out


def probe():
    """None if simgrid imports in a fresh interpreter, else the reason it does not."""
    code = "from tests.simgrid.sgrun import load_simgrid; load_simgrid()"
    try:
        proc = subprocess.run([sys.executable, "-c", code], capture_output=True, cwd=_repo_root(),
                              timeout=120, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"could not start {sys.executable}: {exc}"
    if proc.returncode == 0:
        return None
    lines = proc.stderr.decode(errors="replace").strip().splitlines()
    return lines[-1] if lines else f"exit code {proc.returncode}"


if __name__ == "__main__":
    _child_main()
