//! `GET /swarming/api/v1/bot/server_ping` (docs/bot-protocol.md#server-ping).

pub(crate) async fn handle() -> ([(axum::http::HeaderName, &'static str); 1], &'static str) {
    ([(axum::http::header::CONTENT_TYPE, "text/plain; charset=utf-8")], "Server up")
}
