//! A real OIDC issuer on 127.0.0.1:0 for tests: serves the discovery
//! document and the JWKS, signs RS256 and ES256 ID tokens, and rotates keys.
//! RSA keys are fixed test keys under `keys/` (ring cannot generate RSA);
//! EC P-256 keys are generated at start and on every rotation.

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

/// A running issuer. Dropping it stops the server.
pub struct OidcIssuer {
    pub url: String,
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
            );
        let stop = CancellationToken::new();
        let s = stop.clone();
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).with_graceful_shutdown(s.cancelled_owned()).await;
        });
        Ok(OidcIssuer { url, keys, jwks_fetches: fetches, stop })
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
