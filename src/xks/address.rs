//! Whether an address can be reached from the internet. KMS reaches a PUBLIC_ENDPOINT proxy over
//! the internet, so a name that resolves only to addresses in the ranges below, which the
//! internet does not route to anyone's proxy, is one KMS cannot reach, whatever this machine
//! reaches (issue 11 #2). Ranges: IANA's special-purpose address registries (RFC 6890 and its
//! updates) for IPv4 and IPv6.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// Why `ip` is not a public internet address (`"private (RFC 1918)"`, `"loopback"`, ...), or
/// `None` for an address the internet routes.
pub fn non_public(ip: IpAddr) -> Option<&'static str> {
    match ip {
        IpAddr::V4(v4) => non_public_v4(v4),
        IpAddr::V6(v6) => non_public_v6(v6),
    }
}

fn non_public_v4(ip: Ipv4Addr) -> Option<&'static str> {
    let o = ip.octets();
    Some(if ip.is_loopback() {
        "loopback"
    } else if ip.is_private() {
        "private (RFC 1918)"
    } else if ip.is_link_local() {
        "link-local"
    } else if o[0] == 100 && (o[1] & 0xc0) == 64 {
        "carrier-grade NAT shared space (RFC 6598)"
    } else if o[0] == 0 {
        "\"this network\" (0.0.0.0/8)"
    } else if ip.is_documentation() {
        "documentation (RFC 5737)"
    } else if o[0] == 198 && (o[1] & 0xfe) == 18 {
        "benchmarking (RFC 2544)"
    } else if o[0] == 192 && o[1] == 0 && o[2] == 0 {
        "IETF protocol assignments (192.0.0.0/24)"
    } else if ip.is_multicast() {
        "multicast"
    } else if o[0] >= 240 {
        "reserved (240.0.0.0/4)"
    } else {
        return None;
    })
}

fn non_public_v6(ip: Ipv6Addr) -> Option<&'static str> {
    if let Some(v4) = ip.to_ipv4_mapped() {
        return non_public_v4(v4);
    }
    let s = ip.segments();
    Some(if ip.is_loopback() {
        "loopback"
    } else if ip.is_unspecified() {
        "unspecified"
    } else if (s[0] & 0xfe00) == 0xfc00 {
        "unique local (fc00::/7)"
    } else if (s[0] & 0xffc0) == 0xfe80 {
        "link-local"
    } else if ip.is_multicast() {
        "multicast"
    } else if s[0] == 0x2001 && s[1] == 0x0db8 {
        "documentation (2001:db8::/32)"
    } else if s[0] == 0x0100 && s[1] == 0 && s[2] == 0 && s[3] == 0 {
        "discard-only (100::/64)"
    } else {
        return None;
    })
}

#[cfg(test)]
mod tests {
    use super::non_public;

    fn class(s: &str) -> Option<&'static str> {
        non_public(s.parse().unwrap())
    }

    #[test]
    fn non_public_ranges() {
        for (ip, want) in [
            ("127.0.0.1", "loopback"),
            ("10.1.2.3", "private"),
            ("172.16.0.1", "private"),
            ("172.31.255.255", "private"),
            ("192.168.1.1", "private"),
            ("169.254.169.254", "link-local"),
            ("100.64.0.1", "carrier-grade NAT"),
            ("100.127.255.254", "carrier-grade NAT"),
            ("0.1.2.3", "this network"),
            ("203.0.113.10", "documentation"),
            ("198.18.0.1", "benchmarking"),
            ("224.0.0.1", "multicast"),
            ("250.1.1.1", "reserved"),
            ("::1", "loopback"),
            ("fd12:3456::1", "unique local"),
            ("fe80::1", "link-local"),
            ("::ffff:10.0.0.1", "private"),
            ("2001:db8::1", "documentation"),
        ] {
            let got = class(ip).unwrap_or_else(|| panic!("{ip} should not be public"));
            assert!(got.contains(want), "{ip}: {got}");
        }
    }

    #[test]
    fn public_addresses() {
        for ip in [
            "8.8.8.8",
            "52.94.133.131",
            "172.32.0.1",
            "100.128.0.1",
            "192.169.0.1",
            "2600:1f18::1",
        ] {
            assert_eq!(class(ip), None, "{ip}");
        }
    }
}
