//! Metric summaries (issue 13): last, min, max, count and the step of the extremes of every
//! numeric column, read whole or kept up to date as rows are appended, through real tables.

use expman::params::ParamValue;
use expman::{SyncPolicy, TableSummary, TableWriter, summary};

fn write(writer: &mut TableWriter, fields: &[(&str, f64)]) {
    for (name, value) in fields {
        writer.set(name, *value).unwrap();
    }
    writer.save_row().unwrap();
}

#[test]
fn extremes_are_found_with_their_steps() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("run_0001.csv");
    let mut w = TableWriter::new(&path, "run_0001", SyncPolicy::WriteThrough);
    for step in 0..100 {
        let loss = if step == 37 {
            9.5
        } else {
            1.0 / (step as f64 + 1.0)
        };
        write(&mut w, &[("step", step as f64 * 10.0), ("loss", loss)]);
    }
    w.set("note", "text").unwrap();
    w.set("step", 1000.0).unwrap();
    w.save_row().unwrap();
    let s = summary(&path).unwrap();
    assert_eq!(s.rows, 101);
    let run = s.latest().unwrap();
    let loss = run.metric("loss").unwrap();
    assert_eq!((loss.count, loss.max, loss.max_step), (100, 9.5, 370.0));
    assert_eq!((loss.min, loss.min_step), (0.01, 990.0));
    assert_eq!(loss.last, 0.01);
    assert!(run.metric("note").is_none(), "a text column is no metric");
    assert_eq!(run.params()["note"], ParamValue::Str("text".into()));
    assert_eq!(run.metric("step").unwrap().last, 1000.0);
}

#[test]
fn updates_read_what_was_appended_and_survive_a_widening() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("t.csv");
    let mut kept = TableSummary::of(&path).unwrap();
    assert_eq!(kept.rows, 0, "a table not written yet summarises as empty");
    let mut w = TableWriter::new(&path, "run_0001", SyncPolicy::WriteThrough);
    for round in 0..5 {
        for i in 0..20 {
            let x = (round * 20 + i) as f64;
            write(&mut w, &[("acc", x.sin()), ("lr", 0.1 / (x + 1.0))]);
        }
        if round == 2 {
            // A new column: the table is rewritten (and renamed) under the summary.
            write(
                &mut w,
                &[("acc", 0.5), (&format!("extra_{round}"), f64::NAN)],
            );
        }
        kept.update().unwrap();
        let whole = summary(&path).unwrap();
        assert_eq!(kept.rows, whole.rows, "round {round}");
        let (kept_run, whole_run) = (kept.latest().unwrap(), whole.latest().unwrap());
        assert_eq!(kept_run.metrics().count(), whole_run.metrics().count());
        for (name, c) in whole_run.metrics() {
            let k = kept_run.metric(name).unwrap();
            assert_eq!(
                (
                    k.count,
                    k.last.to_bits(),
                    k.min.to_bits(),
                    k.max.to_bits(),
                    k.max_step
                ),
                (
                    c.count,
                    c.last.to_bits(),
                    c.min.to_bits(),
                    c.max.to_bits(),
                    c.max_step
                ),
                "round {round}, column {name}"
            );
        }
    }
    let s = summary(&path).unwrap();
    assert_eq!(s.rows, 101);
    // Without a step column the step is the row number.
    let run = s.latest().unwrap();
    let acc = run.metric("acc").unwrap();
    assert_eq!(
        acc.max,
        (0..100).map(|x| (x as f64).sin()).fold(0.5, f64::max)
    );
    let nan = run.metric("extra_2").unwrap();
    assert!(nan.min.is_nan() && nan.max.is_nan() && nan.count == 1);
}

/// The seed's pattern through the real writer: one row of hyperparameters, then metrics, then a
/// single final evaluation value, in a table shared by two runs.
#[test]
fn config_row_params_per_run_in_a_shared_table() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("eval.csv");
    for (run, lr) in [("run_0001", 0.1), ("run_0002", 0.01)] {
        let mut w = TableWriter::new(&path, run, SyncPolicy::WriteThrough);
        w.set("model", "resnet").unwrap();
        w.set("batch_size", 32i64).unwrap();
        w.set("learning_rate", lr).unwrap();
        w.save_row().unwrap();
        for step in 0..10 {
            write(
                &mut w,
                &[
                    ("step", step as f64),
                    ("loss", 1.0 / (step as f64 + 1.0) + lr),
                ],
            );
        }
        write(&mut w, &[("test_acc", 0.9 - lr)]);
    }
    let s = summary(&path).unwrap();
    assert_eq!(s.runs().len(), 2);
    for (run, lr) in [("run_0001", 0.1), ("run_0002", 0.01)] {
        let r = s.run(run).unwrap();
        let params = r.params();
        assert_eq!(params["learning_rate"], ParamValue::Float(lr), "{run}");
        assert_eq!(params["batch_size"], ParamValue::Int(32));
        assert_eq!(params["model"], ParamValue::Str("resnet".into()));
        assert_eq!(params.len(), 3, "{run}: {params:?}");
        assert_eq!(
            r.metric("test_acc").unwrap().last,
            0.9 - lr,
            "stays a metric"
        );
        assert_eq!(r.metric("loss").unwrap().min, 0.1 + lr);
        assert_eq!(
            r.metric("loss").unwrap().count,
            10,
            "counts this run's rows only"
        );
        assert!(r.metric("learning_rate").is_none());
    }
    assert_eq!(s.latest().unwrap().run_id(), "run_0002");
}

/// Appends of random shape (runs interleaved, text and numbers, the config-row pattern, gaps),
/// summarised after every append both incrementally and from scratch: the same answer.
#[test]
fn incremental_equals_from_scratch_on_random_appends() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("t.csv");
    let mut kept = TableSummary::empty(&path);
    let mut seed = 0x2545_f491_4f6c_dd1du64;
    let mut next = move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    let columns = ["a", "b", "opt", "step", "x"];
    for round in 0..120 {
        // A writer per row, as separate processes appending in turn would be.
        let run = ["run_0001", "run_0002", "run_0003"][(next() % 3) as usize];
        let w = &mut TableWriter::new(&path, run, SyncPolicy::WriteThrough);
        for name in columns {
            match next() % 4 {
                0 => {}
                1 if name == "opt" => w.set(name, ["adam", "sgd"][(next() % 2) as usize]).unwrap(),
                _ => w.set(name, (next() % 1000) as f64 / 7.0).unwrap(),
            }
        }
        w.save_row().unwrap();
        if round % 3 == 0 {
            kept.update().unwrap();
            let whole = summary(&path).unwrap();
            assert_eq!(kept.rows, whole.rows);
            assert_eq!(kept.runs().len(), whole.runs().len());
            for run in whole.runs() {
                let k = kept.run(run.run_id()).unwrap();
                assert_eq!(k.params(), run.params(), "round {round}");
                assert!(k.metrics().eq(run.metrics()), "round {round}");
            }
        }
    }
}
