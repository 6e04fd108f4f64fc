//! Shoutouts and music through a real router, with Helix, Spotify and YouTube stood in by
//! wiremock with the shapes their documentation publishes (tokens that expire and are renewed
//! included), what each command says without credentials, and the server's Spotify callback
//! page.

#[allow(dead_code)]
mod loopback;

use std::sync::Arc;

use serde_json::json;
use waddlebot::store::MemoryStore;
use waddlebot::{Event, EventKind, OverlayReply, PermissionLevel, PlatformKind, Reply};
use waddlebot_router::Router;
use waddlebot_router::testing::Transcript;
use wiremock::matchers::{body_string_contains, header, method, path, query_param};
use wiremock::{Mock, MockServer, ResponseTemplate};

fn bot(services: waddlebot_modules::Services) -> Transcript {
    let standard = waddlebot_modules::standard_modules_with(services);
    let builder = Router::builder()
        .store(Arc::new(MemoryStore::new()))
        .modules(standard.commands, standard.events);
    Transcript::new(builder).expect("router")
}

/// Helix on wiremock: an app token (the first one is refused once, as an expired token is),
/// `pingu` (offline, with clips) and `gunter` (live).
async fn helix() -> MockServer {
    let server = MockServer::start().await;
    let token = |value: &str| {
        ResponseTemplate::new(200).set_body_json(
            json!({"access_token": value, "expires_in": 3600, "token_type": "bearer"}),
        )
    };
    Mock::given(method("POST"))
        .and(path("/oauth2/token"))
        .and(body_string_contains("grant_type=client_credentials"))
        .respond_with(token("app-1"))
        .up_to_n_times(1)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path("/oauth2/token"))
        .respond_with(token("app-2"))
        .mount(&server)
        .await;
    // The first token has expired: Helix says 401 and the lookup renews it.
    Mock::given(header("authorization", "Bearer app-1"))
        .respond_with(ResponseTemplate::new(401).set_body_json(
            json!({"error": "Unauthorized", "status": 401, "message": "Invalid OAuth token"}),
        ))
        .mount(&server)
        .await;
    let user = |id: &str, login: &str, name: &str| {
        json!({"data": [{
            "id": id, "login": login, "display_name": name, "type": "",
            "broadcaster_type": "affiliate", "description": "Noot noot",
            "profile_image_url": "https://static-cdn.jtvnw.net/p.png",
            "offline_image_url": "", "view_count": 0, "created_at": "2020-01-01T00:00:00Z"
        }]})
    };
    for (id, login, name) in [("42", "pingu", "Pingu"), ("43", "gunter", "Gunter")] {
        Mock::given(method("GET"))
            .and(path("/helix/users"))
            .and(query_param("login", login))
            .and(header("client-id", "client"))
            .and(header("authorization", "Bearer app-2"))
            .respond_with(ResponseTemplate::new(200).set_body_json(user(id, login, name)))
            .mount(&server)
            .await;
        Mock::given(method("GET"))
            .and(path("/helix/channels"))
            .and(query_param("broadcaster_id", id))
            .respond_with(ResponseTemplate::new(200).set_body_json(json!({"data": [{
                "broadcaster_id": id, "broadcaster_login": login, "broadcaster_name": name,
                "game_name": "Ice Fishing", "title": "Sliding around", "delay": 0, "tags": []
            }]})))
            .mount(&server)
            .await;
    }
    Mock::given(method("GET"))
        .and(path("/helix/users"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"data": []})))
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/helix/streams"))
        .and(query_param("user_id", "43"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"data": [{
            "id": "9", "user_id": "43", "user_login": "gunter", "user_name": "Gunter",
            "game_name": "Penguin Racing", "type": "live", "title": "Finals!",
            "viewer_count": 321, "started_at": "2026-11-26T10:00:00Z"
        }], "pagination": {}})))
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/helix/streams"))
        .respond_with(
            ResponseTemplate::new(200).set_body_json(json!({"data": [], "pagination": {}})),
        )
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/helix/clips"))
        .and(query_param("broadcaster_id", "42"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"data": [{
            "id": "AwkwardClip", "url": "https://clips.twitch.tv/AwkwardClip",
            "embed_url": "https://clips.twitch.tv/embed?clip=AwkwardClip",
            "broadcaster_id": "42", "title": "The big slide", "view_count": 10,
            "created_at": "2026-11-25T10:00:00Z", "thumbnail_url": "https://x/t.jpg",
            "duration": 28.5
        }], "pagination": {}})))
        .mount(&server)
        .await;
    server
}

fn helix_services(server: &MockServer) -> waddlebot_modules::Services {
    waddlebot_modules::Services {
        creators: Some(Arc::new(waddlebot_modules::Helix::new(
            "client",
            "secret",
            &server.uri(),
            &server.uri(),
            reqwest::Client::new(),
        ))),
        ..Default::default()
    }
}

const SHOUTOUT_SCRIPT: &str = r#"
    alice: !so pingu
    < Shoutouts here are for moderator and above.
    mod@moderator: !so
    <~ Usage: !so <user>
    mod@moderator: !so nobody_here
    < User 'nobody_here' not found on Twitch.
    mod@moderator: !so @Pingu
    < Go check out Pingu! They were last playing Ice Fishing → https://twitch.tv/pingu
    mod@moderator: !shoutout pingu
    < Pingu had a shoutout recently; again in 60 min.
    mod@moderator: !so gunter
    < Go check out Gunter, live now with 321 viewers: Finals! [Penguin Racing] → https://twitch.tv/gunter
    ~ wait 61m
    mod@moderator: !so pingu
    < Go check out Pingu! They were last playing Ice Fishing → https://twitch.tv/pingu
    alice: !so history
    < Latest shoutouts: pingu (text, by mod), gunter (text, by mod), pingu (text, by mod).
"#;

#[tokio::test]
async fn shoutouts_look_creators_up_and_wait_out_their_cooldown() {
    let server = helix().await;
    let bot = bot(helix_services(&server));
    bot.play(SHOUTOUT_SCRIPT).await;

    // A community template must name the creator; a good one is used.
    let community = bot.community().await;
    let templates = |templates: serde_json::Value| json!({"templates": templates, "permission": "everyone", "cooldown_minutes": 0});
    bot.configure(
        "shoutout",
        templates(json!({"twitch": {"offline": "Follow {display_name}!"}})),
    )
    .await;
    bot.play(
        r#"
        alice: !so pingu
        < Go check out Pingu! They were last playing Ice Fishing → https://twitch.tv/pingu
        "#,
    )
    .await;
    bot.configure(
        "shoutout",
        templates(json!({"twitch": {"offline": "Follow {display_name} at twitch.tv/{login}!"}})),
    )
    .await;
    bot.play(
        r#"
        alice: !so pingu
        < Follow Pingu at twitch.tv/pingu!
        "#,
    )
    .await;

    // A video shoutout puts a recent clip on the overlay.
    let mut event = Event::chat(PlatformKind::Twitch, "pond", "pond", "alice", "!vso pingu");
    event.user.level = PermissionLevel::Moderator;
    let outcome = bot.router().handle(event).await.expect("handled");
    assert_eq!(
        outcome.replies,
        [Reply::text(
            "Playing \"The big slide\" by Pingu on the overlay → https://twitch.tv/pingu"
        )]
    );
    let shown = bot.router().overlays().on_screen(community);
    assert_eq!(
        shown.last().map(|s| &s.item),
        Some(&OverlayReply::Media {
            media_type: "clip".into(),
            url: "https://clips.twitch.tv/embed?clip=AwkwardClip".into(),
            duration_secs: 29
        })
    );
}

#[tokio::test]
async fn a_raid_gets_a_shoutout_by_itself_once() {
    let server = helix().await;
    let bot = bot(helix_services(&server));
    let raid = || {
        let mut event = Event::chat(PlatformKind::Twitch, "pond", "pond", "gunter", "");
        event.kind = EventKind::Raid { viewers: 30 };
        event
    };
    let first = bot.router().handle(raid()).await.expect("handled");
    let texts: Vec<String> = first.replies.iter().map(Reply::to_plain_text).collect();
    assert_eq!(
        texts,
        [
            "Go check out Gunter, live now with 321 viewers: Finals! [Penguin Racing] → https://twitch.tv/gunter"
        ]
    );
    let again = bot.router().handle(raid()).await.expect("handled");
    assert!(
        again
            .replies
            .iter()
            .all(|r| !matches!(r, Reply::Text { .. })),
        "no second shoutout within the cooldown: {:?}",
        again.replies
    );
}

#[tokio::test]
async fn a_listed_creator_gets_a_shoutout_with_their_first_message_only_when_asked_for() {
    let server = helix().await;
    let bot = bot(helix_services(&server));
    let says = |text: &'static str| bot.say("pingu", PermissionLevel::Everyone, text);
    assert_eq!(
        says("hello pond").await,
        Vec::<String>::new(),
        "off by default"
    );
    bot.configure(
        "shoutout",
        json!({"auto_first_message": true, "creators": ["Pingu"]}),
    )
    .await;
    assert_eq!(
        says("hello again").await,
        ["Go check out Pingu! They were last playing Ice Fishing → https://twitch.tv/pingu"]
    );
    assert_eq!(
        says("still here").await,
        Vec::<String>::new(),
        "once per cooldown"
    );
    assert_eq!(
        bot.say("gunter", PermissionLevel::Everyone, "hi").await,
        Vec::<String>::new(),
        "only listed creators"
    );
}

#[tokio::test]
async fn without_credentials_the_commands_say_what_to_configure() {
    let bot = bot(waddlebot_modules::Services::default());
    bot.play(
        r#"
        mod@moderator: !so pingu
        < Shoutouts look creators up on Twitch: set TWITCH_CLIENT_ID and TWITCH_CLIENT_SECRET.
        alice: !sr never gonna give you up
        < Song requests search YouTube: set YOUTUBE_API_KEY (a YouTube Data API v3 key).
        alice: !queue
        < Song requests search YouTube: set YOUTUBE_API_KEY (a YouTube Data API v3 key).
        alice: !spotify
        < Spotify needs an app: set SPOTIFY_CLIENT_ID, SPOTIFY_CLIENT_SECRET and SPOTIFY_REDIRECT_URL (this server's /oauth/spotify/callback).
        "#,
    )
    .await;
}

/// YouTube on wiremock: a search and the videos' details.
async fn youtube() -> MockServer {
    let server = MockServer::start().await;
    let video = |id: &str, title: &str, duration: &str| {
        json!({"kind": "youtube#video", "id": id, "snippet": {
            "title": title, "channelTitle": "Penguin Records",
            "thumbnails": {"medium": {"url": format!("https://i.ytimg.com/vi/{id}/mqdefault.jpg")}}
        }, "contentDetails": {"duration": duration}})
    };
    let search = |q: &str, ids: &[&str]| {
        Mock::given(method("GET"))
            .and(path("/search"))
            .and(query_param("q", q))
            .and(query_param("videoCategoryId", "10"))
            .and(query_param("key", "yt-key"))
            .respond_with(ResponseTemplate::new(200).set_body_json(json!({
                "kind": "youtube#searchListResponse",
                "items": ids.iter().map(|id| json!({"id": {"kind": "youtube#video", "videoId": id}, "snippet": {}})).collect::<Vec<_>>()
            })))
    };
    search("noot song", &["nootnootAAA"]).mount(&server).await;
    search("ice waltz", &["icewaltzBBB"]).mount(&server).await;
    search("epic opera", &["epicoperaCC"]).mount(&server).await;
    search("slide", &["slideslideD"]).mount(&server).await;
    search("nothing at all", &[]).mount(&server).await;
    for (id, title, duration) in [
        ("nootnootAAA", "Noot Song", "PT3M5S"),
        ("icewaltzBBB", "Ice Waltz", "PT4M"),
        ("epicoperaCC", "Epic Opera", "PT1H2M"),
        ("slideslideD", "Slide", "PT2M30S"),
    ] {
        Mock::given(method("GET"))
            .and(path("/videos"))
            .and(query_param("id", id))
            .respond_with(
                ResponseTemplate::new(200)
                    .set_body_json(json!({"items": [video(id, title, duration)]})),
            )
            .mount(&server)
            .await;
    }
    server
}

const SONG_SCRIPT: &str = r#"
    alice: !queue
    < The queue is empty. Request a song with sr <song>.
    alice: !sr
    <~ Usage: !sr <song or YouTube link>
    alice: !sr nothing at all
    < Nothing found for "nothing at all".
    alice: !sr epic opera
    < "Epic Opera" is 62:00 long; songs here are at most 10:00.
    alice: !sr noot song
    < Now playing "Noot Song" (3:05), requested by alice.
    bob: !sr https://youtu.be/icewaltzBBB
    < Added "Ice Waltz" (4:00) at position 1.
    bob: !sr slide
    < Added "Slide" (2:30) at position 2.
    bob: !sr noot song
    < "Noot Song" is in the queue already.
    carol: !vote 2 up
    < Voted up "Slide" (score +1).
    alice: !queue
    < Queue (1/1): 1. Slide (+1, bob) | 2. Ice Waltz (+0, bob)
    alice: !remove 1
    < You can remove only your own requests.
    alice: !np
    < Now playing "Noot Song" by Penguin Records, requested by alice.
    alice: !skip
    < You need to be moderator or higher to use !skip.
    mod@moderator: !skip
    < Skipped. Now playing "Slide".
    ~ wait 151s
    alice: !np
    < Now playing "Ice Waltz" by Penguin Records, requested by bob.
    bob: !sr noot song
    < Added "Noot Song" (3:05) at position 1.
    bob: !remove 1
    < Removed "Noot Song".
    mod@moderator: !clear
    < Cleared 0 songs from the queue.
"#;

#[tokio::test]
async fn song_requests_queue_vote_and_play_on_the_overlay() {
    let server = youtube().await;
    let bot = bot(waddlebot_modules::Services {
        youtube: Some(waddlebot_modules::YouTube::new(
            "yt-key",
            &server.uri(),
            reqwest::Client::new(),
        )),
        ..Default::default()
    });
    bot.play(SONG_SCRIPT).await;
    let community = bot.community().await;
    let now_playing: Vec<_> = bot
        .router()
        .overlays()
        .on_screen(community)
        .into_iter()
        .filter(|s| s.source == "now-playing")
        .map(|s| s.item)
        .collect();
    assert_eq!(
        now_playing,
        [OverlayReply::NowPlaying {
            title: "Ice Waltz".into(),
            artist: "Penguin Records".into(),
            image_url: Some("https://i.ytimg.com/vi/icewaltzBBB/mqdefault.jpg".into()),
            duration_secs: 240
        }]
    );

    // Per-person limit.
    bot.configure("music", json!({"per_user_limit": 1})).await;
    bot.play(
        r#"
        dave: !sr slide
        < Added "Slide" (2:30) at position 1.
        dave: !sr noot song
        < You have 1 songs waiting already (at most 1).
        "#,
    )
    .await;
}

/// Spotify on wiremock: the accounts service (code exchange, refresh) and the Web API.
async fn spotify_server() -> MockServer {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/api/token"))
        .and(body_string_contains("grant_type=authorization_code"))
        .and(body_string_contains("code=the-code"))
        .and(header("authorization", "Basic c3AtaWQ6c3Atc2VjcmV0"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "access_token": "sp-1", "token_type": "Bearer", "scope": "user-read-playback-state",
            "expires_in": 3600, "refresh_token": "refresh-1"
        })))
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path("/api/token"))
        .and(body_string_contains("grant_type=refresh_token"))
        .and(body_string_contains("refresh_token=refresh-1"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "access_token": "sp-2", "token_type": "Bearer", "expires_in": 3600
        })))
        .mount(&server)
        .await;
    Mock::given(header("authorization", "Bearer sp-1"))
        .and(path("/v1/me/player/devices"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"devices": [
            {"id": "d1", "is_active": true, "name": "Stream PC", "type": "Computer", "volume_percent": 60}
        ]})))
        .mount(&server)
        .await;
    for token in ["sp-1", "sp-2"] {
        Mock::given(header("authorization", format!("Bearer {token}").as_str()))
            .and(method("GET"))
            .and(path("/v1/search"))
            .and(query_param("type", "track"))
            .respond_with(ResponseTemplate::new(200).set_body_json(json!({"tracks": {"items": [
                {"uri": "spotify:track:1", "name": "Noot Noot", "duration_ms": 185000,
                 "artists": [{"name": "Pingu"}], "album": {"images": [{"url": "https://i.scdn.co/a.jpg"}]}},
                {"uri": "spotify:track:2", "name": "Ice Ice", "duration_ms": 200000,
                 "artists": [{"name": "Gunter"}, {"name": "Robby"}], "album": {"images": []}}
            ]}})))
            .mount(&server)
            .await;
    }
    Mock::given(header("authorization", "Bearer sp-2"))
        .and(method("POST"))
        .and(path("/v1/me/player/queue"))
        .and(query_param("uri", "spotify:track:2"))
        .respond_with(ResponseTemplate::new(204))
        .mount(&server)
        .await;
    Mock::given(header("authorization", "Bearer sp-2"))
        .and(method("GET"))
        .and(path("/v1/me/player/currently-playing"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "is_playing": true, "progress_ms": 1000, "item": {
                "uri": "spotify:track:1", "name": "Noot Noot", "duration_ms": 185000,
                "artists": [{"name": "Pingu"}], "album": {"images": [{"url": "https://i.scdn.co/a.jpg"}]}
            }
        })))
        .mount(&server)
        .await;
    for (verb, route) in [
        ("POST", "/v1/me/player/next"),
        ("PUT", "/v1/me/player/pause"),
        ("PUT", "/v1/me/player/play"),
    ] {
        Mock::given(header("authorization", "Bearer sp-2"))
            .and(method(verb))
            .and(path(route))
            .respond_with(ResponseTemplate::new(204))
            .mount(&server)
            .await;
    }
    server
}

/// The Spotify client of app `sp-id`, talking to the stand-in.
fn spotify_client(server: &MockServer) -> Arc<waddlebot_modules::Spotify> {
    Arc::new(waddlebot_modules::Spotify::new(
        waddlebot_modules::SpotifySettings {
            client_id: "sp-id".into(),
            client_secret: "sp-secret".into(),
            redirect_url: "https://bot.example/oauth/spotify/callback".into(),
            api_url: format!("{}/v1", server.uri()),
            accounts_url: server.uri(),
        },
        reqwest::Client::new(),
    ))
}

#[tokio::test]
async fn spotify_is_linked_by_the_broadcaster_and_its_token_is_renewed_before_it_expires() {
    let server = spotify_server().await;
    let spotify = spotify_client(&server);
    let bot = bot(waddlebot_modules::Services {
        spotify: Some(Arc::clone(&spotify)),
        ..Default::default()
    });
    bot.play(
        r#"
        alice: !spotify
        < Spotify is not linked here yet: the broadcaster can link it with spotify connect.
        alice: !spotify connect
        < You need to be broadcaster or higher to use !spotify.
        "#,
    )
    .await;
    let link = bot
        .say("boss", PermissionLevel::Broadcaster, "!spotify connect")
        .await;
    let url = link[0].strip_prefix("Link Spotify here: ").expect("a link");
    let url = url::Url::parse(url).expect("a URL");
    assert_eq!(url.path(), "/authorize");
    let query: std::collections::HashMap<_, _> = url.query_pairs().into_owned().collect();
    assert_eq!(query["client_id"], "sp-id");
    assert_eq!(
        query["redirect_uri"],
        "https://bot.example/oauth/spotify/callback"
    );
    assert_eq!(query["scope"], waddlebot_modules::SPOTIFY_SCOPES);

    // Spotify sends the broadcaster back with a code; the link works once.
    let store = bot.router().store();
    let now = bot.router().clock().now_millis();
    let community = spotify
        .complete(store.as_ref(), &query["state"], "the-code", now)
        .await
        .expect("linked");
    assert_eq!(community, bot.community().await);
    assert!(
        spotify
            .complete(store.as_ref(), &query["state"], "the-code", now)
            .await
            .is_err()
    );

    bot.play(
        r#"
        alice: !spotify devices
        < Spotify devices: Stream PC (active).
        alice: !spotify play 1
        < Search first (spotify search <words>), then play a number from it.
        ~ wait 56m
        alice: !spotify search noot
        < 1. Noot Noot - Pingu (3:05) | 2. Ice Ice - Gunter, Robby (3:20)
        alice: !spotify play 2
        < Added to the Spotify queue.
        alice: !spotify skip
        < You need to be moderator or higher to use !spotify.
        mod@moderator: !spotify skip
        < Skipped.
        mod@moderator: !spotify pause
        < Paused.
        mod@moderator: !spotify resume
        < Playing again.
        "#,
    )
    .await;
    let current = bot
        .router()
        .handle(Event::chat(
            PlatformKind::Twitch,
            "pond",
            "pond",
            "alice",
            "!spotify current",
        ))
        .await
        .expect("handled");
    assert_eq!(
        current.replies,
        [Reply::text(
            "Now playing on Spotify: Noot Noot - Pingu (3:05)"
        )]
    );
    let shown = bot.router().overlays().on_screen(community);
    assert!(shown.iter().any(|s| s.item
        == OverlayReply::Ticker {
            text: "🎵 Now playing on Spotify: Noot Noot by Pingu".into(),
            duration_secs: 10
        }));
    let refreshes = server
        .received_requests()
        .await
        .expect("recorded")
        .iter()
        .filter(|r| String::from_utf8_lossy(&r.body).contains("grant_type=refresh_token"))
        .count();
    assert_eq!(refreshes, 1, "renewed once, five minutes before it expired");
}

#[tokio::test]
async fn the_callback_page_finishes_a_spotify_link_once() {
    let server = spotify_server().await;
    let spotify = spotify_client(&server);
    let bot = bot(waddlebot_modules::Services {
        spotify: Some(Arc::clone(&spotify)),
        ..Default::default()
    });
    let link = bot
        .say("boss", PermissionLevel::Broadcaster, "!spotify connect")
        .await;
    let url = url::Url::parse(link[0].trim_start_matches("Link Spotify here: ")).expect("a URL");
    let state = url
        .query_pairs()
        .find(|(k, _)| k == "state")
        .map(|(_, v)| v.into_owned())
        .expect("a state");
    // A router on the transcript's store and time, behind the real server.
    let now = waddlebot::clock::Clock::now(bot.clock());
    let router = Arc::new(
        waddlebot_router::Router::builder()
            .store(Arc::clone(bot.router().store()))
            .clock(Arc::new(waddlebot::clock::ManualClock::at(now)))
            .build()
            .expect("router"),
    );
    let web = loopback::serve_on_loopback(
        waddlebot_server::AppState::new(router, 1 << 20).with_spotify(Some(spotify)),
    )
    .await;
    let callback = |query: String| {
        let address = format!("http://{}/oauth/spotify/callback?{query}", web.addr);
        async move {
            let response = reqwest::get(address).await.expect("answered");
            (
                response.status().as_u16(),
                response.text().await.expect("html"),
            )
        }
    };
    let (status, page) = callback(format!("code=the-code&state={state}")).await;
    assert_eq!(status, 200, "{page}");
    assert!(page.contains("Spotify linked"));
    let (status, page) = callback(format!("code=the-code&state={state}")).await;
    assert_eq!(status, 400);
    assert!(page.contains("already used"), "{page}");
    let (status, _) = callback("error=access_denied&state=x".to_owned()).await;
    assert_eq!(status, 400);
    bot.play(
        r#"
        alice: !spotify devices
        < Spotify devices: Stream PC (active).
        "#,
    )
    .await;
}
