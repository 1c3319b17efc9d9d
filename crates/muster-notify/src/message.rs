//! What goes on the wire (docs/notifications.md#webhook and #pubsub-push).

use base64::Engine;
use hmac::{Hmac, Mac};
use muster_store::outbox::OutboxRow;
use serde::{Deserialize, Serialize};
use sha2::Sha256;

/// The stored part of a message (the outbox row's `data`).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Payload {
    pub task_id: String,
    pub state: String,
    #[serde(default)]
    pub userdata: String,
    /// The request's `pubsub_auth_token` (a secret: never listed or logged).
    #[serde(default)]
    pub auth_token: String,
}

impl Payload {
    pub fn of(row: &OutboxRow) -> Option<Payload> {
        serde_json::from_str(&row.data).ok()
    }
}

/// The JSON body of a webhook.
pub fn webhook_body(row: &OutboxRow, p: &Payload) -> Vec<u8> {
    let v = serde_json::json!({
        "delivery_id": row.delivery_id,
        "event": row.event,
        "task_id": p.task_id,
        "state": p.state,
        "update_id": row.update_id,
        "userdata": p.userdata,
        "topic": row.topic,
        "created": row.created.to_rfc3339_opts(chrono::SecondsFormat::Micros, true),
    });
    serde_json::to_vec(&v).unwrap_or_default()
}

/// `t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>." + body)>`.
pub fn signature(secret: &[u8], t: i64, body: &[u8]) -> String {
    #[allow(clippy::expect_used)] // HMAC takes keys of any length.
    let mut mac = Hmac::<Sha256>::new_from_slice(secret).expect("any key length");
    mac.update(format!("{t}.").as_bytes());
    mac.update(body);
    format!("t={t},v1={}", hex::encode(mac.finalize().into_bytes()))
}

/// The Cloud Pub/Sub push envelope: `data` is upstream's message
/// (`{"task_id", "userdata"}`, indented by two spaces), `auth_token` an
/// attribute when the task has one; `messageId` is the delivery id.
pub fn pubsub_body(row: &OutboxRow, p: &Payload, subscription: &str) -> Vec<u8> {
    #[derive(Serialize)]
    struct Data<'a> {
        task_id: &'a str,
        userdata: &'a str,
    }
    let mut data = Vec::new();
    let fmt = serde_json::ser::PrettyFormatter::with_indent(b"  ");
    let mut ser = serde_json::Serializer::with_formatter(&mut data, fmt);
    let _ = Data { task_id: &p.task_id, userdata: &p.userdata }.serialize(&mut ser);
    let mut attributes = serde_json::Map::new();
    if !p.auth_token.is_empty() {
        attributes.insert("auth_token".into(), p.auth_token.clone().into());
    }
    let published = row.created.to_rfc3339_opts(chrono::SecondsFormat::Micros, true);
    let v = serde_json::json!({
        "message": {
            "data": base64::engine::general_purpose::STANDARD.encode(&data),
            "attributes": attributes,
            "messageId": row.delivery_id,
            "message_id": row.delivery_id,
            "publishTime": published,
            "publish_time": published,
        },
        "subscription": subscription,
    });
    serde_json::to_vec(&v).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signature_matches_an_independent_hmac() {
        // Computed with Python's hmac module: hmac.new(b"Jefe", b"1700000000.{}", sha256).
        assert_eq!(
            signature(b"Jefe", 1700000000, b"{}"),
            "t=1700000000,v1=d3793e2b4103edfbd98cc19591832f5fad701d413db9fcae0ae7dab8184ed207"
        );
    }
}
