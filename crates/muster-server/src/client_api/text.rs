//! `application/prpc; encoding=text` around the handlers: a text request
//! body becomes binary before decoding, a binary reply becomes text after
//! encoding. Handlers and the route table never see text.

use axum::body::Bytes;
use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use muster_api::prpc::{Format, Status, HEADER_GRPC_CODE};

/// The format handlers decode: text arrives as binary.
pub(super) fn transcode_request(
    service: &str,
    method: &str,
    inf: Format,
    body: &[u8],
) -> Result<(Format, Vec<u8>), Status> {
    match inf {
        Format::Text => Ok((Format::Binary, muster_api::text::request_to_binary(service, method, body)?)),
        other => Ok((other, body.to_vec())),
    }
}

/// The format handlers encode in: binary when the caller wants text.
pub(super) fn wire_format(outf: Format) -> Format {
    match outf {
        Format::Text => Format::Binary,
        other => other,
    }
}

/// A successful binary reply as text, when the caller asked for text.
/// Errors (plain text already) pass unchanged.
pub(super) async fn transcode_response(service: &str, method: &str, outf: Format, resp: Response) -> Response {
    let ok = resp.headers().get(HEADER_GRPC_CODE).and_then(|v| v.to_str().ok()) == Some("0");
    if outf != Format::Text || !ok {
        return resp;
    }
    let (mut parts, body) = resp.into_parts();
    let bytes: Bytes = match axum::body::to_bytes(body, usize::MAX).await {
        Ok(b) => b,
        Err(e) => {
            return super::error_reply(&Status::internal(format!("reading the reply: {e}")), None);
        }
    };
    match muster_api::text::response_to_text(service, method, &bytes) {
        Ok(text) => {
            parts.headers.insert("content-type", HeaderValue::from_static(muster_api::prpc::MEDIA_TEXT));
            parts.headers.remove("content-length");
            let mut r = (StatusCode::OK, text).into_response();
            *r.headers_mut() = parts.headers;
            r
        }
        Err(s) => super::error_reply(&s, None),
    }
}
