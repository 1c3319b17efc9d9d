//! Response policies: compression, security headers, CORS.

use super::EdgeConfig;
use axum::http::header::{self, HeaderValue};
use axum::response::Response;
use tower_http::compression::predicate::{NotForContentType, Predicate, SizeAbove};
use tower_http::compression::CompressionLayer;

/// Responses smaller than this are sent as they are.
const COMPRESS_ABOVE_BYTES: u16 = 1024;

/// gzip for pages, scripts, styles, JSON and text (raw output included) when
/// the client accepts it; never for executables and archives (bot code),
/// images or event streams.
pub(crate) fn compression() -> CompressionLayer<impl Predicate> {
    let when = SizeAbove::new(COMPRESS_ABOVE_BYTES)
        .and(NotForContentType::GRPC)
        .and(NotForContentType::IMAGES)
        .and(NotForContentType::SSE)
        .and(NotForContentType::const_new("application/octet-stream"))
        .and(NotForContentType::const_new("application/zip"));
    CompressionLayer::new().gzip(true).no_br().no_deflate().no_zstd().compress_when(when)
}

/// The Content-Security-Policy of pages: only our own scripts, styles,
/// images and fetches; inline `style` attributes are allowed (colored task
/// output uses them); no framing, plugins or `<base>`.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; \
     img-src 'self' data:; connect-src 'self'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'";

/// Adds the security headers to every response (a handler's own value wins):
/// no MIME sniffing, no framing, no referrer across origins, and the CSP on
/// HTML pages.
pub(crate) async fn security_headers(mut resp: Response) -> Response {
    let is_html = resp
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("text/html"));
    let h = resp.headers_mut();
    h.entry(header::X_CONTENT_TYPE_OPTIONS).or_insert(HeaderValue::from_static("nosniff"));
    h.entry(header::X_FRAME_OPTIONS).or_insert(HeaderValue::from_static("DENY"));
    h.entry(header::REFERRER_POLICY).or_insert(HeaderValue::from_static("same-origin"));
    if is_html {
        h.entry(header::CONTENT_SECURITY_POLICY).or_insert(HeaderValue::from_static(CONTENT_SECURITY_POLICY));
    }
    resp
}

/// CORS headers for a pRPC call from a browser page at `origin`: none
/// unless the origin is configured. A configured `*` lets any origin call
/// without credentials (cookies); a listed origin may send them.
pub(crate) fn cors(cfg: &EdgeConfig, origin: &str, preflight: bool) -> Vec<(&'static str, String)> {
    let listed = cfg.cors_origins.iter().any(|o| o.trim_end_matches('/').eq_ignore_ascii_case(origin));
    let any = cfg.cors_origins.iter().any(|o| o == "*");
    if !listed && !any {
        return Vec::new();
    }
    let mut h = muster_api::prpc::cors_headers(origin, preflight);
    if !listed {
        h.retain(|(k, _)| !k.eq_ignore_ascii_case("Access-Control-Allow-Credentials"));
        for (k, v) in h.iter_mut() {
            if k.eq_ignore_ascii_case("Access-Control-Allow-Origin") {
                *v = "*".to_string();
            }
        }
    }
    h
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(origins: &[&str]) -> EdgeConfig {
        EdgeConfig { cors_origins: origins.iter().map(|s| s.to_string()).collect(), ..Default::default() }
    }

    fn get<'a>(h: &'a [(&'static str, String)], k: &str) -> Option<&'a str> {
        h.iter().find(|(n, _)| n.eq_ignore_ascii_case(k)).map(|(_, v)| v.as_str())
    }

    #[test]
    fn cors_only_for_configured_origins() {
        assert!(cors(&cfg(&[]), "https://evil.example", false).is_empty());
        assert!(cors(&cfg(&["https://ui.example"]), "https://evil.example", true).is_empty());
        let h = cors(&cfg(&["https://ui.example/"]), "https://ui.example", true);
        assert_eq!(get(&h, "Access-Control-Allow-Origin"), Some("https://ui.example"));
        assert_eq!(get(&h, "Access-Control-Allow-Credentials"), Some("true"));
        let h = cors(&cfg(&["*"]), "https://any.example", false);
        assert_eq!(get(&h, "Access-Control-Allow-Origin"), Some("*"));
        assert_eq!(get(&h, "Access-Control-Allow-Credentials"), None);
    }
}
