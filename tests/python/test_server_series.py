"""The series endpoint's smoothing against numpy, over real HTTP: the server (`expman.serve`)
charts a table written here, and every smoothed value it returns must equal the reference
within 1e-9 (relative): numpy's `nanmedian` over centred windows for the running median, and
TensorBoard's debiased EMA written out in Python."""

import json
import math
import urllib.request

import pytest

import expman

ID = "exp_2026-01-01__00-00-00"
ROWS = 5000


def _table(base, values):
    d = base / ID
    (d / "metrics").mkdir(parents=True)
    (d / "config.json").write_text('{"name": "exp"}', encoding="utf-8")
    (d / "status.json").write_text('{"status": "Finished"}', encoding="utf-8")
    lines = ["timestamp,run_id,step,loss"]
    for i, v in enumerate(values):
        cell = "" if v is None else repr(float(v))
        lines.append(f"2026-01-01T00:00:00.000000,run_0001,{i},{cell}")
    (d / "metrics" / "t.csv").write_text("\n".join(lines) + "\n", encoding="utf-8")


def _series(url, query):
    with urllib.request.urlopen(f"{url}api/experiments/{ID}/tables/t/series?{query}") as r:
        return json.load(r)


def _ema(values, w):
    """TensorBoard's resmoothDataset, step for step."""
    constant = all(v == values[0] for v in values)
    last, n, out = 0.0, 0, []
    for v in values:
        if constant or not math.isfinite(v):
            out.append(v)
            continue
        last = last * w + (1 - w) * v
        n += 1
        out.append(last / (1 - w ** n if w != 1 else 1))
    return out


def _median(np, values, k):
    """numpy's nanmedian over the centred window (NaN-padded at the ends)."""
    a = np.array(values, dtype=float)
    a[~np.isfinite(a)] = np.nan
    h = k // 2
    padded = np.concatenate([np.full(h, np.nan), a, np.full(h, np.nan)])
    windows = np.lib.stride_tricks.sliding_window_view(padded, k)
    out = np.nanmedian(windows, axis=1)
    out[np.isnan(a)] = np.nan
    return out


def test_smoothing_equals_numpy_references(tmp_path):
    np = pytest.importorskip("numpy")
    rng = np.random.default_rng(7)
    y = 10.0 / (1.0 + np.arange(ROWS) / 100.0) + rng.random(ROWS)
    y[3::997] = np.nan
    y[5::1009] = np.inf
    y[7::501] = 250.0
    values = [None if i % 1021 == 11 else v for i, v in enumerate(y)]
    _table(tmp_path, values)
    as_float = [math.nan if v is None else float(v) for v in values]
    finite_or_nan = [v if math.isfinite(v) else math.nan for v in as_float]
    with expman.serve(tmp_path, port=0) as server:
        for smooth, log_y, want in [
            ("ema:0.9", False, _ema(finite_or_nan, 0.9)),
            ("ema:0.99", False, _ema(finite_or_nan, 0.99)),
            ("median:31", False, _median(np, as_float, 31)),
            ("ema:0.9", True,
             [10 ** v for v in _ema([math.log10(v) if v > 0 else math.nan
                                     for v in finite_or_nan], 0.9)]),
            ("median:31", True, 10 ** _median(np, np.log10(np.array(finite_or_nan)), 31)),
        ]:
            for max_points in (10000, 50):
                s = _series(server.url, f"columns=loss&smooth={smooth}&log_y={int(log_y)}"
                                        f"&max_points={max_points}")
                got = s["smoothed"]["loss"]
                for row, g in zip(s["row_index"], got):
                    w = float(want[row])
                    if not math.isfinite(as_float[row]):
                        assert g is None, (smooth, row)
                        continue
                    assert g is not None, (smooth, row)
                    assert abs(g - w) <= 1e-9 * max(1.0, abs(w)), (smooth, log_y, row, g, w)
                if max_points == 10000:
                    assert len(got) == ROWS
