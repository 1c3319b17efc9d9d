//! `muster login` without a browser on this machine: the OAuth 2.0 device
//! authorization grant (RFC 8628) against the identity provider the server
//! names at `/ui/signin/cli`.
//!
//! The CLI asks the provider's `device_authorization_endpoint` for a user
//! code, prints where to enter it (any device with a browser), then polls
//! the `token_endpoint` at the given interval (slower on `slow_down`) until
//! the user approves, refuses, or the code expires. The ID token it gets is
//! what later commands send as `Authorization: Bearer`.

use crate::error::CliError;
use serde::Deserialize;
use serde_json::Value;
use std::time::Duration;

/// What the server says about its identity provider.
#[derive(Debug, Clone, Deserialize)]
pub struct LoginConfig {
    pub issuer: String,
    pub client_id: String,
    #[serde(default)]
    pub scopes: Vec<String>,
}

fn http() -> reqwest::Client {
    reqwest::Client::builder().timeout(Duration::from_secs(30)).build().unwrap_or_else(|_| reqwest::Client::new())
}

/// The server's sign-in configuration; None when it has none.
pub async fn login_config(server: &str) -> Result<Option<LoginConfig>, CliError> {
    let url = format!("{server}/ui/signin/cli");
    let resp = http().get(&url).send().await.map_err(|e| CliError::io(format!("asking {url}"), e))?;
    if resp.status() == reqwest::StatusCode::NOT_FOUND {
        return Ok(None);
    }
    if !resp.status().is_success() {
        return Err(CliError::Io(format!("asking {url}: HTTP {}", resp.status())));
    }
    resp.json().await.map(Some).map_err(|e| CliError::io(format!("reading {url}"), e))
}

/// The provider's device and token endpoints, if it supports the device flow.
pub async fn device_endpoints(issuer: &str) -> Result<Option<(String, String)>, CliError> {
    let url = format!("{}/.well-known/openid-configuration", issuer.trim_end_matches('/'));
    let resp = http().get(&url).send().await.map_err(|e| CliError::io(format!("asking {url}"), e))?;
    if !resp.status().is_success() {
        return Err(CliError::Io(format!("asking {url}: HTTP {}", resp.status())));
    }
    let doc: Value = resp.json().await.map_err(|e| CliError::io(format!("reading {url}"), e))?;
    let field = |k: &str| doc.get(k).and_then(Value::as_str).map(str::to_string);
    Ok(match (field("device_authorization_endpoint"), field("token_endpoint")) {
        (Some(d), Some(t)) => Some((d, t)),
        _ => None,
    })
}

/// Runs the device flow; returns the ID token. Progress goes to `tell`.
pub async fn device_flow(
    cfg: &LoginConfig,
    device_endpoint: &str,
    token_endpoint: &str,
    tell: &mut dyn FnMut(&str),
) -> Result<String, CliError> {
    let client = http();
    let scope = if cfg.scopes.is_empty() { "openid email profile".to_string() } else { cfg.scopes.join(" ") };
    let resp = client
        .post(device_endpoint)
        .form(&[("client_id", cfg.client_id.as_str()), ("scope", scope.as_str())])
        .send()
        .await
        .map_err(|e| CliError::io(format!("asking {device_endpoint}"), e))?;
    let status = resp.status();
    let v: Value = resp.json().await.unwrap_or(Value::Null);
    if !status.is_success() {
        return Err(CliError::Refused(format!("the identity provider refused the device login: {}", oauth_error(&v))));
    }
    let s = |k: &str| v.get(k).and_then(Value::as_str).unwrap_or_default().to_string();
    let (device_code, user_code) = (s("device_code"), s("user_code"));
    if device_code.is_empty() || user_code.is_empty() {
        return Err(CliError::Io(format!("{device_endpoint}: no device_code/user_code in {v}")));
    }
    let uri = s("verification_uri");
    let complete = s("verification_uri_complete");
    if complete.is_empty() {
        tell(&format!("To sign in, open {uri} and enter the code {user_code}"));
    } else {
        tell(&format!("To sign in, open {complete}\n(or open {uri} and enter the code {user_code})"));
    }
    let mut interval = v.get("interval").and_then(Value::as_u64).unwrap_or(5).max(1);
    let expires_in = v.get("expires_in").and_then(Value::as_u64).unwrap_or(600);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(expires_in);
    loop {
        tokio::time::sleep(Duration::from_secs(interval)).await;
        if tokio::time::Instant::now() > deadline {
            return Err(CliError::Timeout("the code expired before it was approved; run muster login again".into()));
        }
        let resp = client
            .post(token_endpoint)
            .form(&[
                ("grant_type", "urn:ietf:params:oauth:grant-type:device_code"),
                ("device_code", device_code.as_str()),
                ("client_id", cfg.client_id.as_str()),
            ])
            .send()
            .await
            .map_err(|e| CliError::io(format!("asking {token_endpoint}"), e))?;
        let ok = resp.status().is_success();
        let v: Value = resp.json().await.unwrap_or(Value::Null);
        if ok {
            return v
                .get("id_token")
                .and_then(Value::as_str)
                .map(str::to_string)
                .ok_or_else(|| CliError::Io(format!("{token_endpoint}: the reply has no id_token")));
        }
        match v.get("error").and_then(Value::as_str).unwrap_or("") {
            "authorization_pending" => {}
            "slow_down" => interval += 5,
            _ => return Err(CliError::Refused(format!("sign-in failed: {}", oauth_error(&v)))),
        }
    }
}

fn oauth_error(v: &Value) -> String {
    let e = v.get("error").and_then(Value::as_str).unwrap_or("error");
    match v.get("error_description").and_then(Value::as_str) {
        Some(d) if !d.is_empty() => format!("{e}: {d}"),
        _ => e.to_string(),
    }
}
