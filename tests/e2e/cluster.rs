//! Several instances as one server: the real `redis-server` and `haproxy`
//! (Debian's packages) started by each test, instances of `file-server` on
//! one folder, clients on different loopback addresses.

use std::collections::BTreeSet;
use std::net::SocketAddr;

use file_share_e2e::*;

/// Instances `names` on `share`, one Redis, each with `extra` flags.
fn instances(share: &Share, redis: &Redis, names: &[&str], extra: &[&str]) -> Vec<ServerProcess> {
    let url = redis.url();
    names
        .iter()
        .map(|name| {
            let mut args = vec!["--cluster", &url, "--instance", name, "--cluster-expiry", "2"];
            args.extend_from_slice(extra);
            ServerProcess::start(share.path(), &args)
        })
        .collect()
}

/// The sessions an `info` reply lists: (name, address, instance).
fn sessions(info: &str) -> Vec<(String, String, String)> {
    let field = |line: &str, key: &str| {
        line.split(' ').find_map(|f| f.strip_prefix(&format!("{key}="))).unwrap_or_default().to_string()
    };
    info.lines()
        .filter(|l| l.starts_with("client "))
        .map(|l| (field(l, "name"), field(l, "addr"), field(l, "instance")))
        .collect()
}

/// `say` events a client receives until it has `count` of them.
fn said(client: &mut RawClient, count: usize) -> Vec<String> {
    let mut lines = Vec::new();
    while lines.len() < count {
        let message = client.read_message();
        assert!(message.header.starts_with("EVT "), "{message:?}");
        if message.header.contains("event=say") {
            lines.push(message.text());
        }
    }
    lines
}

#[test]
fn three_instances_behind_haproxy_are_one_server_one_cap_one_status_one_chat() {
    let (share, dir) = (Share::new(), tempfile::tempdir().unwrap());
    let redis = Redis::start(dir.path());
    let flags = ["--proxy-protocol", "--proxy-from", "127.0.0.1", "--max-clients", "4", "--max-per-ip", "2"];
    let servers = instances(&share, &redis, &["a", "b", "c"], &flags);
    let front = SocketAddr::from(([127, 0, 0, 1], free_port("127.0.0.1")));
    let backends = servers.iter().map(|s| format!("{} send-proxy-v2 check check-send-proxy inter 200ms", s.addr));
    let _haproxy = Haproxy::start(dir.path(), &[(front, backends.collect())]);

    // Round robin spreads them; the caps hold across instances, exactly.
    let mut first = RawClient::connect_from("127.0.0.2", front);
    let mut second = RawClient::connect_from("127.0.0.2", front);
    let third = RawClient::connect_from("127.0.0.2", front);
    assert_eq!(third.greeting, "ERR 503 too many connections from 127.0.0.2 (at most 2 per address)");
    let mut watcher = RawClient::connect_from("127.0.0.3", front);
    let mut talker = RawClient::connect_from("127.0.0.4", front);
    for client in [&first, &watcher, &talker] {
        assert!(client.greeting.starts_with("OK "), "{}", client.greeting);
    }
    let over = RawClient::connect_from("127.0.0.5", front);
    assert_eq!(over.greeting, "ERR 503 Server is full", "the fifth session anywhere in the cluster");

    // One status: every session, by its real address and instance, as soon
    // as its arrival has been heard of.
    while !first.read_message().text().ends_with(" joined (4 online)\n") {}
    let info = first.request("info").text();
    let listed = sessions(&info);
    let addrs: BTreeSet<&str> = listed.iter().map(|(_, a, _)| a.split(':').next().unwrap()).collect();
    assert_eq!(listed.len(), 4, "{info}");
    assert_eq!(addrs, BTreeSet::from(["127.0.0.2", "127.0.0.3", "127.0.0.4"]), "{info}");
    let on: BTreeSet<&str> = listed.iter().map(|(_, _, i)| i.as_str()).collect();
    assert!(on.len() >= 2 && on.iter().all(|i| ["a", "b", "c"].contains(i)), "{info}");
    let names: BTreeSet<&str> = listed.iter().map(|(n, _, _)| n.as_str()).collect();
    assert_eq!(names.len(), 4, "names are unique across instances: {info}");
    assert!(info.starts_with("server uptime="), "{info}");
    assert!(info.lines().next().unwrap().contains(" clients=4 max=4"), "{info}");

    // One chat, in one order: two talkers on different instances at once,
    // heard identically by two listeners on two more.
    let talker_line = |c: &mut RawClient, who: &str| {
        for i in 0..20 {
            c.send_line(&format!("say {who} {i}"));
        }
    };
    std::thread::scope(|scope| {
        scope.spawn(|| talker_line(&mut talker, "t"));
        talker_line(&mut first, "f");
    });
    let (heard_by_watcher, heard_by_second) = (said(&mut watcher, 40), said(&mut second, 40));
    assert_eq!(heard_by_watcher, heard_by_second, "the same lines in the same order");
    let interleaved = heard_by_watcher.windows(2).filter(|w| w[0].contains(" t ") != w[1].contains(" t ")).count();
    println!("{interleaved} changes of talker in 40 lines");
}

#[test]
fn an_instance_killed_gives_its_places_back_within_the_expiry() {
    let (share, dir) = (Share::new(), tempfile::tempdir().unwrap());
    let redis = Redis::start(dir.path());
    let mut servers = instances(&share, &redis, &["a", "b"], &["--max-clients", "2"]);
    let _on_a = servers[0].raw();
    let _also_on_a = servers[0].raw();
    let b = servers.pop().unwrap();
    assert_eq!(b.raw().greeting, "ERR 503 Server is full", "a holds both places");
    drop(servers); // SIGKILL: a gives nothing back
                   // Its places expire (2 s) and its sessions leave b's status.
    let mut client = eventually("a's places expired", || {
        let client = b.raw();
        client.greeting.starts_with("OK ").then_some(client)
    });
    let info = eventually("a's snapshot expired", || {
        let info = client.request("info").text();
        (sessions(&info).len() == 1).then_some(info)
    });
    assert_eq!(sessions(&info)[0].2, "b", "{info}");
}

#[test]
fn without_redis_sessions_go_on_with_a_local_share_and_the_cluster_reforms_on_its_return() {
    let (share, dir) = (Share::new(), tempfile::tempdir().unwrap());
    share.add("hello.txt", b"hi\n");
    let mut redis = Redis::start(dir.path());
    let servers = instances(&share, &redis, &["a", "b"], &["--max-clients", "4"]);
    let strict = ServerProcess::start(
        share.path(),
        &["--cluster", &redis.url(), "--instance", "s", "--cluster-expiry", "2", "--cluster-strict"],
    );
    let mut on_a = servers[0].raw();
    let mut on_b = servers[1].raw();
    eventually("b known to a", || (sessions(&on_a.request("info").text()).len() == 2).then_some(()));

    redis.kill();
    let notice = "the cluster's shared state cannot be reached: chat and status are this server's alone for now\n";
    on_a.expect_event(notice);
    // The session goes on; status is a's alone.
    assert_eq!(on_a.request("get hello.txt").body, b"hi\n");
    assert_eq!(sessions(&on_a.request("info").text()).len(), 1);
    // Admissions count against a local share: ceil(4 / 3 instances seen) = 2 on a.
    let second = servers[0].raw();
    assert!(second.greeting.starts_with("OK "), "{}", second.greeting);
    assert_eq!(servers[0].raw().greeting, "ERR 503 Server is full", "a's local share is 2");
    // With --cluster-strict, nobody new without Redis.
    let refused = eventually("s notices Redis is gone", || {
        let client = strict.raw();
        client.greeting.starts_with("ERR").then_some(client.greeting)
    });
    assert_eq!(refused, "ERR 503 the cluster's shared state cannot be reached; try again shortly");

    redis.restart();
    on_a.expect_event("the cluster's shared state is back: chat and status span every server again\n");
    on_b.expect_event("the cluster's shared state is back: chat and status span every server again\n");
    // Each registered its sessions again: one status, one cap again.
    eventually("one status again", || (sessions(&on_a.request("info").text()).len() == 3).then_some(()));
    on_b.send_line("say back together");
    on_a.expect_event("[Client02] back together\n");
}
