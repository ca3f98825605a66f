//! The layer's own guarantees over real sockets on 127.0.0.1, with short limits and
//! handlers made to panic or to block.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::{Mutex, mpsc};
use std::time::{Duration, Instant};

use super::{Handler, HttpServer, Limits, Reply, Request};

fn start(limits: Limits, handler: Box<Handler>) -> HttpServer {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1");
    HttpServer::start(listener, limits, handler).expect("start")
}

/// Sends `request` and reads until the server closes, for at most 10 s.
fn exchange(addr: SocketAddr, request: &[u8]) -> (u16, String) {
    let mut stream = TcpStream::connect(addr).expect("connect");
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let _ = stream.write_all(request);
    let mut answer = Vec::new();
    let _ = stream.read_to_end(&mut answer);
    let text = String::from_utf8_lossy(&answer).into_owned();
    let status = text
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    (status, text)
}

/// A connection whose reads give up after 10 s: a bound on a server that never answers (the
/// failure), not a wait for one that does.
fn connect(addr: SocketAddr) -> TcpStream {
    let stream = TcpStream::connect(addr).expect("connect");
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    stream
}

const GET: &[u8] = b"GET /x HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n";

fn ok(_: &Request) -> Reply {
    Reply {
        status: 200,
        content_type: "text/plain",
        body: b"fine".to_vec(),
        file: None,
    }
}

#[test]
fn a_panicking_handler_is_answered_500_and_no_capacity_is_lost() {
    let limits = Limits {
        handlers: 2,
        ..Limits::default()
    };
    let server = start(
        limits,
        Box::new(|r: &Request| {
            if r.target == "/boom" {
                panic!("boom on purpose");
            }
            ok(r)
        }),
    );
    // More panics than handler slots and than connections would survive if each cost one.
    for _ in 0..10 {
        let (status, text) = exchange(
            server.addr(),
            b"GET /boom HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n",
        );
        assert_eq!(status, 500, "{text}");
        assert!(text.contains("boom on purpose"), "{text}");
    }
    let (status, text) = exchange(server.addr(), GET);
    assert_eq!(status, 200, "{text}");
}

#[test]
fn slow_requests_time_out_and_oversized_heads_and_bodies_are_refused() {
    let limits = Limits {
        request_time: Duration::from_millis(300),
        head_bytes: 1024,
        body_bytes: 100,
        ..Limits::default()
    };
    let server = start(limits, Box::new(ok));
    let addr = server.addr();
    // A head that never ends, trickled a byte every 20 ms: the connection is ended when the
    // deadline passes, though every single read would have succeeded in time.
    let mut slow = TcpStream::connect(addr).unwrap();
    slow.set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    slow.write_all(b"GET /x HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ")
        .unwrap();
    let mut writer = slow.try_clone().unwrap();
    let trickle = std::thread::spawn(move || {
        for _ in 0..100 {
            if writer.write_all(b"a").is_err() {
                break;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        writer
    });
    let started = Instant::now();
    let mut answer = Vec::new();
    let _ = slow.read_to_end(&mut answer);
    let took = started.elapsed();
    let answer = String::from_utf8_lossy(&answer);
    assert!(took < Duration::from_millis(1500), "ended after {took:?}");
    assert!(
        answer.is_empty() || answer.starts_with("HTTP/1.1 408"),
        "{answer}"
    );
    drop(trickle.join());
    // Too many header bytes, and a body over the limit (refused unread).
    let big = format!(
        "GET /x HTTP/1.0\r\nHost: 127.0.0.1\r\nX-Big: {}\r\n\r\n",
        "a".repeat(2000)
    );
    assert_eq!(exchange(addr, big.as_bytes()).0, 431);
    let (status, text) = exchange(
        addr,
        b"POST /x HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 18446744073709551615\r\n\r\n",
    );
    assert_eq!(status, 413, "{text}");
    assert_eq!(
        exchange(
            addr,
            b"POST /x HTTP/1.1\r\nHost: 1\r\nContent-Length: 99999999999999999999999\r\n\r\n"
        )
        .0,
        400
    );
    assert_eq!(
        exchange(
            addr,
            b"POST /x HTTP/1.1\r\nHost: 1\r\nTransfer-Encoding: chunked\r\n\r\n"
        )
        .0,
        501
    );
    // A body within the limit is read whole.
    assert_eq!(
        exchange(
            addr,
            b"POST /x HTTP/1.0\r\nHost: 1\r\nContent-Length: 5\r\n\r\nhello"
        )
        .0,
        200
    );
}

#[test]
fn keep_alive_serves_several_requests_on_one_connection() {
    let server = start(Limits::default(), Box::new(ok));
    let mut stream = connect(server.addr());
    // Two pipelined requests, then one that closes.
    stream
        .write_all(
            b"GET /a HTTP/1.1\r\nHost: 1\r\n\r\nGET /b HTTP/1.1\r\nHost: 1\r\n\r\n\
              GET /c HTTP/1.1\r\nHost: 1\r\nConnection: close\r\n\r\n",
        )
        .unwrap();
    let mut answer = Vec::new();
    stream.read_to_end(&mut answer).unwrap();
    let answer = String::from_utf8_lossy(&answer);
    assert_eq!(answer.matches("HTTP/1.1 200 OK").count(), 3, "{answer}");
}

#[test]
fn at_the_connection_limit_waiting_clients_are_evicted_and_busy_ones_refused() {
    let limits = Limits {
        connections: 4,
        handlers: 4,
        ..Limits::default()
    };
    let (release_tx, release_rx) = mpsc::channel::<()>();
    let release_rx = Mutex::new(release_rx);
    let (entered_tx, entered_rx) = mpsc::channel::<()>();
    let entered_tx = Mutex::new(entered_tx);
    let server = start(
        limits,
        Box::new(move |r: &Request| {
            if r.target == "/block" {
                let _ = entered_tx.lock().unwrap().send(());
                let _ = release_rx
                    .lock()
                    .unwrap()
                    .recv_timeout(Duration::from_secs(20));
            }
            ok(r)
        }),
    );
    let addr = server.addr();
    // Four idle connections (waiting on their client) fill the limit; a fifth, whole
    // request still gets its answer by evicting the oldest.
    let idle: Vec<TcpStream> = (0..4).map(|_| TcpStream::connect(addr).unwrap()).collect();
    assert_eq!(exchange(addr, GET).0, 200);
    drop(idle);
    // Four connections busy in the handler: a fifth is refused at once, not queued.
    let blocked: Vec<_> = (0..4)
        .map(|_| {
            std::thread::spawn(move || exchange(addr, b"GET /block HTTP/1.0\r\nHost: 1\r\n\r\n").0)
        })
        .collect();
    for _ in 0..4 {
        entered_rx
            .recv_timeout(Duration::from_secs(10))
            .expect("the handler is entered");
    }
    let (status, text) = exchange(addr, GET);
    assert!(status == 503 || status == 0, "{text}");
    for _ in 0..4 {
        release_tx.send(()).unwrap();
    }
    for b in blocked {
        assert_eq!(b.join().unwrap(), 200);
    }
    assert_eq!(exchange(addr, GET).0, 200);
}

#[test]
fn expect_100_continue_is_answered_before_the_body_is_sent() {
    let server = start(Limits::default(), Box::new(ok));
    let mut stream = connect(server.addr());
    stream
        .write_all(
            b"POST /x HTTP/1.1\r\nHost: 1\r\nExpect: 100-Continue\r\nContent-Length: 5\r\n\
              Connection: close\r\n\r\n",
        )
        .unwrap();
    // The client sends nothing more until it reads the interim answer, as curl does.
    let interim = b"HTTP/1.1 100 Continue\r\n\r\n";
    let mut got = vec![0u8; interim.len()];
    stream.read_exact(&mut got).expect("a 100 Continue");
    assert_eq!(
        String::from_utf8_lossy(&got),
        String::from_utf8_lossy(interim)
    );
    stream.write_all(b"hello").unwrap();
    let mut answer = String::new();
    let _ = stream.read_to_string(&mut answer);
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");

    // Any other expectation: 417, as RFC 9110 says.
    let (status, text) = exchange(
        server.addr(),
        b"POST /x HTTP/1.1\r\nHost: 1\r\nExpect: something-else\r\nContent-Length: 5\r\n\r\nhello",
    );
    assert_eq!(status, 417, "{text}");
    assert!(text.contains("100-continue"), "{text}");
}

#[test]
fn head_is_get_without_the_body() {
    let server = start(Limits::default(), Box::new(ok));
    let (status, text) = exchange(server.addr(), b"HEAD /x HTTP/1.0\r\nHost: 1\r\n\r\n");
    assert_eq!(status, 200, "{text}");
    assert!(text.contains("Content-Length: 4\r\n"), "{text}");
    assert!(text.ends_with("\r\n\r\n"), "a body was sent: {text:?}");
}

#[test]
fn an_idle_connection_is_closed_without_an_answer() {
    let limits = Limits {
        request_time: Duration::from_millis(200),
        ..Limits::default()
    };
    let server = start(limits, Box::new(ok));
    // One request on a kept-alive connection, then nothing: the close must not carry a 408
    // that the client could take for the answer to its next request.
    let (status, text) = exchange(server.addr(), b"GET /x HTTP/1.1\r\nHost: 1\r\n\r\n");
    assert_eq!(status, 200);
    assert!(!text.contains("408"), "{text}");
    // A request left half-sent still gets its 408.
    let (status, _) = exchange(server.addr(), b"GET /x HTTP/1.1\r\nHost: 1\r\n");
    assert_eq!(status, 408);
}
