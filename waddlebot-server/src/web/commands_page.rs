//! `/c/<community>/commands`: a community's public command page (by name or number), made
//! from the same command specs as `!help` ([`Router::listed_commands`]). Custom commands show
//! their response text; remote modules show their commands, never their URLs.
//!
//! [`Router::listed_commands`]: waddlebot_router::Router::listed_commands

use http::{Response, StatusCode};
use maud::html;
use waddlebot::{CommunityId, PermissionLevel};

use super::{decode_segment, document, not_found, page};
use crate::app::{App, ResponseBody};

impl App {
    /// `GET /c/<community>/commands`.
    pub(super) async fn commands_page(&self, segment: &str) -> Response<ResponseBody> {
        let router = &self.state().router;
        let store = router.store();
        let Some(name) = decode_segment(segment) else {
            return not_found();
        };
        let found = match name.parse::<i64>() {
            Ok(id) => store.community(CommunityId(id)).await,
            Err(_) => store.community_named(&name).await,
        };
        let community = match found {
            Ok(Some(community)) => community,
            Ok(None) => return not_found(),
            Err(err) => return unavailable(&err),
        };
        let commands = match router.listed_commands(community.id).await {
            Ok(commands) => commands,
            Err(err) => return unavailable(&err),
        };
        let title = format!("Commands of {}", community.name);
        let markup = document(
            &title,
            html! {
                main {
                    h1 { (title) }
                    @if commands.is_empty() {
                        p { "This community has no commands switched on." }
                    } @else {
                        p class="muted" { (commands.len()) " commands. Type them in chat." }
                        div class="table-wrap" {
                            table {
                                caption class="skip" { "Commands" }
                                thead { tr {
                                    th scope="col" { "Command" }
                                    th scope="col" { "What it does" }
                                    th scope="col" { "Also" }
                                    th scope="col" { "Who may use it" }
                                } }
                                tbody {
                                    @for command in &commands {
                                        tr {
                                            td { code { (command.usage) } }
                                            td {
                                                @if let Some(response) = &command.response {
                                                    "Responds: " q { (response) }
                                                } @else {
                                                    (command.description)
                                                }
                                                @if command.cooldown_secs > 0 {
                                                    " " span class="muted" { "(once every " (command.cooldown_secs) " s)" }
                                                }
                                            }
                                            td { (command.aliases.join(", ")) }
                                            td {
                                                @if command.min_level == PermissionLevel::Everyone {
                                                    "everyone"
                                                } @else {
                                                    (command.min_level) " and above"
                                                }
                                            }
                                        }
                                    }
                                }
                            }
                        }
                    }
                }
            },
        );
        page(StatusCode::OK, markup)
    }
}

/// The store is away: say so, in HTML.
pub(crate) fn unavailable(err: &dyn std::fmt::Display) -> Response<ResponseBody> {
    tracing::error!(error = %err, "page: store failed");
    let mut response = page(
        StatusCode::SERVICE_UNAVAILABLE,
        document(
            "Unavailable",
            html! { main class="narrow" { h1 { "Unavailable" } p { "The bot's storage is not answering. Try again in a moment." } } },
        ),
    );
    response.headers_mut().insert(
        http::header::RETRY_AFTER,
        http::HeaderValue::from_static("5"),
    );
    response
}
