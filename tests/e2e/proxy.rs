//! Behind a load balancer: the real HAProxy (Debian's package) sends a
//! PROXY header on every connection; the server takes the client's address
//! from it, and refuses headers from anyone else.

use std::io::{Read, Write};
use std::net::SocketAddr;
use std::process::Command;

use file_share_e2e::*;

/// Health checks the server logged (at debug level, as tests run it) on
/// the line door (`server`) or the web door (`http`).
fn health_checks(server: &ServerProcess, door: &str) -> usize {
    server.log().lines().filter(|l| l.contains(&format!("file_server::{door}: ")) && l.contains("health check")).count()
}

#[test]
fn through_haproxy_the_real_addresses_count_and_health_checks_leave_no_trace() {
    let share = Share::new();
    share.add("hello.txt", b"hi\n");
    let server = ServerProcess::start(
        share.path(),
        &["--proxy-protocol", "--proxy-from", "127.0.0.1", "--max-per-ip", "1", "--max-clients", "5", "--http", "0"],
    );
    let web = SocketAddr::from(([127, 0, 0, 1], server.http_port.unwrap()));
    let dir = tempfile::tempdir().unwrap();
    let (line_front, web_front) = (
        SocketAddr::from(([127, 0, 0, 1], free_port("127.0.0.1"))),
        SocketAddr::from(([127, 0, 0, 1], free_port("127.0.0.1"))),
    );
    let checked = "check check-send-proxy inter 100ms";
    let _haproxy = Haproxy::start(
        dir.path(),
        &[
            (line_front, vec![format!("{} send-proxy-v2 {checked}", server.addr)]),
            (web_front, vec![format!("{web} send-proxy {checked}")]),
        ],
    );
    // HAProxy's health checks (v2 LOCAL; on the web side, v1 naming the
    // check's own connection) come and go.
    eventually("three health checks on each door", || {
        (health_checks(&server, "server") >= 3 && health_checks(&server, "http") >= 3).then_some(())
    });

    let mut first = RawClient::connect_from("127.0.0.2", line_front);
    // Same address, through the same balancer: its real address holds its one place.
    let second = RawClient::connect_from("127.0.0.2", line_front);
    assert_eq!(second.greeting, "ERR 503 too many connections from 127.0.0.2 (at most 1 per address)");
    let _third = RawClient::connect_from("127.0.0.3", line_front);
    first.send_line("info");
    let (events, info) = first.events_then_reply();
    let info = info.text();
    assert_eq!(events.len(), 1, "one arrival told, no health check: {events:?}");
    assert!(events[0].ends_with(" joined (2 online)\n"), "{events:?}");
    let addrs: Vec<&str> =
        info.lines().filter_map(|l| l.split_whitespace().find_map(|f| f.strip_prefix("addr="))).collect();
    assert_eq!(addrs.len(), 2, "two sessions, no health check among them:\n{info}");
    assert!(addrs[0].starts_with("127.0.0.2:") && addrs[1].starts_with("127.0.0.3:"), "{info}");
    assert!(!info.contains("departed"), "health checks never joined, so never left:\n{info}");

    // The web side through HAProxy, with the real curl from a third address.
    let out = Command::new("curl")
        .args(["-s", "--interface", "127.0.0.4"])
        .arg(format!("http://{web_front}/.status.json"))
        .output()
        .unwrap();
    let json = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{json}");
    assert!(json.contains("\"address\":\"127.0.0.4:"), "the visitor's own address:\n{json}");
    assert!(json.contains("\"address\":\"127.0.0.2:") && json.contains("\"address\":\"127.0.0.3:"), "{json}");
    assert!(!server.log().contains("addr=127.0.0.1"), "no session was known by the balancer's address");
}

#[test]
fn proxy_headers_from_anyone_else_are_refused_and_a_balancer_must_send_one() {
    let share = Share::new();
    share.add("hello.txt", b"hi\n");
    let server =
        ServerProcess::start(share.path(), &["--proxy-protocol", "--proxy-from", "127.0.0.9/32", "--http", "0"]);
    let web = format!("http://127.0.0.1:{}/hello.txt", server.http_port.unwrap());

    // A client (not a balancer) claiming to be someone else: closed, no reply.
    let mut forger = server.raw();
    forger.send_line("PROXY TCP4 6.6.6.6 127.0.0.1 4444 12345");
    assert!(forger.read_to_eof().is_empty(), "nothing is answered to a forged header");
    let mut v2 = server.raw();
    v2.send_bytes(b"\r\n\r\n\0\r\nQUIT\n\x21\x11\x00\x0c\x06\x06\x06\x06\x7f\x00\x00\x01\x11\x5c\x30\x39");
    assert!(v2.read_to_eof().is_empty());
    // The real curl, sending a v1 header on the web side: an empty reply (curl's exit 52).
    let forged = Command::new("curl").args(["-s", "--haproxy-protocol", &web]).status().unwrap();
    assert_eq!(forged.code(), Some(52));
    let plain = Command::new("curl").args(["-s", "-o", "/dev/null", "-w", "%{http_code}", &web]).output().unwrap();
    assert_eq!(String::from_utf8_lossy(&plain.stdout), "200", "clients without a header are served as ever");
    eventually("three refusals logged", || {
        (server.log().matches("a PROXY header from an address not in --proxy-from; closed").count() == 3).then_some(())
    });
    let info = server.raw().request("info").text();
    assert!(!info.contains("6.6.6.6"), "{info}");

    // The balancer's address without a header: closed, with why.
    let mut no_header = tcp_from("127.0.0.9", server.addr);
    no_header.set_read_timeout(Some(TEST_TIMEOUT)).unwrap();
    // The server may close before the line is even taken: a reset is no answer either.
    let _ = no_header.write_all(b"list\n");
    let mut answer = Vec::new();
    let _ = no_header.read_to_end(&mut answer);
    assert!(answer.is_empty(), "{}", String::from_utf8_lossy(&answer));
    eventually("the malformed header logged", || server.log().contains("malformed PROXY header").then_some(()));
}
