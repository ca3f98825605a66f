#!/usr/bin/env python3
"""The integrations' own cost per logged step: 10 float metrics a step, written as one row.

    python benches/integrations_bench.py [--steps 20000] [--repeat 5] [--dir DIR]

Measured in one run, one after another, each the median of the repeats, all into real files:

* baseline: expman's own call, ``exp.upd_row(step=i, **10 floats)`` + ``exp.save_row()``.
* lightning: ``ExpmanLogger.log_metrics(10 floats, step=i)`` followed by ``logger.save()``,
  as Lightning's logger connector calls them (the row of step i is written when step i+1
  arrives).
* transformers: ``ExpmanCallback.on_log`` with a real ``TrainerState`` (``global_step`` = i).
* keras: ``ExpmanCallback.on_epoch_end(i, logs)``.
* wandb: ``expman.wandb.log(10 floats)`` (``_step`` auto-incremented).

The overhead reported is each one's time per step minus the baseline's; the goal (issue 15)
is Lightning's ``log_metrics`` at most 10 us above expman's own call. A framework that is not
installed is reported as skipped.
"""

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path

# The installed package (or PYTHONPATH=bindings/python with EXPMAN_LIBRARY, for development).
os.environ.setdefault("KERAS_BACKEND", "torch")

import expman  # noqa: E402

NAMES = [f"m{i}" for i in range(10)]


def rows(n):
    # Distinct floats per step, built before timing (the row build is the caller's cost).
    return [{k: (i * 10 + j) * 0.001 for j, k in enumerate(NAMES)} for i in range(n)]


class Variants:
    """The variants, timed round-robin (A B C A B C ...) so that a machine slowing down or
    speeding up part-way weighs on all of them alike; each repeat on a fresh experiment."""

    def __init__(self):
        self.items = []

    def add(self, name, setup, body):
        self.items.append((name, setup, body))

    def run(self, data, repeat):
        times = {name: [] for name, _, _ in self.items}
        for _ in range(repeat):
            for name, setup, body in self.items:
                obj, done = setup()
                t0 = time.perf_counter()
                for i, row in enumerate(data):
                    body(obj, i, row)
                times[name].append((time.perf_counter() - t0) / len(data))
                done(obj)
        return {name: statistics.median(t) for name, t in times.items()}


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=20000)
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--dir", default=None, help="where the experiments go (default: a temp dir)")
    args = ap.parse_args()
    base = Path(args.dir or tempfile.mkdtemp(prefix="expman-ibench-"))
    data = rows(args.steps)
    results = {}

    def new_exp(name):
        return expman.Experiment(name=name, command="bench", base_dir=base, capture_output=False)

    def close(exp):
        exp.set_finished()
        exp.close()

    def baseline(exp, i, row):
        exp.upd_row(step=i, **row)
        exp.save_row()

    variants = Variants()
    variants.add("baseline (upd_row+save_row)", lambda: (new_exp("baseline"), close), baseline)

    try:
        from expman.integrations.lightning import ExpmanLogger
    except ImportError as e:
        results["lightning"] = f"skipped ({e.__class__.__name__}: {str(e)[:80]})"
    else:
        def lightning_setup():
            logger = ExpmanLogger(experiment=new_exp("lightning"))
            return logger, lambda lg: (lg.finalize("success"), lg.experiment.close())

        def lightning_step(logger, i, row):
            logger.log_metrics(row, step=i)
            logger.save()

        variants.add("lightning log_metrics+save", lightning_setup, lightning_step)

    try:
        from transformers import TrainerState

        from expman.integrations.transformers import ExpmanCallback as HFCallback
    except ImportError as e:
        results["transformers"] = f"skipped ({e.__class__.__name__}: {str(e)[:80]})"
    else:
        class Args:
            output_dir = str(base / "hf-out")

        def hf_setup():
            cb = HFCallback(experiment=new_exp("transformers"))
            state = TrainerState()
            return (cb, state), lambda o: (o[0].on_train_end(Args, o[1], None),
                                           o[0].experiment.close())

        def hf_step(obj, i, row):
            cb, state = obj
            state.global_step = i
            cb.on_log(Args, state, None, logs=row)

        variants.add("transformers on_log", hf_setup, hf_step)

    try:
        from expman.integrations.keras import ExpmanCallback as KerasCallback
    except ImportError as e:
        results["keras"] = f"skipped ({e.__class__.__name__}: {str(e)[:80]})"
    else:
        def keras_step(cb, i, row):
            cb.on_epoch_end(i, row)

        variants.add("keras on_epoch_end",
                     lambda: (KerasCallback(experiment=new_exp("keras")),
                              lambda cb: close(cb.experiment)),
                     keras_step)

    import expman.wandb as wandb

    def wandb_setup():
        run = wandb.init(project="bench", dir=base, name="wandb")
        return run, lambda r: r.finish()

    variants.add("wandb.log", wandb_setup, lambda run, i, row: run.log(row))
    results.update(variants.run(data, args.repeat))

    base_t = results["baseline (upd_row+save_row)"]
    print(f"library: {expman.library_path}")
    print(f"{args.steps} steps of 10 float metrics, median of {args.repeat}; files in {base}")
    print(f"{'':32} {'us/step':>9} {'overhead us':>12}")
    for name, t in results.items():
        if isinstance(t, str):
            print(f"{name:32} {t}")
        else:
            print(f"{name:32} {t * 1e6:9.2f} {(t - base_t) * 1e6:12.2f}")


if __name__ == "__main__":
    main()
