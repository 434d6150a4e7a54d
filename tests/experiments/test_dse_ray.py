"""`flexiq dse --backend ray` on a local Ray instance (2 CPUs, no dashboard): the same table
as the local backend, row for row; a worker killed mid-sweep loses no finished row and the
rerun completes the sweep."""

import functools
import os

import pytest
import ray

from experiments.dse.job import run_job
from experiments.dse.runner import run_dse
from experiments.dse.space import build_space, parse_grid

TIMES = ("job_seconds", "prepare_seconds")


def strip_times(rows):
    return [{k: v for k, v in r.items() if k not in TIMES} for r in rows]


@pytest.fixture(scope="module")
def ray_local():
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield
    ray.shutdown()


@pytest.fixture(scope="module")
def space():
    return build_space(["resnet20_fmnist"], [0.0, 1.0],
                       grid=parse_grid(["rows=16,32", "cols=16,32", "wgt_kib=512,0"]))


@pytest.fixture(scope="module")
def local_rows(space, tmp_path_factory):
    out = run_dse(space, tmp_path_factory.mktemp("local"), backend="local", workers=2,
                  progress=False, plot_front=False)
    assert not out["failed"]
    return strip_times(out["rows"])


def crash_once(job, *, marker, config_id):
    """Kill this worker process the first time it gets ``config_id``'s job."""
    if job.config_id == config_id and not os.path.exists(marker):
        open(marker, "w").close()
        os._exit(1)
    return run_job(job)


def test_ray_table_equals_local_backend(ray_local, space, local_rows, tmp_path):
    out = run_dse(space, tmp_path, backend="ray", progress=False, plot_front=False)
    assert not out["failed"] and out["ran"] == 4
    assert strip_times(out["rows"]) == local_rows
    assert sum(r["status"] == "invalid" for r in local_rows) == 8  # wgt_kib = 0


def test_killed_ray_worker_loses_no_row_and_rerun_completes(ray_local, space, local_rows,
                                                            tmp_path):
    valid = sorted(p.config_id for p in space.points if p.config is not None)
    victim = valid[-1]  # the last job started: others finish before or while it dies
    fn = functools.partial(crash_once, marker=str(tmp_path / "crashed"), config_id=victim)
    first = run_dse(space, tmp_path, backend="ray", progress=False, plot_front=False, fn=fn)
    assert [j.config_id for j, _ in first["failed"]] == [victim]
    assert os.path.exists(tmp_path / "crashed")
    kept = strip_times(first["rows"])
    assert len(kept) == len(local_rows) - 2  # the victim's two ratios are missing
    assert all(r in local_rows for r in kept)
    second = run_dse(space, tmp_path, backend="ray", progress=False, plot_front=False, fn=fn)
    assert second["ran"] == 1 and not second["failed"]
    assert strip_times(second["rows"]) == local_rows
