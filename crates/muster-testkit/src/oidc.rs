//! A real OIDC issuer on 127.0.0.1:0 for tests: serves the discovery
//! document and the JWKS, signs RS256 and ES256 ID tokens, and rotates keys.
//! It also signs users in: `/authorize` (authorization code flow; approves
//! the configured test user at once and redirects back with `code` and
//! `state`), `/token` (redeems a code only with the right PKCE verifier,
//! client and redirect URI; answers device-flow polls) and
//! `/device_authorization` + `/device` (RFC 8628: a user code approved by
//! visiting the verification page).
//! RSA keys are fixed test keys under `keys/` (ring cannot generate RSA);
//! EC P-256 keys are generated at start and on every rotation.

use axum::response::IntoResponse;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use parking_lot::Mutex;
use ring::rand::SystemRandom;
use ring::signature::{EcdsaKeyPair, KeyPair, ECDSA_P256_SHA256_FIXED_SIGNING};
use serde_json::{json, Value};
use std::sync::Arc;
use tokio_util::sync::CancellationToken;

const RSA_KEYS: [(&str, &str); 2] = [
    (include_str!("../keys/rsa1.pem"), include_str!("../keys/rsa1.n")),
    (include_str!("../keys/rsa2.pem"), include_str!("../keys/rsa2.n")),
];

#[derive(Clone)]
struct Keys {
    generation: usize,
    rsa_kid: String,
    rsa_pem: &'static str,
    rsa_n: &'static str,
    ec_kid: String,
    ec_pkcs8: Vec<u8>,
    ec_x: String,
    ec_y: String,
}

fn ec_key() -> (Vec<u8>, String, String) {
    let rng = SystemRandom::new();
    #[allow(clippy::expect_used)]
    let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng).expect("generate EC key");
    #[allow(clippy::expect_used)]
    let pair = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, pkcs8.as_ref(), &rng).expect("parse EC key");
    let public = pair.public_key().as_ref();
    let (x, y) = (&public[1..33], &public[33..65]);
    (pkcs8.as_ref().to_vec(), URL_SAFE_NO_PAD.encode(x), URL_SAFE_NO_PAD.encode(y))
}

impl Keys {
    fn generation(generation: usize) -> Keys {
        let (pem, n) = RSA_KEYS[generation % 2];
        let (ec_pkcs8, ec_x, ec_y) = ec_key();
        Keys {
            generation,
            rsa_kid: format!("rsa-{generation}"),
            rsa_pem: pem,
            rsa_n: n.trim(),
            ec_kid: format!("ec-{generation}"),
            ec_pkcs8,
            ec_x,
            ec_y,
        }
    }

    fn jwks(&self) -> Value {
        json!({"keys": [
            {"kty": "RSA", "kid": self.rsa_kid, "use": "sig", "alg": "RS256", "n": self.rsa_n, "e": "AQAB"},
            {"kty": "EC", "kid": self.ec_kid, "use": "sig", "alg": "ES256", "crv": "P-256", "x": self.ec_x, "y": self.ec_y},
        ]})
    }
}

/// A code handed out by `/authorize`, waiting for `/token`.
#[derive(Clone)]
struct Grant {
    client_id: String,
    redirect_uri: String,
    challenge: String,
    nonce: Option<String>,
    email: String,
}

/// A device-flow request (RFC 8628).
#[derive(Clone)]
struct DeviceGrant {
    client_id: String,
    user_code: String,
    approved_as: Option<String>,
}

#[derive(Default)]
struct Logins {
    /// Who `/authorize` and `/device` sign in (None: they refuse).
    user: Option<String>,
    codes: std::collections::HashMap<String, Grant>,
    devices: std::collections::HashMap<String, DeviceGrant>,
    /// Redemptions refused, by reason (for tests to assert on).
    refused: Vec<String>,
}

/// A running issuer. Dropping it stops the server.
pub struct OidcIssuer {
    pub url: String,
    logins: Arc<Mutex<Logins>>,
    keys: Arc<Mutex<Keys>>,
    /// How many times the JWKS was served.
    jwks_fetches: Arc<Mutex<usize>>,
    stop: CancellationToken,
}

impl Drop for OidcIssuer {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

impl OidcIssuer {
    pub async fn start() -> anyhow::Result<OidcIssuer> {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let url = format!("http://{}", listener.local_addr()?);
        let keys = Arc::new(Mutex::new(Keys::generation(1)));
        let fetches = Arc::new(Mutex::new(0usize));
        let (k, f, u) = (keys.clone(), fetches.clone(), url.clone());
        let logins = Arc::new(Mutex::new(Logins::default()));
        let login_state = LoginState { url: url.clone(), keys: keys.clone(), logins: logins.clone() };
        let login_routes = axum::Router::new()
            .route("/authorize", axum::routing::get(authorize))
            .route("/token", axum::routing::post(token))
            .route("/device_authorization", axum::routing::post(device_authorization))
            .route("/device", axum::routing::get(device_page))
            .with_state(login_state);
        let app = axum::Router::new()
            .route(
                "/.well-known/openid-configuration",
                axum::routing::get(move || {
                    let u = u.clone();
                    async move {
                        axum::Json(json!({
                            "issuer": u,
                            "jwks_uri": format!("{u}/jwks"),
                            "authorization_endpoint": format!("{u}/authorize"),
                            "token_endpoint": format!("{u}/token"),
                            "device_authorization_endpoint": format!("{u}/device_authorization"),
                            "code_challenge_methods_supported": ["S256"],
                            "id_token_signing_alg_values_supported": ["RS256", "ES256"],
                        }))
                    }
                }),
            )
            .route(
                "/jwks",
                axum::routing::get(move || {
                    let (k, f) = (k.clone(), f.clone());
                    async move {
                        *f.lock() += 1;
                        axum::Json(k.lock().jwks())
                    }
                }),
            )
            .merge(login_routes);
        let stop = CancellationToken::new();
        let s = stop.clone();
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).with_graceful_shutdown(s.cancelled_owned()).await;
        });
        Ok(OidcIssuer { url, logins, keys, jwks_fetches: fetches, stop })
    }

    /// The user `/authorize` and `/device` sign in from now on (None: they
    /// refuse with `access_denied`).
    pub fn set_user(&self, email: Option<&str>) {
        self.logins.lock().user = email.map(str::to_string);
    }

    /// Why `/token` refused redemptions so far (e.g. "PKCE verifier mismatch").
    pub fn refusals(&self) -> Vec<String> {
        self.logins.lock().refused.clone()
    }

    /// Replaces both keys; tokens signed by the old ones stop verifying
    /// once a verifier refetches the JWKS.
    pub fn rotate(&self) {
        let mut k = self.keys.lock();
        *k = Keys::generation(k.generation + 1);
    }

    pub fn jwks_fetches(&self) -> usize {
        *self.jwks_fetches.lock()
    }

    /// Standard claims for `email` with `aud`, valid for an hour from now.
    pub fn claims(&self, aud: &str, email: &str) -> Value {
        let now = chrono::Utc::now().timestamp();
        json!({"iss": self.url, "aud": aud, "sub": email, "email": email, "email_verified": true,
               "iat": now, "nbf": now, "exp": now + 3600})
    }

    /// Signs `claims` with the current key of `alg` ("RS256" or "ES256").
    pub fn sign(&self, alg: &str, claims: &Value) -> anyhow::Result<String> {
        let k = self.keys.lock().clone();
        self.sign_as(alg, claims, None, &k)
    }

    /// Signs with the current key but names another `kid` in the header.
    pub fn sign_with_kid(&self, alg: &str, claims: &Value, kid: &str) -> anyhow::Result<String> {
        let k = self.keys.lock().clone();
        self.sign_as(alg, claims, Some(kid), &k)
    }

    fn sign_as(&self, alg: &str, claims: &Value, kid: Option<&str>, k: &Keys) -> anyhow::Result<String> {
        let (algorithm, key, default_kid) = match alg {
            "RS256" => (Algorithm::RS256, EncodingKey::from_rsa_pem(k.rsa_pem.as_bytes())?, k.rsa_kid.clone()),
            "ES256" => (Algorithm::ES256, EncodingKey::from_ec_der(&k.ec_pkcs8), k.ec_kid.clone()),
            other => anyhow::bail!("unsupported algorithm {other}"),
        };
        let mut header = Header::new(algorithm);
        header.kid = Some(kid.map(str::to_string).unwrap_or(default_kid));
        Ok(jsonwebtoken::encode(&header, claims, &key)?)
    }

    /// An unsigned token (`alg: none`), which must always be refused.
    pub fn unsigned(&self, claims: &Value) -> String {
        let header = URL_SAFE_NO_PAD.encode(br#"{"alg":"none","typ":"JWT"}"#);
        let body = URL_SAFE_NO_PAD.encode(claims.to_string());
        format!("{header}.{body}.")
    }
}

#[derive(Clone)]
struct LoginState {
    url: String,
    keys: Arc<Mutex<Keys>>,
    logins: Arc<Mutex<Logins>>,
}

type Params = std::collections::HashMap<String, String>;

fn token_error(status: u16, error: &str, why: &str) -> axum::response::Response {
    let status = axum::http::StatusCode::from_u16(status).unwrap_or(axum::http::StatusCode::BAD_REQUEST);
    (status, axum::Json(json!({"error": error, "error_description": why}))).into_response()
}

fn random_code() -> String {
    URL_SAFE_NO_PAD.encode(uuid::Uuid::new_v4().as_bytes())
}

/// Approves the test user at once and sends the browser back.
async fn authorize(
    axum::extract::State(st): axum::extract::State<LoginState>,
    axum::extract::Query(q): axum::extract::Query<Params>,
) -> axum::response::Response {
    let get = |k: &str| q.get(k).cloned().unwrap_or_default();
    let (redirect_uri, state) = (get("redirect_uri"), get("state"));
    if get("response_type") != "code" || get("client_id").is_empty() || redirect_uri.is_empty() {
        return (axum::http::StatusCode::BAD_REQUEST, "bad authorization request").into_response();
    }
    if get("code_challenge_method") != "S256" || get("code_challenge").is_empty() {
        return (axum::http::StatusCode::BAD_REQUEST, "PKCE S256 is required").into_response();
    }
    let sep = if redirect_uri.contains('?') { '&' } else { '?' };
    let user = st.logins.lock().user.clone();
    let Some(email) = user else {
        let to = format!("{redirect_uri}{sep}error=access_denied&state={}", urlencode(&state));
        return axum::response::Redirect::to(&to).into_response();
    };
    let code = random_code();
    st.logins.lock().codes.insert(
        code.clone(),
        Grant {
            client_id: get("client_id"),
            redirect_uri: redirect_uri.clone(),
            challenge: get("code_challenge"),
            nonce: q.get("nonce").cloned(),
            email,
        },
    );
    let to = format!("{redirect_uri}{sep}code={code}&state={}", urlencode(&state));
    axum::response::Redirect::to(&to).into_response()
}

fn urlencode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

fn id_token(st: &LoginState, aud: &str, email: &str, nonce: Option<&str>) -> anyhow::Result<String> {
    let now = chrono::Utc::now().timestamp();
    let mut claims = json!({"iss": st.url, "aud": aud, "sub": email, "email": email, "email_verified": true,
                            "iat": now, "nbf": now, "exp": now + 3600});
    if let Some(n) = nonce {
        claims["nonce"] = json!(n);
    }
    let k = st.keys.lock().clone();
    let mut header = Header::new(Algorithm::RS256);
    header.kid = Some(k.rsa_kid.clone());
    Ok(jsonwebtoken::encode(&header, &claims, &EncodingKey::from_rsa_pem(k.rsa_pem.as_bytes())?)?)
}

fn token_reply(st: &LoginState, aud: &str, email: &str, nonce: Option<&str>) -> axum::response::Response {
    match id_token(st, aud, email, nonce) {
        Ok(t) => axum::Json(json!({"access_token": random_code(), "token_type": "Bearer", "expires_in": 3600,
                                    "id_token": t}))
        .into_response(),
        Err(e) => token_error(500, "server_error", &e.to_string()),
    }
}

async fn token(
    axum::extract::State(st): axum::extract::State<LoginState>,
    axum::extract::Form(f): axum::extract::Form<Params>,
) -> axum::response::Response {
    let get = |k: &str| f.get(k).cloned().unwrap_or_default();
    let refuse = |why: &str| {
        st.logins.lock().refused.push(why.to_string());
        token_error(400, "invalid_grant", why)
    };
    match get("grant_type").as_str() {
        "authorization_code" => {
            // A code is good for one attempt, right or wrong.
            let Some(g) = st.logins.lock().codes.remove(&get("code")) else { return refuse("unknown code") };
            if g.client_id != get("client_id") {
                return refuse("client_id mismatch");
            }
            if g.redirect_uri != get("redirect_uri") {
                return refuse("redirect_uri mismatch");
            }
            let verifier = get("code_verifier");
            let challenge = URL_SAFE_NO_PAD.encode(ring::digest::digest(&ring::digest::SHA256, verifier.as_bytes()));
            if verifier.is_empty() || challenge != g.challenge {
                return refuse("PKCE verifier mismatch");
            }
            token_reply(&st, &g.client_id, &g.email, g.nonce.as_deref())
        }
        "urn:ietf:params:oauth:grant-type:device_code" => {
            let d = st.logins.lock().devices.get(&get("device_code")).cloned();
            let Some(d) = d else { return token_error(400, "expired_token", "unknown device code") };
            if d.client_id != get("client_id") {
                return refuse("client_id mismatch");
            }
            match d.approved_as {
                None => token_error(400, "authorization_pending", "the user has not approved yet"),
                Some(email) => {
                    st.logins.lock().devices.remove(&get("device_code"));
                    token_reply(&st, &d.client_id, &email, None)
                }
            }
        }
        other => token_error(400, "unsupported_grant_type", other),
    }
}

async fn device_authorization(
    axum::extract::State(st): axum::extract::State<LoginState>,
    axum::extract::Form(f): axum::extract::Form<Params>,
) -> axum::response::Response {
    let client_id = f.get("client_id").cloned().unwrap_or_default();
    if client_id.is_empty() {
        return token_error(400, "invalid_client", "client_id is required");
    }
    let device_code = random_code();
    let user_code = format!("{:04}-{:04}", rand_u16() % 10_000, rand_u16() % 10_000);
    st.logins
        .lock()
        .devices
        .insert(device_code.clone(), DeviceGrant { client_id, user_code: user_code.clone(), approved_as: None });
    axum::Json(json!({
        "device_code": device_code,
        "user_code": user_code,
        "verification_uri": format!("{}/device", st.url),
        "verification_uri_complete": format!("{}/device?user_code={user_code}", st.url),
        "expires_in": 600,
        "interval": 1,
    }))
    .into_response()
}

fn rand_u16() -> u16 {
    let b = uuid::Uuid::new_v4();
    u16::from_le_bytes([b.as_bytes()[0], b.as_bytes()[1]])
}

/// The verification page: approves the pending device request with this
/// user code as the configured test user.
async fn device_page(
    axum::extract::State(st): axum::extract::State<LoginState>,
    axum::extract::Query(q): axum::extract::Query<Params>,
) -> axum::response::Response {
    let code = q.get("user_code").cloned().unwrap_or_default();
    let mut l = st.logins.lock();
    let Some(user) = l.user.clone() else {
        return (axum::http::StatusCode::FORBIDDEN, "no test user to approve as").into_response();
    };
    match l.devices.values_mut().find(|d| d.user_code == code) {
        Some(d) => {
            d.approved_as = Some(user);
            "approved".into_response()
        }
        None => (axum::http::StatusCode::NOT_FOUND, "unknown user code").into_response(),
    }
}
