"""The program-level machine: four instruction queues, tokens, DMA, array, vector unit.

Each queue runs its instructions in order. An instruction starts when its queue is
free, every token it waits for has arrived, and (for DMA) the DRAM channel is free; it
pushes its signal tokens when it ends. The machine always executes next the instruction
that can start earliest (event-driven), so values are computed in time order. When no
queue can start and some are not empty, the program is deadlocked: ``DeadlockError``
names each blocked queue, its instruction and the token it waits for.

Cycle costs: DMA ``latency + ceil(bytes / bandwidth)`` (the channel is busy for the
transfer part); GEMM ``issue + array cycles`` of its folds (``folds.fold_cycles``, or
measured by ``pe_array`` in exact mode); vector ops as in ``vector_unit``; SETMAX4
``max4_write_cycles``.
"""

from __future__ import annotations

import json
from collections import deque
from dataclasses import dataclass, field

import numpy as np

from numeric.errors import InputError
from numeric.int_ops import check_int32
from numeric.ranges import group_bounds

from . import isa, vector_unit
from .config import NPUConfig
from .errors import DeadlockError, ProgramError, SimError
from .extract import pe_weight_shift, shifts_from_masks
from .folds import fold_counts
from .gemm import MODES, array_cycles, conv_core, fold_stats
from .memory import DRAM, SRAM, WIDTH
from .program import Program


@dataclass
class SimResult:
    """Outputs (region name -> array), total ``cycles``, per-layer breakdown, statistics."""

    outputs: dict
    cycles: int
    layers: list
    stats: dict
    switch_cycles: int = 0
    clock_ghz: float = 1.0
    events: list = field(default_factory=list, repr=False)
    values: bool = True  # False: a timing-only run (no outputs, same cycles and stats)

    @property
    def output(self):
        """The only output (for single-output programs)."""
        if len(self.outputs) != 1:
            raise ProgramError(f"program has {len(self.outputs)} outputs; use .outputs[name]")
        return next(iter(self.outputs.values()))

    @property
    def latency_us(self) -> float:
        return self.cycles / (self.clock_ghz * 1e3)

    @property
    def layer_cycles(self) -> dict:
        return {d["name"]: d["cycles"] for d in self.layers}

    def to_json(self) -> dict:
        return {"total_cycles": self.cycles, "latency_us": self.latency_us,
                "switch_cycles": self.switch_cycles, "layers": self.layers,
                "stats": self.stats}

    def trace_events(self) -> list:
        us = 1.0 / (self.clock_ghz * 1e3)
        tids = {"load": 1, "compute": 2, "vector": 3, "store": 4, "array": 5, "dram": 6}
        out = [{"name": "process_name", "ph": "M", "pid": 0, "args": {"name": "FlexiQ NPU"}}]
        for q, t in tids.items():
            out.append({"name": "thread_name", "ph": "M", "pid": 0, "tid": t,
                        "args": {"name": q}})
        for e in self.events:
            out.append({"name": e["name"], "cat": e["track"], "ph": "X", "pid": 0,
                        "tid": tids[e["track"]], "ts": e["start"] * us,
                        "dur": max(e["end"] - e["start"], 0) * us, "args": e.get("args", {})})
        return out

    def write_trace(self, path) -> None:
        """Chrome / Perfetto trace JSON of the queues, the PE array and the DRAM channel
        (written atomically: a temporary file, then a rename)."""
        import os

        path = os.fspath(path)
        tmp = f"{path}.tmp.{os.getpid()}"
        try:
            with open(tmp, "w") as f:
                json.dump({"traceEvents": self.trace_events(), "displayTimeUnit": "ns"}, f)
            os.replace(tmp, path)
        except BaseException:
            if os.path.exists(tmp):
                os.remove(tmp)
            raise


class Machine:
    """An NPU loaded with one program. Keeps its max4 registers between runs."""

    def __init__(self, program: Program, config: NPUConfig | None = None, *, mode="fast"):
        if mode not in MODES:
            raise SimError(f"mode must be one of {MODES}, got {mode!r}")
        if config is None:
            config = NPUConfig.from_dict(program.config) if program.config else NPUConfig()
        program.validate()
        self.program = program
        self.cfg = config
        self.mode = mode
        self.max4 = np.zeros(len(program.max4_regs), dtype=np.int64)
        self.pending_switch_cycles = 0
        # timing-only runs: per-instruction cost and traffic (a GEMM's per value of its
        # max4 register); none depends on values, so later runs of this machine reuse them
        self._timing_cache: dict = {}

    # ------------------------------------------------------------ ratio switch
    def write_max4(self, reg: int, value: int) -> int:
        if not 0 <= reg < len(self.max4):
            raise ProgramError(f"max4 register {reg} does not exist (program has "
                               f"{len(self.max4)})")
        if value < 0:
            raise ProgramError(f"max4[{reg}] = {value}: must be >= 0")
        info = (self.program.meta.get("gemm_layers") or {}).get(self.program.max4_regs[reg])
        if isinstance(info, dict) and "channels" in info and value > int(info["channels"]):
            raise ProgramError(f"max4[{reg}] ({self.program.max4_regs[reg]}) = {value} exceeds "
                               f"the layer's {info['channels']} input channels")
        self.max4[reg] = value
        self.pending_switch_cycles += self.cfg.max4_write_cycles
        return self.cfg.max4_write_cycles

    def set_max4(self, values) -> int:
        values = list(values)
        if len(values) != len(self.max4):
            raise ProgramError(f"set_max4: {len(values)} values for {len(self.max4)} registers")
        return sum(self.write_max4(i, int(v)) for i, v in enumerate(values))

    def set_ratio(self, ratio) -> int:
        """Write every max4 register from the program's table for ``ratio``; returns cycles."""
        return self.set_max4(self.program.max4_for_ratio(ratio))

    # -------------------------------------------------------------------- run
    def run(self, inputs=None, *, values: bool = True, trace: bool = True) -> SimResult:
        """Execute the program. ``values=False`` is the timing-only run: the same queues,
        tokens, event timing, cycle costs, bounds checks and traffic counts, without
        computing any integer value (``inputs`` are not needed; ``outputs`` is empty).
        Its cycles, stall counts, per-layer table, statistics and trace events equal the
        full run's, because no cost of this machine depends on a value
        (docs/npu_sim.md). ``trace=False``: no trace events (``events`` empty)."""
        prog, cfg = self.program, self.cfg
        dram = DRAM(prog.regions, copy=values)
        if values:
            self._bind_inputs(dram, inputs)
        sram = SRAM(cfg, values=values)
        QS = isa.QUEUES
        nq = len(QS)
        sched = self._schedule_info()
        qlists = [[] for _ in QS]
        for i, info in enumerate(sched):
            qlists[info[0]].append(i)
        heads = [0] * nq
        qlen = [len(x) for x in qlists]
        tokens = [deque() for _ in range(nq * nq)]  # channel src * nq + dst
        q_free = [0] * nq
        dram_free = 0
        st = _Stats(cfg, prog)
        events = []
        issue = cfg.instr_issue_cycles
        remaining = len(sched)
        instrs = prog.instructions
        while remaining:
            best = None
            for qi in range(nq):
                h = heads[qi]
                if h == qlen[qi]:
                    continue
                i = qlists[qi][h]
                info = sched[i]
                tok = 0
                for ch in info[1]:
                    dq = tokens[ch]
                    if not dq:
                        break
                    if dq[0] > tok:
                        tok = dq[0]
                else:
                    ready = q_free[qi] if q_free[qi] > tok else tok
                    if info[3] and dram_free > ready:
                        ready = dram_free
                    if best is None or ready < best[0]:
                        best = (ready, qi, i, tok)
            if best is None:
                raise DeadlockError(self._deadlock_message(qlists, heads, tokens))
            start, qi, i, tok = best
            heads[qi] += 1
            remaining -= 1
            _, waits, signals, is_dma, is_gemm, lname, ev_name = sched[i]
            q = QS[qi]
            ins = instrs[i]
            for ch in waits:
                tokens[ch].popleft()
            if values or isinstance(ins, isa.SetMax4):
                dur, args = self._execute(ins, sram, dram, f"instruction {i} ({ins.OP})",
                                          lname, st)
            else:
                key = i
                if is_gemm and ins.max4_reg >= 0:  # a GEMM's cost depends on its n4 only
                    key = (i, int(self.max4[ins.max4_reg]))
                dur, args = self._execute_cached(key, i, ins, sram, dram, lname, st)
            end = start + dur
            if is_dma:
                xfer = args["xfer_cycles"]
                dram_free = start + xfer
                if trace:
                    events.append({"name": ins.OP, "track": "dram", "start": start,
                                   "end": start + xfer, "args": {"bytes": args["bytes"]}})
            st.record(ins, q, q_free[qi], tok, start, end, args)
            q_free[qi] = end
            for ch in signals:
                tokens[ch].append(end)
            if not trace:
                continue
            ev = {"name": ev_name, "track": q, "start": start,
                  "end": end, "args": {"index": i, **{k: v for k, v in args.items()
                                                       if isinstance(v, (int, float, str))}}}
            events.append(ev)
            if is_gemm:
                events.append({"name": f"folds {lname}".strip(), "track": "array",
                               "start": start + issue, "end": end,
                               "args": {k: args[k] for k in ("folds", "folds4", "utilization")}})
        q_free = dict(zip(QS, q_free))
        tokens = {(a, b): tokens[ia * nq + ib] for ia, a in enumerate(QS)
                  for ib, b in enumerate(QS) if a != b}
        total = max(q_free.values())
        leftover = {f"{a}->{b}": len(v) for (a, b), v in tokens.items() if v}
        outputs = ({n: np.array(dram.array(n), copy=True) for n in prog.outputs}
                   if values else {})
        stats = st.finish(total, sram, dram, leftover)
        stats["switch_cycles"] = self.pending_switch_cycles
        switch = self.pending_switch_cycles
        self.pending_switch_cycles = 0
        return SimResult(outputs, int(total), st.layer_list(), stats, switch, cfg.clock_ghz,
                         events, values)

    # ---------------------------------------------------------------- helpers
    def _bind_inputs(self, dram, inputs):
        names = self.program.inputs
        if inputs is None:
            inputs = {}
        if not isinstance(inputs, dict):
            if len(names) != 1:
                raise ProgramError(f"program has inputs {names}; pass a dict name -> array")
            inputs = {names[0]: inputs}
        for k in inputs:
            if k not in names:
                raise ProgramError(f"input {k!r} is not an input of the program ({names})")
        for n in names:
            if n not in inputs:
                raise ProgramError(f"missing program input {n!r}")
            dst = dram.array(n)
            src = inputs[n]
            if hasattr(src, "detach"):  # a torch tensor
                src = src.detach().cpu().numpy()
            src = np.asarray(src)
            if src.dtype.kind not in "biuf":
                raise InputError(f"input {n!r}: dtype {src.dtype} is not numeric")
            if src.dtype.kind == "f" and dst.dtype.kind in "iu":
                src = self._encode_float(n, src, dst)
            if src.shape != dst.shape:
                raise ProgramError(f"input {n!r}: shape {src.shape}, the program expects "
                                   f"{dst.shape}")
            if dst.dtype.kind in "iu":
                info = np.iinfo(dst.dtype)
                if src.size and (src.min() < info.min or src.max() > info.max):
                    raise ProgramError(f"input {n!r}: values outside {dst.dtype} range")
            dst[...] = src

    def _encode_float(self, n, x, dst):
        """The model's float input (logical layout, e.g. NCHW) -> the region's codes."""
        meta = self.program.meta.get("input")
        if not isinstance(meta, dict) or len(self.program.inputs) != 1:
            raise InputError(f"input {n!r}: float values for an integer region, and the program "
                             "records no input encoding: pass integer codes")
        want = [int(v) for v in meta["shape"]]
        if list(x.shape) != want:
            hint = ""
            if len(want) == 4 and list(x.shape) == [want[0], want[2], want[3], want[1]]:
                hint = " (this looks like NHWC: transpose it to NCHW)"
            raise InputError(f"input {n!r}: float input of shape {list(x.shape)}, the model "
                             f"takes {want}{hint}")
        if not np.isfinite(x).all():
            raise InputError(f"input {n!r}: the float input contains NaN or infinite values")
        from compiler.compile import encode_input  # the compiler owns the physical layout

        return np.asarray(encode_input(self.program, x)).reshape(dst.shape)

    def _schedule_info(self) -> list:
        """Per instruction, what the scheduler needs: (queue index, token channels waited
        on, channels signalled, is DMA, is GEMM, layer name, event name); made once."""
        info = getattr(self, "_sched", None)
        if info is None:
            qi = {q: n for n, q in enumerate(isa.QUEUES)}
            nq = len(isa.QUEUES)
            prog = self.program
            info = []
            for ins in prog.instructions:
                q = qi[ins.queue]
                lname = prog.layers[ins.layer] if ins.layer >= 0 else ""
                info.append((q, tuple(qi[s] * nq + q for s in ins.wait),
                             tuple(q * nq + qi[d] for d in ins.signal),
                             isinstance(ins, (isa.Load, isa.Store)), isinstance(ins, isa.Gemm),
                             lname, ins.OP + (f" {lname}" if lname else "")))
            self._sched = info
        return info

    def _deadlock_message(self, qlists, heads, tokens):
        nq = len(isa.QUEUES)
        qi = {q: n for n, q in enumerate(isa.QUEUES)}
        parts = []
        for n, q in enumerate(isa.QUEUES):
            if heads[n] == len(qlists[n]):
                continue
            i = qlists[n][heads[n]]
            ins = self.program.instructions[i]
            missing = [src for src in ins.wait if not tokens[qi[src] * nq + n]]
            parts.append(f"queue '{q}' at instruction {i} ({ins.OP}) waits for a token from "
                         + ", ".join(f"'{m}'" for m in missing))
        return "deadlock: no queue can make progress; " + "; ".join(parts)

    def _execute(self, ins, sram, dram, where, lname, st):
        cfg = self.cfg
        issue = cfg.instr_issue_cycles
        if isinstance(ins, isa.Load):
            src, isz, rname = dram.block(ins.dram_addr, ins.rows, ins.cols, ins.dram_stride, where,
                                         view=sram.values or ins.buf == "param")
            width = ins.pad_left + ins.cols + ins.pad_right
            rows = ins.pad_top + ins.rows + ins.pad_bottom
            dst = sram.block(ins.buf, ins.sram_addr, rows, width, ins.sram_stride, where,
                             write=True)
            if dst is not None:
                dst[...] = ins.pad_value
                dst[ins.pad_top:ins.pad_top + ins.rows,
                    ins.pad_left:ins.pad_left + ins.cols] = src
            nbytes = ins.rows * ins.cols * isz
            dram.read_bytes += nbytes
            xfer = -(-nbytes // cfg.dram_bytes_per_cycle)
            return issue + cfg.dram_latency + xfer, {"bytes": nbytes, "xfer_cycles": xfer,
                                                     "region": rname}
        if isinstance(ins, isa.Store):
            dst, isz, rname = dram.block(ins.dram_addr, ins.rows, ins.cols, ins.dram_stride, where,
                                         view=sram.values)
            src = sram.block(ins.buf, ins.sram_addr, ins.rows, ins.cols, ins.sram_stride, where)
            if not sram.values:  # timing only: DRAM is the program's, never written
                src = None
            elif dst.dtype.kind in "iu":
                info = np.iinfo(dst.dtype)
                if src.size and (src.min() < info.min or src.max() > info.max):
                    raise SimError(f"{where}: values [{int(src.min())}, {int(src.max())}] do not "
                                   f"fit DRAM region '{rname}' ({dst.dtype})")
            if src is not None:
                dst[...] = src
            nbytes = ins.rows * ins.cols * isz
            dram.write_bytes += nbytes
            xfer = -(-nbytes // cfg.dram_bytes_per_cycle)
            return issue + cfg.dram_latency + xfer, {"bytes": nbytes, "xfer_cycles": xfer,
                                                     "region": rname}
        if isinstance(ins, isa.Gemm):
            cyc, stats = self._gemm(ins, sram, where, lname)
            return issue + cyc, stats
        if isinstance(ins, isa.SetMax4):
            self.max4[ins.reg] = ins.value
            return issue + cfg.max4_write_cycles, {}
        if isinstance(ins, (isa.Nop, isa.Finish)):
            return 0, {}
        return issue + vector_unit.execute(ins, sram, cfg, where, lname), {}

    def _execute_cached(self, key, i, ins, sram, dram, lname, st):
        """``_execute`` for a timing-only run, from this machine's cache after the first."""
        hit = self._timing_cache.get(key)
        if hit is None:
            r0, w0 = dict(sram.read_bytes), dict(sram.write_bytes)
            d0 = (dram.read_bytes, dram.write_bytes)
            sram.touched = {}
            dur, args = self._execute(ins, sram, dram, f"instruction {i} ({ins.OP})", lname,
                                      st)
            delta = (tuple((b, v - r0[b]) for b, v in sram.read_bytes.items() if v != r0[b]),
                     tuple((b, v - w0[b]) for b, v in sram.write_bytes.items() if v != w0[b]),
                     dram.read_bytes - d0[0], dram.write_bytes - d0[1],
                     tuple(sram.touched.items()))
            sram.touched = None
            self._timing_cache[key] = (dur, args, delta)
            return dur, args
        dur, args, (rd, wr, dr, dw, hw) = hit
        for b, v in rd:
            sram.read_bytes[b] += v
        for b, v in wr:
            sram.write_bytes[b] += v
        for b, v in hw:
            if v > sram.high_water[b]:
                sram.high_water[b] = v
        dram.read_bytes += dr
        dram.write_bytes += dw
        return dur, args

    def _gemm(self, ins, sram, where, lname):
        cfg = self.cfg
        kh, kw, c = ins.kh, ins.kw, ins.in_c
        x = sram.span(ins.inp_buf, ins.inp_addr, ins.in_h * ins.in_w * c, where)
        if ins.w_layout == "kn":
            if kh != 1 or kw != 1:
                raise SimError(f"{where}: w_layout 'kn' needs a 1x1 kernel")
            w = sram.span(ins.w_buf, ins.w_addr, c * ins.n, where)
            if w is not None:
                w = w.reshape(c, ins.n).T.reshape(ins.n, 1, 1, c)
        else:
            w = sram.span(ins.w_buf, ins.w_addr, ins.n * kh * kw * c, where)
            if w is not None:
                w = w.reshape(ins.n, kh, kw, c)
        values = x is not None
        if values:
            x = x.reshape(1, ins.in_h, ins.in_w, c).astype(np.int64)
            w = w.astype(np.int64)
        g_size = ins.group_size
        n4 = 0
        if ins.max4_reg >= 0:
            n4 = min(max(int(self.max4[ins.max4_reg]) - ins.ch_offset, 0), c)
            if n4 and ins.ch_offset % g_size:
                raise SimError(f"{where}: ch_offset {ins.ch_offset} is not a multiple of the "
                               f"group size {g_size}")
            if n4 % g_size and n4 != c:
                raise SimError(f"{where}: max4[{ins.max4_reg}] = {self.max4[ins.max4_reg]} "
                               f"puts a group boundary inside this tile's channels "
                               f"(n4 = {n4}, group size {g_size}, {c} channels)")
        bounds = group_bounds(n4, c, g_size)
        ng = len(bounds)
        if ng and ins.xs_addr < 0:
            raise SimError(f"{where}: 4-bit folds need an activation shift table (xs_addr)")
        xs = sram.span("param", ins.xs_addr, ng, where) if ng else np.zeros(0, np.int64)
        if ins.dynamic:
            xs = shifts_from_masks(xs, ins.x_signed, "naive" if ins.naive else "effective")
        if np.any(xs < 0) or np.any(xs > 8):
            raise SimError(f"{where}: activation shift table holds values outside [0, 8]")
        extraction = "naive" if ins.naive else "effective"
        if ins.weight_shift == "group":
            if ng and ins.ws_addr < 0:
                raise SimError(f"{where}: 4-bit folds need a weight shift table (ws_addr)")
            ew = (sram.span("param", ins.ws_addr, ng * ins.n, where).reshape(ng, ins.n).T
                  if ng else np.zeros((ins.n, 0), np.int64))
            if np.any(ew < 0) or np.any(ew > 8):
                raise SimError(f"{where}: weight shift table holds values outside [0, 8]")
        elif values:
            ew = pe_weight_shift(w[..., :n4], extraction)
        if not values:  # timing only: the same fold plan, cycles and statistics
            return self._gemm_timing(ins, sram, n4, where)
        acc, cycles, gst, oh, ow = conv_core(
            x, w, n4, bounds, xs[None, :].astype(np.int64), np.asarray(ew, np.int64),
            cfg=cfg, mode=self.mode, timing=cfg.timing, weight_shift=ins.weight_shift,
            x_signed=ins.x_signed, extraction=extraction, group_size=g_size,
            stride=(ins.stride, ins.stride), dilation=(ins.dilation, ins.dilation))
        m = oh * ow
        dst = sram.block("acc", ins.acc_addr, m, ins.n, ins.acc_stride, where, write=True)
        if ins.accumulate:
            sram.read_bytes["acc"] += m * ins.n * 4
            acc = acc + dst
        check_int32(acc, lname or where)
        dst[...] = acc
        gst["n4"] = n4
        return cycles, gst

    def _gemm_timing(self, ins, sram, n4, where):
        cfg = self.cfg
        d = ins.dilation
        oh = (ins.in_h - d * (ins.kh - 1) - 1) // ins.stride + 1
        ow = (ins.in_w - d * (ins.kw - 1) - 1) // ins.stride + 1
        if oh <= 0 or ow <= 0:
            raise SimError(f"run_conv2d: kernel {ins.kh}x{ins.kw} does not fit the padded "
                           f"{ins.in_h}x{ins.in_w} input")
        m = oh * ow
        counts = fold_counts(ins.in_c, n4, group_size=ins.group_size, rows=cfg.rows,
                             kpos=ins.kh * ins.kw)
        cycles = array_cycles(counts.n_folds, m, ins.n, cfg, cfg.timing)
        gst = fold_stats(counts, m, ins.n, cycles, cfg, cfg.timing,
                         ins.kh * ins.kw * ins.in_c, self.mode)
        sram.block("acc", ins.acc_addr, m, ins.n, ins.acc_stride, where, write=True)
        if ins.accumulate:
            sram.read_bytes["acc"] += m * ins.n * 4
        gst["n4"] = n4
        return cycles, gst


class _Stats:
    """Cycle and traffic accounting of one run."""

    def __init__(self, cfg, prog):
        self.cfg = cfg
        self.prog = prog
        self.by_op = {}
        self.by_queue = {q: {"busy": 0, "stall_token": 0, "stall_dram": 0, "count": 0}
                         for q in isa.QUEUES}
        self.layers = {}
        self.pe_busy = 0
        self.gemm = {"folds": 0, "folds4": 0, "folds8": 0, "macs": 0, "array_cycles": 0}

    def record(self, ins, q, q_free, tok, start, end, args):
        dur = end - start
        d = self.by_op.get(ins.OP)
        if d is None:
            d = self.by_op[ins.OP] = {"count": 0, "cycles": 0}
        d["count"] += 1
        d["cycles"] += dur
        bq = self.by_queue[q]
        bq["busy"] += dur
        bq["count"] += 1
        if tok > q_free:
            bq["stall_token"] += tok - q_free
            q_free = tok
        if start > q_free:
            bq["stall_dram"] += start - q_free
        if ins.layer >= 0:
            name = self.prog.layers[ins.layer]
            ly = self.layers.get(name)
            if ly is None:
                ly = self.layers[name] = {"name": name, "start": start, "end": end,
                                          "load": 0, "compute": 0, "vector": 0, "store": 0,
                                          "folds": 0, "folds4": 0, "macs": 0}
            if start < ly["start"]:
                ly["start"] = start
            if end > ly["end"]:
                ly["end"] = end
            ly[q] += dur
            if args:
                for k in ("folds", "folds4", "macs"):
                    ly[k] += args.get(k, 0)
        if isinstance(ins, isa.Gemm):
            for k in ("folds", "folds4", "folds8", "macs"):
                self.gemm[k] += args[k]
            self.gemm["array_cycles"] += end - start - self.cfg.instr_issue_cycles
            self.pe_busy += args["utilization"] * args["pe_cycles"]

    def layer_list(self):
        out = []
        for ly in sorted(self.layers.values(), key=lambda d: d["start"]):
            d = dict(ly)
            d["cycles"] = d["end"] - d["start"]
            out.append(d)
        return out

    def finish(self, total, sram, dram, leftover):
        R, C = self.cfg.rows, self.cfg.cols
        return {
            "total_cycles": int(total),
            "by_op": self.by_op,
            "by_queue": self.by_queue,
            "gemm": dict(self.gemm),
            "array_utilization": self.pe_busy / (total * R * C) if total else 0.0,
            "sram_read_bytes": dict(sram.read_bytes),
            "sram_write_bytes": dict(sram.write_bytes),
            "sram_high_water_bytes": {b: n * WIDTH[b] for b, n in sram.high_water.items()},
            "dram_read_bytes": dram.read_bytes,
            "dram_write_bytes": dram.write_bytes,
            "unconsumed_tokens": leftover,
        }


def simulate(program: Program, inputs=None, ratio=None, *, config: NPUConfig | None = None,
             mode: str = "fast", max4=None, values: bool = True) -> SimResult:
    """Run ``program`` once on a fresh machine, with the max4 registers set for ``ratio``
    (one of the program's tabulated ratios; another raises ``RatioError`` listing them) or
    to ``max4`` (a list), or all 0 (8-bit) if neither.

    ``inputs``: the model's float input as the model takes it (e.g. NCHW; encoded here), or
    integer codes in the program's input layout (``compiler.encode_input``); a dict maps
    input region names to either. Anything else raises ``InputError`` or ``ProgramError``.
    ``result.switch_cycles`` is what writing those registers cost (not in ``cycles``).
    ``values=False``: timing only (``Machine.run``); ``inputs`` may be None."""
    m = Machine(program, config, mode=mode)
    if ratio is not None and max4 is not None:
        raise ProgramError("simulate: give ratio or max4, not both")
    if ratio is not None:
        m.set_ratio(ratio)
    elif max4 is not None:
        m.set_max4(max4)
    return m.run(inputs, values=values)
