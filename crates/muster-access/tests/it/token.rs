use muster_access::token::{self, TokenError};
use muster_access::Identity;
use muster_core::time::add_secs;

#[tokio::test]
async fn create_check_revoke_expire() {
    let (_d, store) = crate::store();
    let now = chrono::Utc::now();
    let alice = Identity::parse("user:alice@example.com").expect("id");
    let admin = Identity::parse("user:admin@example.com").expect("id");
    let issued = token::create(store.as_ref(), &alice, "ci", &admin, now, 3600).await.expect("create");
    assert!(issued.token.starts_with("mst_"));
    let (id, secret) = token::parse(&issued.token).expect("well-formed");
    let row = store.get_api_token(id).await.expect("get").expect("stored");
    assert_ne!(row.secret_sha256, secret.as_bytes(), "only the hash is stored");
    assert!(!format!("{row:?}").contains(secret), "the stored row does not contain the secret");
    assert_eq!(token::check(Some(&row), secret, now), Ok(alice.clone()));
    // A wrong secret for a real id.
    let mut wrong = secret.to_string();
    wrong.replace_range(0..1, if wrong.starts_with('A') { "B" } else { "A" });
    assert_eq!(token::check(Some(&row), &wrong, now), Err(TokenError::Unknown));
    assert_eq!(token::check(Some(&row), secret, add_secs(now, 3600)), Err(TokenError::Expired));
    token::revoke(store.as_ref(), id, &admin, now).await.expect("revoke");
    token::revoke(store.as_ref(), id, &admin, now).await.expect("revoking again is fine");
    let row = store.get_api_token(id).await.expect("get").expect("stored");
    assert_eq!(token::check(Some(&row), secret, now), Err(TokenError::Revoked));
    assert!(token::parse("mst_short").is_none());
    assert!(token::parse(&issued.token.replace("mst_", "msx_")).is_none());
}
