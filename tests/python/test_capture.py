"""Every run has its log, also when started by hand: ``Experiment(...)`` tees the process's
stdout and stderr (file descriptors 1 and 2) into ``logs/<run_id>.log`` while the terminal
still shows them, until ``close()`` or exit. Each case runs as a script in its own process,
whose piped stdout and stderr stand for the terminal."""

import textwrap

from conftest import experiment_dirs, read_json, run_script

# Output from every level: Python, a raw write(2), C stdio (buffered, flushed only at exit),
# a subprocess, stderr; then an uncaught exception.
PRINTS_EVERYWHERE = """
import ctypes, os, subprocess, sys
from expman import Experiment

exp = Experiment("by_hand", "python train.py", "exps")
print("print from Python")
os.write(1, b"os.write to fd 1\\n")
ctypes.CDLL(None).printf(b"printf from C\\n")
subprocess.run(["sh", "-c", "echo subprocess stdout; echo subprocess stderr >&2"], check=True)
print("print to stderr", file=sys.stderr)
"""

STDOUT = ["print from Python", "os.write to fd 1", "printf from C", "subprocess stdout"]
STDERR = ["subprocess stderr", "print to stderr"]


def only_dir(base):
    (exp_dir,) = experiment_dirs(base)
    return exp_dir


def run_log(base, run="run_0001"):
    return (only_dir(base) / "logs" / f"{run}.log").read_text(encoding="utf-8")


def test_output_of_every_kind_and_the_traceback_land_in_the_log(tmp_path):
    code = PRINTS_EVERYWHERE + 'raise ValueError("learning rate 0.5 diverged")\n'
    proc = run_script(code, tmp_path, check=False)
    assert proc.returncode == 1, proc.stderr
    log = run_log(tmp_path / "exps")
    for line in STDOUT + STDERR:
        assert line in log, f"{line!r} not in the log:\n{log}"
    assert "Traceback (most recent call last)" in log, log
    assert log.rstrip().endswith("ValueError: learning rate 0.5 diverged"), log
    # The terminal still got everything, each stream its own.
    for line in STDOUT:
        assert line in proc.stdout and line not in proc.stderr, (proc.stdout, proc.stderr)
    for line in STDERR:
        assert line in proc.stderr and line not in proc.stdout, (proc.stdout, proc.stderr)
    assert "ValueError: learning rate 0.5 diverged" in proc.stderr
    status = read_json(only_dir(tmp_path / "exps") / "status.json")
    assert status["status"] == "Error", status
    assert status["error"] == "ValueError: learning rate 0.5 diverged", status


def test_a_clean_exit_leaves_nothing_out(tmp_path):
    proc = run_script(PRINTS_EVERYWHERE + 'print("last line before exit")\n', tmp_path)
    log = run_log(tmp_path / "exps")
    for line in STDOUT + STDERR + ["last line before exit"]:
        assert line in log, f"{line!r} not in the log:\n{log}"
    assert "last line before exit" in proc.stdout
    assert read_json(only_dir(tmp_path / "exps") / "status.json")["status"] == "Finished"


def test_close_stops_the_capture(tmp_path):
    code = textwrap.dedent("""
        import os, sys
        from expman import Experiment

        print("before the experiment")
        exp = Experiment("closing", "cmd", "exps")
        print("during the run")
        sys.stdout.flush()  # a pipe, not a terminal: Python buffers it otherwise
        os.system("echo from a shell")
        exp.close()
        print("after close")
    """)
    proc = run_script(code, tmp_path)
    log = run_log(tmp_path / "exps")
    assert log == "during the run\nfrom a shell\n", log
    for line in ["before the experiment", "during the run", "from a shell", "after close"]:
        assert line in proc.stdout, proc.stdout


def test_capture_output_false_turns_it_off(tmp_path):
    code = textwrap.dedent("""
        from expman import Experiment

        exp = Experiment("quiet", "cmd", "exps", capture_output=False)
        print("not captured")
    """)
    proc = run_script(code, tmp_path)
    assert run_log(tmp_path / "exps") == ""
    assert "not captured" in proc.stdout


def test_each_experiment_of_a_sweep_logs_its_own_output(tmp_path):
    """One capture per process: a later experiment takes over, and Experiment.open (the next
    run of a directory, by hand) captures as well."""
    code = textwrap.dedent("""
        from expman import Experiment

        first = Experiment("sweep", "cmd", "a")
        print("lr 0.1")
        second = Experiment("sweep", "cmd", "b")
        print("lr 0.01")
        again = Experiment.open(first.dir)
        print("lr 0.1 again")
    """)
    run_script(code, tmp_path)
    assert run_log(tmp_path / "a") == "lr 0.1\n"
    assert run_log(tmp_path / "b") == "lr 0.01\n"
    assert run_log(tmp_path / "a", "run_0002") == "lr 0.1 again\n"


def test_logging_handler_only_on_request(tmp_path):
    code = textwrap.dedent("""
        import logging
        from expman import Experiment

        exp = Experiment("logged", "cmd", "exps", capture_output=False)
        logging.getLogger("train").warning("before the handler")
        handler = exp.add_log_handler()
        logging.getLogger("train").info("epoch 1: loss 0.5")
        logging.getLogger("train").debug("below the level")
        exp.close()
        logging.getLogger("train").warning("after close")
    """)
    run_script(code, tmp_path)
    lines = (only_dir(tmp_path / "exps") / "logs" / "experiment.log").read_text().splitlines()
    assert len(lines) == 1, lines
    assert lines[0].endswith("[run_0001] INFO train: epoch 1: loss 0.5"), lines


def test_a_scheduled_job_is_captured_once(tmp_path):
    """Attached to a run (as a job of EXP run is, with its output already in the run log), the
    experiment does not capture: nothing appears twice."""
    code = textwrap.dedent("""
        import os, subprocess, sys
        from expman import Experiment

        parent = Experiment("scheduled", "cmd", "exps", capture_output=False)
        parent.close()
        log = open(parent.log_path, "ab")
        job = "from expman import Experiment; Experiment('x', 'cmd', '.'); print('once')"
        env = dict(os.environ, EXPMAN_EXPERIMENT_DIR=str(parent.dir), EXPMAN_RUN_ID="run_0001")
        subprocess.run([sys.executable, "-c", job], stdout=log, stderr=log, env=env, check=True)
    """)
    run_script(code, tmp_path)
    assert run_log(tmp_path / "exps") == "once\n"
