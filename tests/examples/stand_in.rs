//! Stand-in servers for `benches/http-load.sh`, each its own process on loopback:
//!
//! - `stand_in bare 127.0.0.1:9001`: bare hyper (HTTP/1) that reads the body and answers a
//!   fixed JSON envelope: the ceiling WaddleBot's figures are compared with;
//! - `stand_in module 127.0.0.1:9002`: a remote module answering every call with a text reply
//!   (the signature is not checked: this measures the bot's two HTTP hops, not the module).
//!
//! Build: `cargo build --release -p tests --example stand_in`.

use std::net::SocketAddr;

#[path = "../support/fixed_server.rs"]
mod fixed_server;

const BARE: &str = r#"{"status":"success","data":{"processed":true,"replies":[{"type":"text","text":"Hi alice!"}]}}"#;
const MODULE: &str = r#"{"success":true,"response_type":"text","message":"London: 14°C, drizzle"}"#;

fn main() {
    let mut args = std::env::args().skip(1);
    let (Some(kind), Some(addr)) = (args.next(), args.next()) else {
        eprintln!("usage: stand_in bare|module ADDR");
        std::process::exit(2);
    };
    let answer: &'static str = match kind.as_str() {
        "bare" => BARE,
        "module" => MODULE,
        other => {
            eprintln!("stand_in: unknown kind {other} (bare or module)");
            std::process::exit(2);
        }
    };
    let addr: SocketAddr = match addr.parse() {
        Ok(addr) => addr,
        Err(err) => {
            eprintln!("stand_in: {addr}: {err}");
            std::process::exit(2);
        }
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("a runtime");
    runtime.block_on(serve(addr, answer));
}

async fn serve(addr: SocketAddr, answer: &'static str) {
    let listener = tokio::net::TcpListener::bind(addr).await.expect("bound");
    println!("listening on http://{addr}");
    fixed_server::serve(listener, answer).await;
}
