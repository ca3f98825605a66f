"""The web UI served from a Python process, GPU auto-selection and the state query, through
the C ABI: real sockets on 127.0.0.1, real files, real subprocesses."""

import json
import urllib.request

import pytest

import expman
from conftest import clean_env, run_script


def get_json(url):
    with urllib.request.urlopen(url, timeout=10) as response:
        return json.load(response)


def test_serve_lists_this_processes_experiment(tmp_path):
    exp = expman.Experiment(name="served", command="pytest", base_dir=tmp_path, tags=["t"])
    exp.upd_row(loss=0.25, step=1)
    exp.save_row()
    with expman.serve(tmp_path, port=0) as server:
        assert server.url.startswith("http://127.0.0.1:")
        listing = get_json(server.url + "api/experiments")
        (card,) = listing["experiments"]
        assert card["name"] == "served"
        assert card["status"] == "Running"
        assert card["latest"] == {"loss": 0.25, "step": 1}
        tail = get_json(f"{server.url}api/experiments/{card['id']}/tables/run_0001?tail=5")
        assert tail["columns"] == ["timestamp", "run_id", "loss", "step"]
        assert tail["rows"][-1][2:] == [0.25, 1]
    # Stopped: the port no longer answers (refused, or reset if a connect raced the close;
    # URLError is an OSError too).
    with pytest.raises(OSError):
        urllib.request.urlopen(server.url, timeout=2)
    exp.set_finished()
    exp.close()


def test_serve_refuses_a_missing_directory(tmp_path):
    with pytest.raises(expman.NotFoundError, match="does not exist"):
        expman.serve(tmp_path / "nope", port=0)


def test_serve_refuses_a_bad_host(tmp_path):
    with pytest.raises(expman.ConfigError, match="not an IP address"):
        expman.serve(tmp_path, host="localhost:80", port=0)


def test_state_and_attached(exp):
    assert not exp.attached
    assert exp.state() == "Running"
    exp.set_error("boom")
    assert exp.state() == "Error"


def write_inventory(path, free_mib):
    gpus = [
        {"index": i, "uuid": f"GPU-{i}", "name": "Fake", "memory_used_mib": 80_000 - free,
         "memory_total_mib": 80_000, "utilization_percent": 0}
        for i, free in enumerate(free_mib)
    ]
    path.write_text(json.dumps(gpus), encoding="utf-8")


def test_auto_gpu_ids_pick_the_freest_gpu(tmp_path):
    inventory = tmp_path / "gpus.json"
    write_inventory(inventory, [1_000, 70_000, 30_000])
    proc = run_script(
        "import os, json, expman\n"
        "print(json.dumps(expman.pick_gpus(2)))\n"
        "e = expman.Experiment('auto', 'x', '.', gpu_ids='auto')\n"
        "print(os.environ['CUDA_VISIBLE_DEVICES'])\n"
        "print(json.load(open(e.dir / 'config.json'))['gpu_ids'])\n",
        cwd=tmp_path,
        env=clean_env(EXPMAN_GPU_INVENTORY=inventory),
    )
    two, visible, recorded = proc.stdout.split("\n")[:3]
    assert json.loads(two) == [1, 2]
    assert visible == "1"
    assert recorded == "[1]"


def test_auto_gpu_ids_without_gpus_is_a_clear_error(tmp_path):
    proc = run_script(
        "import expman\nexpman.Experiment('auto', 'x', '.', gpu_ids='auto')\n",
        cwd=tmp_path,
        env=clean_env(),
        check=False,
    )
    assert proc.returncode != 0
    assert "InvalidStateError" in proc.stderr
    assert "NVML" in proc.stderr or "GPU" in proc.stderr
