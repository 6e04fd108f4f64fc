//! What every request meets besides its handler, through the real server on loopback: 413,
//! 400, 415, 414, 404 and 405 answers in the envelope; the admin API's per-client rate limit
//! with its headers; CORS for configured origins only; security headers; and RS256 tokens
//! (accepted from the configured key, refused from any other key or algorithm).

#[allow(dead_code)]
mod admin;
#[allow(dead_code)]
mod loopback;

use std::time::Duration;

use admin::{settings, start, start_with, token};
use serde_json::Value;
use waddlebot::CommunityId;
use waddlebot_server::HttpPolicy;
use waddlebot_server::auth::{JwtSettings, Role, RsaPublicKey, Signing, issue_signed_token};

async fn status_and_message(response: reqwest::Response) -> (u16, String) {
    let status = response.status().as_u16();
    let body: Value = response.json().await.unwrap_or(Value::Null);
    assert_eq!(body["status"], "error", "an error envelope: {body}");
    (
        status,
        body["message"].as_str().unwrap_or_default().to_owned(),
    )
}

#[tokio::test]
async fn bad_requests_get_their_own_status_and_a_reason() {
    let bot = start().await;
    let owner = token(Role::Owner, Some(1));
    let client = reqwest::Client::new();
    let commands = format!("{}/communities/1/commands", bot.base);

    let big = client
        .post(&commands)
        .bearer_auth(&owner)
        .header("content-type", "application/json")
        .body(vec![b' '; (1 << 20) + 1])
        .send()
        .await
        .expect("answered");
    let (status, message) = status_and_message(big).await;
    assert_eq!(status, 413, "{message}");

    let malformed = client
        .post(&commands)
        .bearer_auth(&owner)
        .header("content-type", "application/json")
        .body("{\"name\": ")
        .send()
        .await
        .expect("answered");
    let (status, message) = status_and_message(malformed).await;
    assert_eq!(status, 400);
    assert!(message.contains("valid JSON"), "{message}");

    let form = client
        .post(&commands)
        .bearer_auth(&owner)
        .header("content-type", "application/x-www-form-urlencoded")
        .body("name=a&response=b")
        .send()
        .await
        .expect("answered");
    let (status, message) = status_and_message(form).await;
    assert_eq!(status, 415);
    assert!(message.contains("application/json"), "{message}");
    assert!(
        message.contains("--json"),
        "a form (what `curl -d` sends) is told how to send JSON: {message}"
    );

    let long = client
        .get(format!("{commands}?q={}", "a".repeat(9000)))
        .bearer_auth(&owner)
        .send()
        .await
        .expect("answered");
    assert_eq!(status_and_message(long).await.0, 414);

    let unknown = client
        .get(format!("{}/nothing/here", bot.base))
        .send()
        .await
        .expect("answered");
    assert_eq!(status_and_message(unknown).await.0, 404);

    let wrong_method = client
        .delete(&commands)
        .bearer_auth(&owner)
        .send()
        .await
        .expect("answered");
    assert_eq!(wrong_method.headers()["allow"], "GET, POST");
    assert_eq!(status_and_message(wrong_method).await.0, 405);
}

#[tokio::test]
async fn each_client_has_its_own_admin_budget_and_is_told_when_to_come_back() {
    let policy = HttpPolicy {
        admin_rate_per_minute: 3,
        ..HttpPolicy::default()
    };
    let bot = start_with(policy, settings()).await;
    let client = reqwest::Client::new();
    let url = format!("{}/communities/1/commands", bot.base);
    let owner = token(Role::Owner, Some(1));
    for remaining in ["2", "1", "0"] {
        let ok = client
            .get(&url)
            .bearer_auth(&owner)
            .send()
            .await
            .expect("ok");
        assert_eq!(ok.status(), 200);
        assert_eq!(ok.headers()["x-ratelimit-limit"], "3");
        assert_eq!(ok.headers()["x-ratelimit-remaining"], remaining);
    }
    let refused = client
        .get(&url)
        .bearer_auth(&owner)
        .send()
        .await
        .expect("answered");
    assert_eq!(refused.status(), 429);
    let wait: u64 = refused.headers()["retry-after"]
        .to_str()
        .expect("text")
        .parse()
        .expect("seconds");
    assert!((55..=60).contains(&wait), "{wait}");
    assert!(refused.headers().contains_key("x-ratelimit-reset"));

    let other = token(Role::Viewer, Some(1));
    let fine = client
        .get(&url)
        .bearer_auth(&other)
        .send()
        .await
        .expect("ok");
    assert_eq!(fine.status(), 200, "another credential has its own budget");
    let health = client
        .get(url.replace("/api/v1/communities/1/commands", "/health"))
        .send()
        .await
        .expect("ok");
    assert_eq!(
        health.status(),
        200,
        "only the API is limited, not health checks"
    );
}

#[tokio::test]
async fn cors_answers_configured_origins_only_and_headers_are_safe() {
    let policy = HttpPolicy {
        cors_origins: vec!["https://dash.example".to_owned()],
        ..HttpPolicy::default()
    };
    let bot = start_with(policy, settings()).await;
    let client = reqwest::Client::new();
    let url = format!("{}/communities/1/commands", bot.base);
    let preflight = |origin: &'static str| {
        client
            .request(reqwest::Method::OPTIONS, &url)
            .header("origin", origin)
            .header("access-control-request-method", "POST")
            .send()
    };
    let allowed = preflight("https://dash.example").await.expect("answered");
    assert_eq!(allowed.status(), 204);
    assert_eq!(
        allowed.headers()["access-control-allow-origin"],
        "https://dash.example"
    );
    assert_eq!(
        allowed.headers()["access-control-allow-methods"],
        "GET, POST"
    );
    assert!(
        allowed.headers()["access-control-allow-headers"]
            .to_str()
            .expect("text")
            .contains("authorization")
    );
    let stranger = preflight("https://evil.example").await.expect("answered");
    assert!(
        !stranger
            .headers()
            .contains_key("access-control-allow-origin"),
        "no CORS for other origins"
    );

    let real = client
        .get(&url)
        .header("origin", "https://dash.example")
        .bearer_auth(token(Role::Viewer, Some(1)))
        .send()
        .await
        .expect("answered");
    assert_eq!(real.status(), 200);
    assert_eq!(
        real.headers()["access-control-allow-origin"],
        "https://dash.example"
    );
    assert_eq!(real.headers()["x-content-type-options"], "nosniff");
    assert!(real.headers().contains_key("x-request-id"));
}

#[tokio::test]
async fn an_address_that_keeps_guessing_credentials_is_locked_out() {
    let policy = HttpPolicy {
        failed_auth_per_minute: 3,
        ..HttpPolicy::default()
    };
    let bot = start_with(policy, settings()).await;
    let client = reqwest::Client::new();
    let url = format!("{}/communities/1/commands", bot.base);
    let get = |credential: Option<String>| {
        let mut request = client.get(&url);
        if let Some(credential) = credential {
            request = request.bearer_auth(credential);
        }
        request.send()
    };
    for _ in 0..3 {
        let status = get(None).await.expect("answered").status();
        assert_eq!(status, 401, "a missing credential is not a guess");
    }
    for guess in 0..3 {
        let key = format!("wbot_{guess:016x}{}", "0".repeat(64));
        assert_eq!(get(Some(key)).await.expect("answered").status(), 401);
    }
    let locked = get(Some(token(Role::Owner, Some(1))))
        .await
        .expect("answered");
    assert_eq!(
        locked.status(),
        429,
        "even a good credential waits once the address is locked out"
    );
    assert!(locked.headers().contains_key("retry-after"));
}

fn fixture(name: &str) -> Vec<u8> {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fixtures/jwt")
        .join(name);
    std::fs::read(&path).unwrap_or_else(|err| panic!("{}: {err}", path.display()))
}

#[tokio::test]
async fn rs256_tokens_from_the_configured_key_are_accepted_and_nothing_else() {
    let jwt = JwtSettings {
        secret: Vec::new(),
        issuer: "waddlebot".to_owned(),
        audience: "waddlebot-api".to_owned(),
        rsa_public_keys: vec![RsaPublicKey {
            kid: "test-rs256".to_owned(),
            pem: fixture("test-rs256.pem"),
        }],
    };
    let bot = start_with(HttpPolicy::default(), jwt.clone()).await;
    let url = format!("{}/communities/1/commands", bot.base);
    let sign = |pem: &[u8], kid: &str| {
        issue_signed_token(
            &jwt,
            Signing::Rs256 {
                private_pem: pem,
                kid,
            },
            "idp-user",
            Role::Owner,
            Some(CommunityId(1)),
            Duration::from_secs(600),
        )
        .expect("signed")
    };
    let status = |credential: String| {
        let url = url.clone();
        async move {
            reqwest::Client::new()
                .get(url)
                .bearer_auth(credential)
                .send()
                .await
                .expect("answered")
                .status()
                .as_u16()
        }
    };
    let ours = fixture("test-rs256.key.pem");
    let theirs = fixture("other-rs256.key.pem");
    assert_eq!(status(sign(&ours, "test-rs256")).await, 200);
    assert_eq!(
        status(sign(&theirs, "test-rs256")).await,
        401,
        "another key under our key id"
    );
    assert_eq!(
        status(sign(&ours, "rotated-away")).await,
        401,
        "an unknown key id"
    );
    assert_eq!(
        status(token(Role::Owner, Some(1))).await,
        401,
        "HS256 is off when RS256 keys are configured"
    );
}
