use muster_access::oidc::{OidcError, OidcVerifier};
use muster_config::access_toml::OidcToml;
use muster_testkit::OidcIssuer;
use serde_json::json;
use std::time::Duration;

fn cfg(issuer: &OidcIssuer) -> Vec<OidcToml> {
    vec![OidcToml::new(&issuer.url, vec!["muster".into()])]
}

fn now() -> muster_core::Time {
    chrono::Utc::now()
}

#[tokio::test]
async fn rs256_and_es256_tokens_verify() {
    let iss = OidcIssuer::start().await.expect("issuer");
    let v = OidcVerifier::new();
    for alg in ["RS256", "ES256"] {
        let t = iss.sign(alg, &iss.claims("muster", "dev@example.com")).expect("sign");
        let id = v.verify(&cfg(&iss), &t, now()).await.unwrap_or_else(|e| panic!("{alg}: {e}"));
        assert_eq!(id.as_str(), "user:dev@example.com");
    }
}

#[tokio::test]
async fn bad_tokens_are_refused_for_the_right_reason() {
    let iss = OidcIssuer::start().await.expect("issuer");
    let v = OidcVerifier::new();
    let c = cfg(&iss);
    let good = iss.claims("muster", "dev@example.com");

    let mut expired = good.clone();
    expired["exp"] = json!(now().timestamp() - 120);
    let t = iss.sign("RS256", &expired).expect("sign");
    assert_eq!(v.verify(&c, &t, now()).await, Err(OidcError::Expired));

    let mut within_leeway = good.clone();
    within_leeway["exp"] = json!(now().timestamp() - 30);
    let t = iss.sign("RS256", &within_leeway).expect("sign");
    assert!(v.verify(&c, &t, now()).await.is_ok(), "60 s leeway");

    let mut future = good.clone();
    future["nbf"] = json!(now().timestamp() + 600);
    let t = iss.sign("ES256", &future).expect("sign");
    assert_eq!(v.verify(&c, &t, now()).await, Err(OidcError::NotYetValid));

    let t = iss.sign("RS256", &iss.claims("someone-else", "dev@example.com")).expect("sign");
    assert!(matches!(v.verify(&c, &t, now()).await, Err(OidcError::Invalid(_))), "wrong audience");

    let mut other_iss = good.clone();
    other_iss["iss"] = json!("https://evil.example");
    let t = iss.sign("RS256", &other_iss).expect("sign");
    assert!(matches!(v.verify(&c, &t, now()).await, Err(OidcError::UnknownIssuer(_))));

    let t = iss.unsigned(&good);
    assert!(matches!(v.verify(&c, &t, now()).await, Err(OidcError::Algorithm(_))), "alg none");

    let t = iss.sign_with_kid("RS256", &good, "no-such-kid").expect("sign");
    assert!(matches!(v.verify(&c, &t, now()).await, Err(OidcError::UnknownKey(_))));

    let mut unverified = good.clone();
    unverified["email_verified"] = json!(false);
    let t = iss.sign("RS256", &unverified).expect("sign");
    assert!(matches!(v.verify(&c, &t, now()).await, Err(OidcError::Identity(_))));

    // A tampered payload breaks the signature.
    let t = iss.sign("RS256", &good).expect("sign");
    let parts: Vec<&str> = t.split('.').collect();
    let mut evil = good.clone();
    evil["email"] = json!("admin@example.com");
    use base64::Engine;
    let body = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(evil.to_string());
    let forged = format!("{}.{}.{}", parts[0], body, parts[2]);
    assert!(matches!(v.verify(&c, &forged, now()).await, Err(OidcError::Invalid(_))));
}

#[tokio::test]
async fn unknown_kid_refetches_are_rate_limited() {
    let iss = OidcIssuer::start().await.expect("issuer");
    let v = OidcVerifier::new();
    let c = cfg(&iss);
    let good = iss.claims("muster", "dev@example.com");
    v.verify(&c, &iss.sign("RS256", &good).expect("sign"), now()).await.expect("valid");
    let before = iss.jwks_fetches();
    for _ in 0..5 {
        let t = iss.sign_with_kid("RS256", &good, "garbage").expect("sign");
        assert!(v.verify(&c, &t, now()).await.is_err());
    }
    assert_eq!(iss.jwks_fetches(), before, "no refetch within 30 s of the last one");
}

#[tokio::test]
async fn key_rotation_is_followed() {
    let iss = OidcIssuer::start().await.expect("issuer");
    let v = OidcVerifier::new().with_refetch_interval(Duration::ZERO);
    let c = cfg(&iss);
    let good = iss.claims("muster", "dev@example.com");
    let old = iss.sign("ES256", &good).expect("sign");
    v.verify(&c, &old, now()).await.expect("valid before rotation");
    iss.rotate();
    let new = iss.sign("ES256", &good).expect("sign");
    v.verify(&c, &new, now()).await.expect("the new key is fetched on its unknown kid");
    let new_rsa = iss.sign("RS256", &good).expect("sign");
    v.verify(&c, &new_rsa, now()).await.expect("new RSA key");
    assert!(matches!(v.verify(&c, &old, now()).await, Err(OidcError::UnknownKey(_))), "old key retired");
}
