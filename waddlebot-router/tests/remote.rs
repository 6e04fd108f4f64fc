//! Remote modules against a real HTTP server on loopback that checks every signature.

use std::time::{Duration, SystemTime};

use waddlebot::store::{RemoteKind, RemoteModule};
use waddlebot::{CommunityId, Event, EventKind, PlatformKind, Sender};
use waddlebot_router::Router;
use waddlebot_router::remote::{RemoteError, sign};
use waddlebot_router::testing::Transcript;
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, Request, ResponseTemplate};

const SECRET: &str = "correct-horse-battery-staple";

/// Matches only requests whose `X-WaddleBot-Signature` is right for their exact body.
struct SignedWith(&'static str);

impl wiremock::Match for SignedWith {
    fn matches(&self, request: &Request) -> bool {
        request
            .headers
            .get("x-waddlebot-signature")
            .and_then(|v| v.to_str().ok())
            .is_some_and(|got| got == sign(self.0, &request.body))
    }
}

fn module(community: CommunityId, url: String) -> RemoteModule {
    RemoteModule {
        community_id: community,
        name: "weather".into(),
        url,
        secret: SECRET.into(),
        commands: vec!["weather".into()],
        events: vec![],
        timeout_ms: 1500,
        kind: RemoteKind::Webhook,
        enabled: true,
        created_at: SystemTime::now(),
    }
}

async fn setup() -> (Transcript, CommunityId, MockServer) {
    // The stand-in listens on loopback: a private address, allowed here.
    let t = Transcript::new(Router::builder().allow_private_targets(true)).expect("router");
    let community = t.community().await;
    (t, community, MockServer::start().await)
}

fn answer(json: serde_json::Value) -> ResponseTemplate {
    ResponseTemplate::new(200).set_body_json(json)
}

#[tokio::test]
async fn a_hash_command_calls_the_module_with_the_signed_contract() {
    let (t, c, server) = setup().await;
    Mock::given(method("POST"))
        .and(path("/weather"))
        .and(SignedWith(SECRET))
        .respond_with(answer(serde_json::json!({
            "success": true, "response_type": "text", "message": "London: 14°C, drizzle"
        })))
        .expect(1)
        .mount(&server)
        .await;
    t.router()
        .register_remote_module(module(c, format!("{}/weather", server.uri())))
        .await
        .expect("registered");
    t.play(
        "
        alice: #weather London UK
        < London: 14°C, drizzle
        alice: !weather London
        <~ Unknown command: !weather
        alice: #ping
        < Unknown command: #ping. No community module answers it.
        ",
    )
    .await;
    let request = &server.received_requests().await.expect("recorded")[0];
    let body: serde_json::Value = request.body_json().expect("json");
    assert_eq!(body["trigger"]["type"], "command");
    assert_eq!(body["trigger"]["command"], "#weather");
    assert_eq!(body["trigger"]["context_text"], "London UK");
    assert_eq!(body["community"]["id"], c.0);
    assert_eq!(body["community"]["name"], "twitch:pond");
    assert_eq!(body["user"]["username"], "alice");
    assert_eq!(body["user"]["platform"], "twitch");
    assert!(
        body["request_id"]
            .as_str()
            .is_some_and(|id| id.starts_with("sess_"))
    );
    assert!(body["timestamp"].as_str().is_some_and(|t| t.ends_with('Z')));
    assert!(
        request.headers["user-agent"]
            .to_str()
            .is_ok_and(|ua| ua.starts_with("WaddleBot-WebhookAdapter/"))
    );
}

#[tokio::test]
async fn a_module_error_is_shown_and_server_errors_are_retried_then_explained() {
    let (t, c, server) = setup().await;
    Mock::given(path("/refuses"))
        .respond_with(answer(
            serde_json::json!({"success": false, "error": "city not found"}),
        ))
        .mount(&server)
        .await;
    Mock::given(path("/broken"))
        .respond_with(ResponseTemplate::new(500).set_body_string("stack trace here"))
        .expect(3 * 3)
        .mount(&server)
        .await;
    let router = t.router();
    router
        .register_remote_module(module(c, format!("{}/refuses", server.uri())))
        .await
        .expect("registered");
    router
        .register_remote_module(RemoteModule {
            name: "broken".into(),
            commands: vec!["broken".into()],
            ..module(c, format!("{}/broken", server.uri()))
        })
        .await
        .expect("registered");
    t.play(
        "
        alice: #weather Atlantis
        < #weather: city not found
        alice: #broken
        < #broken is not available right now. Try again later.
        alice: #broken
        < #broken is not available right now. Try again later.
        ",
    )
    .await;
    let health = router.remote_module_health(c, "broken").expect("tracked");
    assert!(
        health.healthy(),
        "two failures in a row are not yet unhealthy"
    );
    t.play(
        "
        alice: #broken
        <~ not available
        ",
    )
    .await;
    let health = router.remote_module_health(c, "broken").expect("tracked");
    assert!(!health.healthy());
    assert_eq!(health.consecutive_failures, 3);
    assert!(
        router
            .remote_module_health(c, "weather")
            .expect("tracked")
            .healthy()
    );
}

#[tokio::test]
async fn a_429_is_retried_and_the_next_answer_used() {
    let (t, c, server) = setup().await;
    Mock::given(path("/weather"))
        .respond_with(ResponseTemplate::new(429))
        .up_to_n_times(1)
        .mount(&server)
        .await;
    Mock::given(path("/weather"))
        .respond_with(answer(
            serde_json::json!({"success": true, "message": "Sunny"}),
        ))
        .mount(&server)
        .await;
    t.router()
        .register_remote_module(module(c, format!("{}/weather", server.uri())))
        .await
        .expect("registered");
    t.play(
        "
        alice: #weather
        < Sunny
        ",
    )
    .await;
    assert_eq!(server.received_requests().await.expect("recorded").len(), 2);
}

#[tokio::test]
async fn a_hanging_module_or_garbage_gets_a_clear_reply_within_the_deadline() {
    let (t, c, server) = setup().await;
    Mock::given(path("/hang"))
        .respond_with(
            answer(serde_json::json!({"success": true, "message": "late"}))
                .set_delay(Duration::from_secs(20)),
        )
        .mount(&server)
        .await;
    Mock::given(path("/garbage"))
        .respond_with(ResponseTemplate::new(200).set_body_string("<html>oops</html>"))
        .mount(&server)
        .await;
    let router = t.router();
    router
        .register_remote_module(RemoteModule {
            timeout_ms: 300,
            ..module(c, format!("{}/hang", server.uri()))
        })
        .await
        .expect("registered");
    router
        .register_remote_module(RemoteModule {
            name: "garbage".into(),
            commands: vec!["garbage".into()],
            ..module(c, format!("{}/garbage", server.uri()))
        })
        .await
        .expect("registered");
    let started = std::time::Instant::now();
    t.play(
        "
        alice: #weather
        < #weather did not answer in time. Try again later.
        alice: #garbage
        < #garbage is not available right now. Try again later.
        ",
    )
    .await;
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "the deadline held"
    );
}

#[tokio::test]
async fn event_subscribers_and_openwhisk_actions_get_the_event_contract() {
    let (t, c, server) = setup().await;
    Mock::given(method("POST"))
        .and(path("/api/v1/namespaces/waddlebot/actions/greeter"))
        .and(wiremock::matchers::query_param("blocking", "true"))
        .and(wiremock::matchers::header(
            "authorization",
            "Basic dXNlcjpwYXNz",
        ))
        .and(SignedWith(SECRET))
        .respond_with(answer(
            serde_json::json!({"success": true, "message": "Thanks for the sub!"}),
        ))
        .expect(1)
        .mount(&server)
        .await;
    t.router()
        .register_remote_module(RemoteModule {
            name: "greeter".into(),
            commands: vec![],
            events: vec!["subscription".into()],
            kind: RemoteKind::OpenWhisk {
                namespace: "waddlebot".into(),
                action: "greeter".into(),
                auth: "user:pass".into(),
            },
            ..module(c, server.uri())
        })
        .await
        .expect("registered");
    let sub = Event::new(
        PlatformKind::Twitch,
        "pond",
        "pond",
        Sender::new("subber"),
        EventKind::Subscription {
            tier: waddlebot::SubscriptionTier::Tier1,
            months: 1,
            gift: None,
        },
        "",
    );
    let outcome = t.router().handle(sub).await.expect("handled");
    assert_eq!(
        outcome.replies,
        [waddlebot::Reply::text("Thanks for the sub!")]
    );
    assert_eq!(outcome.handlers[0].module, "greeter");
    let body: serde_json::Value = server.received_requests().await.expect("recorded")[0]
        .body_json()
        .expect("json");
    assert_eq!(body["trigger"]["type"], "event");
    assert_eq!(body["trigger"]["event_type"], "twitch.subscription");
    assert_eq!(body["trigger"]["event_data"]["tier"], "tier1");
    assert!(body["trigger"]["command"].is_null());
}

#[tokio::test]
async fn registrations_that_cannot_work_are_refused() {
    let (t, c, _server) = setup().await;
    let router = t.router();
    let base = module(c, "https://modules.example.invalid/weather".into());
    let cases = [
        RemoteModule {
            url: "ftp://x/y".into(),
            ..base.clone()
        },
        RemoteModule {
            timeout_ms: 0,
            ..base.clone()
        },
        RemoteModule {
            timeout_ms: 30_001,
            ..base.clone()
        },
        RemoteModule {
            secret: "short".into(),
            ..base.clone()
        },
        RemoteModule {
            commands: vec![],
            events: vec![],
            ..base.clone()
        },
        RemoteModule {
            commands: vec!["bad name".into()],
            ..base.clone()
        },
        RemoteModule {
            kind: RemoteKind::OpenWhisk {
                namespace: "ns".into(),
                action: "a".into(),
                auth: "nocolon".into(),
            },
            ..base.clone()
        },
    ];
    for case in cases {
        assert!(
            matches!(
                router.register_remote_module(case.clone()).await,
                Err(RemoteError::Invalid(_))
            ),
            "{case:?}"
        );
    }
    router
        .register_remote_module(base.clone())
        .await
        .expect("valid");
    assert!(matches!(
        router.register_remote_module(base.clone()).await,
        Err(RemoteError::Exists(_))
    ));
    assert!(matches!(
        router
            .register_remote_module(RemoteModule { name: "other".into(), ..base })
            .await,
        Err(RemoteError::Invalid(m)) if m.contains("already answers")
    ));
}

#[tokio::test]
async fn private_addresses_are_refused_unless_the_operator_allows_them() {
    let t = Transcript::new(Router::builder()).expect("router");
    let c = t.community().await;
    let local = module(c, "http://127.0.0.1:9/weather".to_owned());
    let refused = t.router().register_remote_module(local).await;
    assert!(
        matches!(&refused, Err(waddlebot_router::remote::RemoteError::Invalid(why)) if why.contains("private or local")),
        "{refused:?}"
    );
    let metadata = module(c, "http://169.254.169.254/latest".to_owned());
    assert!(t.router().register_remote_module(metadata).await.is_err());
}
