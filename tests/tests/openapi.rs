//! `/openapi.json` describes exactly the routes the server has: a route added without its
//! description (or a description left behind) fails here.

// Only the server half of the shared helpers is used here.
#[allow(dead_code)]
mod loopback;

use std::collections::BTreeSet;
use std::sync::Arc;

use serde_json::Value;
use waddlebot::store::MemoryStore;
use waddlebot_server::{AppState, ROUTES};

#[tokio::test]
async fn the_document_and_the_route_table_list_the_same_routes() {
    let router = waddlebot_router::Router::builder()
        .store(Arc::new(MemoryStore::new()))
        .build()
        .expect("router");
    let bot = loopback::serve_on_loopback(AppState::new(Arc::new(router), 1 << 20)).await;
    let document: Value = reqwest::get(format!("http://{}/openapi.json", bot.addr))
        .await
        .expect("answered")
        .json()
        .await
        .expect("json");
    assert_eq!(document["openapi"], "3.1.0");
    let described: BTreeSet<(String, String)> = document["paths"]
        .as_object()
        .expect("paths")
        .iter()
        .flat_map(|(path, operations)| {
            operations
                .as_object()
                .expect("operations")
                .keys()
                .map(move |method| (path.clone(), method.to_uppercase()))
        })
        .collect();
    let served: BTreeSet<(String, String)> = ROUTES
        .iter()
        .map(|(path, method, _)| ((*path).to_owned(), method.as_str().to_owned()))
        .collect();
    assert_eq!(described, served);
    // Routes that need a credential say so.
    assert_eq!(
        document["paths"]["/router/events"]["post"]["security"][0]["bearerAuth"],
        serde_json::json!([])
    );
    assert_eq!(
        document["paths"]["/health"]["get"]["security"],
        serde_json::json!([])
    );
}
