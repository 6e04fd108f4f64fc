//! The AI endpoints through the real server on loopback, with an Ollama stand-in behind it:
//! OpenAI-compatible completions (whole and streamed as server-sent events, read both raw and
//! by an OpenAI-protocol client), models, OpenAI-shaped errors, the original's interaction
//! endpoint answered by the AI module, and the provider in `/healthz`.

// Only the server half of the shared helpers is used here.
#[allow(dead_code)]
mod loopback;

use std::sync::Arc;
use std::time::Duration;

use futures_util::StreamExt;
use loopback::serve_on_loopback;
use serde_json::{Value, json};
use waddlebot::store::MemoryStore;
use waddlebot::{AiProvider, ChatMessage, ChatRequest};
use waddlebot_ai::{HttpSettings, Ollama, OllamaConfig, OpenAi, OpenAiConfig};
use waddlebot_modules::{AiChat, AiChatSettings};
use waddlebot_router::Router;
use waddlebot_server::AppState;
use wiremock::matchers::{body_partial_json, method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

async fn ollama_stand_in() -> MockServer {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/api/chat"))
        .and(body_partial_json(json!({"stream": true})))
        .respond_with(ResponseTemplate::new(200).set_body_raw(
            concat!(
                "{\"model\":\"llama3.2\",\"message\":{\"role\":\"assistant\",\"content\":\"Waddle\"},\"done\":false}\n",
                "{\"model\":\"llama3.2\",\"message\":{\"role\":\"assistant\",\"content\":\" on!\"},\"done\":false}\n",
                "{\"model\":\"llama3.2\",\"message\":{\"role\":\"assistant\",\"content\":\"\"},\"done\":true,\"done_reason\":\"stop\",\"prompt_eval_count\":7,\"eval_count\":3}\n",
            ),
            "application/x-ndjson",
        ))
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path("/api/chat"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "model": "llama3.2", "message": {"role": "assistant", "content": "Hello, friend!"},
            "done": true, "done_reason": "stop", "prompt_eval_count": 7, "eval_count": 3
        })))
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/api/tags"))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(json!({"models": [{"name": "llama3.2:latest"}]})),
        )
        .mount(&server)
        .await;
    server
}

fn provider(base_url: &str) -> Arc<dyn AiProvider> {
    Arc::new(
        Ollama::new(OllamaConfig {
            base_url: base_url.to_owned(),
            http: HttpSettings {
                timeout: Duration::from_secs(2),
                ..HttpSettings::default()
            },
            ..OllamaConfig::default()
        })
        .expect("client"),
    )
}

async fn start(ai: Option<Arc<dyn AiProvider>>) -> loopback::Loopback {
    let chat = AiChat::new(ai.clone(), AiChatSettings::default());
    let router = Router::builder()
        .store(Arc::new(MemoryStore::new()))
        .handler(chat.clone())
        .event_handler(chat.listener())
        .build()
        .expect("router");
    // The stand-in's model is the one callers may name (AI_API_MODELS).
    let policy = waddlebot_server::AiApiPolicy {
        models: vec!["llama3.2".to_owned()],
        ..waddlebot_server::AiApiPolicy::default()
    };
    serve_on_loopback(
        AppState::new(Arc::new(router), 1 << 20)
            .with_ai(ai)
            .with_ai_api(policy),
    )
    .await
}

fn post(bot: &loopback::Loopback, route: &str, body: Value) -> reqwest::RequestBuilder {
    reqwest::Client::new()
        .post(format!("http://{}{route}", bot.addr))
        .json(&body)
}

#[tokio::test]
async fn completions_whole_and_streamed_speak_openais_protocol() {
    let ollama = ollama_stand_in().await;
    let bot = start(Some(provider(&ollama.uri()))).await;

    let whole = post(
        &bot,
        "/api/v1/ai/chat/completions",
        json!({
            "model": "llama3.2", "messages": [{"role": "user", "content": "Hi"}]
        }),
    )
    .send()
    .await
    .expect("answered");
    assert_eq!(whole.status(), 200);
    let body: Value = whole.json().await.expect("json");
    assert_eq!(body["object"], "chat.completion");
    assert_eq!(
        body["choices"][0]["message"],
        json!({"role": "assistant", "content": "Hello, friend!"})
    );
    assert_eq!(body["usage"]["total_tokens"], 10);

    // Raw server-sent events.
    let streamed = post(
        &bot,
        "/api/v1/ai/chat/completions",
        json!({
            "messages": [{"role": "user", "content": [{"type": "text", "text": "Hi"}]}],
            "stream": true, "stream_options": {"include_usage": true}
        }),
    )
    .send()
    .await
    .expect("answered");
    assert_eq!(streamed.headers()["content-type"], "text/event-stream");
    let text = streamed.text().await.expect("body");
    let events: Vec<Value> = text
        .split("\n\n")
        .filter_map(|e| e.strip_prefix("data: "))
        .filter(|d| *d != "[DONE]")
        .map(|d| serde_json::from_str(d).expect("json event"))
        .collect();
    assert!(text.trim_end().ends_with("data: [DONE]"), "{text}");
    assert_eq!(events[0]["choices"][0]["delta"]["role"], "assistant");
    let content: String = events
        .iter()
        .filter_map(|e| e["choices"][0]["delta"]["content"].as_str())
        .collect();
    assert_eq!(content, "Waddle on!");
    let usage = events
        .iter()
        .find(|e| e["usage"].is_object())
        .expect("a usage chunk");
    assert_eq!(usage["choices"], json!([]));
    assert_eq!(usage["usage"]["completion_tokens"], 3);

    // An OpenAI-protocol client pointed at the server streams the same answer.
    let client = OpenAi::new(OpenAiConfig {
        name: "waddlebot".to_owned(),
        base_url: format!("http://{}/api/v1/ai", bot.addr),
        api_key: Some("unused".to_owned()),
        model: "llama3.2".to_owned(),
        temperature: 0.7,
        max_tokens: 100,
        http: HttpSettings::default(),
    })
    .expect("client");
    let chunks: Vec<_> = client
        .chat_stream(ChatRequest::new(vec![ChatMessage::user("Hi")]))
        .await
        .expect("streaming")
        .collect()
        .await;
    let streamed: String = chunks
        .iter()
        .map(|c| c.as_ref().expect("chunk").content.clone())
        .collect();
    assert_eq!(streamed, "Waddle on!");
    let models = client.models().await.expect("models");
    assert_eq!(models[0].id, "llama3.2:latest");
}

#[tokio::test]
async fn bad_requests_outages_and_no_provider_get_openai_shaped_errors() {
    let bot = start(Some(provider("http://127.0.0.1:9"))).await;
    let hot = post(
        &bot,
        "/api/v1/ai/chat/completions",
        json!({
            "messages": [{"role": "user", "content": "Hi"}], "temperature": 3
        }),
    )
    .send()
    .await
    .expect("answered");
    assert_eq!(hot.status(), 400);
    let body: Value = hot.json().await.expect("json");
    assert_eq!(body["error"]["type"], "invalid_request_error");
    assert!(
        body["error"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("temperature"))
    );

    let empty = post(&bot, "/api/v1/ai/chat/completions", json!({"messages": []}))
        .send()
        .await
        .expect("answered");
    assert_eq!(empty.status(), 400);

    let down = post(
        &bot,
        "/api/v1/ai/chat/completions",
        json!({
            "messages": [{"role": "user", "content": "Hi"}]
        }),
    )
    .send()
    .await
    .expect("answered");
    assert_eq!(down.status(), 502, "the provider is unreachable");

    let health: Value = reqwest::get(format!("http://{}/healthz", bot.addr))
        .await
        .expect("answered")
        .json()
        .await
        .expect("json");
    assert_eq!(health["checks"]["ai"], "unavailable");
    assert_eq!(health["status"], "healthy", "the AI is optional");

    let off = start(None).await;
    let response = post(
        &off,
        "/api/v1/ai/chat/completions",
        json!({
            "messages": [{"role": "user", "content": "Hi"}]
        }),
    )
    .send()
    .await
    .expect("answered");
    assert_eq!(response.status(), 503);
    let body: Value = response.json().await.expect("json");
    assert!(
        body["error"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("AI_PROVIDER"))
    );
    let interaction = post(
        &off,
        "/api/v1/ai/interaction",
        json!({"message_type": "chatMessage", "message_content": "hello there",
               "user_id": "42", "entity_id": "pond", "platform": "twitch"}),
    )
    .send()
    .await
    .expect("answered");
    assert_eq!(interaction.status(), 503);
    let body: Value = interaction.json().await.expect("json");
    assert!(
        body["message"]
            .as_str()
            .is_some_and(|m| m.contains("AI_PROVIDER")),
        "the interaction route says what to set: {body}"
    );
}

#[tokio::test]
async fn an_interaction_is_answered_by_the_ai_module() {
    let ollama = ollama_stand_in().await;
    let bot = start(Some(provider(&ollama.uri()))).await;
    let answer = post(
        &bot,
        "/api/v1/ai/interaction",
        json!({
            "session_id": "s-1", "message_type": "chatMessage", "message_content": "hello there",
            "user_id": "42", "username": "alice", "entity_id": "pond", "platform": "twitch"
        }),
    )
    .send()
    .await
    .expect("answered");
    assert_eq!(answer.status(), 200);
    let body: Value = answer.json().await.expect("json");
    assert_eq!(body["data"]["response"], "🤖 Hello, friend!");

    let unknown = post(&bot, "/api/v1/ai/interaction", json!({
        "message_type": "chatMessage", "user_id": "42", "entity_id": "pond", "platform": "myspace"
    }))
    .send()
    .await
    .expect("answered");
    assert_eq!(unknown.status(), 400);
}

#[tokio::test]
async fn admins_read_the_settings_without_secrets_and_replace_the_provider_live() {
    let first = ollama_stand_in().await;
    let second = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/v1/chat/completions"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "id": "c", "object": "chat.completion", "created": 1, "model": "gpt-4o-mini",
            "choices": [{"index": 0, "message": {"role": "assistant", "content": "From OpenAI."}, "finish_reason": "stop"}]
        })))
        .mount(&second)
        .await;
    let settings = waddlebot_ai::AiSettings::from_env(|key| match key {
        "AI_PROVIDER" => Some("ollama".to_owned()),
        "OLLAMA_HOST" => Some(first.uri()),
        _ => None,
    })
    .expect("valid");
    let provider = settings.as_ref().map(|s| s.build().expect("built"));
    let chat = AiChat::new(None, AiChatSettings::default());
    let router = Router::builder()
        .store(Arc::new(MemoryStore::new()))
        .handler(chat)
        .build()
        .expect("router");
    let bot = serve_on_loopback(
        AppState::new(Arc::new(router), 1 << 20)
            .with_ai(provider)
            .with_ai_settings(settings),
    )
    .await;
    let url = |route: &str| format!("http://{}{route}", bot.addr);
    let client = reqwest::Client::new();

    let config: Value = client
        .get(url("/api/v1/ai/config"))
        .send()
        .await
        .expect("answered")
        .json()
        .await
        .expect("json");
    assert_eq!(
        config["data"]["settings"]["providers"][0]["provider"],
        "ollama"
    );
    assert_eq!(
        config["data"]["settings"]["providers"][0]["base_url"],
        first.uri()
    );

    let put = |settings: Value| {
        client
            .put(url("/api/v1/ai/config"))
            .json(&json!({"settings": settings}))
            .send()
    };
    let switched: Value = put(json!({
        "AI_PROVIDER": "openai", "OPENAI_API_KEY": "sk-very-secret", "OPENAI_BASE_URL": second.uri()
    }))
    .await
    .expect("answered")
    .json()
    .await
    .expect("json");
    let text = switched.to_string();
    assert!(
        !text.contains("sk-very-secret"),
        "secrets are never returned: {text}"
    );
    assert_eq!(
        switched["data"]["settings"]["providers"][0]["api_key_set"],
        true
    );
    let answer: Value = post(
        &bot,
        "/api/v1/ai/chat/completions",
        json!({"messages": [{"role": "user", "content": "Hi"}]}),
    )
    .send()
    .await
    .expect("answered")
    .json()
    .await
    .expect("json");
    assert_eq!(
        answer["choices"][0]["message"]["content"], "From OpenAI.",
        "the new provider answers"
    );

    let typo = put(json!({"AI_PROVIDR": "ollama"}))
        .await
        .expect("answered");
    assert_eq!(typo.status(), 400);
    assert!(typo.text().await.expect("body").contains("AI_PROVIDR"));
    let invalid = put(json!({"AI_PROVIDER": "openai"}))
        .await
        .expect("answered");
    assert_eq!(invalid.status(), 400, "openai without a key");

    let off = put(json!({})).await.expect("answered");
    assert_eq!(off.status(), 200);
    let refused = post(
        &bot,
        "/api/v1/ai/chat/completions",
        json!({"messages": [{"role": "user", "content": "Hi"}]}),
    )
    .send()
    .await
    .expect("answered");
    assert_eq!(refused.status(), 503, "AI is off now");
}
