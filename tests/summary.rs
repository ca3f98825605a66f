//! Metric summaries (issue 13): last, min, max, count and the step of the extremes of every
//! numeric column, read whole or kept up to date as rows are appended, through real tables.

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
    let loss = &s.columns["loss"];
    assert_eq!((loss.count, loss.max, loss.max_step), (100, 9.5, 370.0));
    assert_eq!((loss.min, loss.min_step), (0.01, 990.0));
    assert_eq!(loss.last, 0.01);
    assert!(
        !s.columns.contains_key("note"),
        "a text column is no metric"
    );
    assert_eq!(s.columns["step"].last, 1000.0);
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
        assert_eq!(kept.columns.len(), whole.columns.len(), "round {round}");
        for (name, c) in &whole.columns {
            let k = &kept.columns[name];
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
    let acc = &s.columns["acc"];
    assert_eq!(
        acc.max,
        (0..100).map(|x| (x as f64).sin()).fold(0.5, f64::max)
    );
    let nan = &s.columns["extra_2"];
    assert!(nan.min.is_nan() && nan.max.is_nan() && nan.count == 1);
}
