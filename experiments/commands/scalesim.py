"""`flexiq scalesim -c CFG -t TOPOLOGY -p OUTDIR [-i conv|gemm]`: a SCALE-Sim drop-in.

Takes SCALE-Sim's own flags, reads its INI config and topology CSVs and writes its reports
(weight stationary; see docs/scalesim.md).
"""

from __future__ import annotations


def register(sub) -> None:
    p = sub.add_parser("scalesim", help="SCALE-Sim drop-in: its config and topology in, its "
                                        "reports out (weight stationary)")
    p.add_argument("-c", dest="config", required=True, metavar="CFG",
                   help="SCALE-Sim configuration file (INI)")
    p.add_argument("-t", dest="topology", required=True, metavar="TOPOLOGY",
                   help="SCALE-Sim topology CSV")
    p.add_argument("-p", dest="logdir", default="./results/", metavar="OUTDIR",
                   help="log directory; reports go to OUTDIR/<run_name>/ (default ./results/)")
    p.add_argument("-i", dest="input_type", default="conv", choices=["conv", "gemm"],
                   help="topology form: conv rows or GEMM (M, N, K) rows (default conv)")
    p.add_argument("-l", dest="layout", metavar="LAYOUT",
                   help="SCALE-Sim layout file: accepted and ignored (layouts only change "
                        "DRAM traffic, which is not modeled)")
    p.add_argument("-s", dest="save_trace", default="N", choices=["Y", "N"],
                   help="SCALE-Sim's trace switch: accepted; no traces are written")
    p.add_argument("--quiet", action="store_true", help="print only the report folder")
    p.set_defaults(func=run)


def run(args) -> int:
    from experiments.scalesim import read_config, read_topology, simulate, write_reports

    cfg = read_config(args.config)
    layers = read_topology(args.topology, args.input_type)
    reports = simulate(cfg, layers)
    folder = write_reports(args.logdir, cfg.run_name, reports)
    if not args.quiet:
        print(f"array {cfg.array_rows}x{cfg.array_cols}, weight stationary, "
              f"{len(layers)} layers")
        for ly, r in zip(layers, reports):
            print(f"  {ly.name:<24} total cycles {r.total_cycles:>12}  "
                  f"util {r.overall_util:6.2f} %  mapping {r.mapping_eff:6.2f} %")
        print(f"total cycles: {sum(r.total_cycles for r in reports)}")
    print(f"reports: {folder}")
    return 0
