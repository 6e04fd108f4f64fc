//! What streaming costs per chunk and per request: the OpenAI-compatible client reading a
//! provider directly, and the same client reading through the server's
//! `/api/v1/ai/chat/completions` pass-through (provider → server → client). The provider is a
//! local server whose answer is already written, so the time measured is our own work; the
//! difference between the two rows is what the pass-through adds.
//!
//! `cargo bench -p tests --bench ai_streaming`

use std::time::Instant;

use futures_util::StreamExt;
use hdrhistogram::Histogram;
use std::sync::Arc;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use waddlebot::store::MemoryStore;
use waddlebot::{AiProvider, ChatMessage, ChatRequest};
use waddlebot_ai::{HttpSettings, OpenAi, OpenAiConfig};
use waddlebot_server::{AppState, app, serve};

const CHUNKS: usize = 20_000;
const REQUESTS: usize = 2_000;

/// Serves `body` (an SSE stream) to every request, in one write.
async fn server(body: String) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bound");
    let addr = listener.local_addr().expect("address");
    tokio::spawn(async move {
        while let Ok((mut socket, _)) = listener.accept().await {
            // A real server answers in one go; without this, Nagle's algorithm and delayed
            // ACKs would add 40 ms to every exchange and measure the kernel, not the client.
            let _ = socket.set_nodelay(true);
            let body = body.clone();
            tokio::spawn(async move {
                let mut buf = vec![0u8; 64 * 1024];
                let mut pending: Vec<u8> = Vec::new();
                loop {
                    // Read one whole request: headers, then Content-Length bytes of body.
                    let complete = |data: &[u8]| {
                        let text = String::from_utf8_lossy(data);
                        let end = text.find("\r\n\r\n")?;
                        let length = text[..end]
                            .lines()
                            .find_map(|l| {
                                l.to_ascii_lowercase()
                                    .strip_prefix("content-length:")
                                    .map(|v| v.trim().parse::<usize>().unwrap_or(0))
                            })
                            .unwrap_or(0);
                        (data.len() >= end + 4 + length).then_some(end + 4 + length)
                    };
                    let used = loop {
                        if let Some(used) = complete(&pending) {
                            break used;
                        }
                        let n = socket.read(&mut buf).await.unwrap_or(0);
                        if n == 0 {
                            return;
                        }
                        pending.extend_from_slice(&buf[..n]);
                    };
                    pending.drain(..used);
                    let response = format!(
                        "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nContent-Length: {}\r\n\r\n{body}",
                        body.len()
                    );
                    if socket.write_all(response.as_bytes()).await.is_err() {
                        return;
                    }
                }
            });
        }
    });
    format!("http://{addr}")
}

fn sse(chunks: usize) -> String {
    let mut body = String::new();
    for i in 0..chunks {
        body.push_str(&format!(
            "data: {{\"id\":\"c\",\"object\":\"chat.completion.chunk\",\"created\":1,\"model\":\"gpt-4o-mini\",\"choices\":[{{\"index\":0,\"delta\":{{\"content\":\"tok{i} \"}},\"finish_reason\":null}}]}}\n\n"
        ));
    }
    body.push_str("data: [DONE]\n\n");
    body
}

fn client(base: &str) -> OpenAi {
    OpenAi::new(OpenAiConfig {
        name: "bench".to_owned(),
        base_url: base.to_owned(),
        api_key: Some("k".to_owned()),
        model: "gpt-4o-mini".to_owned(),
        temperature: 0.7,
        max_tokens: 100,
        http: HttpSettings::default(),
    })
    .expect("client")
}

fn report(name: &str, histogram: &Histogram<u64>) {
    let us = |q: f64| histogram.value_at_quantile(q) as f64 / 1000.0;
    println!(
        "{name:<52} p50 {:>8.2} µs   p99 {:>8.2} µs   max {:>9.2} µs",
        us(0.5),
        us(0.99),
        histogram.max() as f64 / 1000.0
    );
}

/// Serves the bot's HTTP app, answering AI through a client of `provider_base`.
async fn bot(provider_base: &str) -> String {
    let router = waddlebot_router::Router::builder()
        .store(Arc::new(MemoryStore::new()))
        .build()
        .expect("router");
    let provider: Arc<dyn AiProvider> = Arc::new(client(provider_base));
    let state = AppState::new(Arc::new(router), 1 << 20).with_ai(Some(provider));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bound");
    let addr = listener.local_addr().expect("address");
    tokio::spawn(serve(listener, app(state), std::future::pending()));
    format!("http://{addr}/api/v1/ai")
}

/// Per-chunk gaps over a long answer, and request → answer over many one-chunk answers.
async fn measure(label: &str, long_base: &str, short_base: &str) {
    let request = || ChatRequest::new(vec![ChatMessage::user("Hi")]);
    let long = client(long_base);
    let mut per_chunk = Histogram::<u64>::new(3).expect("histogram");
    let mut stream = long.chat_stream(request()).await.expect("stream");
    let mut previous = Instant::now();
    let mut count = 0;
    let started = Instant::now();
    while let Some(chunk) = stream.next().await {
        chunk.expect("chunk");
        let now = Instant::now();
        if count > 0 {
            per_chunk
                .record(u64::try_from((now - previous).as_nanos()).unwrap_or(u64::MAX))
                .expect("recorded");
        }
        previous = now;
        count += 1;
    }
    let total = started.elapsed();
    assert_eq!(count, CHUNKS);
    report(&format!("{label}: gap between chunks"), &per_chunk);
    println!(
        "{:<52} {:>10.0} chunks/s",
        format!("{label}: throughput"),
        CHUNKS as f64 / total.as_secs_f64()
    );

    let short = client(short_base);
    let mut per_request = Histogram::<u64>::new(3).expect("histogram");
    for _ in 0..REQUESTS {
        let start = Instant::now();
        let mut stream = short.chat_stream(request()).await.expect("stream");
        while let Some(chunk) = stream.next().await {
            chunk.expect("chunk");
        }
        per_request
            .record(u64::try_from(start.elapsed().as_nanos()).unwrap_or(u64::MAX))
            .expect("recorded");
    }
    report(
        &format!("{label}: request → one-chunk answer"),
        &per_request,
    );
}

fn main() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(async {
        let long = server(sse(CHUNKS)).await;
        let short = server(sse(1)).await;
        measure("direct", &long, &short).await;
        let (long_through, short_through) = (bot(&long).await, bot(&short).await);
        measure("through the server", &long_through, &short_through).await;
    });
}
