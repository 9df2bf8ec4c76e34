"""issue 13 A5, A6, B1, B4: sweep lists runnable rows first and can keep only them; optimize lists a
one-stage plan once; progress covers every phase; huge grids are refused up front; rows are
streamed; a scheduler address is checked and a silent scheduler times out."""

import io
import json
import resource
import socket
import subprocess
import sys
import threading
import time

import numpy as np
import pytest

import perfmodel as pm
from perfmodel.sweeps import evaluate
from perfmodel.sweeps.output import check_size, runnable_first, write_rows
from perfmodel.sweeps.progress import ProgressBar

GRID = "tp=1,2,4,8;pp=1,2,4,8,16;micro_batch=1,2,4;recompute=none,selective;network.link.bandwidth=100 Gb/s,400 Gb/s"
FIXED = dict(devices=1024, global_batch=1536)


def run(*args, timeout=60):
    return subprocess.run([sys.executable, "-m", "perfmodel", *args], capture_output=True, text=True, timeout=timeout)


@pytest.fixture(scope="module")
def ev():
    return evaluate("gpt3-175b", "dgx-a100", GRID, **FIXED)


def test_runnable_rows_come_first(ev):
    a = ev.arrays
    rows = runnable_first(ev)
    assert sorted(rows.tolist()) == list(range(ev.n_rows))
    ok = (a["reason"] < 0) & a["fits_in_memory"]
    n_fit = int(ok.sum())
    assert n_fit and ok[rows[:n_fit]].all()
    assert (np.diff(a["step_time_s"][rows[:n_fit]]) >= 0).all()
    assert ok[runnable_first(ev, fits_only=True)].all()


def test_sweep_table_lists_fitting_rows_first_and_fits_only(monkeypatch):
    r = run("sweep", "--model", "gpt3-175b", "--system", "dgx-a100", "--devices", "1024", "--global-batch", "1536",
            "--grid", GRID)
    assert r.returncode == 0, r.stderr
    # the numbered rows of the table part that holds the "fits" column (a narrow terminal splits the
    # table in two, each repeating the row number)
    lines = r.stdout.splitlines()
    start = next(i for i, line in enumerate(lines) if " fits" in line)
    body = [line for line in lines[start:] if line.strip()[:1].isdigit()]
    assert " yes" in body[0]  # README's example: the first "fastest" rows used to say fits NO
    r = run("sweep", "--model", "gpt3-175b", "--system", "dgx-a100", "--devices", "1024", "--global-batch", "1536",
            "--grid", GRID, "--fits-only", "--format", "json")
    obj = json.loads(r.stdout)
    assert obj["rows"] and len(obj["rows"]) == obj["fit"]
    assert all(row["fits_in_memory"] and row["reason"] is None for row in obj["rows"])


def test_optimize_lists_a_one_stage_plan_once():
    best = pm.optimize("gpt2-124m", "dgx-a100", devices=8, global_batch=64, top=10)
    keys = [tuple((k, v) for k, v in sorted(r.items()) if k != "schedule" and not k.endswith("_s")
                  and k not in ("mfu", "tokens_per_s", "bound", "reason") and not k.startswith("memory"))
            for r in best.rows]
    assert len(keys) == len(set(keys))
    assert all(r["schedule"] != "gpipe" for r in best.rows if r["pp"] == 1)
    assert best.rows[0]["stack"] == "megatron"


class Recorder(ProgressBar):
    def __init__(self):
        super().__init__(False)
        self.phases = {}

    def phase(self, name, total):
        self.phases.setdefault(name, [total, 0])

        def advance(n):
            self.phases[name][1] += n
        return advance


def test_progress_covers_evaluation_and_writing(tmp_path):
    bar = Recorder()
    e = evaluate("gpt3-175b", "dgx-a100", GRID, progress=bar, **FIXED)
    from perfmodel.sweeps.output import write_file

    write_file(e, tmp_path / "s.csv", None, bar.phase("write", e.n_rows))
    assert bar.phases["evaluate"] == [e.n_rows, e.n_rows] and bar.phases["write"] == [e.n_rows, e.n_rows]
    bar = Recorder()
    best = pm.optimize("gpt2-124m", "dgx-a100", devices=8, global_batch=64, progress=bar)
    total, done = bar.phases["evaluate"]
    assert done >= total > 0 and best.evaluated >= total


def test_a_huge_grid_is_refused_up_front_in_one_line():
    values = ",".join(str(v) for v in range(1, 1001))
    grid = f"micro_batch={values};global_batch={values};seq={values};tp=1,2,4,8,16,32,64,128,256,512"  # 10^10
    start = time.perf_counter()
    r = run("sweep", "--model", "gpt3-175b", "--system", "dgx-a100", "--grid", grid, "--format", "json")
    assert time.perf_counter() - start < 10
    assert r.returncode == 2 and len(r.stderr.strip().splitlines()) == 1, r.stderr
    assert "10,000,000,000 configurations" in r.stderr and "--max-configs" in r.stderr
    assert "TB of memory" in r.stderr and "TB of json output" in r.stderr
    assert resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss < 1_000_000  # KiB: no child reached 1 GB
    with pytest.raises(pm.SweepError, match="max-configs"):
        check_size(10**9, "csv", 10**6)
    check_size(10**9, "csv", None)  # no limit


def test_json_rows_are_streamed_in_blocks_and_equal_the_frame(ev, monkeypatch):
    import perfmodel.sweeps.output as output

    monkeypatch.setattr(output, "BLOCK_ROWS", 7)  # many blocks
    buf = io.StringIO()
    write_rows(ev, buf, "json", head={"evaluated": ev.n_rows})
    obj = json.loads(buf.getvalue())
    assert obj["evaluated"] == ev.n_rows and len(obj["rows"]) == ev.n_rows
    df = ev.to_frame()
    for i in (0, 17, ev.n_rows - 1):
        got, want = obj["rows"][i], df.iloc[i]
        assert got["tp"] == want["tp"] and got["recompute"] == want["recompute"]
        step = want["step_time_s"]
        assert (got["step_time_s"] is None) if np.isnan(step) else got["step_time_s"] == step
    buf = io.StringIO()
    write_rows(ev, buf, "csv")
    assert buf.getvalue() == df.to_csv(index=False)


@pytest.mark.parametrize("address", ["not an address", "", "inproc://x", "ucx://10.0.0.1:13337", "tcp://host",
                                     "tcp://127.0.0.1:99999"])
def test_malformed_scheduler_addresses_are_one_line(address):
    r = run("sweep", "--model", "gpt2-124m", "--system", "dgx-a100", "--grid", "tp=1,2", "--scheduler", address)
    assert r.returncode == 2 and len(r.stderr.strip().splitlines()) == 1, r.stderr
    assert "scheduler" in r.stderr and "Traceback" not in r.stderr


def test_a_scheduler_that_never_answers_times_out():
    pytest.importorskip("distributed")
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(8)
    held = []
    threading.Thread(target=lambda: [held.append(server.accept()) for _ in range(8)], daemon=True).start()
    port = server.getsockname()[1]
    start = time.perf_counter()
    r = run("sweep", "--model", "gpt2-124m", "--system", "dgx-a100", "--grid", "tp=1,2",
            "--scheduler", f"tcp://127.0.0.1:{port}", timeout=60)
    elapsed = time.perf_counter() - start
    server.close()
    assert r.returncode == 2 and len(r.stderr.strip().splitlines()) == 1, r.stderr
    assert "did not answer" in r.stderr and elapsed < 10  # issue 13: refused within 10 s


def test_parquet_is_written_in_blocks_and_equals_the_frame(ev, tmp_path, monkeypatch):
    pq = pytest.importorskip("pyarrow.parquet")
    import perfmodel.sweeps.output as output

    monkeypatch.setattr(output, "BLOCK_ROWS", 50)
    output.write_file(ev, tmp_path / "s.parquet")
    got = pq.read_table(tmp_path / "s.parquet").to_pandas()
    want = ev.to_frame()
    assert len(got) == len(want) and list(got.columns) == list(want.columns)
    assert np.allclose(got["step_time_s"].to_numpy(), want["step_time_s"].to_numpy(), equal_nan=True)
    assert (got["tp"].to_numpy() == want["tp"].to_numpy()).all()
    assert not list(tmp_path.glob(".*partial*"))
