//! The end-to-end tests, one binary: each module drives the real
//! `file-server` and `file-client` (and curl, wget, openssl, tftp, atftp,
//! chromium) as a user would; helpers are in the root crate (`src/lib.rs`).
//! One binary links once, and its tests share the machine evenly instead of
//! each file waiting for its own slowest test.

mod accounts;
mod bad_input;
mod big_folder;
mod browser;
mod cancel;
mod cap;
mod chat;
mod chat_client;
mod client_batch;
mod client_edges;
mod client_ux;
mod cluster;
mod commands;
mod discovery;
mod hostile;
mod hostile_server;
mod http;
mod manage;
mod proxy;
mod shutdown;
mod tftp;
mod tls;
mod trees;
mod uploads;
mod webdav;
