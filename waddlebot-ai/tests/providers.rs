//! The Ollama and OpenAI-compatible clients against stand-ins speaking the documented shapes:
//! answers whole and streamed (split across network reads), keep-alive comments, `[DONE]`, the
//! usage chunk, errors in mid-stream, timeouts, 429 with `Retry-After`, 5xx, malformed JSON,
//! wrong content types.

use std::time::Duration;

use futures_util::StreamExt;
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use waddlebot::{AiError, AiProvider, ChatChunk, ChatMessage, ChatRequest, ChatStream, Usage};
use waddlebot_ai::{HttpSettings, Ollama, OllamaConfig, OpenAi, OpenAiConfig};
use wiremock::matchers::{body_partial_json, header, method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

fn ask(text: &str) -> ChatRequest {
    ChatRequest::new(vec![
        ChatMessage::system("Be brief."),
        ChatMessage::user(text),
    ])
}

fn ollama(base_url: &str) -> Ollama {
    Ollama::new(OllamaConfig {
        base_url: base_url.to_owned(),
        http: HttpSettings {
            timeout: Duration::from_millis(500),
            ..HttpSettings::default()
        },
        ..OllamaConfig::default()
    })
    .expect("client")
}

fn openai(base_url: &str) -> OpenAi {
    OpenAi::new(OpenAiConfig {
        name: "waddleai".to_owned(),
        base_url: base_url.to_owned(),
        api_key: Some("wa-test-key".to_owned()),
        model: "auto".to_owned(),
        temperature: 0.7,
        max_tokens: 200,
        http: HttpSettings {
            timeout: Duration::from_millis(500),
            ..HttpSettings::default()
        },
    })
    .expect("client")
}

async fn collect(stream: ChatStream) -> Vec<Result<ChatChunk, AiError>> {
    stream.collect().await
}

fn text(chunks: &[Result<ChatChunk, AiError>]) -> String {
    chunks
        .iter()
        .filter_map(|c| c.as_ref().ok())
        .map(|c| c.content.as_str())
        .collect()
}

/// An HTTP server that answers every request with `parts`, each written (and flushed)
/// separately as a chunk a little apart, so the client sees them in separate reads.
async fn chunked_server(content_type: &'static str, parts: Vec<&'static str>) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bound");
    let addr = listener.local_addr().expect("address");
    tokio::spawn(async move {
        while let Ok((mut socket, _)) = listener.accept().await {
            let parts = parts.clone();
            tokio::spawn(async move {
                let mut request = Vec::new();
                let mut buf = [0u8; 4096];
                // The headers, then the body by Content-Length.
                loop {
                    let n = socket.read(&mut buf).await.unwrap_or(0);
                    if n == 0 {
                        return;
                    }
                    request.extend_from_slice(&buf[..n]);
                    let text = String::from_utf8_lossy(&request).to_string();
                    if let Some(end) = text.find("\r\n\r\n") {
                        let length = text
                            .lines()
                            .find_map(|l| {
                                l.to_ascii_lowercase()
                                    .strip_prefix("content-length:")
                                    .map(|v| v.trim().parse::<usize>().unwrap_or(0))
                            })
                            .unwrap_or(0);
                        if request.len() >= end + 4 + length {
                            break;
                        }
                    }
                }
                let head = format!(
                    "HTTP/1.1 200 OK\r\nContent-Type: {content_type}\r\nTransfer-Encoding: chunked\r\n\r\n"
                );
                let _ = socket.write_all(head.as_bytes()).await;
                for part in parts {
                    let chunk = format!("{:x}\r\n{part}\r\n", part.len());
                    let _ = socket.write_all(chunk.as_bytes()).await;
                    let _ = socket.flush().await;
                    tokio::time::sleep(Duration::from_millis(15)).await;
                }
                let _ = socket.write_all(b"0\r\n\r\n").await;
            });
        }
    });
    format!("http://{addr}")
}

#[tokio::test]
async fn ollama_answers_whole_with_the_configured_model_and_options() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/api/chat"))
        .and(body_partial_json(json!({
            "model": "llama3.2", "stream": false,
            "messages": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi?"}],
            "options": {"num_predict": 500}
        })))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "model": "llama3.2", "created_at": "2026-11-26T10:00:00Z",
            "message": {"role": "assistant", "content": "Hello there!"},
            "done": true, "done_reason": "stop", "prompt_eval_count": 26, "eval_count": 4
        })))
        .expect(1)
        .mount(&server)
        .await;
    let answer = ollama(&server.uri())
        .chat(ask("Hi?"))
        .await
        .expect("answered");
    assert_eq!(answer.content, "Hello there!");
    assert_eq!(answer.model, "llama3.2");
    assert_eq!(
        answer.usage,
        Some(Usage {
            prompt_tokens: 26,
            completion_tokens: 4
        })
    );
}

#[tokio::test]
async fn ollama_streams_ndjson_split_anywhere_and_reports_an_error_line() {
    // Lines cut in the middle, across reads.
    let base = chunked_server(
        "application/x-ndjson",
        vec![
            "{\"model\":\"llama3.2\",\"message\":{\"role\":\"assistant\",\"content\":\"Hel\"},\"done\":false}\n{\"model\":\"ll",
            "ama3.2\",\"message\":{\"role\":\"assistant\",\"content\":\"lo!\"},\"done\":false}\n",
            "{\"model\":\"llama3.2\",\"message\":{\"role\":\"assistant\",\"content\":\"\"},\"done\":true,\"done_reason\":\"stop\",\"prompt_eval_count\":5,\"eval_count\":2}\n",
        ],
    )
    .await;
    let chunks = collect(
        ollama(&base)
            .chat_stream(ask("Hi"))
            .await
            .expect("streaming"),
    )
    .await;
    assert_eq!(text(&chunks), "Hello!");
    let last = chunks.last().expect("chunks").as_ref().expect("ok");
    assert_eq!(last.finish_reason.as_deref(), Some("stop"));
    assert_eq!(
        last.usage,
        Some(Usage {
            prompt_tokens: 5,
            completion_tokens: 2
        })
    );

    let failing = chunked_server(
        "application/x-ndjson",
        vec![
            "{\"model\":\"llama3.2\",\"message\":{\"content\":\"Par\"},\"done\":false}\n",
            "{\"error\":\"an error was encountered while running the model\"}\n",
        ],
    )
    .await;
    let chunks = collect(
        ollama(&failing)
            .chat_stream(ask("Hi"))
            .await
            .expect("streaming"),
    )
    .await;
    assert_eq!(text(&chunks), "Par");
    match chunks.last() {
        Some(Err(AiError::Unavailable(why))) => {
            assert!(why.contains("while running the model"), "{why}");
        }
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn ollama_lists_models_and_maps_failures() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/api/tags"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"models": [
            {"name": "llama3.2:latest", "model": "llama3.2:latest", "size": 1, "digest": "x", "details": {}},
            {"name": "qwen2.5:1.5b", "model": "qwen2.5:1.5b", "size": 1, "digest": "y", "details": {}}
        ]})))
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path("/api/chat"))
        .and(body_partial_json(json!({"model": "missing"})))
        .respond_with(
            ResponseTemplate::new(404).set_body_json(json!({"error": "model 'missing' not found"})),
        )
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path("/api/chat"))
        .and(body_partial_json(json!({"model": "slow"})))
        .respond_with(ResponseTemplate::new(200).set_delay(Duration::from_secs(3)))
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path("/api/chat"))
        .and(body_partial_json(json!({"model": "html"})))
        .respond_with(ResponseTemplate::new(200).set_body_raw("<html>gateway</html>", "text/html"))
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path("/api/chat"))
        .respond_with(ResponseTemplate::new(500).set_body_json(json!({"error": "out of memory"})))
        .mount(&server)
        .await;
    let client = ollama(&server.uri());
    let models: Vec<String> = client
        .models()
        .await
        .expect("listed")
        .into_iter()
        .map(|m| m.id)
        .collect();
    assert_eq!(models, ["llama3.2:latest", "qwen2.5:1.5b"]);
    assert!(client.health().await.is_ok());

    let with_model = |model: &str| ChatRequest {
        model: Some(model.to_owned()),
        ..ask("Hi")
    };
    match client.chat(with_model("missing")).await {
        Err(AiError::BadRequest(why)) => assert_eq!(why, "model 'missing' not found"),
        other => panic!("{other:?}"),
    }
    assert!(matches!(
        client.chat(with_model("slow")).await,
        Err(AiError::Timeout(_))
    ));
    match client.chat(with_model("html")).await {
        Err(AiError::Unavailable(why)) => assert!(why.contains("text/html"), "{why}"),
        other => panic!("{other:?}"),
    }
    match client.chat(ask("Hi")).await {
        Err(AiError::Unavailable(why)) => assert!(why.contains("out of memory"), "{why}"),
        other => panic!("{other:?}"),
    }
    assert!(
        ollama("http://127.0.0.1:9").health().await.is_err(),
        "nobody listening"
    );
}

#[tokio::test]
async fn openai_answers_whole_with_the_bearer_key_and_auto_model() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/v1/chat/completions"))
        .and(header("Authorization", "Bearer wa-test-key"))
        .and(body_partial_json(json!({"model": "auto", "stream": false, "max_tokens": 200})))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "id": "chatcmpl-1", "object": "chat.completion", "created": 1, "model": "qwen2.5:1.5b",
            "choices": [{"index": 0, "message": {"role": "assistant", "content": "Hi!"}, "finish_reason": "stop"}],
            "usage": {"prompt_tokens": 9, "completion_tokens": 2, "total_tokens": 11}
        })))
        .expect(1)
        .mount(&server)
        .await;
    // The base URL works with or without /v1.
    let answer = openai(&format!("{}/v1/", server.uri()))
        .chat(ask("Hello"))
        .await
        .expect("answered");
    assert_eq!(answer.content, "Hi!");
    assert_eq!(
        answer.model, "qwen2.5:1.5b",
        "the proxy names the model it chose"
    );
    assert_eq!(
        answer.usage,
        Some(Usage {
            prompt_tokens: 9,
            completion_tokens: 2
        })
    );
}

#[tokio::test]
async fn openai_streams_events_with_comments_usage_and_done() {
    let base = chunked_server(
        "text/event-stream; charset=utf-8",
        vec![
            ": ping\n\n",
            "data: {\"id\":\"c\",\"object\":\"chat.completion.chunk\",\"model\":\"gpt-4o-mini\",\"choices\":[{\"index\":0,\"delta\":{\"role\":\"assistant\",\"content\":\"\"},\"finish_reason\":null}]}\n\ndata: {\"id\":\"c\",\"object\":\"chat.compl",
            "etion.chunk\",\"model\":\"gpt-4o-mini\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"Waddle\"},\"finish_reason\":null}]}\r\n\r\n",
            "data: {\"id\":\"c\",\"object\":\"chat.completion.chunk\",\"model\":\"gpt-4o-mini\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\" on!\"},\"finish_reason\":\"stop\"}]}\n\n",
            "data: {\"id\":\"c\",\"object\":\"chat.completion.chunk\",\"model\":\"gpt-4o-mini\",\"choices\":[],\"usage\":{\"prompt_tokens\":12,\"completion_tokens\":3,\"total_tokens\":15}}\n\n",
            "data: [DONE]\n\n",
        ],
    )
    .await;
    let chunks = collect(
        openai(&base)
            .chat_stream(ask("Hi"))
            .await
            .expect("streaming"),
    )
    .await;
    assert!(chunks.iter().all(Result::is_ok), "{chunks:?}");
    assert_eq!(text(&chunks), "Waddle on!");
    let finish: Vec<&str> = chunks
        .iter()
        .filter_map(|c| c.as_ref().ok()?.finish_reason.as_deref())
        .collect();
    assert_eq!(finish, ["stop"]);
    let usage = chunks.iter().find_map(|c| c.as_ref().ok()?.usage);
    assert_eq!(
        usage,
        Some(Usage {
            prompt_tokens: 12,
            completion_tokens: 3
        })
    );

    let failing = chunked_server(
        "text/event-stream",
        vec![
            "data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\"Half\"},\"finish_reason\":null}]}\n\n",
            "data: {\"error\":{\"message\":\"upstream overloaded\",\"type\":\"server_error\"}}\n\n",
            "data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\"never seen\"}}]}\n\n",
        ],
    )
    .await;
    let chunks = collect(
        openai(&failing)
            .chat_stream(ask("Hi"))
            .await
            .expect("streaming"),
    )
    .await;
    assert_eq!(text(&chunks), "Half", "nothing after the error");
    assert!(
        matches!(chunks.last(), Some(Err(AiError::Unavailable(why))) if why.contains("upstream overloaded"))
    );
}

#[tokio::test]
async fn openai_error_bodies_become_typed_errors() {
    let server = MockServer::start().await;
    let error = |status: u16, message: &str| {
        ResponseTemplate::new(status).set_body_json(
            json!({"error": {"message": message, "type": "x", "param": null, "code": null}}),
        )
    };
    for (model, response) in [
        ("auth", error(401, "Incorrect API key provided")),
        (
            "busy",
            error(429, "Rate limit reached").insert_header("Retry-After", "7"),
        ),
        ("bad", error(400, "max_tokens is too large")),
        ("down", error(503, "The server is overloaded")),
        (
            "garbled",
            ResponseTemplate::new(200).set_body_raw("{not json", "application/json"),
        ),
    ] {
        Mock::given(method("POST"))
            .and(path("/v1/chat/completions"))
            .and(body_partial_json(json!({"model": model})))
            .respond_with(response)
            .mount(&server)
            .await;
    }
    let client = openai(&server.uri());
    let with_model = |model: &str| ChatRequest {
        model: Some(model.to_owned()),
        ..ask("Hi")
    };
    assert!(
        matches!(client.chat(with_model("auth")).await, Err(AiError::Auth(why)) if why == "Incorrect API key provided")
    );
    assert!(matches!(
        client.chat(with_model("busy")).await,
        Err(AiError::RateLimited { retry_after: Some(wait) }) if wait == Duration::from_secs(7)
    ));
    assert!(
        matches!(client.chat(with_model("bad")).await, Err(AiError::BadRequest(why)) if why.contains("max_tokens"))
    );
    assert!(
        matches!(client.chat(with_model("down")).await, Err(AiError::Unavailable(why)) if why.contains("overloaded"))
    );
    assert!(
        matches!(client.chat(with_model("garbled")).await, Err(AiError::Unavailable(why)) if why.contains("not JSON"))
    );
}

#[tokio::test]
async fn openai_lists_models() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/v1/models"))
        .respond_with(
            ResponseTemplate::new(200).set_body_json(json!({"object": "list", "data": [
                {"id": "auto", "object": "model", "created": 0, "owned_by": "waddleai"},
                {"id": "qwen2.5:1.5b", "object": "model", "created": 0, "owned_by": "ollama"}
            ]})),
        )
        .mount(&server)
        .await;
    let ids: Vec<String> = openai(&server.uri())
        .models()
        .await
        .expect("listed")
        .into_iter()
        .map(|m| m.id)
        .collect();
    assert_eq!(ids, ["auto", "qwen2.5:1.5b"]);
}
