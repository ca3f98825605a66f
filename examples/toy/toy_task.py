#!/usr/bin/env python3
"""A toy job for the scheduler demos: it "works" for --duration seconds, printing a progress
line and appending a row (step, elapsed_s, fraction) to metrics/progress.csv as it goes.

    python3 toy_task.py --duration 150             # a progress line every 15 s
    python3 toy_task.py --duration 270 --jitter    # every 15-30 s, duration varies by +-10%
    python3 toy_task.py --duration 3 --fail        # stops half way with exit code 1

Launched by `EXP run`, `Experiment(...)` attaches to the scheduler's run (the scheduler sets
EXPMAN_EXPERIMENT_DIR and EXPMAN_RUN_ID) and the scheduler records how it ended. Run by hand,
it creates its own experiment under --base-dir.

The interval between progress lines is 15 s, or with --jitter a random 15 to 30 s. Short runs
scale it down to min(15, duration / 5), so a 3-second test job still reports about five times.

EXPMAN_TOY_TIME_SCALE=0.01 multiplies every duration by 0.01: the test suite runs the long demo
(examples/toy/long_running_config.toml) exactly as shipped, in seconds instead of minutes.
"""
import argparse
import os
import random
import sys
import time


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--duration", type=float, default=150.0, help="seconds of work")
    p.add_argument("--jitter", action="store_true",
                   help="random progress interval (1-2x) and duration (+-10%%)")
    p.add_argument("--fail", action="store_true", help="exit with code 1 half way through")
    p.add_argument("--seed", type=int, default=None, help="seed for --jitter")
    p.add_argument("--name", default="toy_task", help="experiment name when run by hand")
    p.add_argument("--base-dir", default="experiments", help="base directory when run by hand")
    args = p.parse_args(argv)
    if args.duration <= 0:
        p.error("--duration must be positive")
    return args


def main(argv=None):
    args = parse_args(argv)
    from expman import Experiment

    rng = random.Random(args.seed)
    scale = float(os.environ.get("EXPMAN_TOY_TIME_SCALE", "1"))
    if not scale > 0:
        sys.exit(f"EXPMAN_TOY_TIME_SCALE={scale} must be a positive number")
    duration = args.duration * scale * (rng.uniform(0.9, 1.1) if args.jitter else 1.0)
    base_interval = min(15.0, duration / 5)
    stop_at = duration / 2 if args.fail else duration

    exp = Experiment(args.name, " ".join(sys.argv), args.base_dir, tags=["toy"],
                     description=f"toy task, {duration:.1f} s")
    progress = exp.table("progress")
    print(f"[toy] {exp.name} {exp.run_id}: {duration:.1f} s of work, progress every "
          f"{base_interval:.1f} s{' (jittered)' if args.jitter else ''}", flush=True)

    start = time.monotonic()
    step = 0
    while True:
        interval = rng.uniform(base_interval, 2 * base_interval) if args.jitter else base_interval
        remaining = stop_at - (time.monotonic() - start)
        if remaining - interval < base_interval / 2:
            interval = remaining  # no sliver of a last step
        time.sleep(max(0.0, interval))
        elapsed = time.monotonic() - start
        step += 1
        fraction = min(elapsed / duration, 1.0)
        print(f"[toy] step {step}: {elapsed:.1f} s of {duration:.1f} s ({fraction:.0%})",
              flush=True)
        progress.upd_row(step=step, elapsed_s=round(elapsed, 3), fraction=round(fraction, 4))
        progress.save_row()
        if elapsed >= stop_at:
            break

    if args.fail:
        print(f"[toy] failing on purpose at {fraction:.0%} (--fail)", file=sys.stderr, flush=True)
        if not exp.attached:  # under the scheduler, the exit code is what gets recorded
            exp.set_error("failed on purpose (--fail)")
        return 1
    if not exp.attached:
        exp.set_finished()
    print("[toy] done", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
