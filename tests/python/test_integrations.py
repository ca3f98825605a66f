"""The framework integrations with the real frameworks: Lightning, Hugging Face transformers and
Keras 3 (torch backend) each train a tiny model on CPU in a subprocess (nothing is downloaded:
models are built from configs, data is random tensors), and the tests read what landed on disk.

scripts/setup-test-deps installs the frameworks (scripts/requirements-integrations.txt); a
machine without them skips these tests naming the missing package. Marked `integrations`:
`pytest -m "not integrations"` leaves them out (they are the slowest Python tests).
"""

import importlib.util
import json
from pathlib import Path

import pytest

from conftest import (clean_env, experiment_dirs, read_csv_rows, read_json, run_python,
                      run_script)

pytestmark = pytest.mark.integrations


def _need(*modules):
    missing = [m for m in modules if importlib.util.find_spec(m) is None]
    if missing:
        pytest.skip(
            f"{', '.join(missing)} not installed: scripts/setup-test-deps installs the frameworks "
            "(scripts/requirements-integrations.txt)"
        )


def _env(**extra):
    # No hub access and no telemetry: a test that tried to download would fail, not hang.
    return clean_env(HF_HUB_OFFLINE=1, TRANSFORMERS_OFFLINE=1, HF_DATASETS_OFFLINE=1,
                     KERAS_BACKEND="torch", TOKENIZERS_PARALLELISM="false",
                     OMP_NUM_THREADS=1, **extra)


def _table(path):
    header, rows = read_csv_rows(path)
    return [dict(zip(header, r)) for r in rows]


def _config(d):
    return read_json(Path(d) / "config.json")


def _status(d):
    return read_json(Path(d) / "status.json")


# -- Lightning --------------------------------------------------------------------------------

LIGHTNING_SCRIPT = r'''
import json, os, sys
import torch
import lightning as L
from torch.utils.data import DataLoader, TensorDataset
from lightning.pytorch.callbacks import ModelCheckpoint
from expman.integrations.lightning import ExpmanLogger


class MLP(L.LightningModule):
    def __init__(self, hidden=16, lr=0.05, widths=(16, 8), optimizer={"name": "sgd"}, fail_at=None):
        super().__init__()
        self.save_hyperparameters()
        self.net = torch.nn.Sequential(torch.nn.Linear(8, hidden), torch.nn.ReLU(),
                                       torch.nn.Linear(hidden, 1))

    def training_step(self, batch, batch_idx):
        if self.hparams.fail_at is not None and self.global_step == self.hparams.fail_at:
            raise RuntimeError("loss exploded")
        x, y = batch
        loss = torch.nn.functional.mse_loss(self.net(x), y)
        self.log("train_loss", loss)
        return loss

    def validation_step(self, batch, batch_idx):
        x, y = batch
        self.log("val_loss", torch.nn.functional.mse_loss(self.net(x), y))

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=self.hparams.lr)


def fit(logger, **hparams):
    torch.manual_seed(0)
    data = DataLoader(TensorDataset(torch.randn(64, 8), torch.randn(64, 1)), batch_size=8)
    trainer = L.Trainer(max_epochs=2, logger=logger, log_every_n_steps=2, accelerator="cpu",
                        enable_progress_bar=False, enable_model_summary=False,
                        callbacks=[ModelCheckpoint(monitor="val_loss", save_last=True)])
    trainer.fit(MLP(**hparams), data, data)
    return trainer


out = {}
logger = ExpmanLogger(name="mlp", base_dir="runs", tags=["lightning"])
trainer = fit(logger)
out["ok"] = {"dir": logger.save_dir, "run_id": logger.run_id, "log_dir": trainer.log_dir,
             "best": trainer.checkpoint_callback.best_model_path}

bad = ExpmanLogger(name="broken", base_dir="runs")
try:
    fit(bad, fail_at=5)
except RuntimeError as e:
    out["failed"] = {"dir": bad.save_dir, "error": str(e)}

# As a job of `EXP run`: the scheduler's variables make the logger attach to its run.
os.environ["EXPMAN_EXPERIMENT_DIR"], os.environ["EXPMAN_RUN_ID"] = sys.argv[1], "run_0001"
attached = ExpmanLogger(name="ignored", base_dir="elsewhere")
fit(attached)
out["attached"] = {"dir": attached.save_dir, "run_id": attached.run_id}
print("RESULT " + json.dumps(out))
'''


def _result(proc):
    line = next(ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT "))
    return json.loads(line[len("RESULT "):])


def test_lightning_logger_rows_params_checkpoints_status(tmp_path):
    _need("torch", "lightning")
    from expman import Experiment

    # The "scheduler's" run that the third fit attaches to.
    sched = Experiment(name="scheduled", command="EXP run", base_dir=tmp_path / "sched",
                       capture_output=False)
    script = tmp_path / "train.py"
    script.write_text(LIGHTNING_SCRIPT, encoding="utf-8")
    proc = run_python([str(script), str(sched.dir)], tmp_path, env=_env(), timeout=300)
    res = _result(proc)

    ok = Path(res["ok"]["dir"])
    assert ok.parent == tmp_path / "runs" and ok.name.startswith("mlp_")
    assert res["ok"]["run_id"] == "run_0001"
    assert res["ok"]["log_dir"] == str(ok)  # trainer.log_dir: where users save their files
    cfg = _config(ok)
    assert cfg["tags"] == ["lightning"]
    # save_hyperparameters(): a tuple as text, a nested dict flattened, None as text.
    assert cfg["params"] == {"hidden": 16, "lr": 0.05, "widths": "[16, 8]",
                             "optimizer.name": "sgd", "fail_at": "None"}
    rows = _table(ok / "metrics" / "run_0001.csv")
    steps = [int(r["step"]) for r in rows]
    # 8 batches an epoch, a row every 2 steps; validation's row merges into the training
    # row of the same step: one row per step.
    assert steps == sorted(set(steps)) and steps == [1, 3, 5, 7, 9, 11, 13, 15]
    merged = [r for r in rows if r["val_loss"]]
    assert [int(r["step"]) for r in merged] == [7, 15]
    assert all(r["train_loss"] for r in merged)
    assert {r["epoch"] for r in rows} == {"0", "1"}
    ckpts = sorted(p.name for p in (ok / "checkpoints").iterdir())
    assert "last.ckpt" in ckpts and any(n.startswith("epoch=") for n in ckpts), ckpts
    assert Path(res["ok"]["best"]).parent == ok / "checkpoints"
    assert _status(ok)["status"] == "Finished"

    failed = Path(res["failed"]["dir"])
    st = _status(failed)
    assert st["status"] == "Error" and "loss exploded" in st["error"], st
    assert [int(r["step"]) for r in _table(failed / "metrics" / "run_0001.csv")] == [1, 3]

    # Attached: rows in the scheduler's run, its status left alone (still Running, ours).
    assert res["attached"] == {"dir": str(sched.dir), "run_id": "run_0001"}
    assert len(_table(sched.metrics_path)) == 8
    assert sched.status()["status"] == "Running"
    assert not (tmp_path / "elsewhere").exists()
    sched.close()


DDP_SCRIPT = r"""
import torch
import lightning as L
from torch.utils.data import DataLoader, TensorDataset
from expman.integrations.lightning import ExpmanLogger


class MLP(L.LightningModule):
    def __init__(self, lr=0.05):
        super().__init__()
        self.save_hyperparameters()
        self.net = torch.nn.Sequential(torch.nn.Linear(8, 16), torch.nn.ReLU(),
                                       torch.nn.Linear(16, 1))

    def training_step(self, batch, batch_idx):
        x, y = batch
        loss = torch.nn.functional.mse_loss(self.net(x), y)
        self.log("train_loss", loss, sync_dist=True)
        return loss

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=self.hparams.lr)


if __name__ == "__main__":
    torch.manual_seed(0)
    data = DataLoader(TensorDataset(torch.randn(64, 8), torch.randn(64, 1)), batch_size=8)
    logger = ExpmanLogger(name="ddp", base_dir="runs")
    trainer = L.Trainer(max_epochs=2, logger=logger, log_every_n_steps=1, accelerator="cpu",
                        devices=2, strategy="ddp", enable_progress_bar=False,
                        enable_model_summary=False)
    trainer.fit(MLP(), data)
    print("RANK", trainer.global_rank, logger.save_dir)
"""


def test_lightning_ddp_writes_from_rank_zero_only(tmp_path):
    """Two CPU processes (gloo) under Lightning's DDP: one experiment, each step's row once,
    rank 1 with no experiment of its own."""
    _need("torch", "lightning")
    script = tmp_path / "ddp.py"
    script.write_text(DDP_SCRIPT, encoding="utf-8")
    proc = run_python([str(script)], tmp_path, env=_env(), timeout=300)
    (d,) = experiment_dirs(tmp_path / "runs")
    ranks = sorted(ln.split()[1:] for ln in proc.stdout.splitlines() if ln.startswith("RANK"))
    assert ranks == [["0", str(d)], ["1", "None"]], proc.stdout
    rows = _table(d / "metrics" / "run_0001.csv")
    # 64 samples split over 2 ranks in batches of 8: 4 steps an epoch.
    assert [int(r["step"]) for r in rows] == list(range(8))
    assert _config(d)["params"] == {"lr": 0.05}
    assert any(p.suffix == ".ckpt" for p in (d / "checkpoints").iterdir())
    assert _status(d)["status"] == "Finished"


# -- Hugging Face transformers ---------------------------------------------------------------

TRANSFORMERS_SCRIPT = r'''
import json
import torch
from transformers import BertConfig, BertForSequenceClassification, Trainer, TrainingArguments
from expman.integrations.transformers import ExpmanCallback

torch.manual_seed(0)


class Random(torch.utils.data.Dataset):
    """Token ids and labels in memory: no tokenizer, no download."""

    def __init__(self, n, fail_at=None):
        self.ids = torch.randint(0, 99, (n, 12))
        self.labels = torch.randint(0, 2, (n,))
        self.fail_at = fail_at

    def __len__(self):
        return len(self.labels)

    def __getitem__(self, i):
        if i == self.fail_at:
            raise RuntimeError("corrupt sample")
        return {"input_ids": self.ids[i], "attention_mask": torch.ones(12, dtype=torch.long),
                "labels": self.labels[i]}


config = BertConfig(hidden_size=32, num_hidden_layers=1, num_attention_heads=2,
                    intermediate_size=37, vocab_size=99)
callback = ExpmanCallback(name="bert", base_dir="runs", tags=["hf"])
args = TrainingArguments(output_dir="out", num_train_epochs=2, per_device_train_batch_size=8,
                         logging_steps=2, eval_strategy="epoch", save_strategy="epoch",
                         learning_rate=1e-3, report_to=[], use_cpu=True, disable_tqdm=True)
trainer = Trainer(model=BertForSequenceClassification(config), args=args,
                  train_dataset=Random(32), eval_dataset=Random(16), callbacks=[callback])
trainer.train()
print("RESULT " + json.dumps({"dir": str(callback.experiment.dir)}), flush=True)

# The Trainer tells its callbacks nothing about an exception: the one that ends the program
# marks the run Error through expman's exit hook.
broken = ExpmanCallback(name="broken", base_dir="runs")
args = TrainingArguments(output_dir="out2", num_train_epochs=1, per_device_train_batch_size=8,
                         logging_steps=1, report_to=[], use_cpu=True, disable_tqdm=True)
train = Random(32, fail_at=20)
Trainer(model=BertForSequenceClassification(config), args=args, train_dataset=train,
        callbacks=[broken]).train()
'''


def test_transformers_callback_rows_params_checkpoints_status(tmp_path):
    _need("torch", "transformers", "accelerate")
    proc = run_script(TRANSFORMERS_SCRIPT, tmp_path, env=_env(), timeout=300, check=False)
    assert proc.returncode == 1 and "corrupt sample" in proc.stderr, proc.stderr[-2000:]
    d = Path(_result(proc)["dir"])
    assert d.parent == tmp_path / "runs" and d.name.startswith("bert_")
    params = _config(d)["params"]
    # TrainingArguments and the model's config (under model.).
    assert params["learning_rate"] == 0.001 and params["num_train_epochs"] == 2
    assert params["per_device_train_batch_size"] == 8
    assert params["model.hidden_size"] == 32 and params["model.num_hidden_layers"] == 1
    assert params["model.intermediate_size"] == 37 and params["model.vocab_size"] == 99
    rows = _table(d / "metrics" / "run_0001.csv")
    # 4 steps an epoch, a log every 2: one row per global_step, the evaluation at the end of
    # each epoch and the final training summary merged into their step's row.
    assert [int(r["step"]) for r in rows] == [2, 4, 6, 8]
    assert all(r["loss"] and r["learning_rate"] for r in rows)
    assert [bool(r["eval_loss"]) for r in rows] == [False, True, False, True]
    assert rows[-1]["train_runtime"] and rows[-1]["train_loss"]
    ckpts = _table(d / "metrics" / "checkpoints.csv")
    assert [int(r["step"]) for r in ckpts] == [4, 8]
    for r in ckpts:
        assert Path(r["path"]) == (tmp_path / "out" / f"checkpoint-{r['step']}").resolve()
        assert Path(r["path"]).is_dir()
    assert _status(d)["status"] == "Finished"
    (broken,) = [p for p in (tmp_path / "runs").iterdir() if p.name.startswith("broken_")]
    st = _status(broken)
    assert st["status"] == "Error" and "RuntimeError: corrupt sample" in st["error"], st


# -- Keras 3 on the torch backend ------------------------------------------------------------

KERAS_SCRIPT = r'''
import json
import numpy as np
import keras
from expman.integrations.keras import ExpmanCallback

assert keras.backend.backend() == "torch", keras.backend.backend()
keras.utils.set_random_seed(0)
rng = np.random.default_rng(0)
x = rng.normal(size=(64, 8)).astype("float32")
y = (x.sum(axis=1) > 0).astype("float32")
model = keras.Sequential([keras.Input((8,)), keras.layers.Dense(16, activation="relu"),
                          keras.layers.Dense(1, activation="sigmoid")])
model.compile(optimizer=keras.optimizers.Adam(learning_rate=0.01), loss="binary_crossentropy",
              metrics=["accuracy"])
callback = ExpmanCallback(name="keras-mlp", base_dir="runs", batches=2)
model.fit(x, y, epochs=2, batch_size=16, validation_split=0.25, verbose=0, callbacks=[callback])
print("RESULT " + json.dumps({"dir": str(callback.experiment.dir)}))
'''


def test_keras_callback_rows_params_status(tmp_path):
    _need("torch", "keras")
    proc = run_script(KERAS_SCRIPT, tmp_path, env=_env(), timeout=300)
    d = Path(_result(proc)["dir"])
    params = _config(d)["params"]
    assert params["model.name"] == "sequential"
    assert abs(params["optimizer.learning_rate"] - 0.01) < 1e-6
    assert params["optimizer.name"] == "adam"
    assert params["loss"] == "binary_crossentropy" and params["metrics"] == '["accuracy"]'
    assert params["fit.epochs"] == 2 and params["fit.steps"] == 3
    assert '"Dense"' in params["model.layers"]  # the layer list, as JSON text
    rows = _table(d / "metrics" / "run_0001.csv")
    assert [r["epoch"] for r in rows] == ["0", "1"]
    assert all(r["loss"] and r["accuracy"] and r["val_loss"] and r["val_accuracy"] for r in rows)
    batches = _table(d / "metrics" / "batches.csv")
    # 3 batches an epoch, every 2nd of the whole fit: steps 2, 4, 6.
    assert [(r["step"], r["epoch"]) for r in batches] == [("2", "0"), ("4", "1"), ("6", "1")]
    assert _status(d)["status"] == "Finished"


def test_integrations_bench_runs(tmp_path):
    """benches/integrations_bench.py keeps running (a tiny run; the figures come from a full
    run, see the README)."""
    proc = run_python([str(Path(__file__).resolve().parents[2] / "benches" / "integrations_bench.py"),
                       "--steps", "200", "--repeat", "1", "--dir", str(tmp_path)], tmp_path,
                      env=_env(), timeout=300)
    for name in ("baseline", "lightning", "transformers", "keras", "wandb.log"):
        assert name in proc.stdout, proc.stdout
