//! A real training loop in Rust logging through expman: softmax regression on a generated
//! three-class problem (Gaussian blobs), trained by mini-batch gradient descent, with train and
//! validation loss/accuracy per epoch and a checkpoint at the end.
//!
//! `cargo run --release --example rust_train -- --epochs 20 --lr 0.5`

use expman::{Experiment, Value};

const CLASSES: usize = 3;
const FEATURES: usize = 4;

/// A small deterministic generator (xorshift64*), so the example needs no extra crate.
struct Rng(u64);

impl Rng {
    fn next_f64(&mut self) -> f64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        (self.0.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 11) as f64 / (1u64 << 53) as f64
    }

    /// Standard normal by Box-Muller.
    fn normal(&mut self) -> f64 {
        let (u, v) = (self.next_f64().max(1e-12), self.next_f64());
        (-2.0 * u.ln()).sqrt() * (2.0 * std::f64::consts::PI * v).cos()
    }
}

type Sample = ([f64; FEATURES], usize);

fn make_data(rng: &mut Rng, n: usize) -> Vec<Sample> {
    let centers = [
        [2.0, 0.0, -1.0, 0.5],
        [-1.5, 1.5, 0.5, -0.5],
        [0.0, -2.0, 1.0, 1.0],
    ];
    (0..n)
        .map(|i| {
            let class = i % CLASSES;
            let mut x = centers[class];
            for v in &mut x {
                *v += rng.normal();
            }
            (x, class)
        })
        .collect()
}

struct Model {
    w: [[f64; FEATURES]; CLASSES],
    b: [f64; CLASSES],
}

impl Model {
    fn probabilities(&self, x: &[f64; FEATURES]) -> [f64; CLASSES] {
        let mut logits = [0.0; CLASSES];
        for (c, logit) in logits.iter_mut().enumerate() {
            *logit = self.b[c] + self.w[c].iter().zip(x).map(|(w, x)| w * x).sum::<f64>();
        }
        let max = logits.iter().cloned().fold(f64::MIN, f64::max);
        let exp: Vec<f64> = logits.iter().map(|l| (l - max).exp()).collect();
        let total: f64 = exp.iter().sum();
        std::array::from_fn(|c| exp[c] / total)
    }

    /// Mean cross-entropy and accuracy over `data`.
    fn evaluate(&self, data: &[Sample]) -> (f64, f64) {
        let mut loss = 0.0;
        let mut correct = 0;
        for (x, y) in data {
            let p = self.probabilities(x);
            loss -= p[*y].max(1e-12).ln();
            let predicted = (0..CLASSES)
                .max_by(|&a, &b| p[a].total_cmp(&p[b]))
                .unwrap_or(0);
            correct += usize::from(predicted == *y);
        }
        (loss / data.len() as f64, correct as f64 / data.len() as f64)
    }

    fn step(&mut self, batch: &[Sample], lr: f64) {
        let mut gw = [[0.0; FEATURES]; CLASSES];
        let mut gb = [0.0; CLASSES];
        for (x, y) in batch {
            let p = self.probabilities(x);
            for (c, (gw_c, gb_c)) in gw.iter_mut().zip(&mut gb).enumerate() {
                let error = p[c] - f64::from(u8::from(c == *y));
                *gb_c += error;
                for (g, xf) in gw_c.iter_mut().zip(x) {
                    *g += error * xf;
                }
            }
        }
        let scale = lr / batch.len() as f64;
        for ((w_c, b_c), (gw_c, gb_c)) in self.w.iter_mut().zip(&mut self.b).zip(gw.iter().zip(&gb))
        {
            *b_c -= scale * gb_c;
            for (w, g) in w_c.iter_mut().zip(gw_c) {
                *w -= scale * g;
            }
        }
    }
}

fn arg(args: &[String], name: &str, default: f64) -> f64 {
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    let epochs = arg(&args, "--epochs", 20.0) as usize;
    let lr = arg(&args, "--lr", 0.5);
    let batch_size = arg(&args, "--batch-size", 32.0) as usize;
    let base_dir = args
        .iter()
        .position(|a| a == "--base-dir")
        .and_then(|i| args.get(i + 1))
        .cloned()
        .unwrap_or_else(|| "./experiments".into());

    let mut exp = Experiment::builder("rust_softmax", base_dir)
        .command(args.join(" "))
        .tags(["rust", "softmax-regression"])
        .description("softmax regression on generated blobs")
        .create()?;
    // What this program prints goes to logs/<run_id>.log too (the UI's log view), as for a job
    // of `EXP run`; it stops when `exp` is dropped.
    exp.capture_output()?;
    println!("experiment {} run {}", exp.dir().display(), exp.run_id());

    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    let data = make_data(&mut rng, 1200);
    let (train, val) = data.split_at(960);
    exp.upd_row([
        ("model", Value::from("softmax-regression")),
        ("dataset", Value::from("gaussian-blobs")),
        ("batch_size", Value::from(batch_size as i64)),
        ("learning_rate", Value::from(lr)),
    ])?;
    exp.save_row()?;

    let mut model = Model {
        w: [[0.0; FEATURES]; CLASSES],
        b: [0.0; CLASSES],
    };
    for epoch in 1..=epochs {
        for batch in train.chunks(batch_size.max(1)) {
            model.step(batch, lr);
        }
        let (train_loss, train_acc) = model.evaluate(train);
        let (val_loss, val_acc) = model.evaluate(val);
        exp.set("epoch", epoch as i64)?;
        exp.upd_row([
            ("train_loss", train_loss),
            ("train_acc", train_acc),
            ("val_loss", val_loss),
            ("val_acc", val_acc),
        ])?;
        exp.save_row()?;
        println!("epoch {epoch}/{epochs} train_loss={train_loss:.4} val_acc={val_acc:.4}");
    }

    let checkpoint = exp
        .layout()
        .checkpoints_dir()
        .join(format!("{}.txt", exp.run_id()));
    std::fs::write(
        &checkpoint,
        format!("w = {:?}\nb = {:?}\n", model.w, model.b),
    )?;
    exp.append_log(&format!("saved checkpoint {}", checkpoint.display()))?;
    exp.set_finished()?;
    Ok(())
}
