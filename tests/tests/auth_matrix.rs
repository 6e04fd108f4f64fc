//! The authorization matrix, generated from the server's route table so a new route cannot be
//! forgotten: every route × every kind of credential (none, expired, forged, `alg: none`, wrong
//! audience, revoked key, community roles, collector, admin) → refused with 401 or 403, or let
//! through to the handler.

// Only the server half of the shared helpers is used here.
#[allow(dead_code)]
mod loopback;

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use http::Method;
use serde_json::json;
use waddlebot::store::MemoryStore;
use waddlebot::{CommunityId, Store};
use waddlebot_server::auth::{Authenticator, JwtSettings, Need, Role, issue_token, new_api_key};
use waddlebot_server::{AppState, ROUTES};

const SECRET: &[u8] = b"an-hs256-secret-of-at-least-32-bytes!!";

fn settings() -> JwtSettings {
    JwtSettings::hs256(SECRET, "waddlebot", "waddlebot-api")
}

fn base64url(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let n =
            chunk.iter().fold(0u32, |acc, b| (acc << 8) | u32::from(*b)) << (8 * (3 - chunk.len()));
        for i in 0..=chunk.len() {
            out.push(char::from(ALPHABET[((n >> (18 - 6 * i)) & 63) as usize]));
        }
    }
    out
}

fn unix(time: SystemTime) -> u64 {
    time.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

/// A token with hand-made claims, signed with `secret`.
fn custom_token(claims: serde_json::Value, secret: &[u8]) -> String {
    jsonwebtoken::encode(
        &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256),
        &claims,
        &jsonwebtoken::EncodingKey::from_secret(secret),
    )
    .expect("signed")
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Expect {
    Unauthenticated,
    Forbidden,
    Through,
}

#[tokio::test]
async fn every_route_refuses_or_admits_every_credential_as_its_need_says() {
    let store: Arc<dyn Store> = Arc::new(MemoryStore::new());
    let router = Arc::new(
        waddlebot_router::Router::builder()
            .store(Arc::clone(&store))
            .build()
            .expect("router"),
    );
    let auth = Authenticator::new(Arc::clone(&store), Some(settings())).expect("auth");
    // Hundreds of refused credentials from one address: the lock-out for failed
    // authentications is off here (http_hygiene tests it).
    let policy = waddlebot_server::HttpPolicy {
        failed_auth_per_minute: 0,
        ..waddlebot_server::HttpPolicy::default()
    };
    let bot = loopback::serve_on_loopback(
        AppState::new(router, 1 << 20)
            .with_auth(auth)
            .with_http(policy),
    )
    .await;

    let key = |role: Role, community: Option<CommunityId>| {
        let store = Arc::clone(&store);
        async move {
            let (key, record) = new_api_key("test", role, community, None).expect("key");
            store.create_api_key(&record).await.expect("stored");
            (key, record.id)
        }
    };
    let (admin_key, _) = key(Role::Admin, None).await;
    let (collector_key, _) = key(Role::Collector, None).await;
    let (revoked_key, revoked_id) = key(Role::Admin, None).await;
    store
        .revoke_api_key(&revoked_id, SystemTime::now())
        .await
        .expect("revoked");
    let token = |role: Role, community: Option<CommunityId>| {
        issue_token(
            &settings(),
            "tester",
            role,
            community,
            Duration::from_secs(600),
        )
        .expect("token")
    };
    let now = unix(SystemTime::now());
    let claims = |exp: u64, aud: &str| json!({"sub": "x", "role": "admin", "iss": "waddlebot", "aud": aud, "exp": exp, "nbf": now - 10, "iat": now - 10});
    let expired = custom_token(claims(now - 3600, "waddlebot-api"), SECRET);
    let wrong_audience = custom_token(claims(now + 600, "somebody-else"), SECRET);
    let forged = custom_token(
        claims(now + 600, "waddlebot-api"),
        b"not-the-secret-not-the-secret-!!!",
    );
    let alg_none = format!(
        "{}.{}.",
        base64url(br#"{"alg":"none","typ":"JWT"}"#),
        base64url(claims(now + 600, "waddlebot-api").to_string().as_bytes())
    );
    let a = Some(CommunityId(1));
    let b = Some(CommunityId(2));
    let credentials: Vec<(&str, Option<String>)> = vec![
        ("none", None),
        ("expired token", Some(expired)),
        ("forged token", Some(forged)),
        ("alg none", Some(alg_none)),
        ("wrong audience", Some(wrong_audience)),
        ("revoked key", Some(revoked_key)),
        ("unknown key", Some(format!("wbot_{}", "0".repeat(80)))),
        ("viewer of A", Some(token(Role::Viewer, a))),
        ("owner of B", Some(token(Role::Owner, b))),
        ("moderator of A", Some(token(Role::Moderator, a))),
        ("owner of A", Some(token(Role::Owner, a))),
        ("collector token", Some(token(Role::Collector, None))),
        ("collector key", Some(collector_key)),
        ("admin token", Some(token(Role::Admin, None))),
        ("admin key", Some(admin_key)),
    ];
    let valid = |name: &str| {
        !matches!(
            name,
            "none"
                | "expired token"
                | "forged token"
                | "alg none"
                | "wrong audience"
                | "revoked key"
                | "unknown key"
        )
    };
    let client = reqwest::Client::new();
    let mut checked = 0;
    for (path, method, need) in ROUTES {
        for (name, credential) in &credentials {
            // Paths name community A (id 1).
            let role_in_a = match *name {
                "viewer of A" => Some(Role::Viewer),
                "moderator of A" => Some(Role::Moderator),
                "owner of A" => Some(Role::Owner),
                _ => None,
            };
            let expected = match need {
                Need::Nothing => Expect::Through,
                _ if !valid(name) => Expect::Unauthenticated,
                Need::Anyone => Expect::Through,
                Need::Collector if name.starts_with("collector") || name.starts_with("admin") => {
                    Expect::Through
                }
                Need::Admin if name.starts_with("admin") => Expect::Through,
                Need::Community(_) if name.starts_with("admin") => Expect::Through,
                Need::Community(min) if role_in_a.is_some_and(|role| role >= *min) => {
                    Expect::Through
                }
                _ => Expect::Forbidden,
            };
            // Community A's id, any other placeholder a name.
            let path = path
                .split('/')
                .map(|segment| match segment {
                    "{id}" => "1",
                    s if s.starts_with('{') => "hello",
                    s => s,
                })
                .collect::<Vec<_>>()
                .join("/");
            let mut request = client.request(
                reqwest::Method::from_bytes(method.as_str().as_bytes()).expect("method"),
                format!("http://{}{path}", bot.addr),
            );
            if [Method::POST, Method::PUT, Method::PATCH].contains(method) {
                request = request.body("{}");
            }
            if let Some(credential) = credential {
                request = request.bearer_auth(credential);
            }
            let status = request.send().await.expect("answered").status().as_u16();
            let got = match status {
                401 => Expect::Unauthenticated,
                403 => Expect::Forbidden,
                _ => Expect::Through,
            };
            assert_eq!(got, expected, "{method} {path} with {name}: HTTP {status}");
            checked += 1;
        }
    }
    assert_eq!(checked, ROUTES.len() * credentials.len());
}
