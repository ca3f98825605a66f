//! The seed README's Python quickstart, in Rust: create an experiment, log a configuration row
//! and ten epochs of metrics, read them back.
//!
//! Run with `cargo run --example quickstart`.

use expman::{Experiment, Value};

fn main() -> expman::Result<()> {
    let mut exp = Experiment::builder("my_experiment", "./experiments")
        .command("python train.py --epochs 100 --lr 0.001")
        .tags(["deep-learning", "classification"])
        .create()?;
    println!("run id: {}", exp.run_id()); // run_0001

    // A configuration row, as the seed does.
    exp.upd_row([
        ("model", Value::from("ResNet-18")),
        ("dataset", Value::from("CIFAR-10")),
        ("batch_size", Value::from(128)),
        ("learning_rate", Value::from(0.001)),
    ])?;
    exp.save_row()?;

    for epoch in 1..=10 {
        let train_loss = 1.0 / epoch as f64;
        let val_acc = 0.5 + 0.04 * epoch as f64;
        exp.set("epoch", epoch)?;
        exp.upd_row([
            ("train_loss", train_loss),
            ("train_acc", val_acc + 0.02),
            ("val_loss", train_loss * 1.1),
            ("val_acc", val_acc),
        ])?;
        exp.save_row()?;
    }

    let metrics = exp.load_metrics()?;
    let (best_epoch, best_acc) = metrics
        .rows
        .iter()
        .filter_map(|row| {
            let epoch = row[metrics.column_index("epoch")?].as_f64()?;
            let acc = row[metrics.column_index("val_acc")?].as_f64()?;
            Some((epoch, acc))
        })
        .fold(
            (0.0, f64::MIN),
            |best, x| if x.1 > best.1 { x } else { best },
        );
    println!("best: epoch {best_epoch}, accuracy {best_acc:.4}");
    println!("metrics: {}", exp.metrics().path().display());
    exp.set_finished()?;
    Ok(())
}
