"""``run_sweep``: accuracy and cycles per (method, 4-bit ratio) for one model, in one table.

For each method the model is quantized, its selection built (or loaded from
``DIR/selections/``), and the same quantized model compiled to one NPU program (cached in
``DIR/programs/``). At each ratio:

* accuracy, agreement with the 8-bit model, KL from the 8-bit softmax and agreement with FP32
  come from the integer runtime (``qmodel``) over the evaluation set -- the runtime the
  simulator is proven bit-exact with; the three fidelity metrics carry a 95 % bootstrap
  interval over photos (``*_lo``/``*_hi``: all views of one photo resampled together);
* cycles (REORDER cycles, and busy cycles per op kind: ``cyc_*``) come from simulating the compiled program at batch 1 on the
  first evaluation image, with the max4 registers written from the same model's table;
* ``check_images`` images (default 2) are run through the simulator and compared code for
  code with ``qmodel.run(x).codes``: ``sim_bitexact`` is 1 when all match;
* with ``sim_images=N`` the accuracy is taken from simulator outputs of the first N images
  instead (``acc_source`` says which).

Every finished row is written to ``DIR/sweep.csv`` / ``sweep.json`` atomically; a rerun skips
rows already there (resume). Ratios 0 and 1 are always measured: they define ``speedup``
and ``speedup_share``.
"""

from __future__ import annotations

import hashlib
import os
import time
from dataclasses import asdict, dataclass, field

import numpy as np
import torch

from quant.errors import ConfigError, FlexiQError

from . import methods as M
from . import metrics, npu_run
from .data import calibration_batches, evaluation_set
from .model_ref import load_registry_model
from .sweep_table import SweepTable


@dataclass
class SweepOptions:
    ratios: list = field(default_factory=lambda: [0.0, 0.25, 0.5, 0.75, 1.0])
    methods: list = field(default_factory=lambda: list(M.DEFAULT_METHODS))
    limit: int | None = None  # evaluation images (None: the whole test set)
    batch: int = 256  # evaluation batch for the integer runtime
    calib_images: int = 256
    seed: int = 0
    check_images: int = 2  # images compared bit for bit with the simulator per ratio
    sim_images: int = 0  # >0: accuracy from simulator outputs on this many images
    simulate: bool = True  # False: no cycles (compiler not needed)
    pretrained: bool = True
    weights: str | None = None  # a state dict (or a training state with "model") to load
    data: str = "auto"  # "auto" or "synthetic"
    search: dict = field(default_factory=dict)  # extra kwargs for quant.select
    quant_base: dict = field(default_factory=dict)  # QuantConfig fields for every method
    npu_config: dict | None = None  # NPUConfig fields
    progress: bool = True
    fresh: bool = False
    skip_unavailable: bool = True

    def result_key(self) -> dict:
        """The options that change results: a resumed sweep must match them."""
        return {k: v for k, v in asdict(self).items()
                if k in ("limit", "calib_images", "seed", "pretrained", "weights", "data", "search",
                         "quant_base", "npu_config", "sim_images")}


def parse_ratios(text: str) -> list[float]:
    try:
        rs = [float(t) for t in str(text).split(",") if t.strip() != ""]
    except ValueError:
        raise ConfigError(f"--ratios must be comma-separated numbers, got {text!r}") from None
    if not rs:
        raise ConfigError("--ratios is empty")
    for r in rs:
        if not 0.0 <= r <= 1.0:
            raise ConfigError(f"ratio {r} outside [0, 1]")
    return rs


def all_ratios(ratios) -> list[float]:
    return sorted({float(r) for r in ratios} | {0.0, 1.0})


def _log(msg: str, progress: bool) -> None:
    if progress:
        from tqdm.auto import tqdm

        tqdm.write(msg)


#: Input values per evaluation batch, at most. The integer runtime's int64 temporaries for a
#: 224-pixel network at batch 32 are hundreds of MB each, and allocating them costs more than
#: the arithmetic: on EfficientNet-Lite0 batches of 8 and 4 photos ran 1.6x and 2.0x faster
#: per photo than batches of 32 (benchmarks/bench_eval_batch.py). Small inputs keep the
#: asked batch.
BATCH_VALUES = 1 << 20


def eval_batch(batch: int, x: torch.Tensor) -> int:
    """The batch to run ``x`` in: ``batch``, cut so one batch holds ~BATCH_VALUES inputs."""
    per_sample = max(1, x[0].numel()) if len(x) else 1
    return max(1, min(int(batch), BATCH_VALUES // per_sample))


def _run_logits(qmodel, x: torch.Tensor, batch: int, desc: str, progress: bool):
    """(dequantized logits float64, int codes) over ``x`` from the integer runtime."""
    from tqdm.auto import tqdm

    logits, codes = [], []
    batch = eval_batch(batch, x)
    it = range(0, len(x), batch)
    for i in tqdm(it, desc=desc, disable=not progress, leave=False, unit="batch"):
        q = qmodel.run(x[i:i + batch])
        c = q.codes.numpy()
        codes.append(c)
        logits.append(c.astype(np.float64) * q.scale)
    return np.concatenate(logits), np.concatenate(codes)


def _float_logits(qmodel, x: torch.Tensor, batch: int) -> np.ndarray:
    batch = eval_batch(batch, x)
    return np.concatenate([qmodel.float_forward(x[i:i + batch]).double().numpy()
                           for i in range(0, len(x), batch)])


class _Refs:
    """8-bit and FP32 reference outputs, cached in DIR/cache/MODEL_refs.npz."""

    def __init__(self, path):
        self.path = path
        self.ref8 = None
        self.fp32 = None
        if os.path.exists(path):
            z = np.load(path)
            self.ref8, self.fp32 = z["ref8"], z["fp32"]

    def save(self):
        from .io import atomic_path

        with atomic_path(self.path) as tmp:
            np.savez(tmp, ref8=self.ref8, fp32=self.fp32)


def run_sweep(model_name: str, out_dir, opts: SweepOptions | None = None, *,
              model: torch.nn.Module | None = None, data=None) -> SweepTable:
    """Measure every (method, ratio) row not yet in ``out_dir/sweep.csv``; return the table.

    ``model_name`` labels the rows (and, unless ``model`` is given, is a registry name);
    ``data`` is a ``data_source.DataSource`` for calibration and evaluation (default: the
    registry model's own data, or ``opts.data``). Without labels, accuracy stays empty and
    the rows report fidelity to the 8-bit model (agreement, KL)."""
    opts = opts or SweepOptions()
    out_dir = os.fspath(out_dir)
    methods = M.validate(opts.methods)
    ratios = all_ratios(opts.ratios)
    if opts.sim_images and not opts.simulate:
        raise ConfigError("--sim-images needs the simulator (drop --no-sim)")
    if opts.simulate:
        npu_run.require_compiler()
    runnable, skipped = M.available(methods)
    if skipped and not opts.skip_unavailable:
        raise FlexiQError("; ".join(f"{m}: {why}" for m, why in skipped.items()))
    for m, why in skipped.items():
        _log(f"[sweep] skipping method {m}: {why}", opts.progress)

    os.makedirs(out_dir, exist_ok=True)
    table = SweepTable.load(out_dir)
    if table.dropped:
        print(f"[sweep] {out_dir}: {table.dropped} incomplete or unverified rows in sweep.csv "
              "(an interrupted write?) will be measured again")
    runs = dict(table.previous_meta.get("runs", {}))
    key = opts.result_key()
    if opts.fresh:
        table.rows = {k: v for k, v in table.rows.items() if k[0] != model_name}
        for sub in ("selections", "programs", "cache"):
            for f in _files_of(os.path.join(out_dir, sub), model_name):
                os.remove(f)
    elif model_name in runs and runs[model_name] != key:
        old = runs[model_name]
        diff = {k: (old.get(k), key[k]) for k in key if old.get(k) != key[k]}
        raise FlexiQError(f"{out_dir} holds a {model_name} sweep made with other options "
                          f"({', '.join(f'{k}: {a!r} then, {b!r} now' for k, (a, b) in diff.items())}); "
                          "use --fresh to start over or another -o directory")
    runs[model_name] = key
    table.meta = {**table.previous_meta, "runs": runs}

    todo = {m: [r for r in M.method_ratios(m, ratios) if not table.done(model_name, m, r)]
            for m in runnable}
    todo = {m: rs for m, rs in todo.items() if rs}
    n_steps = sum(len(rs) for rs in todo.values())
    if not n_steps:
        _log(f"[sweep] {model_name}: all {len(table.rows)} rows already in {table.csv_path}",
             opts.progress)
        table.write()
        return table
    done_before = sum(1 for k in table.rows if k[0] == model_name)
    if done_before:
        _log(f"[sweep] {model_name}: resuming, {done_before} rows already done", opts.progress)

    from tqdm.auto import tqdm


    torch.manual_seed(opts.seed)
    if model is None:
        model = load_registry_model(model_name, pretrained=opts.pretrained, weights=opts.weights)
    if data is None:
        calib = calibration_batches(model_name, opts.calib_images, seed=opts.seed, data=opts.data)
        ev = evaluation_set(model_name, limit=opts.limit, data=opts.data, seed=opts.seed)
    else:
        calib = data.calibration(opts.calib_images, seed=opts.seed)
        ev = data.evaluation(opts.limit, seed=opts.seed, num_outputs=_num_outputs(model, calib))
    if ev.labels is None:
        if opts.sim_images:
            raise ConfigError(f"--sim-images needs labels; {ev.name} has none")
        _log(f"[sweep] {model_name}: {ev.name} has no labels: accuracy is left empty; the rows "
             "report fidelity to the 8-bit model (agree_8bit, kl_8bit)", opts.progress)
    _check_data(table, model_name, calib, ev, out_dir, opts.fresh)
    fx = ev.fidelity_x
    n_lab = len(ev.x)
    npu_cfg = None
    if opts.npu_config:
        from npu_sim import NPUConfig

        npu_cfg = NPUConfig.from_dict(opts.npu_config)
    clock = (npu_cfg.clock_ghz if npu_cfg else _default_clock()) if opts.simulate else None

    qcache: dict = {}
    refs = _Refs(os.path.join(out_dir, "cache", f"{model_name}_refs.npz"))
    bar = tqdm(total=n_steps, desc=f"sweep {model_name}", disable=not opts.progress, unit="row")
    for method in todo:
        t0 = time.time()
        _log(f"[sweep] {model_name} / {method}: calibrate + select", opts.progress)
        qm = M.prepare_qmodel(
            method, model, calib, ratios, seed=opts.seed, search=opts.search,
            quant_base=opts.quant_base, cache=qcache, progress=opts.progress,
            selection_path=os.path.join(out_dir, "selections", f"{model_name}__{_fs(method)}.json"))
        if refs.ref8 is None:
            ref_qm = qm
            if not M.ratio0_is_8bit(method):  # the reference is the model as quantized
                ref_qm = M.prepare_qmodel("uniform_int4", model, calib, ratios, seed=opts.seed,
                                          quant_base=opts.quant_base, cache=qcache,
                                          progress=opts.progress)
            ref_qm.set_ratio(0.0)
            refs.ref8, _ = _run_logits(ref_qm, fx, opts.batch, "8-bit reference", opts.progress)
            refs.fp32 = _float_logits(ref_qm, fx, opts.batch)
            refs.save()
        prog = None
        if opts.simulate:
            _log(f"[sweep] {model_name} / {method}: compile", opts.progress)
            prog = npu_run.compile_program(
                qm, ev.x[:1], ratios=M.method_ratios(method, ratios), config=npu_cfg,
                name=model_name,
                path=os.path.join(out_dir, "programs", f"{model_name}__{_fs(method)}.npz"))
        for r in todo[method]:
            bar.set_postfix_str(f"{method} @ {r:g}")
            row = _measure(model_name, method, r, qm, prog, ev, refs, opts, npu_cfg, n_lab)
            row["clock_ghz"] = clock
            table.add(row)
            bar.update(1)
        _log(f"[sweep] {model_name} / {method}: done in {time.time() - t0:.0f} s", opts.progress)
    bar.close()
    return table


def data_id(calib, ev) -> str:
    """A fingerprint of the calibration and evaluation inputs (and labels)."""
    h = hashlib.sha256()
    for t in [*calib, ev.x, ev.labels, ev.pool]:
        if t is not None:
            h.update(np.ascontiguousarray(torch.as_tensor(t).numpy()).tobytes())
    return h.hexdigest()[:16]


def _check_data(table, model_name, calib, ev, out_dir, fresh) -> None:
    """Refuse to add rows to a sweep whose earlier rows saw other inputs (a photo source
    installed or removed since, another data set); record the fingerprint."""
    ids = dict(table.meta.get("data", {}))
    now = {"id": data_id(calib, ev), "eval_set": ev.name}
    old = ids.get(model_name)
    if old and old.get("id") != now["id"] and not fresh:
        raise FlexiQError(
            f"{out_dir}: the {model_name} rows there were measured on other data ({old.get('eval_set')}, "
            f"now {ev.name}; the calibration or evaluation inputs changed, e.g. a photo source "
            "installed or removed); use --fresh to start over or another -o directory")
    ids[model_name] = now
    table.meta = {**table.meta, "data": ids}


def _measure(model_name, method, r, qm, prog, ev, refs, opts, npu_cfg, n_lab) -> dict:
    qm.set_ratio(r)
    lab, codes = _run_logits(qm, ev.x, opts.batch, f"{method} @ {r:g}", opts.progress)
    if ev.pool is None:
        logits = lab
    elif r == 0.0 and M.ratio0_is_8bit(method):
        # all channels in 8 bits: selection and extraction do not act, so the pool's outputs
        # are the 8-bit reference's (integer sums are exact, whatever the channel order)
        logits = refs.ref8
    else:
        logits = _run_logits(qm, ev.pool, opts.batch, f"{method} @ {r:g} (pool)", opts.progress)[0]
    row = {
        "model": model_name, "method": method, "ratio": float(r),
        "accuracy": metrics.accuracy(lab, ev.labels) if ev.labels is not None else None,
        "mac4_share": qm.four_bit_mac_share(),
        "acc_source": "quant", "n_images": len(logits), "eval_set": ev.name,
        "n_photos": ev.n_units,
    }
    groups = ev.fidelity_groups
    per_row = {
        "agree_8bit": (metrics.top1(logits) == metrics.top1(refs.ref8)).astype(np.float64),
        "kl_8bit": metrics.per_row_kl(logits, refs.ref8),
        "agree_fp32": (metrics.top1(logits) == metrics.top1(refs.fp32)).astype(np.float64),
    }
    for name, v in per_row.items():
        row[name] = float(v.mean())
        row[f"{name}_lo"], row[f"{name}_hi"] = metrics.bootstrap_ci(v, groups, seed=opts.seed)
    if prog is None:
        return row
    n_sim = max(1, opts.check_images, opts.sim_images)
    n_sim = min(n_sim, n_lab)
    match, sim_top1, cycles, reorder = True, [], None, 0
    for i in range(n_sim):
        res = npu_run.simulate(prog, qm, ev.x[i:i + 1], r, config=npu_cfg)
        if cycles is None:
            cycles, reorder = int(res.cycles), npu_run.reorder_cycles(res)
            row.update(npu_run.cycle_breakdown(res, qm))
        out = npu_run.output_codes(res, prog)
        ref = codes[i:i + 1]
        ok = out.size == ref.size and np.array_equal(out.reshape(-1), ref.reshape(-1))
        match = match and ok
        sim_top1.append(int(np.argmax(out.reshape(-1))) if out.size == ref.size else -1)
    row.update(cycles=cycles, reorder_cycles=reorder,
               reorder_share=reorder / cycles if cycles else None,
               sim_bitexact=int(match), sim_checked=n_sim)
    if opts.sim_images:
        y = ev.labels[:n_sim].numpy()
        row["accuracy"] = float((np.array(sim_top1) == y).mean())
        row["acc_source"] = f"sim[{n_sim}]"
    return row


def _num_outputs(model, calib) -> int | None:
    """Classes the model outputs (last axis of its output on one calibration sample)."""
    with torch.no_grad():
        y = model(calib[0][:1])
    return int(y.shape[-1]) if isinstance(y, torch.Tensor) and y.dim() >= 1 else None


def _default_clock() -> float:
    from npu_sim import NPUConfig

    return float(NPUConfig().clock_ghz)


def _fs(method: str) -> str:
    return method.replace("+", "_")


def _files_of(directory, model_name):
    if not os.path.isdir(directory):
        return []
    return [os.path.join(directory, f) for f in os.listdir(directory)
            if f.startswith(model_name + "__") or f.startswith(model_name + "_refs")]

