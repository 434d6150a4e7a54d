"""`flexiq serve-sim (DIR | --model NAME) -o OUT`: the serving study (Poisson and fluctuating
arrivals; fixed INT8, fixed 100 % 4-bit and adaptive FlexiQ) from a sweep table."""

from __future__ import annotations

import os


def register(sub) -> None:
    p = sub.add_parser("serve-sim", help="queueing study: latency and accuracy under load")
    p.add_argument("source", help="a sweep directory (or sweep.csv) or a model name "
                                  "(then a quick sweep is run into OUT/sweep first)")
    p.add_argument("-o", "--out", default=None, help="output directory (default: the sweep's)")
    p.add_argument("--model", default=None, help="model in the sweep table (if several)")
    p.add_argument("--method", default=None,
                   help="method whose ratio ladder serves (default: evolutionary > greedy > range)")
    p.add_argument("--time-scale", type=float, default=1.0,
                   help="multiply simulated service times (a tiny model runs in µs; e.g. 1000)")
    p.add_argument("--int8-ms", type=float, default=None,
                   help="instead of --time-scale: scale so one INT8 inference takes this many ms")
    p.add_argument("--traces", default="poisson,fluctuating", help="poisson, fluctuating")
    p.add_argument("--requests", type=float, default=4000,
                   help="trace length in INT8 service times (about the request count)")
    p.add_argument("--load", type=float, default=0.95, help="Poisson rate / INT8 capacity")
    p.add_argument("--low", type=float, default=0.5, help="fluctuating: lowest rate / INT8 capacity")
    p.add_argument("--high", type=float, default=1.5, help="fluctuating: highest rate / INT8 capacity")
    p.add_argument("--period", type=float, default=400,
                   help="fluctuating: period in INT8 service times")
    p.add_argument("--shape", choices=("sine", "steps"), default="sine")
    p.add_argument("--batch", type=int, default=1, help="requests served per batch")
    p.add_argument("--step", type=int, default=2,
                   help="controller: queue length per ratio step (thresholds step, 2*step, ...)")
    p.add_argument("--thresholds", default=None,
                   help="controller: explicit queue thresholds, comma-separated (one per step up)")
    p.add_argument("--hysteresis", type=int, default=2,
                   help="controller: a level is left only when the queue is this much shorter")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--limit", type=int, default=1000,
                   help="with a model name: evaluation images of the quick sweep")
    p.set_defaults(func=run)


def load_rows(source: str, out: str | None, args):
    from experiments import io

    if os.path.isdir(source) or source.endswith(".csv"):
        path = source if source.endswith(".csv") else os.path.join(source, "sweep.csv")
        rows = io.read_csv(path)
        if not rows:
            from quant.errors import DataMissingError

            raise DataMissingError(f"no sweep table at {path}")
        return rows, out or os.path.dirname(os.path.abspath(path))
    from experiments import methods as M
    from experiments.sweep import SweepOptions, run_sweep

    out = out or os.path.join("runs", f"serve_{source}")
    method = args.method or ("evolutionary" if M.selection_available() else "range")
    opts = SweepOptions(methods=[method], limit=args.limit, seed=args.seed,
                        search={"population": 8, "generations": 4})
    table = run_sweep(source, os.path.join(out, "sweep"), opts)
    return table.table(), out


def run(args) -> int:
    from experiments import io
    from experiments.plotting import plot_serving
    from experiments.serving import SUMMARY_COLUMNS, ServiceProfile, StudyConfig, run_study
    from experiments.sweep_table import parse_row

    rows, out = load_rows(args.source, args.out, args)
    rows = [parse_row(r) if isinstance(r.get("ratio"), str) else r for r in rows]
    profile = ServiceProfile.from_sweep(rows, model=args.model, method=args.method,
                                        time_scale=args.time_scale, int8_ms=args.int8_ms)
    cfg = StudyConfig(
        duration_services=args.requests, poisson_load=args.load, low=args.low, high=args.high,
        period_services=args.period, shape=args.shape, batch_size=args.batch, step=args.step,
        hysteresis=args.hysteresis, seed=args.seed,
        thresholds=[int(t) for t in args.thresholds.split(",")] if args.thresholds else None,
        traces=tuple(t.strip() for t in args.traces.split(",") if t.strip()))
    study = run_study(profile, cfg)
    os.makedirs(out, exist_ok=True)
    io.write_csv(os.path.join(out, "serving.csv"), study["summary"], SUMMARY_COLUMNS)
    io.write_json(os.path.join(out, "serving.json"),
                  {k: study[k] for k in ("profile", "config", "summary")})
    png = plot_serving(study, os.path.join(out, "serving.png"))
    print(f"service profile: {profile.source}")
    for r, s, a in zip(profile.ratios, profile.service_s, profile.accuracy):
        print(f"  ratio {r:>4g}: {s * 1e3:.4g} ms per request, accuracy {100 * a:.2f}%")
    print(f"{'trace':<12} {'policy':<9} {'median ms':>10} {'P90 ms':>10} {'accuracy':>9} {'mean ratio':>10}")
    for s in study["summary"]:
        print(f"{s['trace']:<12} {s['policy']:<9} {s['median_ms']:>10.4g} {s['p90_ms']:>10.4g} "
              f"{100 * s['mean_accuracy']:>8.2f}% {s['mean_ratio']:>10.2f}")
    print(f"table: {os.path.join(out, 'serving.csv')}\nplot:  {png}")
    return 0
