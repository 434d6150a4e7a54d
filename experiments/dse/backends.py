"""Where DSE jobs run. A backend maps a function over jobs and yields ``(job, rows, error)``
as each finishes (in completion order); a job that fails (its worker died, an unexpected
exception) yields its error and the sweep goes on.

``local``: the standard library's process pool (spawned workers, one BLAS thread each).
``ray``: Ray tasks (``pip install ray``), on a local instance or an existing cluster
(``address``); Ray is imported only here, when this backend is chosen.
"""

from __future__ import annotations

import concurrent.futures as cf
import multiprocessing
import os

from quant.errors import FlexiQError

BACKENDS = ("local", "ray")


class BackendError(FlexiQError):
    """The backend cannot start (Ray missing, cluster unreachable)."""


def _init_worker() -> None:
    for v in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[v] = "1"


class LocalBackend:
    name = "local"

    def __init__(self, workers: int | None = None):
        self.workers = max(1, workers or os.cpu_count() or 1)

    def run(self, fn, jobs):
        if not jobs:
            return
        ctx = multiprocessing.get_context("spawn")
        pool = cf.ProcessPoolExecutor(min(self.workers, len(jobs)), mp_context=ctx,
                                      initializer=_init_worker)
        try:
            futs = {pool.submit(fn, j): j for j in jobs}
            for f in cf.as_completed(futs):
                try:
                    yield futs[f], f.result(), None
                except Exception as e:  # noqa: BLE001 - reported per job, the sweep goes on
                    yield futs[f], None, f"{type(e).__name__}: {e}"
        finally:  # interrupted: drop the queued jobs instead of waiting for them
            pool.shutdown(wait=True, cancel_futures=True)

    def close(self) -> None:
        pass


def _call(fn, job):
    """A Ray task: ``fn(job)`` (any picklable callable, e.g. a ``functools.partial``)."""
    return fn(job)


class RayBackend:
    """Jobs as Ray tasks (one CPU each, no retries: a job whose worker dies is reported and
    left for the rerun). ``address=None`` starts a local instance (``num_cpus`` CPUs)."""

    name = "ray"

    def __init__(self, address: str | None = None, num_cpus: int | None = None):
        try:
            import ray
        except ImportError:
            raise BackendError("--backend ray needs Ray: pip install 'ray>=2.9' "
                               "(scripts/install.sh installs it)") from None
        self.ray = ray
        self.started = False
        if not ray.is_initialized():
            kw = {"include_dashboard": False, "log_to_driver": False}
            if address:
                kw["address"] = address
            else:
                kw["num_cpus"] = num_cpus or os.cpu_count()
                # workers of a local instance import this checkout (not another install)
                root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(
                    __file__))))
                paths = [root] + [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep)
                                  if p and p != root]
                os.environ["PYTHONPATH"] = os.pathsep.join(paths)
            try:
                ray.init(**kw)
            except Exception as e:  # noqa: BLE001 - Ray raises several kinds
                raise BackendError(f"cannot start or reach Ray ({address or 'local'}): "
                                   f"{e}") from None
            self.started = True

    def run(self, fn, jobs):
        if not jobs:
            return
        ray = self.ray
        remote = ray.remote(num_cpus=1, max_retries=0)(_call)
        refs = {remote.remote(fn, j): j for j in jobs}
        pending = list(refs)
        while pending:
            done, pending = ray.wait(pending, num_returns=1)
            for ref in done:
                try:
                    yield refs[ref], ray.get(ref), None
                except Exception as e:  # noqa: BLE001 - worker died, task error
                    yield refs[ref], None, f"{type(e).__name__}: {str(e).splitlines()[0]}"

    def close(self) -> None:
        if self.started:
            self.ray.shutdown()


def make_backend(name: str, *, workers: int | None = None, address: str | None = None):
    if name == "local":
        return LocalBackend(workers)
    if name == "ray":
        return RayBackend(address, workers)
    raise BackendError(f"unknown backend {name!r} (known: {', '.join(BACKENDS)})")
