//! The pRPC wire codec (docs/client-api.md#prpc), as plain functions over strings and
//! bytes: no HTTP framework types, so the axum server and the reqwest CLI both
//! use it.
//!
//! Owns: content negotiation ([`request_format`], [`response_format`]), body
//! encoding ([`decode`], [`encode`]), the gRPC [`Code`] and its HTTP status
//! table, [`Status`], error responses ([`error_response`]), the
//! `X-Prpc-Grpc-Timeout` codec, the service/method table ([`check_method`]) and
//! the client side ([`parse_response`], [`strip_json_prefix`]).
//!
//! Only the binary and JSON encodings are implemented; protobuf text format is
//! not offered (an `Accept` asking only for text gets 406, a text request 415).

use serde::de::DeserializeOwned;
use serde::Serialize;
use std::fmt;
use std::time::Duration;

/// `X-Prpc-Grpc-Code`: numeric gRPC code, on every pRPC response.
pub const HEADER_GRPC_CODE: &str = "X-Prpc-Grpc-Code";
/// `X-Prpc-Grpc-Timeout`: the RPC deadline, e.g. `90S`.
pub const HEADER_TIMEOUT: &str = "X-Prpc-Grpc-Timeout";
/// `X-Prpc-Status-Details-Bin`: base64 `google.protobuf.Any` error details.
pub const HEADER_STATUS_DETAILS: &str = "X-Prpc-Status-Details-Bin";
/// `X-Prpc-Max-Response-Size`: positive int, bytes.
pub const HEADER_MAX_RESPONSE_SIZE: &str = "X-Prpc-Max-Response-Size";
/// The 5 bytes in front of every JSON response body.
pub const JSON_PREFIX: &[u8] = b")]}'\n";
/// Content-Type of error bodies.
pub const ERROR_CONTENT_TYPE: &str = "text/plain; charset=utf-8";
/// The Go client reads at most this many bytes of an error body.
pub const MAX_ERROR_BODY: usize = 4096;

/// Media type for binary protobuf.
pub const MEDIA_BINARY: &str = "application/prpc; encoding=binary";
/// Media type for JSON.
pub const MEDIA_JSON: &str = "application/json";
/// Media type of text-format bodies.
pub const MEDIA_TEXT: &str = "application/prpc; encoding=text";

/// The three services of swarming.v2 and their methods (docs/client-api.md#services).
pub const SERVICES: &[(&str, &[&str])] = &[
    ("muster.v1.Tokens", &["Create", "List", "Revoke"]),
    ("swarming.v2.Swarming", &["GetDetails", "GetToken", "GetPermissions"]),
    (
        "swarming.v2.Bots",
        &[
            "GetBot",
            "DeleteBot",
            "ListBotEvents",
            "TerminateBot",
            "ListBotTasks",
            "ListBots",
            "CountBots",
            "GetBotDimensions",
        ],
    ),
    (
        "swarming.v2.Tasks",
        &[
            "GetResult",
            "BatchGetResult",
            "GetRequest",
            "CancelTask",
            "GetStdout",
            "NewTask",
            "ListTasks",
            "ListTaskStates",
            "ListTaskRequests",
            "CancelTasks",
            "CountTasks",
        ],
    ),
    ("muster.v1.Fleet", &["Drain", "Undrain", "ListDrains"]),
    ("muster.v1.Scheduler", &["WhyPending"]),
    ("muster.v1.Notifications", &["List", "Retry"]),
    (
        "scheduler.Scheduler",
        &[
            "GetJobs",
            "GetInvocations",
            "GetInvocation",
            "PauseJob",
            "ResumeJob",
            "AbortJob",
            "AbortInvocation",
            "EmitTriggers",
        ],
    ),
];

// ---------------------------------------------------------------------------
// Codes and Status
// ---------------------------------------------------------------------------

/// gRPC status codes with their wire numbers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Code {
    Ok = 0,
    Cancelled = 1,
    Unknown = 2,
    InvalidArgument = 3,
    DeadlineExceeded = 4,
    NotFound = 5,
    AlreadyExists = 6,
    PermissionDenied = 7,
    ResourceExhausted = 8,
    FailedPrecondition = 9,
    Aborted = 10,
    OutOfRange = 11,
    Unimplemented = 12,
    Internal = 13,
    Unavailable = 14,
    DataLoss = 15,
    Unauthenticated = 16,
}

impl Code {
    /// Every code, in numeric order.
    pub const ALL: [Code; 17] = [
        Code::Ok,
        Code::Cancelled,
        Code::Unknown,
        Code::InvalidArgument,
        Code::DeadlineExceeded,
        Code::NotFound,
        Code::AlreadyExists,
        Code::PermissionDenied,
        Code::ResourceExhausted,
        Code::FailedPrecondition,
        Code::Aborted,
        Code::OutOfRange,
        Code::Unimplemented,
        Code::Internal,
        Code::Unavailable,
        Code::DataLoss,
        Code::Unauthenticated,
    ];

    /// The wire number.
    pub fn as_i32(self) -> i32 {
        self as i32
    }

    /// The code with this number, if it is one of the 17.
    pub fn from_i32(v: i32) -> Option<Code> {
        usize::try_from(v).ok().and_then(|i| Code::ALL.get(i)).copied()
    }

    /// The HTTP status a server answers with (docs/client-api.md#errors-and-codes).
    pub fn http_status(self) -> u16 {
        match self {
            Code::Ok => 200,
            Code::Cancelled => 499,
            Code::Unknown => 500,
            Code::InvalidArgument => 400,
            Code::DeadlineExceeded => 504,
            Code::NotFound => 404,
            Code::AlreadyExists => 409,
            Code::PermissionDenied => 403,
            Code::ResourceExhausted => 429,
            Code::FailedPrecondition => 400,
            Code::Aborted => 409,
            Code::OutOfRange => 400,
            Code::Unimplemented => 501,
            Code::Internal => 500,
            Code::Unavailable => 503,
            Code::DataLoss => 500,
            Code::Unauthenticated => 401,
        }
    }

    /// The upstream name, e.g. `NOT_FOUND`.
    pub fn name(self) -> &'static str {
        match self {
            Code::Ok => "OK",
            Code::Cancelled => "CANCELLED",
            Code::Unknown => "UNKNOWN",
            Code::InvalidArgument => "INVALID_ARGUMENT",
            Code::DeadlineExceeded => "DEADLINE_EXCEEDED",
            Code::NotFound => "NOT_FOUND",
            Code::AlreadyExists => "ALREADY_EXISTS",
            Code::PermissionDenied => "PERMISSION_DENIED",
            Code::ResourceExhausted => "RESOURCE_EXHAUSTED",
            Code::FailedPrecondition => "FAILED_PRECONDITION",
            Code::Aborted => "ABORTED",
            Code::OutOfRange => "OUT_OF_RANGE",
            Code::Unimplemented => "UNIMPLEMENTED",
            Code::Internal => "INTERNAL",
            Code::Unavailable => "UNAVAILABLE",
            Code::DataLoss => "DATA_LOSS",
            Code::Unauthenticated => "UNAUTHENTICATED",
        }
    }

    /// Codes a client retries with backoff (INTERNAL, UNKNOWN, UNAVAILABLE).
    pub fn is_transient(self) -> bool {
        matches!(self, Code::Internal | Code::Unknown | Code::Unavailable)
    }

    /// The text that replaces a server-side error message when the code maps
    /// to HTTP ≥ 500; `None` for codes whose message is shown as is.
    pub fn masked_message(self) -> Option<&'static str> {
        if self.http_status() < 500 {
            return None;
        }
        Some(match self {
            Code::Internal => "Internal server error",
            Code::Unknown => "Unknown server error",
            Code::Unavailable => "Service unavailable",
            Code::DeadlineExceeded => "Request deadline exceeded",
            Code::Unimplemented => "API method not implemented by the server",
            Code::DataLoss => "Unrecoverable data loss or data corruption",
            _ => "Server error",
        })
    }
}

impl fmt::Display for Code {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// An RPC outcome other than OK: a code and a message for the caller.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{code}: {message}")]
pub struct Status {
    pub code: Code,
    pub message: String,
}

impl Status {
    pub fn new(code: Code, message: impl Into<String>) -> Status {
        Status { code, message: message.into() }
    }
    pub fn invalid_argument(message: impl Into<String>) -> Status {
        Status::new(Code::InvalidArgument, message)
    }
    pub fn not_found(message: impl Into<String>) -> Status {
        Status::new(Code::NotFound, message)
    }
    pub fn permission_denied(message: impl Into<String>) -> Status {
        Status::new(Code::PermissionDenied, message)
    }
    pub fn unauthenticated(message: impl Into<String>) -> Status {
        Status::new(Code::Unauthenticated, message)
    }
    pub fn failed_precondition(message: impl Into<String>) -> Status {
        Status::new(Code::FailedPrecondition, message)
    }
    pub fn internal(message: impl Into<String>) -> Status {
        Status::new(Code::Internal, message)
    }
    pub fn unavailable(message: impl Into<String>) -> Status {
        Status::new(Code::Unavailable, message)
    }
    pub fn unimplemented(message: impl Into<String>) -> Status {
        Status::new(Code::Unimplemented, message)
    }
}

/// Maps a domain error kind to its gRPC code.
pub fn code_of(kind: muster_core::ErrorKind) -> Code {
    use muster_core::ErrorKind as K;
    match kind {
        K::InvalidArgument => Code::InvalidArgument,
        K::NotFound => Code::NotFound,
        K::PermissionDenied => Code::PermissionDenied,
        K::Unauthenticated => Code::Unauthenticated,
        K::FailedPrecondition => Code::FailedPrecondition,
        K::AlreadyExists => Code::AlreadyExists,
        K::Unavailable => Code::Unavailable,
        K::ResourceExhausted => Code::ResourceExhausted,
        K::Internal => Code::Internal,
    }
}

impl From<muster_core::Error> for Status {
    fn from(e: muster_core::Error) -> Status {
        Status::new(code_of(e.kind), e.message)
    }
}

// ---------------------------------------------------------------------------
// Negotiation
// ---------------------------------------------------------------------------

/// A body encoding.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Format {
    /// Serialized protobuf.
    Binary,
    /// Proto3 JSON (responses carry the `)]}'` prefix).
    Json,
    /// Protobuf text format (transcoded by [`crate::text`]).
    Text,
}

impl Format {
    /// The `Content-Type` a response (or a client request) in this format carries.
    pub fn media_type(self) -> &'static str {
        match self {
            Format::Binary => MEDIA_BINARY,
            Format::Json => MEDIA_JSON,
            Format::Text => MEDIA_TEXT,
        }
    }
}

/// A pRPC protocol error (bad headers, unknown method): not masked, and its
/// HTTP status may differ from the code's usual one (415, 406).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{status}")]
pub struct ProtocolError {
    pub status: Status,
    pub http_status: u16,
}

impl ProtocolError {
    fn new(code: Code, http_status: u16, message: impl Into<String>) -> ProtocolError {
        ProtocolError { status: Status::new(code, message), http_status }
    }

    /// The response to send for this error (message kept verbatim).
    pub fn response(&self) -> ErrorResponse {
        ErrorResponse {
            http_status: self.http_status,
            code: self.status.code,
            body: format!("{}\n", self.status.message),
        }
    }
}

/// What a media type (one `Content-Type` or one `Accept` element) names.
#[derive(Debug, PartialEq, Eq)]
enum Media {
    Binary,
    Json,
    Text,
    /// `application/prpc` with a bad parameter.
    BadPrpc(String),
    Other,
}

/// Splits `type/subtype; k=v; ...` into the lower-cased type and its params.
fn parse_media(s: &str) -> (String, Vec<(String, String)>) {
    let mut parts = s.split(';');
    let ty = parts.next().unwrap_or("").trim().to_ascii_lowercase();
    let params = parts
        .filter(|p| !p.trim().is_empty())
        .map(|p| match p.split_once('=') {
            Some((k, v)) => (k.trim().to_ascii_lowercase(), v.trim().trim_matches('"').to_string()),
            None => (p.trim().to_ascii_lowercase(), String::new()),
        })
        .collect();
    (ty, params)
}

fn classify(ty: &str, params: &[(String, String)]) -> Media {
    match ty {
        "" | "*/*" | "application/*" | "application/grpc" => Media::Binary,
        "application/json" => Media::Json,
        "application/prpc" => {
            let mut media = Media::Binary;
            for (k, v) in params {
                if k != "encoding" {
                    return Media::BadPrpc(format!("unexpected parameter {k:?}"));
                }
                media = match v.as_str() {
                    "binary" => Media::Binary,
                    "json" => Media::Json,
                    "text" => Media::Text,
                    other => return Media::BadPrpc(format!("invalid encoding parameter {other:?}")),
                };
            }
            media
        }
        _ => Media::Other,
    }
}

/// The format of a request body from its `Content-Type` (docs/client-api.md#prpc).
/// Missing ⇒ binary. Unknown or unsupported ⇒ INVALID_ARGUMENT, HTTP 415.
pub fn request_format(content_type: Option<&str>) -> Result<Format, ProtocolError> {
    let Some(ct) = content_type else { return Ok(Format::Binary) };
    let bad = |why: String| {
        ProtocolError::new(Code::InvalidArgument, 415, format!("prpc: bad Content-Type header {ct:?}: {why}"))
    };
    let (ty, params) = parse_media(ct);
    match classify(&ty, &params) {
        Media::Binary => Ok(Format::Binary),
        Media::Json => Ok(Format::Json),
        Media::Text => Ok(Format::Text),
        Media::BadPrpc(why) => Err(bad(why)),
        Media::Other => Err(bad("unknown media type".to_string())),
    }
}

/// The format of the response from the request's `Accept` (docs/client-api.md#prpc):
/// highest `q` wins, ties go to binary over JSON; empty ⇒ binary; nothing
/// acceptable ⇒ INVALID_ARGUMENT, HTTP 406.
pub fn response_format(accept: Option<&str>) -> Result<Format, ProtocolError> {
    let accept = accept.unwrap_or("").trim();
    if accept.is_empty() {
        return Ok(Format::Binary);
    }
    // (quality, preference: lower is better, format)
    let mut best: Option<(f32, u8, Format)> = None;
    for entry in accept.split(',') {
        if entry.trim().is_empty() {
            continue;
        }
        let (ty, mut params) = parse_media(entry);
        let mut q = 1.0f32;
        let mut q_ok = true;
        params.retain(|(k, v)| {
            if k == "q" {
                match v.parse::<f32>() {
                    Ok(x) if (0.0..=1.0).contains(&x) => q = x,
                    _ => q_ok = false,
                }
                false
            } else {
                true
            }
        });
        if !q_ok || q <= 0.0 {
            continue;
        }
        let (fmt, pref) = match classify(&ty, &params) {
            Media::Binary => (Format::Binary, 0),
            Media::Json => (Format::Json, 1),
            Media::Text => (Format::Text, 2),
            Media::BadPrpc(_) | Media::Other => continue,
        };
        let better = match best {
            None => true,
            Some((bq, bp, _)) => q > bq || (q == bq && pref < bp),
        };
        if better {
            best = Some((q, pref, fmt));
        }
    }
    best.map(|(_, _, f)| f).ok_or_else(|| {
        ProtocolError::new(
            Code::InvalidArgument,
            406,
            format!("prpc: bad Accept header {accept:?}: none of the acceptable types is supported"),
        )
    })
}

/// Checks that `service`/`method` is a swarming.v2 RPC; the error texts are
/// the upstream ones (UNIMPLEMENTED, HTTP 501, not masked).
pub fn check_method(service: &str, method: &str) -> Result<(), ProtocolError> {
    let Some((_, methods)) = SERVICES.iter().find(|(s, _)| *s == service) else {
        return Err(ProtocolError::new(Code::Unimplemented, 501, format!("service {service:?} is not implemented")));
    };
    if methods.contains(&method) {
        Ok(())
    } else {
        Err(ProtocolError::new(
            Code::Unimplemented,
            501,
            format!("method {method:?} in service {service:?} is not implemented"),
        ))
    }
}

/// Splits a request path `/prpc/<service>/<method>` into its two parts.
pub fn split_path(path: &str) -> Option<(&str, &str)> {
    let rest = path.strip_prefix("/prpc/")?;
    let (service, method) = rest.split_once('/')?;
    if service.is_empty() || method.is_empty() || method.contains('/') {
        return None;
    }
    Some((service, method))
}

// ---------------------------------------------------------------------------
// Bodies
// ---------------------------------------------------------------------------

/// What every pRPC message type is: prost binary + pbjson JSON.
pub trait Message: prost::Message + Serialize + DeserializeOwned + Default {}
impl<T: prost::Message + Serialize + DeserializeOwned + Default> Message for T {}

/// Drops `null` members of objects (proto3 JSON: null means default), so that
/// `{"name": null}` decodes like `{}`.
fn strip_nulls(v: &mut serde_json::Value) {
    match v {
        serde_json::Value::Object(m) => {
            m.retain(|_, x| !x.is_null());
            m.values_mut().for_each(strip_nulls);
        }
        serde_json::Value::Array(a) => a.iter_mut().for_each(strip_nulls),
        _ => {}
    }
}

/// Decodes a request (or, client side, a response body without its prefix).
/// JSON ignores unknown fields and accepts camelCase and snake_case names;
/// an empty JSON body is the default message. Errors are INVALID_ARGUMENT.
pub fn decode<M: Message>(format: Format, body: &[u8]) -> Result<M, Status> {
    match format {
        Format::Binary => M::decode(body).map_err(|e| Status::invalid_argument(format!("could not decode body: {e}"))),
        Format::Text => Err(Status::internal("text bodies are transcoded to binary first (muster_api::text)")),
        Format::Json => {
            if body.iter().all(u8::is_ascii_whitespace) {
                return Ok(M::default());
            }
            let mut v: serde_json::Value = serde_json::from_slice(body)
                .map_err(|e| Status::invalid_argument(format!("could not decode body: {e}")))?;
            strip_nulls(&mut v);
            serde_json::from_value(v).map_err(|e| Status::invalid_argument(format!("could not decode body: {e}")))
        }
    }
}

/// Encodes a successful response: `(Content-Type, body)`. JSON bodies are
/// `)]}'\n` + the object + `\n`.
pub fn encode<M: Message>(format: Format, msg: &M) -> Result<(&'static str, Vec<u8>), Status> {
    match format {
        Format::Binary => Ok((MEDIA_BINARY, msg.encode_to_vec())),
        Format::Text => Err(Status::internal("text responses are transcoded from binary (muster_api::text)")),
        Format::Json => {
            let mut body = JSON_PREFIX.to_vec();
            serde_json::to_writer(&mut body, msg)
                .map_err(|e| Status::internal(format!("could not encode response: {e}")))?;
            body.push(b'\n');
            Ok((MEDIA_JSON, body))
        }
    }
}

/// Encodes a request body (client side): JSON requests have no prefix.
pub fn encode_request<M: Message>(format: Format, msg: &M) -> Result<Vec<u8>, Status> {
    match format {
        Format::Binary => Ok(msg.encode_to_vec()),
        Format::Text => Err(Status::internal("text requests are not sent by this client")),
        Format::Json => serde_json::to_vec(msg).map_err(|e| Status::internal(format!("could not encode request: {e}"))),
    }
}

/// Headers of a successful response (besides `Content-Type`).
pub fn ok_headers() -> [(&'static str, &'static str); 2] {
    [(HEADER_GRPC_CODE, "0"), ("X-Content-Type-Options", "nosniff")]
}

/// An error response ready to be written: status line, code header, body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ErrorResponse {
    pub http_status: u16,
    pub code: Code,
    /// The text/plain body, ending in `\n`.
    pub body: String,
}

impl ErrorResponse {
    /// All headers to set: `X-Prpc-Grpc-Code`, `Content-Type`, nosniff.
    pub fn headers(&self) -> [(&'static str, String); 3] {
        [
            (HEADER_GRPC_CODE, self.code.as_i32().to_string()),
            ("Content-Type", ERROR_CONTENT_TYPE.to_string()),
            ("X-Content-Type-Options", "nosniff".to_string()),
        ]
    }
}

/// The response for an error returned by an RPC handler: messages of codes
/// mapping to HTTP ≥ 500 are replaced by a generic text (docs/client-api.md#errors-and-codes), so
/// internal details never leak; log the original before calling this.
pub fn error_response(status: &Status) -> ErrorResponse {
    let message = status.code.masked_message().map_or_else(|| status.message.clone(), str::to_string);
    ErrorResponse { http_status: status.code.http_status(), code: status.code, body: format!("{message}\n") }
}

// ---------------------------------------------------------------------------
// Timeouts
// ---------------------------------------------------------------------------

/// Parses `X-Prpc-Grpc-Timeout` (`\d{1,8}[HMSmun]`). Bad ⇒ INVALID_ARGUMENT 400.
pub fn parse_timeout(v: &str) -> Result<Duration, ProtocolError> {
    let bad = || ProtocolError::new(Code::InvalidArgument, 400, format!("prpc: bad {HEADER_TIMEOUT} header {v:?}"));
    let v = v.trim();
    let unit = v.chars().last().ok_or_else(bad)?;
    let digits = &v[..v.len() - unit.len_utf8()];
    if digits.is_empty() || digits.len() > 8 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(bad());
    }
    let n: u64 = digits.parse().map_err(|_| bad())?;
    Ok(match unit {
        'H' => Duration::from_secs(n * 3600),
        'M' => Duration::from_secs(n * 60),
        'S' => Duration::from_secs(n),
        'm' => Duration::from_millis(n),
        'u' => Duration::from_micros(n),
        'n' => Duration::from_nanos(n),
        _ => return Err(bad()),
    })
}

/// Formats a timeout with the smallest unit whose value stays under 10^8
/// (rounding up, so the deadline is never shortened).
pub fn format_timeout(d: Duration) -> String {
    const LIMIT: u128 = 100_000_000;
    let nanos = d.as_nanos();
    let units: [(u128, char); 6] = [
        (1, 'n'),
        (1_000, 'u'),
        (1_000_000, 'm'),
        (1_000_000_000, 'S'),
        (60_000_000_000, 'M'),
        (3_600_000_000_000, 'H'),
    ];
    for (div, unit) in units {
        let v = nanos.div_ceil(div);
        if v < LIMIT {
            return format!("{v}{unit}");
        }
    }
    format!("{}H", LIMIT - 1)
}

/// Parses `X-Prpc-Max-Response-Size` (positive integer bytes).
pub fn parse_max_response_size(v: &str) -> Result<u64, ProtocolError> {
    match v.trim().parse::<u64>() {
        Ok(n) if n > 0 => Ok(n),
        _ => Err(ProtocolError::new(
            Code::InvalidArgument,
            400,
            format!("prpc: bad {HEADER_MAX_RESPONSE_SIZE} header {v:?}: must be a positive integer"),
        )),
    }
}

// ---------------------------------------------------------------------------
// CORS
// ---------------------------------------------------------------------------

/// CORS headers for a request with `Origin: origin` ("allow all origins with
/// credentials"); `preflight` adds the OPTIONS-only headers.
pub fn cors_headers(origin: &str, preflight: bool) -> Vec<(&'static str, String)> {
    let mut h = vec![
        ("Access-Control-Allow-Origin", origin.to_string()),
        ("Vary", "Origin".to_string()),
        ("Access-Control-Allow-Credentials", "true".to_string()),
    ];
    if preflight {
        h.push((
            "Access-Control-Allow-Headers",
            "Origin, Content-Type, Accept, Authorization, X-Prpc-Grpc-Timeout, X-Prpc-Max-Response-Size".to_string(),
        ));
        h.push(("Access-Control-Allow-Methods", "OPTIONS, POST".to_string()));
        h.push(("Access-Control-Max-Age", "600".to_string()));
    } else {
        h.push(("Access-Control-Expose-Headers", format!("{HEADER_GRPC_CODE}, {HEADER_STATUS_DETAILS}")));
    }
    h
}

// ---------------------------------------------------------------------------
// Client side
// ---------------------------------------------------------------------------

/// Removes the `)]}'` JSON prefix (and the newline after it) if present.
pub fn strip_json_prefix(body: &[u8]) -> &[u8] {
    match body.strip_prefix(&b")]}'"[..]) {
        Some(rest) => rest.strip_prefix(b"\r\n").or_else(|| rest.strip_prefix(b"\n")).unwrap_or(rest),
        None => body,
    }
}

/// Crude HTML-to-text for error pages without a code header: drops tags and
/// collapses whitespace.
fn html_to_text(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut in_tag = false;
    for c in s.chars() {
        match c {
            '<' => in_tag = true,
            '>' if in_tag => {
                in_tag = false;
                out.push(' ');
            }
            _ if !in_tag => out.push(c),
            _ => {}
        }
    }
    out.split_whitespace().collect::<Vec<_>>().join(" ")
}

fn error_text(body: &[u8]) -> String {
    let body = &body[..body.len().min(MAX_ERROR_BODY)];
    String::from_utf8_lossy(body).trim_end_matches('\n').to_string()
}

/// Interprets a pRPC response (client side, docs/client-api.md#errors-and-codes). `requested` is the
/// format the client asked for in `Accept`; `grpc_code` and `content_type` are
/// the header values, if present.
pub fn parse_response<M: Message>(
    requested: Format,
    http_status: u16,
    grpc_code: Option<&str>,
    content_type: Option<&str>,
    body: &[u8],
) -> Result<M, Status> {
    let Some(code) = grpc_code else {
        let text = html_to_text(&error_text(body));
        let code = match http_status {
            401 => Code::Unauthenticated,
            403 => Code::PermissionDenied,
            503 => Code::Unavailable,
            s if s >= 500 => Code::Internal,
            _ => {
                return Err(Status::internal(format!(
                    "HTTP {http_status}: no {HEADER_GRPC_CODE} header{}",
                    if text.is_empty() { String::new() } else { format!(": {text}") }
                )))
            }
        };
        return Err(Status::new(code, format!("HTTP {http_status}: {text}")));
    };
    let code = code
        .trim()
        .parse::<i32>()
        .ok()
        .and_then(Code::from_i32)
        .ok_or_else(|| Status::internal(format!("bad {HEADER_GRPC_CODE} header {code:?}")))?;
    if code != Code::Ok {
        return Err(Status::new(code, error_text(body)));
    }
    let got = request_format(content_type)
        .map_err(|e| Status::internal(format!("bad response Content-Type: {}", e.status.message)))?;
    if got != requested {
        return Err(Status::internal(format!(
            "response Content-Type {:?} does not match the requested {:?}",
            content_type.unwrap_or(""),
            requested.media_type()
        )));
    }
    let body = if got == Format::Json { strip_json_prefix(body) } else { body };
    decode(got, body).map_err(|e| Status::internal(format!("bad response body: {}", e.message)))
}
