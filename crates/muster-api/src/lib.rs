//! muster-api: wire types only.
//!
//! Owns: the Swarming bot protocol JSON ([`bot`]) and the swarming.v2 client API:
//! - [`pb`]: the generated protobuf messages (`muster_api::pb::NewTaskRequest`,
//!   enums like `pb::TaskState`, `pb::Timestamp`), each with prost binary
//!   encoding and proto3-JSON serde (lowerCamelCase out; camelCase or
//!   snake_case in; int64 as strings; enums as names; defaults omitted).
//! - [`prpc`]: the pRPC codec. Server: `request_format(Content-Type)`,
//!   `response_format(Accept)`, `check_method`, `decode`, `encode`,
//!   `error_response(&Status)`, `parse_timeout`. Client: `encode_request`,
//!   `parse_response`, `strip_json_prefix`, `format_timeout`.
//! - [`convert`]: pb ⇄ muster-core domain types (requests, results, bots,
//!   enums, timestamps).
//! - [`convert_v1`]: muster.v1 (drains, why pending) ⇄ muster-core.
//! - [`json`]: snake_case JSON output for the CLI (`to_cli_json`).
//! - [`replicas`]: a deployment's server URLs and the current one (bot and CLI failover).
//!
//! Shared by server, bot and CLI.
//! Must not: depend on axum, SQL, or the scheduler.

pub mod bot;
pub mod convert;
pub mod convert_v1;
pub mod json;
pub mod pb;
pub mod prpc;
pub mod replicas;
pub mod text;
pub mod tokens;
pub mod trailer;
