//! Bot access: IP allowlist and optional shared token (docs/bot-protocol.md#authentication).

use crate::config::BotAuth;
use axum::http::HeaderMap;
use muster_core::Error;
use std::net::IpAddr;

/// Whether `ip` is inside `cidr` (`a.b.c.d/n`, `::1/128`, or a bare address).
pub fn cidr_contains(cidr: &str, ip: IpAddr) -> bool {
    let (net, bits) = match cidr.split_once('/') {
        Some((n, b)) => (n, b.parse::<u32>().ok()),
        None => (cidr, None),
    };
    let Ok(net) = net.parse::<IpAddr>() else { return false };
    let ip = match (net, ip) {
        (IpAddr::V4(_), IpAddr::V6(v6)) => v6.to_ipv4_mapped().map(IpAddr::V4).unwrap_or(ip),
        _ => ip,
    };
    match (net, ip) {
        (IpAddr::V4(n), IpAddr::V4(i)) => {
            let bits = bits.unwrap_or(32).min(32);
            let mask = if bits == 0 { 0 } else { u32::MAX << (32 - bits) };
            (u32::from(n) & mask) == (u32::from(i) & mask)
        }
        (IpAddr::V6(n), IpAddr::V6(i)) => {
            let bits = bits.unwrap_or(128).min(128);
            let mask = if bits == 0 { 0 } else { u128::MAX << (128 - bits) };
            (u128::from(n) & mask) == (u128::from(i) & mask)
        }
        _ => false,
    }
}

/// Checks a bot request's peer address and token.
pub fn check(auth: &BotAuth, peer: IpAddr, headers: &HeaderMap) -> Result<(), Error> {
    if !auth.ip_allowlist.is_empty() && !auth.ip_allowlist.iter().any(|c| cidr_contains(c, peer)) {
        return Err(Error::permission(format!("bot address {peer} is not allowed")));
    }
    if let Some(want) = &auth.token {
        let got = headers
            .get(axum::http::header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "));
        if got != Some(want.as_str()) {
            return Err(Error::new(muster_core::ErrorKind::Unauthenticated, "missing or wrong bot token"));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cidrs_match_v4_v6_and_mapped_addresses() {
        let ip = |s: &str| s.parse::<IpAddr>().expect("ip");
        assert!(cidr_contains("127.0.0.0/8", ip("127.1.2.3")));
        assert!(!cidr_contains("127.0.0.0/8", ip("10.0.0.1")));
        assert!(cidr_contains("::1/128", ip("::1")));
        assert!(cidr_contains("127.0.0.1", ip("::ffff:127.0.0.1")));
        assert!(cidr_contains("0.0.0.0/0", ip("8.8.8.8")));
        assert!(!cidr_contains("garbage", ip("8.8.8.8")));
    }
}
