//! CIDR ranges (`10.0.0.0/8`, `::1/128`, or a bare address).

use std::net::IpAddr;

/// A parsed address range.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cidr {
    net: IpAddr,
    bits: u32,
}

impl Cidr {
    /// Parses `a.b.c.d/n`, `x::y/n` or a bare address (a single host).
    pub fn parse(s: &str) -> Result<Cidr, String> {
        let s = s.trim();
        let (net, bits) = match s.split_once('/') {
            Some((n, b)) => (n, Some(b.parse::<u32>().map_err(|_| format!("bad prefix length in {s:?}"))?)),
            None => (s, None),
        };
        let net: IpAddr = net.parse().map_err(|_| format!("{s:?} is not an IP address or CIDR range"))?;
        let max = if net.is_ipv4() { 32 } else { 128 };
        let bits = bits.unwrap_or(max);
        if bits > max {
            return Err(format!("prefix length {bits} is too long in {s:?}"));
        }
        Ok(Cidr { net, bits })
    }

    /// Whether `ip` is inside the range (IPv4-mapped IPv6 addresses count as IPv4).
    pub fn contains(&self, ip: IpAddr) -> bool {
        let ip = match (self.net, ip) {
            (IpAddr::V4(_), IpAddr::V6(v6)) => v6.to_ipv4_mapped().map(IpAddr::V4).unwrap_or(ip),
            _ => ip,
        };
        match (self.net, ip) {
            (IpAddr::V4(n), IpAddr::V4(i)) => {
                let mask = if self.bits == 0 { 0 } else { u32::MAX << (32 - self.bits) };
                (u32::from(n) & mask) == (u32::from(i) & mask)
            }
            (IpAddr::V6(n), IpAddr::V6(i)) => {
                let mask = if self.bits == 0 { 0 } else { u128::MAX << (128 - self.bits) };
                (u128::from(n) & mask) == (u128::from(i) & mask)
            }
            _ => false,
        }
    }
}

impl std::fmt::Display for Cidr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.net, self.bits)
    }
}

/// Whether `ip` is inside `cidr`; an unparsable range contains nothing.
pub fn cidr_contains(cidr: &str, ip: IpAddr) -> bool {
    Cidr::parse(cidr).is_ok_and(|c| c.contains(ip))
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
        assert!(Cidr::parse("10.0.0.0/33").is_err());
    }
}
