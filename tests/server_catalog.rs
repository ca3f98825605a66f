//! The server's catalog endpoints (issue 13) over real HTTP on 127.0.0.1: params, metric
//! summaries, command and host in the listing (re-sent incrementally when a table grows),
//! per-run params and metrics in the details, `GET /api/query` and `GET /api/fields`, and the
//! access rules on the new endpoints.
#![cfg(feature = "server")]

mod catalog_support;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use catalog_support::sweep;
use expman::Experiment;
use expman::server::{Server, ServerOptions};
use serde_json::{Value as Json, json};

fn get_with(addr: SocketAddr, path: &str, extra: &str) -> (u16, Json) {
    let mut stream = TcpStream::connect(addr).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    write!(stream, "GET {path} HTTP/1.0\r\nHost: {addr}\r\n{extra}\r\n").unwrap();
    let mut response = Vec::new();
    stream.read_to_end(&mut response).unwrap();
    let text = String::from_utf8(response).unwrap();
    let (head, body) = text.split_once("\r\n\r\n").unwrap();
    let status = head.split_whitespace().nth(1).unwrap().parse().unwrap();
    (status, serde_json::from_str(body).unwrap_or(Json::Null))
}

fn get(addr: SocketAddr, path: &str) -> (u16, Json) {
    get_with(addr, path, "")
}

fn start(base: &std::path::Path) -> Server {
    let options = ServerOptions {
        port: 0,
        ..ServerOptions::default()
    };
    Server::start(base, &options).unwrap()
}

fn experiment<'a>(listing: &'a Json, name: &str) -> &'a Json {
    listing["experiments"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["name"] == name)
        .unwrap_or_else(|| panic!("{name} not in {listing}"))
}

#[test]
fn listing_carries_params_metrics_command_and_host() {
    let base = tempfile::tempdir().unwrap();
    let made = sweep(base.path());
    let server = start(base.path());
    let addr = server.addr();
    let (status, listing) = get(addr, "/api/experiments");
    assert_eq!(status, 200);
    let b = experiment(&listing, "resnet_b");
    assert_eq!(
        b["params"],
        json!({"lr": 0.01, "depth": 18, "model": "resnet", "batch_size": 32})
    );
    assert_eq!(
        b["metrics"]["val_acc"],
        json!({"last": 0.88, "min": 0.6, "max": 0.9, "count": 3, "min_step": 0.0, "max_step": 1.0})
    );
    assert_eq!(b["command"], "python train.py --name resnet_b");
    assert!(b["host"].as_str().is_some_and(|h| !h.is_empty()));
    assert!(
        b["metrics"].get("batch_size").is_none(),
        "config row is no metric"
    );

    // A growing table re-sends the experiment with its new summary.
    let version = listing["version"].as_u64().unwrap();
    let mut exp = Experiment::attach(&made[1].dir, "run_0001".parse().unwrap()).unwrap();
    exp.upd_row([("val_acc", expman::Value::from(f64::NAN))])
        .unwrap();
    exp.save_row().unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    let changed = loop {
        let (_, since) = get(addr, &format!("/api/experiments?since={version}"));
        if since["experiments"]
            .as_array()
            .is_some_and(|e| !e.is_empty())
        {
            break since;
        }
        assert!(
            Instant::now() < deadline,
            "the grown table was never re-sent"
        );
        std::thread::yield_now();
    };
    let b = experiment(&changed, "resnet_b");
    assert_eq!(b["metrics"]["val_acc"]["last"], "NaN");
    assert_eq!(b["metrics"]["val_acc"]["count"], 4);
    assert_eq!(changed["experiments"].as_array().unwrap().len(), 1);
    server.stop();
}

#[test]
fn details_runs_carry_their_params_and_metrics() {
    let base = tempfile::tempdir().unwrap();
    let made = sweep(base.path());
    // A second run with its own rows and no config row.
    let mut exp = Experiment::open(&made[0].dir).unwrap();
    exp.upd_row([("val_acc", expman::Value::from(0.3))])
        .unwrap();
    exp.save_row().unwrap();
    exp.upd_row([("val_acc", expman::Value::from(0.2))])
        .unwrap();
    exp.save_row().unwrap();
    exp.set_finished().unwrap();
    let server = start(base.path());
    let (status, details) = get(server.addr(), &format!("/api/experiments/{}", made[0].id));
    assert_eq!(status, 200, "{details}");
    let runs = details["runs"].as_array().unwrap();
    assert_eq!(runs.len(), 2, "{details}");
    assert_eq!(runs[0]["run_id"], "run_0001");
    assert_eq!(runs[0]["params"]["model"], "resnet");
    assert_eq!(runs[0]["params"]["lr"], 0.1);
    assert_eq!(runs[0]["metrics"]["val_acc"]["max"], 0.7);
    assert_eq!(runs[1]["run_id"], "run_0002");
    assert_eq!(runs[1]["params"], json!({"lr": 0.1, "depth": 18}));
    assert_eq!(runs[1]["metrics"]["val_acc"]["max"], 0.3);
    assert_eq!(details["summary"]["metrics"]["val_acc"]["last"], 0.2);
    server.stop();
}

#[test]
fn query_and_fields() {
    let base = tempfile::tempdir().unwrap();
    let made = sweep(base.path());
    let server = start(base.path());
    let addr = server.addr();
    let (status, hits) = get(
        addr,
        "/api/query?q=params.lr%20%3C%200.05%20and%20metrics.val_acc.max%20%3E%3D%200.8&tz=120",
    );
    assert_eq!(status, 200, "{hits}");
    // Listing order: newest first (vit_c was created after resnet_b).
    assert_eq!(hits, json!({"ids": [made[2].id, made[1].id]}));
    let (status, all) = get(addr, "/api/query?q=");
    assert_eq!(status, 200);
    assert_eq!(
        all["ids"].as_array().unwrap().len(),
        4,
        "empty q matches all"
    );

    let (status, error) = get(addr, "/api/query?q=name%20%3D%3D%3D%20x");
    assert_eq!(status, 400);
    assert!(
        error["error"].as_str().unwrap().contains("column"),
        "{error}"
    );
    assert!(error["start"].as_u64().unwrap() >= 5, "{error}");
    let (status, error) = get(addr, "/api/query?q=params.lrr%20%3C%201");
    assert_eq!(status, 400);
    assert_eq!(
        (&error["start"], &error["end"]),
        (&json!(0), &json!(10)),
        "{error}"
    );
    assert!(
        error["error"].as_str().unwrap().contains("params.lr"),
        "{error}"
    );
    // Offsets count characters, not bytes.
    let (status, error) = get(addr, "/api/query?q=%C3%A9%C3%A9%20%3D%3D%3D");
    assert_eq!(status, 400);
    assert!(error["start"].as_u64().unwrap() <= 6, "{error}");
    let (status, _) = get(addr, "/api/query?q=x&tz=abc");
    assert_eq!(status, 400);
    // A day's offset is no time zone: refused as such, not as a bad date in the query.
    for tz in ["1440", "-1440"] {
        let (status, error) = get(addr, &format!("/api/query?q=created%3E2020-01-01&tz={tz}"));
        assert_eq!(status, 400);
        assert!(
            error["error"].as_str().unwrap().contains("no time zone"),
            "{error}"
        );
    }
    let (status, _) = get(addr, "/api/query?q=created%3E2020-01-01&tz=1439");
    assert_eq!(status, 200);

    let (status, fields) = get(addr, "/api/fields");
    assert_eq!(status, 200);
    let fields: Vec<&str> = fields["fields"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f.as_str().unwrap())
        .collect();
    for f in [
        "name",
        "status",
        "tag",
        "params.lr",
        "params.model",
        "metrics.val_acc.max",
    ] {
        assert!(fields.contains(&f), "{f} missing from {fields:?}");
    }
    // empty_d logged only its config row: with no metric column it has no config row (the
    // rule), so there batch_size is a metric.
    assert!(fields.contains(&"metrics.batch_size.max"));
    server.stop();
}

#[test]
fn new_endpoints_keep_the_access_rules() {
    let base = tempfile::tempdir().unwrap();
    sweep(base.path());
    let server = start(base.path());
    let addr = server.addr();
    for path in ["/api/query?q=", "/api/fields"] {
        let mut stream = TcpStream::connect(addr).unwrap();
        write!(
            stream,
            "GET {path} HTTP/1.0\r\nHost: evil.example:80\r\n\r\n"
        )
        .unwrap();
        let mut response = String::new();
        stream.read_to_string(&mut response).unwrap();
        assert!(
            response.starts_with("HTTP/1.1 403") || response.starts_with("HTTP/1.0 403"),
            "{response}"
        );
        let (status, _) = get_with(addr, path, "Origin: http://evil.example\r\n");
        assert_eq!(status, 403, "{path}");
    }
    server.stop();
}
