//! Cookies a muster page sets, as a browser would read them.

/// The value of the cookie `name` among a response's `Set-Cookie` headers.
pub fn set_cookie(r: &reqwest::Response, name: &str) -> Option<String> {
    let prefix = format!("{name}=");
    r.headers().get_all(reqwest::header::SET_COOKIE).iter().filter_map(|v| v.to_str().ok()).find_map(|v| {
        v.strip_prefix(prefix.as_str()).map(|rest| rest.split(';').next().unwrap_or_default().to_string())
    })
}

/// The CSRF token a UI page hands out (the `muster_csrf` cookie its forms
/// carry back).
pub fn csrf_cookie(r: &reqwest::Response) -> Option<String> {
    set_cookie(r, "muster_csrf")
}
