//! Which address a request comes from. Behind a reverse proxy the TCP peer
//! is the proxy; the proxy names the client in `X-Forwarded-For`. That
//! header is believed only when the peer is in a trusted-proxy range, and
//! read from the right: each trusted proxy appends the address it saw, so
//! the client is the rightmost address that is not itself a trusted proxy.

use ipnet::IpNet;
use std::net::{IpAddr, SocketAddr};

/// The TCP peer of the connection (the proxy, when there is one).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PeerAddr(pub SocketAddr);

/// The client's address: the forwarded one when the peer is a trusted
/// proxy, else the peer. Address-based checks (bot allowlists) and
/// per-caller limits use this. It is also what handlers receive as
/// `ConnectInfo<SocketAddr>`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClientAddr(pub SocketAddr);

/// Parses `--trusted-proxy` values: CIDRs (`10.0.0.0/8`) or bare addresses.
pub fn parse_cidrs(values: &[String]) -> Result<Vec<IpNet>, String> {
    values
        .iter()
        .map(|v| {
            let v = v.trim();
            v.parse::<IpNet>()
                .or_else(|_| v.parse::<IpAddr>().map(IpNet::from))
                .map_err(|_| format!("bad CIDR {v:?}: expected e.g. 10.0.0.0/8, 192.168.1.7 or fd00::/8"))
        })
        .collect()
}

fn trusted(nets: &[IpNet], ip: IpAddr) -> bool {
    let ip = match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map(IpAddr::V4).unwrap_or(ip),
        v4 => v4,
    };
    nets.iter().any(|n| n.contains(&ip))
}

/// The client address of a request from `peer` with `headers`.
pub fn client_addr(peer: SocketAddr, headers: &http::HeaderMap, proxies: &[IpNet]) -> SocketAddr {
    if proxies.is_empty() || !trusted(proxies, peer.ip()) {
        return peer;
    }
    // All X-Forwarded-For headers, in order, as one list.
    let hops: Vec<&str> = headers
        .get_all("x-forwarded-for")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .collect();
    let mut client = peer.ip();
    for hop in hops.iter().rev() {
        let Some(ip) = parse_hop(hop) else {
            // Unparseable: stop at the last address we could trust.
            break;
        };
        client = ip;
        if !trusted(proxies, ip) {
            break;
        }
    }
    SocketAddr::new(client, 0)
}

/// One `X-Forwarded-For` element: `1.2.3.4`, `1.2.3.4:5678`, `2001:db8::1`
/// or `[2001:db8::1]:5678`.
fn parse_hop(s: &str) -> Option<IpAddr> {
    if let Ok(ip) = s.parse::<IpAddr>() {
        return Some(ip);
    }
    s.parse::<SocketAddr>().ok().map(|a| a.ip())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn h(values: &[&str]) -> http::HeaderMap {
        let mut m = http::HeaderMap::new();
        for v in values {
            m.append("x-forwarded-for", v.parse().expect("header"));
        }
        m
    }

    fn addr(s: &str) -> SocketAddr {
        s.parse().expect("addr")
    }

    #[test]
    fn forwarded_for_counts_only_from_trusted_peers() {
        let proxies = parse_cidrs(&["10.0.0.0/8".into(), "192.168.1.7".into()]).expect("cidrs");
        let fwd = h(&["203.0.113.9"]);
        assert_eq!(client_addr(addr("10.1.2.3:4000"), &fwd, &proxies).ip(), addr("203.0.113.9:0").ip());
        assert_eq!(client_addr(addr("192.168.1.7:4000"), &fwd, &proxies).ip(), addr("203.0.113.9:0").ip());
        // An untrusted peer's header is ignored.
        assert_eq!(client_addr(addr("198.51.100.1:4000"), &fwd, &proxies), addr("198.51.100.1:4000"));
        // No trusted proxies configured: never believed.
        assert_eq!(client_addr(addr("10.1.2.3:4000"), &fwd, &[]), addr("10.1.2.3:4000"));
    }

    #[test]
    fn the_client_is_the_rightmost_untrusted_hop() {
        let proxies = parse_cidrs(&["10.0.0.0/8".into()]).expect("cidrs");
        // The client forged a first hop; the proxies appended the real ones.
        let fwd = h(&["127.0.0.1, 203.0.113.9", "10.0.0.5"]);
        assert_eq!(client_addr(addr("10.0.0.1:1"), &fwd, &proxies).ip().to_string(), "203.0.113.9");
        // Only proxies in the chain: the leftmost one.
        let fwd = h(&["10.0.0.9, 10.0.0.5"]);
        assert_eq!(client_addr(addr("10.0.0.1:1"), &fwd, &proxies).ip().to_string(), "10.0.0.9");
        // Ports and brackets are accepted; garbage stops the walk.
        let fwd = h(&["[2001:db8::1]:443"]);
        assert_eq!(client_addr(addr("10.0.0.1:1"), &fwd, &proxies).ip().to_string(), "2001:db8::1");
        let fwd = h(&["203.0.113.9, garbage"]);
        assert_eq!(client_addr(addr("10.0.0.1:1"), &fwd, &proxies).ip().to_string(), "10.0.0.1");
        // A v4-mapped peer address matches a v4 range.
        let fwd = h(&["203.0.113.9"]);
        assert_eq!(client_addr(addr("[::ffff:10.0.0.1]:1"), &fwd, &proxies).ip().to_string(), "203.0.113.9");
    }

    #[test]
    fn bad_cidrs_are_refused_with_an_example() {
        let e = parse_cidrs(&["10.0.0.0/33".into()]).expect_err("bad");
        assert!(e.contains("10.0.0.0/8"), "{e}");
    }
}
