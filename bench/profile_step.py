"""Profile the JAX training step: where one iteration spends its device time.

Builds the step that ``bench_train.py`` times (same options), compiles it in
``--warmup`` untraced iterations, then runs ``--iterations`` iterations under
``jax.profiler.trace`` (each drawn, run and waited for as ``bench_train.py``
times it, inside a ``TraceAnnotation`` that marks the iteration's window), and
reads the Perfetto trace that JAX writes. Prints, per iteration: wall time,
device busy time (the union of the kernels' intervals, so streams that overlap
are counted once), the busy fraction and the idle rest (host work, launches,
waiting); then the ``--top`` kernels by total time and the totals by category.
``--json`` adds one JSON line with all of it; ``--out DIR`` keeps the trace
for https://ui.perfetto.dev.

    python bench/profile_step.py --backend jax --model-dim 64 --batch-size 64 --mixed-precision

Which events are kernels (``device_events``):
  - with a device process (a ``process_name`` such as ``/device:GPU:0``): the
    complete events of its stream threads (``Stream #...``); derived timelines
    beside them (``XLA Modules``, ``XLA Ops``, ``Steps``) would double-count,
    so they are left out whenever stream threads exist;
  - without one (the CPU backend): the host events whose args carry ``hlo_op``,
    which XLA's CPU runtime sets on each HLO op it runs. That leaves out the
    Python frames (names starting with ``$``), the runtime's bookkeeping
    (``PjitFunction``, ``PjRt...Execute``, ``ThunkExecutor::Execute``,
    ``ThreadpoolListener``) and the zero-length ``end: op`` markers.
All times in the trace are microseconds; the report is in ms and us.
"""

from __future__ import annotations

import argparse
import gzip
import json
import re
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

from bench_train import (_step_name, add_step_arguments, build_steps, config_and_data,
                         draw_iteration, run_and_block, start_backend)

#: Name of the annotation around each profiled iteration (its window in the trace).
ITERATION_MARK = "profile_step_iteration"

#: Kernel and op categories, first match wins, matched case-insensitively against the name.
#: ``conv(?!ert)`` keeps XLA's ``convert`` fusions out of the matrix work.
CATEGORIES = (
    ("matrix", r"conv(?!ert)|cudnn|gemm|xmma|cutlass|sm\d+_|nvjet|triton_gemm|\bdot|matmul|"
               r"wgrad|dgrad|fprop"),
    ("data movement", r"memcpy|memset|copy|transpose|pad|slice|concatenate|gather|scatter"),
    ("reduction", r"reduc"),
    ("fusion", r"fusion"),
)
OTHER = "other"

#: Args keys that may name the HLO op behind a kernel, in the order they are reported.
HLO_KEYS = ("hlo_op", "long_name", "name")


# ---- reading the trace -------------------------------------------------------------------

def find_trace(folder: str | Path) -> Path:
    """The newest ``plugins/profile/<date>/perfetto_trace.json.gz`` under a trace folder."""
    traces = sorted(Path(folder).glob("plugins/profile/*/perfetto_trace.json.gz"),
                    key=lambda path: path.stat().st_mtime)
    if not traces:
        raise FileNotFoundError(f"no plugins/profile/*/perfetto_trace.json.gz under {folder}")
    return traces[-1]


def load_trace(path: str | Path) -> dict:
    """The trace as JSON: ``{"traceEvents": [...], ...}`` (gzip or plain)."""
    opener = gzip.open if str(path).endswith(".gz") else open
    with opener(path, "rt", encoding="utf-8") as file:
        return json.load(file)


def _names(trace: dict) -> tuple[dict, dict]:
    """({pid: process name}, {(pid, tid): thread name}) from the ``ph == "M"`` metadata."""
    processes, threads = {}, {}
    for event in trace["traceEvents"]:
        if event.get("ph") != "M":
            continue
        name = (event.get("args") or {}).get("name")
        if event.get("name") == "process_name":
            processes[event["pid"]] = name
        elif event.get("name") == "thread_name":
            threads[(event["pid"], event.get("tid"))] = name
    return processes, threads


def _complete(trace: dict):
    return (event for event in trace["traceEvents"]
            if event.get("ph") == "X" and "dur" in event and "ts" in event)


def device_events(trace: dict) -> tuple[list[dict], str]:
    """(the kernel or op events by the rule in the module docstring, "device" or "host ops")."""
    processes, threads = _names(trace)
    devices = {pid for pid, name in processes.items() if name and name.startswith("/device:")}
    if devices:
        streams = {key for key, name in threads.items()
                   if key[0] in devices and name and name.startswith("Stream")}
        events = [event for event in _complete(trace) if event["pid"] in devices
                  and (not streams or (event["pid"], event.get("tid")) in streams)]
        return events, "device"
    return [event for event in _complete(trace) if "hlo_op" in (event.get("args") or {})], "host ops"


def iteration_windows(trace: dict, mark: str = ITERATION_MARK) -> list[tuple[float, float]]:
    """[(start, end)] in us of the events named ``mark``, in time order."""
    return sorted((event["ts"], event["ts"] + event["dur"])
                  for event in _complete(trace) if event["name"] == mark)


# ---- summarising -------------------------------------------------------------------------

def busy_time(intervals) -> float:
    """Length of the union of (start, end) intervals: time during which at least one runs."""
    total, reach = 0.0, float("-inf")
    for start, end in sorted(intervals):
        if end > reach:
            total += end - max(start, reach)
            reach = end
    return total


def category(name: str) -> str:
    """The first CATEGORIES entry whose pattern the name matches, else OTHER."""
    for label, pattern in CATEGORIES:
        if re.search(pattern, name, re.IGNORECASE):
            return label
    return OTHER


def _hlo_name(event: dict) -> str | None:
    """The first HLO_KEYS value in the event's args that says more than its name."""
    args = event.get("args") or {}
    return next((str(args[key]) for key in HLO_KEYS
                 if args.get(key) and args[key] != event["name"]), None)


def kind(name: str) -> str:
    """An op or kernel name without its instance number: ``convolution.46`` -> ``convolution``."""
    return re.sub(r"[._]\d+$", "", name)


def _ranked(events: list[dict], key, *, n: int, busy_ms: float) -> list[dict]:
    """Events grouped by ``key(event)``, per-iteration figures, largest total first."""
    groups = defaultdict(lambda: {"count": 0, "total_us": 0.0, "hlo_ops": set()})
    for event in events:
        group = groups[key(event)]
        group["count"] += 1
        group["total_us"] += event["dur"]
        hlo = _hlo_name(event)
        if hlo:
            group["hlo_ops"].add(hlo)
    ranked = sorted(groups.items(), key=lambda item: -item[1]["total_us"])
    return [{"name": name, "category": category(name),
             "count_per_iteration": group["count"] / n,
             "ms_per_iteration": group["total_us"] / 1e3 / n,
             "percent_of_busy": 100 * group["total_us"] / 1e3 / n / busy_ms if busy_ms else 0.0,
             "mean_us": group["total_us"] / group["count"],
             "hlo_ops": sorted(group["hlo_ops"])[:5], "n_hlo_ops": len(group["hlo_ops"])}
            for name, group in ranked]


def summarise(events: list[dict], windows: list[tuple[float, float]], *, top: int = 25) -> dict:
    """Per-iteration figures of the events that start inside the windows (times in ms, us).

    wall: mean window length; busy: union of the events clipped to their window;
    ops: per event name, largest total first (``top`` of them); kinds: the same per name
    without its instance number; categories: op time per CATEGORIES label (op time sums
    durations, so it exceeds busy time where streams overlap).
    """
    if not windows:
        raise ValueError("no iteration windows in the trace")
    per_window = [[] for _ in windows]
    for event in events:
        for i, (start, end) in enumerate(windows):
            if start <= event["ts"] < end:
                per_window[i].append(event)
                break
    n = len(windows)
    iterations = []
    for (start, end), inside in zip(windows, per_window):
        busy = busy_time((event["ts"], min(event["ts"] + event["dur"], end)) for event in inside)
        wall = end - start
        iterations.append({"wall_ms": wall / 1e3, "busy_ms": busy / 1e3,
                           "busy_fraction": busy / wall if wall else 0.0,
                           "idle_ms": (wall - busy) / 1e3})

    inside_all = [event for inside in per_window for event in inside]
    wall_ms = sum(it["wall_ms"] for it in iterations) / n
    busy_ms = sum(it["busy_ms"] for it in iterations) / n
    ops = _ranked(inside_all, lambda event: event["name"], n=n, busy_ms=busy_ms)
    kinds = _ranked(inside_all, lambda event: kind(event["name"]), n=n, busy_ms=busy_ms)
    op_ms = sum(op["ms_per_iteration"] for op in ops)
    categories = defaultdict(float)
    for op in ops:
        categories[op["category"]] += op["ms_per_iteration"]
    return {"iterations": n, "wall_ms_per_iteration": wall_ms, "busy_ms_per_iteration": busy_ms,
            "busy_fraction": busy_ms / wall_ms if wall_ms else 0.0,
            "idle_ms_per_iteration": wall_ms - busy_ms, "op_ms_per_iteration": op_ms,
            "per_iteration": iterations, "n_distinct_ops": len(ops), "ops": ops[:top],
            "kinds": kinds[:top],
            "categories": {label: {"ms_per_iteration": ms,
                                   "percent_of_ops": 100 * ms / op_ms if op_ms else 0.0}
                           for label, ms in sorted(categories.items(), key=lambda kv: -kv[1])}}


def format_report(summary: dict) -> str:
    """The summary as a readable table."""
    lines = [f"{summary['iterations']} iterations, kernels from {summary['source']}: "
             f"wall {summary['wall_ms_per_iteration']:.2f} ms, busy "
             f"{summary['busy_ms_per_iteration']:.2f} ms ({100 * summary['busy_fraction']:.1f} %), "
             f"idle {summary['idle_ms_per_iteration']:.2f} ms per iteration; "
             f"op time {summary['op_ms_per_iteration']:.2f} ms, {summary['n_distinct_ops']} "
             "distinct ops"]
    for i, it in enumerate(summary["per_iteration"]):
        lines.append(f"  iteration {i}: wall {it['wall_ms']:.2f} ms, busy {it['busy_ms']:.2f} ms "
                     f"({100 * it['busy_fraction']:.1f} %), idle {it['idle_ms']:.2f} ms")
    for title, rows in (("kernels", summary["ops"]), ("kinds (instance numbers dropped)",
                                                      summary["kinds"])):
        lines += ["", f"top {len(rows)} {title}:",
                  f"{'count/it':>8} {'ms/it':>9} {'% busy':>7} {'mean us':>9}  "
                  f"{'category':<14} name  [HLO ops]"]
        lines += [_row(op) for op in rows]
    lines += ["", f"{'category':<14} {'ms/it':>9} {'% of op time':>12}"]
    for label, figures in summary["categories"].items():
        lines.append(f"{label:<14} {figures['ms_per_iteration']:>9.3f} "
                     f"{figures['percent_of_ops']:>12.1f}")
    return "\n".join(lines)


def _row(op: dict) -> str:
    hlo = ", ".join(op["hlo_ops"]) + (" ..." if op["n_hlo_ops"] > len(op["hlo_ops"]) else "")
    return (f"{op['count_per_iteration']:>8.1f} {op['ms_per_iteration']:>9.3f} "
            f"{op['percent_of_busy']:>7.1f} {op['mean_us']:>9.1f}  "
            f"{op['category']:<14} {op['name'][:90]}" + (f"  [{hlo}]" if hlo else ""))


def rounded(value, digits: int = 4):
    """``value`` with every float rounded to ``digits`` decimals (for the JSON line)."""
    if isinstance(value, float):
        return round(value, digits)
    if isinstance(value, dict):
        return {key: rounded(item, digits) for key, item in value.items()}
    if isinstance(value, list):
        return [rounded(item, digits) for item in value]
    return value


# ---- running the step --------------------------------------------------------------------

def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    add_step_arguments(parser, backends=("jax",))
    parser.add_argument("--iterations", type=int, default=3, help="profiled iterations")
    parser.add_argument("--top", type=int, default=25, help="kernels listed")
    parser.add_argument("--out", default=None, help="keep the trace in this folder")
    parser.add_argument("--json", action="store_true", help="also print one JSON line")
    return parser.parse_args(argv)


def profile(steps, sampler, config, *, iterations: int, warmup: int, folder: str) -> Path:
    """Warm up untraced, then trace ``iterations`` marked iterations; returns the trace path."""
    import jax

    for _ in range(warmup):
        run_and_block(steps, draw_iteration(sampler, config))
    with jax.profiler.trace(folder, create_perfetto_trace=True):
        for _ in range(iterations):
            draws = draw_iteration(sampler, config)
            with jax.profiler.TraceAnnotation(ITERATION_MARK):
                run_and_block(steps, draws)
    return find_trace(folder)


def main(argv=None) -> dict:
    args = parse_args(argv)
    if args.iterations < 1:
        raise SystemExit("--iterations must be at least 1")
    start_backend(args)
    import jax

    config, data = config_and_data(args)
    steps, _, _, sampler = build_steps(args, config, data, fused=not args.reference_only)
    with tempfile.TemporaryDirectory() as scratch:
        folder = args.out or scratch
        start = time.perf_counter()
        trace_path = profile(steps, sampler, config, iterations=args.iterations,
                             warmup=args.warmup, folder=folder)
        profiled_s = time.perf_counter() - start
        trace = load_trace(trace_path)
    events, source = device_events(trace)
    device = jax.devices()[0]
    if source != "device" and device.platform != "cpu":
        print(f"warning: no device timeline in the trace on {device.platform}; "
              "the host's op events stand in (is the GPU tracer, CUPTI, installed?)",
              file=sys.stderr)
    summary = {"backend": "jax", "device": f"{device.platform}:{device.device_kind}",
               "step": _step_name(args, steps),
               "precision": "mixed_bfloat16" if config.mixed_precision else "float32",
               "model_dim": config.model_dim, "batch": config.batch_size,
               "d_updates_per_iteration": config.d_updates_per_g, "source": source,
               "trace": str(trace_path) if args.out else None,
               "warmup_and_profile_s": round(profiled_s, 1)}
    summary.update(summarise(events, iteration_windows(trace), top=args.top))
    print(format_report(summary))
    if args.out:
        print(f"trace kept: {trace_path} (open it in https://ui.perfetto.dev)")
    if args.json:
        print(json.dumps(rounded(summary)))
    sys.stdout.flush()
    return summary


if __name__ == "__main__":
    main()
