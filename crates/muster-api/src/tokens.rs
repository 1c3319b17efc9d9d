//! `muster.v1.Tokens`: muster's own pRPC service for client API tokens
//! (create, list, revoke). Binary protobuf and JSON like swarming.v2; the
//! messages are declared here with prost's derive (no upstream schema).

use serde::{Deserialize, Serialize};

pub const SERVICE: &str = "muster.v1.Tokens";

#[derive(Clone, PartialEq, prost::Message, Serialize, Deserialize)]
#[serde(default)]
pub struct CreateTokenRequest {
    /// Whose token; empty = the caller's own.
    #[prost(string, tag = "1")]
    pub identity: String,
    #[prost(string, tag = "2")]
    pub description: String,
    /// Lifetime; 0 = the server's maximum (`[tokens] max_lifetime_days`).
    #[prost(int64, tag = "3")]
    pub expires_in_secs: i64,
}

#[derive(Clone, PartialEq, prost::Message, Serialize, Deserialize)]
#[serde(default)]
pub struct TokenInfo {
    #[prost(string, tag = "1")]
    pub id: String,
    #[prost(string, tag = "2")]
    pub identity: String,
    #[prost(string, tag = "3")]
    pub description: String,
    #[prost(string, tag = "4")]
    pub created_by: String,
    /// Seconds since the epoch; 0 = never / not set.
    #[prost(int64, tag = "5")]
    pub created_ts: i64,
    #[prost(int64, tag = "6")]
    pub expires_ts: i64,
    #[prost(int64, tag = "7")]
    pub last_used_ts: i64,
    #[prost(int64, tag = "8")]
    pub revoked_ts: i64,
}

#[derive(Clone, PartialEq, prost::Message, Serialize, Deserialize)]
#[serde(default)]
pub struct CreateTokenResponse {
    /// The token itself; shown once, never stored.
    #[prost(string, tag = "1")]
    pub token: String,
    #[prost(message, optional, tag = "2")]
    pub info: Option<TokenInfo>,
}

#[derive(Clone, PartialEq, prost::Message, Serialize, Deserialize)]
#[serde(default)]
pub struct ListTokensRequest {
    /// Only this identity's tokens; empty = the caller's own (administrators: `*` = all).
    #[prost(string, tag = "1")]
    pub identity: String,
}

#[derive(Clone, PartialEq, prost::Message, Serialize, Deserialize)]
#[serde(default)]
pub struct ListTokensResponse {
    #[prost(message, repeated, tag = "1")]
    pub tokens: Vec<TokenInfo>,
}

#[derive(Clone, PartialEq, prost::Message, Serialize, Deserialize)]
#[serde(default)]
pub struct RevokeTokenRequest {
    #[prost(string, tag = "1")]
    pub id: String,
}

#[derive(Clone, PartialEq, prost::Message, Serialize, Deserialize)]
#[serde(default)]
pub struct RevokeTokenResponse {
    /// False when it was already revoked (revoking is idempotent).
    #[prost(bool, tag = "1")]
    pub revoked: bool,
}
