"""Serving study: a single NPU serving a request stream at a run-time 4-bit ratio.

Requests arrive by a Poisson process or a fluctuating-rate process (a non-homogeneous
Poisson process, sinusoidal or piecewise between ``low`` and ``high`` times the INT8
capacity). One server takes up to ``batch_size`` waiting requests at a time; before each
batch a policy picks the 4-bit ratio: fixed INT8, fixed 100 % 4-bit, or the adaptive
``QueueController`` (queue-length thresholds with hysteresis). The service time of a batch
is ``n * service_s[ratio]`` with ``service_s`` from the simulated cycles per ratio (batch-1
cycles / clock, times ``time_scale``) plus the ratio-switch cost; a request's accuracy is
the accuracy measured at the ratio that served it. Everything is seeded and event-driven.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass, field

import numpy as np

from numeric.ratio import same_ratio
from quant.errors import ConfigError, FlexiQError


# ----------------------------------------------------------------------------- profile
@dataclass
class ServiceProfile:
    """Per ratio (ascending): seconds to serve one request and the accuracy it gets."""

    ratios: list
    service_s: list
    accuracy: list
    switch_s: float = 0.0  # cost of a ratio switch (max4 register writes)
    source: str = ""

    def __post_init__(self):
        if not self.ratios:
            raise ConfigError("service profile has no ratios")
        if not (len(self.ratios) == len(self.service_s) == len(self.accuracy)):
            raise ConfigError("service profile: ratios, service_s and accuracy differ in length")
        order = np.argsort(self.ratios, kind="stable")
        self.ratios = [float(self.ratios[i]) for i in order]
        self.service_s = [float(self.service_s[i]) for i in order]
        self.accuracy = [float(self.accuracy[i]) for i in order]
        if any(not s > 0 for s in self.service_s):
            raise ConfigError(f"service times must be positive, got {self.service_s}")

    @property
    def int8_capacity(self) -> float:
        """Requests per second the lowest ratio sustains."""
        return 1.0 / self.service_s[0]

    def level_of(self, ratio: float) -> int:
        for i, r in enumerate(self.ratios):
            if same_ratio(r, ratio):
                return i
        raise ConfigError(f"ratio {ratio} not in the profile ({self.ratios})")

    @classmethod
    def from_sweep(cls, rows: list[dict], *, model: str | None = None, method: str | None = None,
                   time_scale: float = 1.0, int8_ms: float | None = None,
                   switch_cycles: int = 0) -> ServiceProfile:
        """From sweep rows (dicts with model, method, ratio, cycles, accuracy, clock_ghz).

        ``int8_ms`` overrides ``time_scale`` so that the ratio-0 service time is that many ms.
        """
        rows = [r for r in rows if r.get("cycles") not in (None, "")]
        models = sorted({r["model"] for r in rows})
        if model is None:
            if len(models) != 1:
                raise FlexiQError(f"the sweep table holds models {models}; pick one with --model")
            model = models[0]
        rows = [r for r in rows if r["model"] == model]
        methods = sorted({r["method"] for r in rows})
        if method is None:
            method = pick_method(methods)
        rows = sorted((r for r in rows if r["method"] == method), key=lambda r: float(r["ratio"]))
        if len(rows) < 2:
            raise FlexiQError(f"the sweep table has {len(rows)} ratio(s) for {model}/{method} "
                              f"(methods there: {methods}); serving needs at least 2")
        clock = float(rows[0].get("clock_ghz") or 1.0)
        secs = [float(r["cycles"]) / (clock * 1e9) for r in rows]
        if int8_ms is not None:
            time_scale = int8_ms / 1e3 / secs[0]
        acc = [float(r["accuracy"]) if r.get("accuracy") not in (None, "") else float("nan")
               for r in rows]
        return cls([float(r["ratio"]) for r in rows], [s * time_scale for s in secs], acc,
                   switch_s=switch_cycles / (clock * 1e9) * time_scale,
                   source=f"{model}/{method}, time scale {time_scale:.4g}")


def pick_method(methods) -> str:
    """Default method for serving: the FlexiQ selection with the best search."""
    for m in ("evolutionary", "greedy", "range", "random"):
        if m in methods:
            return m
    if not methods:
        raise FlexiQError("the sweep table is empty")
    return sorted(methods)[0]


# ---------------------------------------------------------------------------- arrivals
def poisson_arrivals(rate: float, duration: float, rng: np.random.Generator) -> np.ndarray:
    """Arrival times (s) of a Poisson process of ``rate`` per second on [0, duration)."""
    if rate <= 0 or duration <= 0:
        raise ConfigError(f"Poisson arrivals need rate > 0 and duration > 0 (got {rate}, {duration})")
    n_guess = int(rate * duration + 10 * math.sqrt(rate * duration) + 10)
    t = np.cumsum(rng.exponential(1.0 / rate, size=n_guess))
    while t[-1] < duration:
        more = t[-1] + np.cumsum(rng.exponential(1.0 / rate, size=n_guess))
        t = np.concatenate([t, more])
    return t[t < duration]


def rate_profile(shape: str, base_rate: float, period: float, low: float = 0.5,
                 high: float = 1.5):
    """A function t -> rate that swings between ``low`` and ``high`` times ``base_rate``."""
    if shape == "sine":
        mid, amp = (low + high) / 2, (high - low) / 2
        return lambda t: base_rate * (mid - amp * np.cos(2 * np.pi * np.asarray(t) / period))
    if shape == "steps":
        return lambda t: base_rate * np.where((np.asarray(t) % period) < period / 2, low, high)
    raise ConfigError(f"fluctuation shape must be 'sine' or 'steps', got {shape!r}")


def fluctuating_arrivals(rate_fn, peak_rate: float, duration: float,
                         rng: np.random.Generator) -> np.ndarray:
    """Non-homogeneous Poisson arrivals by thinning a ``peak_rate`` process."""
    cand = poisson_arrivals(peak_rate, duration, rng)
    keep = rng.random(len(cand)) < np.asarray(rate_fn(cand)) / peak_rate
    return cand[keep]


# ---------------------------------------------------------------------------- policies
class FixedPolicy:
    def __init__(self, level: int, name: str):
        self.level = level
        self.name = name

    def reset(self) -> None:
        pass

    def choose(self, queue_len: int) -> int:
        return self.level


class QueueController:
    """Raise the ratio as the queue grows, lower it as it drains, with hysteresis.

    Level ``k`` (ratio ``ratios[k]``) is entered when the queue holds at least ``up[k-1]``
    requests and left when it holds at most ``up[k-1] - hysteresis``. The queue is looked at
    when the server starts a batch (the count includes that batch) and when it goes idle.
    """

    name = "adaptive"

    def __init__(self, n_levels: int, up: list | None = None, *, step: int = 2,
                 hysteresis: int = 2):
        if n_levels < 1:
            raise ConfigError("controller needs at least one level")
        up = list(up) if up is not None else [step * (k + 1) for k in range(n_levels - 1)]
        if len(up) != n_levels - 1:
            raise ConfigError(f"controller: {len(up)} thresholds for {n_levels} levels "
                              f"(need {n_levels - 1})")
        if any(b <= a for a, b in zip(up, up[1:])) or (up and up[0] < 1):
            raise ConfigError(f"controller thresholds must be increasing and >= 1, got {up}")
        if hysteresis < 1:
            raise ConfigError(f"controller hysteresis must be >= 1, got {hysteresis}")
        self.n_levels = n_levels
        self.up = up
        self.hysteresis = hysteresis
        self.level = 0

    def reset(self) -> None:
        self.level = 0

    def choose(self, queue_len: int) -> int:
        while self.level < self.n_levels - 1 and queue_len >= self.up[self.level]:
            self.level += 1
        while self.level > 0 and queue_len <= self.up[self.level - 1] - self.hysteresis:
            self.level -= 1
        return self.level


# ---------------------------------------------------------------------------- the queue
@dataclass
class ServeResult:
    policy: str
    arrival: np.ndarray
    finish: np.ndarray
    ratio: np.ndarray  # per request
    accuracy: np.ndarray  # per request
    timeline: list = field(default_factory=list)  # (batch start t, queue length, ratio)
    switches: int = 0

    @property
    def latency(self) -> np.ndarray:
        return self.finish - self.arrival

    def summary(self) -> dict:
        lat = self.latency * 1e3
        n = len(lat)
        return {
            "policy": self.policy,
            "n_requests": n,
            "median_ms": float(np.median(lat)) if n else float("nan"),
            "p90_ms": float(np.percentile(lat, 90)) if n else float("nan"),
            "p99_ms": float(np.percentile(lat, 99)) if n else float("nan"),
            "mean_ms": float(lat.mean()) if n else float("nan"),
            "mean_accuracy": float(np.mean(self.accuracy)) if n else float("nan"),
            "mean_ratio": float(np.mean(self.ratio)) if n else float("nan"),
            "switches": self.switches,
        }


def simulate_queue(arrivals, profile: ServiceProfile, policy, *, batch_size: int = 1) -> ServeResult:
    """Serve ``arrivals`` (sorted seconds) FIFO on one server under ``policy``."""
    if batch_size < 1:
        raise ConfigError(f"batch size must be >= 1, got {batch_size}")
    arr = np.asarray(arrivals, dtype=np.float64)
    if len(arr) and np.any(np.diff(arr) < 0):
        raise ConfigError("arrival times must be sorted")
    policy.reset()
    n = len(arr)
    finish = np.empty(n)
    ratio = np.empty(n)
    acc = np.empty(n)
    timeline = []
    queue: deque = deque()
    t, i, last_level, switches = 0.0, 0, None, 0
    while i < n or queue:
        if not queue:
            policy.choose(0)  # the server went idle: the controller sees an empty queue
            t = max(t, arr[i])
        while i < n and arr[i] <= t:
            queue.append(i)
            i += 1
        level = policy.choose(len(queue))
        timeline.append((t, len(queue), profile.ratios[level]))
        take = [queue.popleft() for _ in range(min(batch_size, len(queue)))]
        service = len(take) * profile.service_s[level]
        if last_level is not None and level != last_level:
            service += profile.switch_s
            switches += 1
        last_level = level
        t += service
        for j in take:
            finish[j] = t
            ratio[j] = profile.ratios[level]
            acc[j] = profile.accuracy[level]
    return ServeResult(policy.name, arr, finish, ratio, acc, timeline, switches)


# ------------------------------------------------------------------------- the study
@dataclass
class StudyConfig:
    duration_services: float = 4000.0  # trace length, in INT8 service times
    poisson_load: float = 0.95  # Poisson rate, times the INT8 capacity
    low: float = 0.5  # fluctuating rate bounds, times the INT8 capacity
    high: float = 1.5
    period_services: float = 400.0  # fluctuation period, in INT8 service times
    shape: str = "sine"
    batch_size: int = 1
    step: int = 2
    hysteresis: int = 2
    thresholds: list | None = None
    seed: int = 0
    traces: tuple = ("poisson", "fluctuating")


def make_trace(kind: str, profile: ServiceProfile, cfg: StudyConfig, rng):
    """(arrival times, rate function or None) for a trace kind."""
    cap = profile.int8_capacity
    duration = cfg.duration_services / cap
    if kind == "poisson":
        rate = cfg.poisson_load * cap
        return poisson_arrivals(rate, duration, rng), (lambda t: np.full_like(np.asarray(t, float), rate))
    if kind == "fluctuating":
        fn = rate_profile(cfg.shape, cap, cfg.period_services / cap, cfg.low, cfg.high)
        return fluctuating_arrivals(fn, cap * max(cfg.low, cfg.high), duration, rng), fn
    raise ConfigError(f"unknown trace {kind!r} (poisson, fluctuating)")


def policies(profile: ServiceProfile, cfg: StudyConfig) -> list:
    top = len(profile.ratios) - 1
    return [FixedPolicy(0, "int8"), FixedPolicy(top, "int4_100"),
            QueueController(len(profile.ratios), cfg.thresholds, step=cfg.step,
                            hysteresis=cfg.hysteresis)]


def run_study(profile: ServiceProfile, cfg: StudyConfig) -> dict:
    """Every trace x policy: summaries plus the per-trace results for plotting."""
    out = {"profile": {"ratios": profile.ratios, "service_ms": [s * 1e3 for s in profile.service_s],
                       "accuracy": profile.accuracy, "source": profile.source,
                       "int8_capacity_per_s": profile.int8_capacity},
           "config": {k: (list(v) if isinstance(v, tuple) else v) for k, v in cfg.__dict__.items()},
           "summary": [], "results": {}}
    for k, kind in enumerate(cfg.traces):
        rng = np.random.default_rng([cfg.seed, k])
        arrivals, rate_fn = make_trace(kind, profile, cfg, rng)
        if not len(arrivals):
            raise FlexiQError(f"trace {kind} produced no requests; lengthen it")
        out["results"][kind] = {"rate_fn": rate_fn, "runs": {}}
        for pol in policies(profile, cfg):
            res = simulate_queue(arrivals, profile, pol, batch_size=cfg.batch_size)
            out["results"][kind]["runs"][pol.name] = res
            out["summary"].append({"trace": kind, **res.summary()})
    return out


SUMMARY_COLUMNS = ["trace", "policy", "n_requests", "median_ms", "p90_ms", "p99_ms", "mean_ms",
                   "mean_accuracy", "mean_ratio", "switches"]
