use http::HeaderMap;
use muster_access::{AuthMethod, Authenticator};
use muster_core::ErrorKind;

fn headers(list: &[(&'static str, &str)]) -> HeaderMap {
    let mut h = HeaderMap::new();
    for (k, v) in list {
        h.insert(*k, v.parse().expect("header value"));
    }
    h
}

#[tokio::test]
async fn credentials_decide_the_caller() {
    let (_d, store) = crate::store();
    let authn = Authenticator::new(store.clone());
    let snap = crate::snapshot(&[(
        "access.toml",
        "[proxy]\nheader = \"X-Forwarded-Email\"\ntrusted_cidrs = [\"10.0.0.0/8\"]\n",
    )]);
    let now = chrono::Utc::now();
    let lan: std::net::IpAddr = "192.168.1.5".parse().expect("ip");
    let proxy: std::net::IpAddr = "10.1.2.3".parse().expect("ip");

    let c = authn.authenticate(&snap, &HeaderMap::new(), None, Some(lan), None, now).await.expect("anonymous");
    assert!(c.identity.is_anonymous());
    assert!(c.extra_groups.is_empty(), "access.toml exists: loopback rule does not apply");

    let h = headers(&[("x-forwarded-email", "bob@example.com")]);
    let c = authn.authenticate(&snap, &h, None, Some(proxy), None, now).await.expect("proxy");
    assert_eq!((c.identity.as_str(), c.method), ("user:bob@example.com", AuthMethod::Proxy));
    let c = authn.authenticate(&snap, &h, None, Some(lan), None, now).await.expect("untrusted peer");
    assert!(c.identity.is_anonymous(), "the header counts only from the proxy");

    let alice = muster_access::Identity::parse("user:alice@example.com").expect("id");
    let issued = muster_access::token::create(store.as_ref(), &alice, "t", &alice, now, 60).await.expect("token");
    let bearer = format!("Bearer {}", issued.token);
    let h = headers(&[("authorization", &bearer)]);
    let c = authn.authenticate(&snap, &h, None, Some(lan), None, now).await.expect("token");
    assert_eq!(c.identity, alice);
    assert!(store.get_api_token(&issued.row.id).await.expect("get").expect("row").last_used_at.is_some());

    let bad =
        headers(&[("authorization", "Bearer mst_AAAAAAAAAAAAAAAAAAAAAA_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA")]);
    let e = authn.authenticate(&snap, &bad, None, Some(lan), None, now).await.expect_err("unknown token");
    assert_eq!(e.kind, ErrorKind::Unauthenticated);
    let e = authn.authenticate(&snap, &headers(&[("authorization", "Basic eDp5")]), None, None, None, now).await;
    assert_eq!(e.expect_err("basic").kind, ErrorKind::Unauthenticated);
    let q = format!("x=1&access_token={}", issued.token);
    let e = authn.authenticate(&snap, &HeaderMap::new(), Some(&q), None, None, now).await;
    assert_eq!(e.expect_err("token in query").kind, ErrorKind::Unauthenticated);
    let e = authn.authenticate(&snap, &headers(&[("x-delegation-token-v1", "x")]), None, None, None, now).await;
    assert_eq!(e.expect_err("delegation").kind, ErrorKind::Unauthenticated);
}

#[tokio::test]
async fn without_access_toml_loopback_callers_are_administrators() {
    let (_d, store) = crate::store();
    let authn = Authenticator::new(store);
    let snap = crate::snapshot(&[]);
    let now = chrono::Utc::now();
    let h = HeaderMap::new();
    let lo = authn.authenticate(&snap, &h, None, Some("127.0.0.1".parse().expect("ip")), None, now);
    assert_eq!(lo.await.expect("ok").extra_groups, vec!["administrators".to_string()]);
    let far = authn.authenticate(&snap, &h, None, Some("203.0.113.9".parse().expect("ip")), None, now);
    assert!(far.await.expect("ok").extra_groups.is_empty());
}
