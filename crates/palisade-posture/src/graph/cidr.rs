//! CIDR blocks (IPv4 and IPv6) for NetworkPolicy ipBlocks and client source ranges.

use std::net::IpAddr;

/// An address block: network address and prefix length.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cidr {
    addr: IpAddr,
    prefix: u8,
}

impl Cidr {
    /// Parses `10.0.0.0/8`, `::/0`, or a bare address (a /32 or /128).
    pub fn parse(s: &str) -> Option<Cidr> {
        let s = s.trim();
        let (addr, prefix) = match s.split_once('/') {
            Some((a, p)) => (a.parse::<IpAddr>().ok()?, Some(p.parse::<u8>().ok()?)),
            None => (s.parse::<IpAddr>().ok()?, None),
        };
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let prefix = prefix.unwrap_or(max);
        (prefix <= max).then_some(Cidr { addr, prefix })
    }

    /// Whether the block contains an address (an IPv4 block never contains an IPv6 address).
    pub fn contains(&self, ip: IpAddr) -> bool {
        match (self.addr, ip) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => {
                let mask = if self.prefix == 0 {
                    0
                } else {
                    u32::MAX << (32 - self.prefix)
                };
                (u32::from(net) & mask) == (u32::from(ip) & mask)
            }
            (IpAddr::V6(net), IpAddr::V6(ip)) => {
                let mask = if self.prefix == 0 {
                    0
                } else {
                    u128::MAX << (128 - self.prefix)
                };
                (u128::from(net) & mask) == (u128::from(ip) & mask)
            }
            _ => false,
        }
    }

    /// Whether the whole block lies in private, loopback or link-local space (RFC 1918, RFC 4193).
    pub fn is_private(&self) -> bool {
        const PRIVATE: &[&str] = &[
            "10.0.0.0/8",
            "172.16.0.0/12",
            "192.168.0.0/16",
            "127.0.0.0/8",
            "169.254.0.0/16",
            "100.64.0.0/10",
            "fc00::/7",
            "fe80::/10",
            "::1/128",
        ];
        PRIVATE
            .iter()
            .filter_map(|p| Cidr::parse(p))
            .any(|p| p.prefix <= self.prefix && p.contains(self.addr))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn containment_and_privacy() {
        let ip: IpAddr = "169.254.169.254".parse().unwrap();
        assert!(Cidr::parse("0.0.0.0/0").unwrap().contains(ip));
        assert!(Cidr::parse("169.254.0.0/16").unwrap().contains(ip));
        assert!(Cidr::parse("169.254.169.254/32").unwrap().contains(ip));
        assert!(Cidr::parse("169.254.169.254").unwrap().contains(ip));
        assert!(!Cidr::parse("169.254.169.255/32").unwrap().contains(ip));
        assert!(!Cidr::parse("10.0.0.0/8").unwrap().contains(ip));
        assert!(!Cidr::parse("::/0").unwrap().contains(ip));
        assert!(Cidr::parse("10.0.0.0/33").is_none());
        assert!(Cidr::parse("10.1.2.0/24").unwrap().is_private());
        assert!(!Cidr::parse("0.0.0.0/0").unwrap().is_private());
        assert!(!Cidr::parse("8.0.0.0/8").unwrap().is_private());
        assert!(!Cidr::parse("10.0.0.0/7").unwrap().is_private());
    }
}
