//! The query language of issue 13 over a fixed set of twenty experiments: a table of queries
//! and the experiments they select, a table of bad queries and where their errors point, sort
//! orders, and properties (printing a query and parsing it back gives the same query; no input
//! makes the parser panic).

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use expman::query::{
    self, Aggregate, Catalog, FieldPath, FieldValue, ParseOptions, Query, Record, SortKey,
};
use proptest::prelude::*;

/// A parameter value as an experiment recorded it.
#[derive(Clone, Copy)]
enum P {
    I(i64),
    F(f64),
    B(bool),
    S(&'static str),
}

/// When an experiment was created: as `config.json` writes it, or as a time.
#[derive(Clone, Copy)]
enum Created {
    Rfc3339(&'static str),
    Unix(u64),
}

#[derive(Clone)]
struct Exp {
    name: &'static str,
    status: &'static str,
    tags: Vec<String>,
    description: &'static str,
    command: &'static str,
    host: &'static str,
    created: Created,
    runs: i64,
    params: Vec<(&'static str, P)>,
    /// Column and its last, min, max and count.
    metrics: Vec<(&'static str, [f64; 4])>,
}

impl Record for Exp {
    fn field(&self, path: &FieldPath) -> FieldValue<'_> {
        match path {
            FieldPath::Name => self.name.into(),
            FieldPath::Id => format!("{}_2025-09-25__12-00-00", self.name).into(),
            FieldPath::Status => self.status.into(),
            FieldPath::Tag => self.tags.as_slice().into(),
            FieldPath::Description => self.description.into(),
            FieldPath::Command => self.command.into(),
            FieldPath::Host => self.host.into(),
            FieldPath::Created => match self.created {
                Created::Rfc3339(text) => text.into(),
                Created::Unix(secs) => (UNIX_EPOCH + Duration::from_secs(secs)).into(),
            },
            FieldPath::Runs => self.runs.into(),
            FieldPath::Param(name) => match self.params.iter().find(|(n, _)| n == name) {
                Some((_, P::I(n))) => FieldValue::Int(*n),
                Some((_, P::F(x))) => FieldValue::Float(*x),
                Some((_, P::B(b))) => FieldValue::Bool(*b),
                Some((_, P::S(s))) => (*s).into(),
                None => FieldValue::Missing,
            },
            FieldPath::Metric { column, aggregate } => {
                let Some((_, summary)) = self.metrics.iter().find(|(c, _)| c == column) else {
                    return FieldValue::Missing;
                };
                match aggregate {
                    Aggregate::Last => summary[0].into(),
                    Aggregate::Min => summary[1].into(),
                    Aggregate::Max => summary[2].into(),
                    Aggregate::Count => (summary[3] as i64).into(),
                    _ => FieldValue::Missing,
                }
            }
            _ => FieldValue::Missing,
        }
    }
}

/// 2025-09-27T12:00:00Z: the "now" of every query here.
const NOW: u64 = 1_758_974_400;

fn options() -> ParseOptions {
    ParseOptions::new()
        .now(UNIX_EPOCH + Duration::from_secs(NOW))
        .utc_offset(0)
}

fn exp(name: &'static str, status: &'static str, tags: &[&str]) -> Exp {
    Exp {
        name,
        status,
        tags: tags.iter().map(|t| t.to_string()).collect(),
        description: "",
        command: "python train.py",
        host: "gpu-01",
        created: Created::Rfc3339("2025-09-25T12:00:00Z"),
        runs: 1,
        params: Vec::new(),
        metrics: Vec::new(),
    }
}

fn val_acc(last: f64, min: f64, max: f64, count: f64) -> (&'static str, [f64; 4]) {
    ("val_acc", [last, min, max, count])
}

/// Twenty experiments, a to t, each there to make some query of the table below hold or fail.
fn experiments() -> Vec<Exp> {
    use P::*;
    vec![
        Exp {
            description: "baseline on CIFAR-10",
            command: "python train.py --depth 18",
            created: Created::Rfc3339("2025-09-20T10:00:00Z"),
            params: vec![("lr", F(1e-4)), ("depth", I(18)), ("optimizer", S("adam"))],
            metrics: vec![
                val_acc(0.90, 0.50, 0.91, 100.0),
                ("loss", [0.2, 0.1, 2.3, 100.0]),
            ],
            ..exp("resnet18_a", "Finished", &["cnn", "baseline"])
        },
        Exp {
            host: "gpu-02",
            created: Created::Rfc3339("2025-09-26T10:00:00+02:00"),
            runs: 2,
            params: vec![("lr", F(5e-4)), ("depth", I(50)), ("optimizer", S("Adam"))],
            metrics: vec![
                val_acc(0.80, 0.40, 0.86, 40.0),
                ("loss", [0.5, 0.4, 2.3, 40.0]),
            ],
            ..exp("resnet50_b", "Error", &["CNN"])
        },
        Exp {
            created: Created::Rfc3339("2025-09-26T13:00:00Z"),
            params: vec![("lr", F(1e-2)), ("depth", I(50)), ("optimizer", S("sgd"))],
            metrics: vec![val_acc(0.91, 0.45, 0.92, 100.0)],
            ..exp("resnet50_c", "Finished", &["cnn"])
        },
        Exp {
            created: Created::Unix(NOW - 3600),
            params: vec![("lr", F(1e-4)), ("depth", I(101))],
            metrics: vec![val_acc(0.88, 0.30, 0.90, 20.0)],
            ..exp("ResNet101_d", "Running", &["cnn"])
        },
        Exp {
            params: vec![("lr", F(1e-4)), ("depth", I(34))],
            metrics: vec![val_acc(0.83, 0.41, 0.84, 100.0)],
            ..exp("resnet34_e", "Finished", &["cnn"])
        },
        Exp {
            params: vec![("lr", F(2e-4))],
            metrics: vec![val_acc(0.87, 0.5, 0.88, 100.0)],
            ..exp("resnet-vit_f", "Finished", &["vit"])
        },
        Exp {
            params: vec![("lr", F(1e-4))],
            metrics: vec![val_acc(0.92, 0.6, 0.93, 100.0)],
            ..exp("vit_base_g", "Finished", &["vit"])
        },
        Exp {
            params: vec![("lr", F(1e-4))],
            metrics: vec![val_acc(0.94, 0.6, 0.95, 100.0)],
            ..exp("my_resnet_h", "Finished", &["cnn"])
        },
        Exp {
            metrics: vec![val_acc(0.89, 0.5, 0.90, 100.0)],
            ..exp("resnet18_nolr_i", "Finished", &["cnn"])
        },
        Exp {
            params: vec![("lr", F(1e-4))],
            ..exp("resnet18_nometrics_j", "Finished", &["cnn"])
        },
        Exp {
            params: vec![("lr", F(1e-4))],
            metrics: vec![val_acc(0.9, 0.5, 0.9, 100.0)],
            ..exp("resnet18_mlp_k", "Finished", &["mlp"])
        },
        Exp {
            params: vec![("lr", S("0.0001"))],
            metrics: vec![val_acc(0.85, 0.5, 0.87, 60.0)],
            ..exp("resnet18_strlr_l", "Error", &["cnn"])
        },
        Exp {
            runs: 0,
            params: vec![("lr", F(1e-4))],
            ..exp("resnet18_pending_m", "Pending", &["cnn"])
        },
        Exp {
            description: "LR sweep on CIFAR-10",
            params: vec![("lr", F(0.001)), ("depth", I(18))],
            metrics: vec![val_acc(0.7, 0.2, 0.7, 50.0)],
            ..exp("cifar_sweep_n", "Finished", &["sweep"])
        },
        Exp {
            description: "LR sweep on CIFAR-10",
            params: vec![("lr", F(1e-1))],
            metrics: vec![val_acc(0.3, 0.1, 0.3, 50.0)],
            ..exp("cifar_sweep_o", "Finished", &["sweep"])
        },
        Exp {
            description: "quick check",
            params: vec![("lr", F(0.1))],
            metrics: vec![val_acc(0.5, 0.5, 0.5, 1.0)],
            ..exp("mnist_debug_p", "Error", &["debug", "mlp"])
        },
        Exp {
            command: "python finetune.py --model bert-base",
            host: "tpu-01",
            params: vec![
                ("optimizer", S("AdamW")),
                ("lr", F(2e-5)),
                ("depth", I(12)),
                ("use_bn", B(false)),
            ],
            metrics: vec![("f1", [0.88, 0.5, 0.89, 10.0])],
            ..exp("bert_finetune_q", "Finished", &[])
        },
        Exp {
            created: Created::Rfc3339("2025-09-27T09:30:00Z"),
            params: vec![
                ("optimizer.lr", F(3e-4)),
                ("optimizer.name", S("adamw")),
                ("seed", I(1)),
            ],
            metrics: vec![("loss", [2.1, 2.0, 5.0, 1000.0])],
            ..exp("gpt_small_r", "Running", &["transformer"])
        },
        Exp {
            params: vec![("lr", F(1.0))],
            metrics: vec![
                val_acc(0.1, 0.1, 0.1, 10.0),
                ("loss", [f64::NAN, 0.5, 3.0, 10.0]),
            ],
            ..exp("diverged_s", "Error", &["cnn"])
        },
        Exp {
            created: Created::Rfc3339("2024-01-15T12:00:00Z"),
            runs: 5,
            params: vec![("lr", F(1e-4)), ("big", I(9_007_199_254_740_993))],
            metrics: vec![val_acc(0.8, 0.5, 0.82, 100.0)],
            ..exp("old_t", "Finished", &["legacy"])
        },
    ]
}

/// The last letter of each selected experiment's name, in order: "abf" for a, b and f.
fn selected(query: &str) -> String {
    let query = Query::parse_with(query, options())
        .unwrap_or_else(|e| panic!("{query:?} does not parse:\n{}", e.render()));
    experiments()
        .iter()
        .filter(|e| query.matches(*e))
        .map(|e| e.name.chars().last().unwrap())
        .collect()
}

const EVERYONE: &str = "abcdefghijklmnopqrst";

/// Every experiment but those in `but`.
fn all_but(but: &str) -> String {
    EVERYONE.chars().filter(|c| !but.contains(*c)).collect()
}

#[test]
fn the_issues_example() {
    assert_eq!(
        selected(
            r#"params.lr < 1e-3 and metrics.val_acc.max >= 0.85 and (tag = cnn or tag = vit) and status in (finished, error) and name ~ "resnet*""#
        ),
        "abfl"
    );
}

#[test]
fn table_of_queries() {
    let table: &[(&str, String)] = &[
        // Empty, and search words as the board's filter always took them.
        ("", EVERYONE.into()),
        ("   ", EVERYONE.into()),
        ("resnet", "abcdefhijklm".into()),
        ("RESNET", "abcdefhijklm".into()),
        ("resnet cifar", "a".into()),
        ("cifar", "ano".into()),
        ("sweep", "no".into()),
        ("error", "blps".into()),
        ("status:run", "dr".into()),
        ("tag:mlp", "kp".into()),
        ("tag:CN", "abcdehijlms".into()),
        ("\"lr sweep\"", "no".into()),
        ("2025-09-25__12", EVERYONE.into()),
        ("resnet or vit", "abcdefghijklm".into()),
        ("resnet -vit", "f".into()),
        ("resnet not vit", "abcdehijklm".into()),
        // Tags: any tag.
        ("tag = cnn", "abcdehijlms".into()),
        ("tag = CNN", "abcdehijlms".into()),
        ("tag != cnn", all_but("abcdehijlms")),
        ("not tag = cnn", all_but("abcdehijlms")),
        ("tag in (vit, transformer)", "fgr".into()),
        ("tag not in (cnn, vit, sweep)", "kpqrt".into()),
        ("tag ~ *l*", "akpt".into()),
        // Status, case ignored.
        ("status = finished", all_but("bdlmprs")),
        ("status = FINISHED", all_but("bdlmprs")),
        ("status in (running, pending)", "dmr".into()),
        ("status != finished", "bdlmprs".into()),
        ("status ~ 'Run*'", "dr".into()),
        // Globs over the whole value.
        ("name ~ resnet*", "abcdefijklm".into()),
        ("name ~ *_[a-c]", "abc".into()),
        ("name ~ 'resnet??_?'", "abce".into()),
        ("name ~ *_[!a-r]", "st".into()),
        ("name !~ *resnet*", "gnopqrst".into()),
        ("name == resnet18_a", "a".into()),
        ("name < c", "q".into()),
        ("description ~ '*cifar*'", "ano".into()),
        ("command ~ '*--model bert*'", "q".into()),
        ("host = gpu-02 or host = TPU-01", "bq".into()),
        ("id ~ 'old_t_*'", "t".into()),
        // Precedence: not > and > or; keywords in any case.
        ("tag = vit or tag = mlp and status = error", "fgp".into()),
        ("TAG = vit OR Tag = mlp AND STATUS = error", "fgp".into()),
        ("(tag = vit or tag = mlp) and status = error", "p".into()),
        ("not tag = cnn and status = error", "p".into()),
        ("not (tag = cnn and status = error)", all_but("bls")),
        ("not not tag = vit", "fg".into()),
        ("tag = vit status = finished", "fg".into()),
        // Numbers: ints and floats mixed, strings that read as numbers.
        ("params.depth = 18", "an".into()),
        ("params.depth = 18.0", "an".into()),
        ("params.depth = 1.8e1", "an".into()),
        ("params.depth = '18'", "an".into()),
        ("params.depth > 34", "bcd".into()),
        ("params.depth >= 34", "bcde".into()),
        ("params.depth ~ 1*", "adnq".into()),
        ("params.depth < -1", "".into()),
        ("params.lr <= 1e-4", "adeghjklmqt".into()),
        ("params.lr = 0.0001", "adeghjklmt".into()),
        ("params.lr > 0.05", "ops".into()),
        ("params.optimizer.lr < 1e-3", "r".into()),
        ("params.big = 9007199254740993", "t".into()),
        ("params.big = 9007199254740992", "".into()),
        ("params.big > 9007199254740992", "t".into()),
        // Parameters as text, case ignored; booleans as true/false.
        ("params.optimizer = adam", "ab".into()),
        ("params.optimizer ~ adam*", "abq".into()),
        ("params.optimizer in (sgd, adamw)", "cq".into()),
        ("params.optimizer.name = AdamW", "r".into()),
        ("params.use_bn = false", "q".into()),
        ("params.use_bn = true", "".into()),
        ("params.lr = adam", "".into()),
        // Missing values: every comparison false, its negation true.
        ("params.optimizer != adam", all_but("ab")),
        ("params.lr < 1 or params.lr >= 1", all_but("ir")),
        ("params.seed ~ *", "r".into()),
        ("not params.seed ~ *", all_but("r")),
        ("params.nothing = 1", "".into()),
        ("params.nothing != 1", EVERYONE.into()),
        ("params.nothing not in (1, 2)", EVERYONE.into()),
        ("tag = anything", "".into()),
        ("metrics.val_acc.max >= 0.9", "acdghik".into()),
        ("metrics.val_acc.max < 0.9", "beflnopst".into()),
        ("metrics.val_acc.count = 100", "acefghikt".into()),
        ("metrics.f1.min = 0.5", "q".into()),
        // NaN equals nothing and is neither less nor greater.
        ("metrics.loss.last > 0", "abr".into()),
        ("metrics.loss.last != 0.2", all_but("a")),
        ("not metrics.loss.last > 0", all_but("abr")),
        ("metrics.loss.min = 0.5", "s".into()),
        ("runs >= 2", "bt".into()),
        ("runs = 0", "m".into()),
        ("runs in (0, 5)", "mt".into()),
        // Times at the precision written; relative to "now" (2025-09-27T12:00:00Z).
        ("created = 2025-09-26", "bc".into()),
        ("created > 2025-09-26", "dr".into()),
        ("created >= 2025-09-26", "bcdr".into()),
        ("created < 2025-09-26", all_but("bcdr")),
        ("created <= 2025-09-26", all_but("dr")),
        ("created != 2025-09-26", all_but("bc")),
        ("created > 2025-09-26T12:30", "cdr".into()),
        ("created <= 2025-09-26T08:00", all_but("cdr")),
        ("created = 2025-09-26T10:00+02:00", "b".into()),
        ("created >= '2025-09-26 13:00'", "cdr".into()),
        ("created = 2025-09", all_but("t")),
        ("created in (2024-01, 2025-09-20)", "at".into()),
        ("created > now-2h", "d".into()),
        ("created > now-3h", "dr".into()),
        ("created >= now-1w", all_but("at")),
        ("created < NOW-1w", "at".into()),
        ("created > now", "".into()),
    ];
    let mut failures = Vec::new();
    for (query, expected) in table {
        let got = selected(query);
        if &got != expected {
            failures.push(format!("{query:?}: expected {expected:?}, got {got:?}"));
        }
    }
    assert!(failures.is_empty(), "\n{}", failures.join("\n"));
}

#[test]
fn table_of_errors() {
    // (query, column, part of the message)
    let table = [
        ("params.lr <<< 1e-3", 12, "expected a value after `<`"),
        ("params.lr <", 12, "expected a value after `<`"),
        (
            "nme = resnet",
            1,
            "unknown field `nme`; did you mean `name`?",
        ),
        ("tags = cnn", 1, "did you mean `tag`?"),
        ("param.lr < 1", 1, "did you mean `params.lr`?"),
        (
            "lr < 0.1",
            1,
            "a parameter is `params.lr`, a metric `metrics.lr.last`",
        ),
        (
            "metrics.acc.mean > 1",
            13,
            "the summaries of a metric are last, min, max and count",
        ),
        ("metrics.acc > 1", 1, "needs a summary"),
        ("params. = 1", 1, "expected a parameter name"),
        ("status = finised", 10, "did you mean `finished`?"),
        (
            "status in (running, crashed)",
            21,
            "the statuses are pending, running, finished and error",
        ),
        (
            "runs > many",
            8,
            "expected a number for `runs`, found `many`",
        ),
        ("metrics.loss.min < 'low'", 20, "expected a number"),
        ("created > yesterday", 11, "expected a date (2025-09-26)"),
        ("created > -2h", 11, "`now-2h`"),
        ("created > 3d", 11, "`now-2h`"),
        ("created < 2025", 11, "expected a date"),
        ("created > now-2y", 11, "a number and a unit"),
        ("runs ~ 1*", 6, "`~` matches text, and `runs` is a number"),
        ("created !~ 2025*", 9, "is a time"),
        ("name ~ 'ab[c'", 11, "no closing `]`"),
        ("name ~ ab[c", 10, "no closing `]`"),
        (
            "(tag = cnn",
            11,
            "expected `)` to close the `(` at column 1",
        ),
        ("tag = cnn)", 10, "unexpected `)`"),
        ("tag = cnn and", 14, "expected a condition after `and`"),
        ("tag = cnn or", 13, "expected a condition after `or`"),
        ("and tag = cnn", 1, "expected a condition before `and`"),
        ("not", 4, "expected a condition after `not`"),
        ("()", 2, "expected a condition inside `()`"),
        ("status in finished", 11, "expected `(` after `in`"),
        ("status in (finished error)", 21, "expected `,` or `)`"),
        ("status in ()", 12, "expected a value after `(`"),
        ("name = 'abc", 8, "no closing '"),
        ("name = \"a\\d\"", 10, "unknown escape `\\d`"),
        ("a ! b", 3, "expected `!=` or `!~`"),
        (
            "params.lr 0.1",
            11,
            "expected an operator (= != < <= > >= ~ in) after `params.lr`",
        ),
        ("= 3", 1, "expected a field before `=`"),
        ("\"name\" = x", 1, "field names are written without quotes"),
        ("tag = cnn, vit", 10, "unexpected `,`"),
        ("name = or", 8, "quote it if you mean the word"),
        ("name = a = b", 10, "join conditions with `and` or `or`"),
        ("é = x", 1, "unknown field `é`"),
        ("tag = 'é' and é < 1", 15, "unknown field `é`"),
    ];
    let mut failures = Vec::new();
    for (query, column, message) in table {
        match Query::parse_with(query, options()) {
            Ok(q) => failures.push(format!("{query:?} parsed as {q}")),
            Err(e) if e.column() != column || !e.message().contains(message) => {
                failures.push(format!(
                    "{query:?}: expected column {column} and {message:?}, got\n{}",
                    e.render()
                ))
            }
            Err(_) => {}
        }
    }
    assert!(failures.is_empty(), "\n{}", failures.join("\n"));
}

#[test]
fn errors_render_a_caret_and_become_crate_errors() {
    let err = Query::parse("params.lr <<< 1e-3").unwrap_err();
    assert_eq!(err.to_string(), "column 12: expected a value after `<`");
    assert_eq!(
        err.render(),
        "column 12: expected a value after `<`\nparams.lr <<< 1e-3\n           ^"
    );
    assert_eq!((err.offset(), err.len()), (11, 1));
    let err = Query::parse("tag = cnn and nme = x").unwrap_err();
    assert_eq!(
        format!("{err:#}"),
        "column 15: unknown field `nme`; did you mean `name`?\ntag = cnn and nme = x\n              ^^^"
    );
    let crate_error: expman::Error = err.into();
    assert!(matches!(
        crate_error.kind(),
        expman::ErrorKind::Config { .. }
    ));
    assert!(crate_error.to_string().contains("^^^"), "{crate_error}");
}

#[test]
fn fields_lists_what_a_query_reads() {
    let query = Query::parse(
        "params.lr < 1e-3 and (metrics.val_acc.max > 0.8 or params.lr > 1) and not tag = x",
    )
    .unwrap();
    assert_eq!(
        query.fields(),
        [
            FieldPath::Param("lr".into()),
            FieldPath::Metric {
                column: "val_acc".into(),
                aggregate: Aggregate::Max
            },
            FieldPath::Tag,
        ]
    );
    assert_eq!(
        Query::parse("resnet status:run").unwrap().fields(),
        [
            FieldPath::Name,
            FieldPath::Id,
            FieldPath::Status,
            FieldPath::Tag,
            FieldPath::Description,
        ]
    );
    assert!(Query::parse("").unwrap().fields().is_empty());
    assert!(Query::parse("").unwrap().is_empty());
}

#[test]
fn check_against_the_fields_that_exist() {
    let catalog = Catalog::new(["lr", "depth", "optimizer.lr"], ["val_acc", "loss"]);
    let ok =
        Query::parse("params.lr < 1 and metrics.loss.min < 1 and resnet and name = x").unwrap();
    assert_eq!(ok.check(&catalog), Ok(()));
    let err = Query::parse("name = x and metrics.val_ac.max > 0.9")
        .unwrap()
        .check(&catalog)
        .unwrap_err();
    assert_eq!(err.column(), 14);
    assert_eq!(
        err.message(),
        "no experiment has `metrics.val_ac.max`; did you mean `metrics.val_acc.max`?"
    );
    let err = Query::parse("params.zzz = 1")
        .unwrap()
        .check(&catalog)
        .unwrap_err();
    assert_eq!(err.message(), "no experiment has `params.zzz`");
}

#[test]
fn completion() {
    let catalog = Catalog::new(["lr", "optimizer.lr"], ["val_acc", "loss"]);
    assert_eq!(catalog.complete("st"), ["status"]);
    assert_eq!(catalog.complete("C"), ["command", "created"]);
    assert_eq!(catalog.complete("params.o"), ["params.optimizer.lr"]);
    assert_eq!(
        catalog.complete("metrics.l"),
        [
            "metrics.loss.last",
            "metrics.loss.min",
            "metrics.loss.max",
            "metrics.loss.count"
        ]
    );
    assert_eq!(
        catalog.complete("").len(),
        query::FIXED_FIELDS.len() + 2 + 2 * 4
    );
    assert!(catalog.complete("zzz").is_empty());
}

fn sorted(keys: &[&str]) -> String {
    let keys: Vec<SortKey> = keys.iter().map(|k| SortKey::parse(k).unwrap()).collect();
    let mut records = experiments();
    query::sort(&mut records, &keys);
    let by_sort: String = records
        .iter()
        .map(|e| e.name.chars().last().unwrap())
        .collect();
    // `compare` agrees with `sort`.
    let mut again = experiments();
    again.sort_by(|a, b| query::compare(a, b, &keys));
    let by_compare: String = again
        .iter()
        .map(|e| e.name.chars().last().unwrap())
        .collect();
    assert_eq!(by_sort, by_compare, "{keys:?}");
    by_sort
}

#[test]
fn sorting_puts_missing_values_last_in_both_directions() {
    // Ties (d, i, k at 0.90) keep their order; NaN after numbers; missing last.
    assert_eq!(sorted(&["-metrics.val_acc.max"]), "hgcadikflbetnposjmqr");
    assert_eq!(sorted(&["metrics.val_acc.max"]), "sopnteblfdikacghjmqr");
    assert_eq!(sorted(&["metrics.loss.last"]), "abrscdefghijklmnopqt");
    assert_eq!(sorted(&["-metrics.loss.last"]), "rbascdefghijklmnopqt");
    // Names ignore case: ResNet101_d sorts among the resnets.
    assert_eq!(sorted(&["name"]), "qnosrphtfdakijmlebcg");
    // The string "0.0001" sorts as the number it reads as; numbers before text.
    assert_eq!(sorted(&["params.lr"]), "qadeghjklmtfbncopsir");
    // Several keys: status, then the most runs first.
    assert_eq!(sorted(&["status", "-runs"]), "blpstacefghijknoqmdr");
    // Times, from RFC 3339 text and from SystemTime alike.
    assert_eq!(sorted(&["-created"]), "drcbefghijklmnopqsat");
}

#[test]
fn sort_keys_parse_and_print() {
    let key = SortKey::parse("-metrics.val_acc.max").unwrap();
    assert!(key.descending());
    assert_eq!(key.to_string(), "-metrics.val_acc.max");
    assert_eq!(SortKey::parse(" +Name ").unwrap().to_string(), "name");
    let err = SortKey::parse("-nme").unwrap_err();
    assert_eq!(
        (err.column(), err.message()),
        (2, "unknown field `nme`; did you mean `name`?")
    );
    assert!(
        SortKey::parse("-")
            .unwrap_err()
            .message()
            .contains("expected a field")
    );
}

#[test]
fn relative_times_are_fixed_at_parse_time() {
    let record = experiments().remove(3); // created an hour before NOW
    let at = |secs: u64| ParseOptions::new().now(UNIX_EPOCH + Duration::from_secs(secs));
    assert!(
        Query::parse_with("created > now-2h", at(NOW))
            .unwrap()
            .matches(&record)
    );
    assert!(
        !Query::parse_with("created > now-2h", at(NOW + 7200))
            .unwrap()
            .matches(&record)
    );
    // `Query::parse` reads against the real clock.
    let created = UNIX_EPOCH + Duration::from_secs(NOW - 3600);
    let past = SystemTime::now() > created;
    assert_eq!(
        Query::parse("created < now").unwrap().matches(&record),
        past
    );
}

#[test]
fn queries_and_sort_keys_can_be_shared_between_threads() {
    fn shareable<T: Send + Sync + Clone + 'static>() {}
    shareable::<Query>();
    shareable::<SortKey>();
    shareable::<query::QueryError>();
    shareable::<Catalog>();
}

#[test]
fn printing_is_canonical() {
    let cases = [
        ("NAME==x AND tag<>y", "name = x and tag != y"),
        ("a (b OR c)", "a and (b or c)"),
        ("not (a and b) or c", "not (a and b) or c"),
        ("status IN (Finished,error,)", "status in (Finished, error)"),
        ("name ~ 'a b' and \"it's\"", "name ~ \"a b\" and \"it's\""),
        ("PARAMS.lr<=1e-3", "params.lr <= 1e-3"),
        ("created>now-2h", "created > now-2h"),
        ("'or'", "\"or\""),
    ];
    for (query, canonical) in cases {
        let parsed = Query::parse(query).unwrap();
        assert_eq!(parsed.to_string(), canonical);
        assert_eq!(Query::parse(canonical).unwrap(), parsed);
    }
    assert_eq!(
        "tag = x".parse::<Query>().unwrap(),
        Query::parse("TAG = x").unwrap()
    );
}

// Property tests: generated queries from the grammar, and arbitrary text.

fn keyword(word: &'static str) -> impl Strategy<Value = String> {
    prop_oneof![
        Just(word.to_string()),
        Just(word.to_uppercase()),
        Just(format!("{}{}", &word[..1].to_uppercase(), &word[1..])),
    ]
}

fn space() -> impl Strategy<Value = &'static str> {
    prop_oneof![Just(" "), Just("  "), Just("\t"), Just(" \n ")]
}

/// A quoted string of any characters but `[` (a glob would reject an unclosed one).
fn quoted() -> impl Strategy<Value = String> {
    ("[^\\[]{0,8}", any::<bool>()).prop_map(|(s, single)| {
        let quote = if single { '\'' } else { '"' };
        let mut out = String::from(quote);
        for c in s.chars() {
            match c {
                '\\' => out.push_str("\\\\"),
                '\n' => out.push_str("\\n"),
                '\t' => out.push_str("\\t"),
                c if c == quote => {
                    out.push('\\');
                    out.push(c);
                }
                c => out.push(c),
            }
        }
        out.push(quote);
        out
    })
}

fn is_keyword(word: &str) -> bool {
    ["and", "or", "not", "in"]
        .iter()
        .any(|k| word.eq_ignore_ascii_case(k))
}

fn bare_word() -> impl Strategy<Value = String> {
    "[a-zA-Z_][a-zA-Z0-9_.*?:-]{0,7}".prop_filter("not a keyword or a field path", |w| {
        let lower = w.to_lowercase();
        !is_keyword(w) && !lower.starts_with("params.") && !lower.starts_with("metrics.")
    })
}

fn number() -> impl Strategy<Value = String> {
    prop_oneof![
        any::<i64>().prop_map(|n| n.to_string()),
        any::<f64>()
            .prop_filter("finite", |x| x.is_finite())
            .prop_map(|x| x.to_string()),
        (-9i32..9, -12i32..12).prop_map(|(m, e)| format!("{m}e{e}")),
        Just("1e-3".to_string()),
        Just("-.5".to_string()),
    ]
}

fn date() -> impl Strategy<Value = String> {
    prop_oneof![
        (2000u32..2100, 1u32..13, 1u32..29).prop_map(|(y, m, d)| format!("{y}-{m:02}-{d:02}")),
        (2000u32..2100, 1u32..13).prop_map(|(y, m)| format!("{y}-{m:02}")),
        (1u32..29, 0u32..24, 0u32..60)
            .prop_map(|(d, h, m)| format!("2025-09-{d:02}T{h:02}:{m:02}")),
        Just("'2025-09-26 14:30:15.5+02:00'".to_string()),
        (
            1u32..100,
            prop_oneof![Just("s"), Just("m"), Just("h"), Just("d"), Just("w")]
        )
            .prop_map(|(n, u)| format!("now-{n}{u}")),
        Just("now".to_string()),
    ]
}

fn value() -> impl Strategy<Value = String> {
    prop_oneof![bare_word(), quoted(), number()]
}

fn ordering() -> impl Strategy<Value = &'static str> {
    prop_oneof![
        Just("="),
        Just("=="),
        Just("!="),
        Just("<>"),
        Just("<"),
        Just("<="),
        Just(">"),
        Just(">="),
    ]
}

fn any_op() -> impl Strategy<Value = &'static str> {
    prop_oneof![ordering(), Just("~"), Just("!~")]
}

fn list(item: impl Strategy<Value = String>) -> impl Strategy<Value = String> {
    (
        proptest::collection::vec(item, 1..4),
        keyword("in"),
        proptest::option::of(keyword("not")),
    )
        .prop_map(|(items, kw_in, not)| {
            let not = not.map(|n| format!("{n} ")).unwrap_or_default();
            format!("{not}{kw_in} ({})", items.join(", "))
        })
}

fn comparison() -> impl Strategy<Value = String> {
    let text_field = prop_oneof![
        Just("name"),
        Just("ID"),
        Just("tag"),
        Just("description"),
        Just("command"),
        Just("Host"),
        Just("params.lr"),
        Just("PARAMS.optimizer.lr"),
    ];
    let number_field = prop_oneof![
        Just("runs"),
        Just("metrics.val_acc.max"),
        Just("metrics.loss.COUNT")
    ];
    let status = prop_oneof![
        Just("finished".to_string()),
        Just("Error".to_string()),
        Just("'RUNNING'".to_string()),
        Just("pending".to_string()),
    ];
    prop_oneof![
        (text_field.clone(), space(), any_op(), space(), value())
            .prop_map(|(f, s1, op, s2, v)| format!("{f}{s1}{op}{s2}{v}")),
        (text_field, list(value())).prop_map(|(f, l)| format!("{f} {l}")),
        (number_field.clone(), ordering(), number()).prop_map(|(f, op, v)| format!("{f} {op} {v}")),
        (number_field, list(number())).prop_map(|(f, l)| format!("{f} {l}")),
        (ordering(), date()).prop_map(|(op, d)| format!("created {op} {d}")),
        (prop_oneof![Just("="), Just("!=")], status.clone())
            .prop_map(|(op, s)| format!("status {op} {s}")),
        list(status).prop_map(|l| format!("status {l}")),
    ]
}

fn atom() -> impl Strategy<Value = String> {
    prop_oneof![
        3 => comparison(),
        1 => bare_word(),
        1 => quoted(),
        1 => prop_oneof![Just("status:run".to_string()), Just("TAG:cn".to_string())],
    ]
}

fn query_text() -> impl Strategy<Value = String> {
    atom().prop_recursive(5, 32, 3, |inner| {
        prop_oneof![
            (inner.clone(), keyword("and"), inner.clone())
                .prop_map(|(a, k, b)| format!("{a} {k} {b}")),
            (inner.clone(), keyword("or"), inner.clone())
                .prop_map(|(a, k, b)| format!("{a} {k} {b}")),
            (inner.clone(), inner.clone()).prop_map(|(a, b)| format!("{a} {b}")),
            (keyword("not"), inner.clone()).prop_map(|(k, a)| format!("{k} {a}")),
            inner.prop_map(|a| format!("({a})")),
        ]
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    /// Printing a parsed query and parsing it again gives the same query, which selects the
    /// same experiments; printing is a fixed point.
    #[test]
    fn print_then_parse_is_the_same_query(text in query_text()) {
        let parsed = Query::parse_with(&text, options())
            .map_err(|e| TestCaseError::fail(format!("{text:?}:\n{}", e.render())))?;
        let printed = parsed.to_string();
        let again = Query::parse_with(&printed, options())
            .map_err(|e| TestCaseError::fail(format!("{printed:?} (from {text:?}):\n{}", e.render())))?;
        prop_assert_eq!(&again, &parsed, "{:?} printed as {:?}", text, printed);
        prop_assert_eq!(again.to_string(), printed.clone());
        for record in experiments() {
            prop_assert_eq!(again.matches(&record), parsed.matches(&record), "{:?}", printed);
        }
        prop_assert_eq!(again.fields(), parsed.fields());
    }

    /// No text makes the parser panic; whatever parses also round-trips.
    #[test]
    fn arbitrary_text_never_panics(text in prop_oneof![
        any::<String>(),
        "[a-z0-9 ()=!<>~,'\"\\\\.*?\\[\\]:-]{0,40}",
        "(params\\.lr|name|tag|status|created|not|and|or|in|\\(|\\)|,|=|<|~|'x'|1e-3|now-2h| ){0,16}",
    ]) {
        match Query::parse_with(&text, options()) {
            Ok(parsed) => {
                let printed = parsed.to_string();
                let again = Query::parse_with(&printed, options()).map_err(|e| {
                    TestCaseError::fail(format!("{printed:?} (from {text:?}):\n{}", e.render()))
                })?;
                prop_assert_eq!(again, parsed);
            }
            Err(err) => {
                prop_assert!(err.offset() + err.len() <= text.len());
                prop_assert!(text.is_char_boundary(err.offset()));
                prop_assert!(err.render().contains('^'));
            }
        }
    }
}
