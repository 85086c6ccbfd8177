"""Train the shipped weights on the lent H200: resumable calls under a wall-clock budget.

One device command may run 10 minutes, so the run lives in a folder on that machine
(``/root/beatgan-run``; it survives between calls only while the machine stays warm) and each
call trains until its budget is spent, then exports, reports and sends weight parts back.
``train_h200.sh`` wraps these subcommands with the wheel install; see weights/README.md for the
order of calls.

    train   write the demo pack (once), load + augment it as ``beatgan train`` does, then call
            ``train()`` in chunks whose sizes come from the measured rate, until ``--budget-s``
            (or ``--until-train-s`` of training in all, or ``--max-iterations``) is reached
    finish  re-export if the last chunk was cut short, write summary.json, history.csv and
            losses.png to ``--out``, split the export into parts and send the first of them
    send    the next weight parts that fit into ``--out`` (a later call)

Config flags map onto ``beatgan.config.Config`` fields; every call of one run must pass the same
ones (a run folder refuses another config). Defaults: the seed preset, d = 64, batch 64, float32.

Rehearsal of all four calls on a CPU with d = 2 (about 1.5 minutes): ``bash bench/h200/dry_run.sh``.
"""

from __future__ import annotations

import argparse
import importlib
import json
import math
import os
import shutil
import sys
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
REPO = HERE.parent.parent
sys.path.insert(0, str(HERE))
sys.path.insert(1, str(REPO))

import parts  # noqa: E402  (bench/h200/parts.py, standard library only)

STATE_DIR = "h200"          # run_dir/h200: this driver's own records
CALLS_JSON = "calls.json"   # one entry per train call: budget, steps, rate, chunks
PACK_DIR = "pack"           # run_dir/pack: the demo pack's WAVs
PARTS_DIR = "parts"         # run_dir/parts: the export split for sending, with sent.json
MIN_CHUNK_S = 5.0           # shortest chunk worth its restore, trace, checkpoint and export


# --- arguments ---------------------------------------------------------------------------------
def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("command", choices=("train", "finish", "send"))
    p.add_argument("--run-dir", type=Path, default=Path(os.environ.get("BEATGAN_RUN_DIR",
                                                                       "/root/beatgan-run")))
    p.add_argument("--out", type=Path, default=Path(os.environ["OUT"]) if "OUT" in os.environ else None,
                   help="where figures and parts go (the device tool's $OUT)")
    # Config fields (the rest keep the seed preset's values).
    p.add_argument("--model-dim", type=int, default=64)
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--mixed-precision", action="store_true")
    p.add_argument("--seed", type=int, default=0)
    # data
    p.add_argument("--loops", type=int, default=None, help="demo loops to write (default: the pack's 434)")
    # schedule
    p.add_argument("--budget-s", type=float, default=520.0,
                   help="train: seconds this process may take, data preparation included")
    p.add_argument("--until-train-s", type=float, default=None,
                   help="train: stop once the run holds this many training seconds in all")
    p.add_argument("--max-iterations", type=int, default=None, help="train: never go past this step")
    p.add_argument("--probe-iterations", type=int, default=100,
                   help="train: size of the first chunk of a call, which measures the rate")
    p.add_argument("--chunk-max-s", type=float, default=300.0,
                   help="train: longest chunk; a chunk ends with a checkpoint and an export")
    p.add_argument("--reserve-s", type=float, default=15.0,
                   help="train: seconds kept free at the end of the budget")
    p.add_argument("--checkpoint-minutes", type=float, default=2.0)
    # sending
    p.add_argument("--part-bytes", type=int, default=parts.PART_BYTES)
    p.add_argument("--call-max-bytes", type=int, default=parts.MAX_BYTES_PER_CALL,
                   help="what one call may bring back (smaller in a dry run, to need several)")
    p.add_argument("--no-send", action="store_true",
                   help="finish: figures only, no weight parts (a call that more training follows)")
    return p.parse_args(argv)


def make_config(args):
    from beatgan.config import preset

    return preset("seed", model_dim=args.model_dim, batch_size=args.batch_size,
                  mixed_precision=args.mixed_precision, seed=args.seed)


def training_module():
    """``beatgan.training`` (``beatgan.train`` before the module was renamed)."""
    try:
        return importlib.import_module("beatgan.training")
    except ModuleNotFoundError:
        return importlib.import_module("beatgan.train")


def log(message: str) -> None:
    print(f"[h200 {time.strftime('%H:%M:%S')}] {message}", flush=True)


# --- JAX -----------------------------------------------------------------------------------------
def enable_compilation_cache(run_dir: Path) -> None:
    """Keep XLA executables in the run folder: each chunk and each later call then skips the
    compile (the steps are traced again, but the same program is found in the cache)."""
    import jax

    for name, value in (("jax_compilation_cache_dir", str(run_dir / "jax-cache")),
                        ("jax_persistent_cache_min_compile_time_secs", 0.0),
                        ("jax_persistent_cache_min_entry_size_bytes", 0)):
        try:
            jax.config.update(name, value)
        except (AttributeError, KeyError, ValueError) as err:  # an older or newer JAX
            log(f"compilation cache option {name} not set: {err}")


def device_description() -> str:
    import jax

    devices = jax.devices()
    return f"{len(devices)} x {devices[0].device_kind} ({devices[0].platform})"


# --- data ---------------------------------------------------------------------------------------
def prepare_data(args, config):
    """The demo pack (written once per run folder), loaded and augmented as ``beatgan train`` does."""
    import numpy as np

    from beatgan.data import find_audio_files, load_loops
    from beatgan.synth import PACK_SIZE, write_demo_pack

    n = args.loops or PACK_SIZE
    pack = args.run_dir / PACK_DIR
    if (len(find_audio_files(pack)) if pack.is_dir() else 0) != n:
        tick = time.perf_counter()
        partial = pack.with_name(PACK_DIR + ".partial")
        shutil.rmtree(partial, ignore_errors=True)
        write_demo_pack(partial, n=n, seed=0)
        shutil.rmtree(pack, ignore_errors=True)
        partial.rename(pack)
        log(f"wrote the demo pack: {n} loops in {time.perf_counter() - tick:.1f} s")
    tick = time.perf_counter()
    loops = load_loops(pack, config)
    # As beatgan train and the notebook: noise over each loop's real audio, padding kept silent.
    data = loops.augment(rng=np.random.default_rng(config.seed))
    log(f"{len(loops.paths)} loops x {config.noise_copies} noisy copies = {len(data)} segments "
        f"{data.shape[1:]} in {time.perf_counter() - tick:.1f} s")
    return data


# --- the schedule -------------------------------------------------------------------------------
def chunk_rate(history: list[dict], *, after_step: int) -> float | None:
    """Iterations per second over this chunk's history rows, the first interval (compile) left out."""
    rows = [r for r in history if r["step"] > after_step]
    if len(rows) < 2 or rows[-1]["wall_s"] <= rows[0]["wall_s"]:
        return None
    return (rows[-1]["step"] - rows[0]["step"]) / (rows[-1]["wall_s"] - rows[0]["wall_s"])


def next_target(*, step: int, rate: float | None, seconds_left: float, overhead_s: float,
                trained_s: float, args) -> int:
    """The iteration the next chunk trains to (``step`` when there is no time for one)."""
    if rate is None:
        target = step + args.probe_iterations
    else:
        usable = min(seconds_left - overhead_s, args.chunk_max_s)
        if args.until_train_s is not None:
            usable = min(usable, args.until_train_s - trained_s)
        if usable < max(MIN_CHUNK_S, 0.5 * overhead_s):  # not worth a restore and a save
            return step
        target = step + max(1, math.floor(usable * rate))
    if args.max_iterations is not None:
        target = min(target, args.max_iterations)
    return max(target, step)


def cmd_train(args) -> int:
    started = time.perf_counter()
    deadline = started + args.budget_s - args.reserve_s
    os.environ.setdefault("KERAS_BACKEND", "jax")
    import keras

    training = training_module()
    config = make_config(args)
    run_dir = args.run_dir
    state_dir = run_dir / STATE_DIR
    fresh = not (run_dir / "checkpoints").is_dir()
    state_dir.mkdir(parents=True, exist_ok=True)
    if keras.backend.backend() == "jax":
        enable_compilation_cache(run_dir)
        device = device_description()
    else:
        device = keras.backend.backend()
    history = training.load_history(run_dir)
    start_step = int(history[-1]["step"]) if history else 0
    log(("FRESH RUN in " if fresh else f"RESUMING from iteration {start_step} in ") +
        f"{run_dir}; {device}; keras {keras.__version__} ({keras.backend.backend()}); "
        f"d={config.model_dim} batch={config.batch_size} mixed_precision={config.mixed_precision}")
    data = prepare_data(args, config)

    calls = _read_json(state_dir / CALLS_JSON, [])
    call = {"call": len(calls) + 1, "fresh": fresh, "device": device, "budget_s": args.budget_s,
            "from_step": start_step, "to_step": start_step, "chunks": [],
            "keras": keras.__version__, "backend": keras.backend.backend()}
    if keras.backend.backend() == "jax":
        import jax
        call["jax"] = jax.__version__
    calls.append(call)

    step, rate, overhead_s = start_step, None, 0.0
    trained_s = float(history[-1]["wall_s"]) if history else 0.0
    while True:
        target = next_target(step=step, rate=rate, seconds_left=deadline - time.perf_counter(),
                             overhead_s=overhead_s, trained_s=trained_s, args=args)
        if target <= step:
            break
        probing = rate is None
        try:
            result = training.train(
                data, config, run_dir=run_dir, iterations=target,
                checkpoint_every=10**9, checkpoint_minutes=args.checkpoint_minutes, keep=2,
                log_every=10 if probing else 50, preview_every=5000, tensorboard=True,
                export=True, progress=False)
        except training.NonFiniteLossError as err:
            call["error"] = str(err)
            _write_json(state_dir / CALLS_JSON, calls)
            log(f"STOPPED: {err}")
            return 3
        measured = chunk_rate(result.history, after_step=step)
        done = result.step - step
        if measured is not None:
            rate = measured
            overhead_s = max(0.0, result.seconds - done / rate)
        else:  # too few history rows in the chunk: its whole time, compile and all (slower)
            rate = max(done, 1) / max(result.seconds, 1e-6)
        trained_s = float(result.history[-1]["wall_s"])
        chunk = {"to_step": result.step, "seconds": round(result.seconds, 2),
                 "iterations_per_s": round(rate, 4),
                 "d_updates_per_s": round(rate * config.d_updates_per_g, 2),
                 "overhead_s": round(overhead_s, 2)}
        call["chunks"].append(chunk)
        call["to_step"] = step = result.step
        call["exported_step"] = result.step
        call["trained_s"] = trained_s
        _write_json(state_dir / CALLS_JSON, calls)
        log(f"chunk to iteration {step} ({step * config.d_updates_per_g} D updates): "
            f"{result.seconds:.1f} s, {chunk['d_updates_per_s']} D updates/s, "
            f"overhead {overhead_s:.1f} s; {trained_s / 60:.1f} training minutes in all; "
            f"d_loss {result.history[-1]['d_loss']:.4g} g_loss {result.history[-1]['g_loss']:.4g}")
    call["seconds"] = round(time.perf_counter() - started, 1)
    _write_json(state_dir / CALLS_JSON, calls)
    log(f"call {call['call']} done: iterations {call['from_step']} -> {call['to_step']} "
        f"in {call['seconds']} s")
    return 0


# --- finishing a call ---------------------------------------------------------------------------
def export_is_stale(run_dir: Path) -> tuple[bool, int]:
    """(is the newest checkpoint past the exported weights?, newest checkpoint's step)."""
    from beatgan import checkpoint as ckpt

    found = ckpt.list_checkpoints(run_dir / ckpt.CHECKPOINT_DIR)
    newest = found[-1][0] if found else 0
    calls = _read_json(run_dir / STATE_DIR / CALLS_JSON, [])
    exported = max((c.get("exported_step", 0) for c in calls), default=0)
    have_files = (run_dir / "export" / "generator.weights.h5").is_file()
    return (newest > exported or not have_files) and newest > 0, newest


def reexport(args, config, step: int) -> None:
    """Export the newest checkpoint (a train call killed mid-chunk exported an older one).

    ``train`` restores the checkpoint and, with nothing left to train, only exports; its data
    argument is a placeholder batch of zeros (no step runs on it).
    """
    import numpy as np

    training = training_module()
    placeholder = np.zeros((config.batch_size, config.slice_len, config.channels), np.float32)
    training.train(placeholder, config, run_dir=args.run_dir, iterations=step, tensorboard=False,
                   export=True, progress=False)
    calls = _read_json(args.run_dir / STATE_DIR / CALLS_JSON, [])
    if calls:
        calls[-1]["exported_step"] = step
        _write_json(args.run_dir / STATE_DIR / CALLS_JSON, calls)
    log(f"re-exported the weights of iteration {step} (the last chunk was cut short)")


def write_report(run_dir: Path, out: Path, config) -> dict[str, Any]:
    """summary.json, history.csv and losses.png in ``out``; returns the summary."""
    history = _read_json(run_dir / "history.json", [])
    calls = _read_json(run_dir / STATE_DIR / CALLS_JSON, [])
    out.mkdir(parents=True, exist_ok=True)
    if (run_dir / "history.csv").is_file():
        shutil.copyfile(run_dir / "history.csv", out / "history.csv")
    last = history[-1] if history else {}
    rates = [c["d_updates_per_s"] for call in calls for c in call["chunks"][1:]] or \
            [c["d_updates_per_s"] for call in calls for c in call["chunks"]]
    summary = {
        "d_updates": int(last.get("d_updates", 0)),
        "iterations": int(last.get("step", 0)),
        "training_s": round(float(last.get("wall_s", 0.0)), 1),
        "d_updates_per_s_overall": (round(last["d_updates"] / last["wall_s"], 2)
                                    if last.get("wall_s") else None),
        "d_updates_per_s_steady": round(float(sorted(rates)[len(rates) // 2]), 2) if rates else None,
        "last_losses": {k: last[k] for k in ("d_loss", "g_loss", "gp", "wasserstein") if k in last},
        "calls": calls,
        "config": config.to_dict(),
    }
    _write_json(out / "summary.json", summary)
    if history:
        write_loss_plot(history, out / "losses.png", summary=summary)
    return summary


def write_loss_plot(history: list[dict], path: Path, *, summary: dict[str, Any]) -> None:
    os.environ.setdefault("MPLBACKEND", "Agg")
    from beatgan.plots import loss_curves

    columns = {k: [row[k] for row in history] for k in history[0]}
    columns["training minutes"] = [row["wall_s"] / 60.0 for row in history]
    fig = loss_curves(columns, x_key="training minutes")
    device = summary["calls"][-1]["device"] if summary["calls"] else "?"
    fig.suptitle(f"WGAN-GP on {device}: {summary['d_updates']:,} D updates in "
                 f"{summary['training_s'] / 60:.1f} min "
                 f"({summary['d_updates_per_s_steady']} D updates/s steady)", fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def split_export(run_dir: Path, *, part_bytes: int) -> dict[str, Any]:
    """Split config, history and both weight files into run_dir/parts, unless already split.

    Small files first, then the generator (what generation needs), then the discriminator
    (what resuming needs), so the most useful parts come back first.
    """
    export = run_dir / "export"
    files = [export / "config.json", run_dir / "history.json",
             export / "generator.weights.h5", export / "discriminator.weights.h5"]
    missing = [str(f) for f in files if not f.is_file()]
    if missing:
        raise FileNotFoundError(f"nothing to send: {missing} missing (has a train call finished "
                                f"a chunk on this machine? A fresh machine holds no run)")
    parts_dir = run_dir / PARTS_DIR
    sums = {f.name: parts.sha256_of(f) for f in files}
    try:
        manifest = parts.load_manifest(parts_dir)
        if ({f["name"]: f["sha256"] for f in manifest["files"]} == sums
                and manifest["part_bytes"] == part_bytes):
            return manifest
    except parts.PartError:
        pass
    shutil.rmtree(parts_dir, ignore_errors=True)
    history = _read_json(run_dir / "history.json", [])
    source = {"iterations": history[-1]["step"] if history else 0,
              "d_updates": history[-1]["d_updates"] if history else 0,
              "written": time.strftime("%Y-%m-%dT%H:%M:%S%z")}
    manifest = parts.split_files(files, parts_dir, part_bytes=part_bytes, source=source)
    log("split for sending: " + ", ".join(f"{f['name']} {f['bytes'] / 2**20:.1f} MiB "
                                          f"in {len(f['parts'])}" for f in manifest["files"]))
    return manifest


def send(args) -> int:
    split_export(args.run_dir, part_bytes=args.part_bytes)
    reserve = parts.RESERVE_BYTES * args.call_max_bytes // parts.MAX_BYTES_PER_CALL
    chosen = parts.send_next(args.run_dir / PARTS_DIR, args.out, max_bytes=args.call_max_bytes,
                             reserve_bytes=reserve)
    left = parts.unsent(args.run_dir / PARTS_DIR)
    log(f"sent {len(chosen)} part(s) to {args.out}: {' '.join(chosen) or '-'}")
    if left:
        log(f"{len(left)} part(s) left ({' '.join(left)}): the next call must run "
            f"'bash bench/h200/train_h200.sh send'")
    else:
        log("ALL PARTS SENT: join them here with bench/h200/join_parts.py")
    return 0


def cmd_finish(args) -> int:
    config = make_config(args)
    stale, newest = export_is_stale(args.run_dir)
    if stale:
        os.environ.setdefault("KERAS_BACKEND", "jax")
        reexport(args, config, newest)
    summary = write_report(args.run_dir, args.out, config)
    log(f"D updates done: {summary['d_updates']:,}; training {summary['training_s'] / 60:.1f} min; "
        f"D updates/s: {summary['d_updates_per_s_steady']} steady, "
        f"{summary['d_updates_per_s_overall']} overall; last losses {summary['last_losses']}")
    if args.no_send:
        log("--no-send: no weight parts this call (the next call trains on)")
        return 0
    return send(args)


# --- helpers ------------------------------------------------------------------------------------
def _read_json(path: Path, default: Any) -> Any:
    return json.loads(path.read_text()) if path.is_file() else default


def _write_json(path: Path, value: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(value, indent=1) + "\n")
    os.replace(tmp, path)


def main(argv=None) -> int:
    args = parse_args(argv)
    if args.command != "train" and args.out is None:
        raise SystemExit(f"{args.command}: --out (or $OUT) is required")
    return {"train": cmd_train, "finish": cmd_finish, "send": send}[args.command](args)


if __name__ == "__main__":
    sys.exit(main())
