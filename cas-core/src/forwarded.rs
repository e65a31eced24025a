//! The client address of a request that came through reverse proxies: the right-most
//! address of the forwarding header that is not a trusted proxy, read only when the TCP
//! peer itself is a trusted proxy. Proxies append the address they received a request
//! from, so addresses left of the first untrusted hop may be forged by the client.

use std::net::IpAddr;

/// An IP network in CIDR notation, such as `10.0.0.0/8` or `::1/128`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IpNetwork {
    address: IpAddr,
    prefix: u8,
}

impl IpNetwork {
    /// Parses `address/prefix`, or a bare address as a network of that one address.
    /// Returns `None` for an invalid address, a prefix longer than the address, or host
    /// bits set after the prefix.
    pub fn parse(text: &str) -> Option<Self> {
        let (address, prefix) = match text.split_once('/') {
            Some((address, prefix)) => (address, Some(prefix)),
            None => (text, None),
        };
        let address: IpAddr = address.parse().ok()?;
        let max = max_prefix(address);
        let prefix = match prefix {
            Some(digits) if !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()) => {
                digits.parse::<u8>().ok()?
            }
            Some(_) => return None,
            None => max,
        };
        if prefix > max {
            return None;
        }

        let network = Self { address, prefix };
        (network.masked(address) == bits(address)).then_some(network)
    }

    /// Tells whether `address` lies in the network. An IPv4 address mapped into IPv6
    /// counts as the IPv4 address.
    pub fn contains(&self, address: IpAddr) -> bool {
        let address = address.to_canonical();
        if address.is_ipv4() != self.address.is_ipv4() {
            return false;
        }
        self.masked(address) == bits(self.address)
    }

    fn masked(&self, address: IpAddr) -> u128 {
        let host_bits = u32::from(max_prefix(address) - self.prefix);
        let mask = u128::MAX.checked_shl(host_bits).unwrap_or(0);
        bits(address) & mask
    }
}

impl std::fmt::Display for IpNetwork {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.address, self.prefix)
    }
}

fn max_prefix(address: IpAddr) -> u8 {
    match address {
        IpAddr::V4(_) => 32,
        IpAddr::V6(_) => 128,
    }
}

fn bits(address: IpAddr) -> u128 {
    match address {
        IpAddr::V4(v4) => u128::from(u32::from(v4)),
        IpAddr::V6(v6) => u128::from(v6),
    }
}

/// The request header that lists the forwarding chain.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ForwardedHeader {
    /// `X-Forwarded-For: client, proxy1, proxy2`.
    XForwardedFor,
    /// `Forwarded: for=client, for="[2001:db8::1]:4711"` (RFC 7239).
    Forwarded,
}

impl ForwardedHeader {
    /// Returns the header's name in lower case.
    pub fn name(self) -> &'static str {
        match self {
            Self::XForwardedFor => "x-forwarded-for",
            Self::Forwarded => "forwarded",
        }
    }
}

/// Returns the client address of a request from `peer`. `values` are the header's
/// field lines in the order received. The peer is returned when it is not trusted, when
/// the header is absent, or when any hop in it is malformed or not an IP address.
pub fn client_address(
    peer: IpAddr,
    trusted: &[IpNetwork],
    header: ForwardedHeader,
    values: &[&str],
) -> IpAddr {
    let peer = peer.to_canonical();
    let is_trusted = |address: IpAddr| trusted.iter().any(|network| network.contains(address));
    if !is_trusted(peer) {
        return peer;
    }

    let Some(hops) = parse_hops(header, values) else {
        return peer;
    };
    let client = hops.iter().rev().find(|&&hop| !is_trusted(hop));
    match client {
        Some(&client) => client,
        // Every hop is a trusted proxy, so the first one is the closest to the client.
        None => hops.first().copied().unwrap_or(peer),
    }
}

/// Returns every hop of the header, left to right, or `None` when one is malformed.
fn parse_hops(header: ForwardedHeader, values: &[&str]) -> Option<Vec<IpAddr>> {
    let mut hops = Vec::new();
    for value in values {
        for element in value.split(',') {
            let hop = match header {
                ForwardedHeader::XForwardedFor => element.trim().parse().ok()?,
                ForwardedHeader::Forwarded => forwarded_for(element)?,
            };
            hops.push(IpAddr::to_canonical(&hop));
        }
    }
    Some(hops)
}

/// Returns the address of the `for` parameter of one `Forwarded` element. An element
/// without `for`, or with `unknown` or an obfuscated name, is `None`.
fn forwarded_for(element: &str) -> Option<IpAddr> {
    let mut found = None;
    for pair in element.split(';') {
        let (name, value) = pair.trim().split_once('=')?;
        if !name.eq_ignore_ascii_case("for") {
            continue;
        }
        if found.is_some() {
            return None;
        }
        found = Some(node_address(unquote(value)?)?);
    }
    found
}

fn unquote(value: &str) -> Option<&str> {
    match value.strip_prefix('"') {
        Some(rest) => rest.strip_suffix('"'),
        None => Some(value),
    }
}

/// Parses an RFC 7239 node: `192.0.2.1`, `192.0.2.1:4711`, `[2001:db8::1]` or
/// `[2001:db8::1]:4711`.
fn node_address(node: &str) -> Option<IpAddr> {
    if let Some(rest) = node.strip_prefix('[') {
        let (address, after) = rest.split_once(']')?;
        if !(after.is_empty() || is_port(after.strip_prefix(':')?)) {
            return None;
        }
        return address.parse::<std::net::Ipv6Addr>().ok().map(IpAddr::V6);
    }

    let (address, port) = match node.split_once(':') {
        Some((address, port)) => (address, Some(port)),
        None => (node, None),
    };
    if port.is_some_and(|port| !is_port(port)) {
        return None;
    }
    address.parse::<std::net::Ipv4Addr>().ok().map(IpAddr::V4)
}

fn is_port(text: &str) -> bool {
    !text.is_empty() && text.len() <= 5 && text.bytes().all(|b| b.is_ascii_digit())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(text: &str) -> IpAddr {
        text.parse().expect("address")
    }

    fn networks(texts: &[&str]) -> Vec<IpNetwork> {
        texts
            .iter()
            .map(|text| IpNetwork::parse(text).expect("network"))
            .collect()
    }

    #[test]
    fn network_parse_rejects_invalid() {
        for text in [
            "10.0.0.0/33",
            "::/129",
            "10.0.0.1/8",
            "10.0.0.0/",
            "10.0.0.0/+8",
            "10.0.0/8",
            "localhost",
            "",
        ] {
            assert_eq!(IpNetwork::parse(text), None, "{text}");
        }
    }

    #[test]
    fn network_contains_its_addresses() {
        let private = IpNetwork::parse("10.0.0.0/8").expect("network");
        let single = IpNetwork::parse("127.0.0.1").expect("network");
        let all = IpNetwork::parse("0.0.0.0/0").expect("network");
        let v6 = IpNetwork::parse("2001:db8::/32").expect("network");

        assert!(private.contains(ip("10.255.0.1")));
        assert!(!private.contains(ip("11.0.0.1")));
        assert!(private.contains(ip("::ffff:10.1.2.3")), "mapped IPv4");
        assert!(single.contains(ip("127.0.0.1")));
        assert!(!single.contains(ip("127.0.0.2")));
        assert!(all.contains(ip("192.0.2.9")));
        assert!(
            !all.contains(ip("2001:db8::1")),
            "IPv4 network, IPv6 address"
        );
        assert!(v6.contains(ip("2001:db8:ffff::1")));
        assert!(!v6.contains(ip("2001:db9::1")));
    }

    #[test]
    fn untrusted_peer_keeps_own_address() {
        let trusted = networks(&["10.0.0.0/8"]);

        let client = client_address(
            ip("192.0.2.7"),
            &trusted,
            ForwardedHeader::XForwardedFor,
            &["198.51.100.1"],
        );

        assert_eq!(client, ip("192.0.2.7"));
    }

    #[test]
    fn rightmost_untrusted_hop_is_client() {
        let trusted = networks(&["10.0.0.0/8", "127.0.0.1/32"]);
        let peer = ip("127.0.0.1");
        let read = |values: &[&str]| {
            client_address(peer, &trusted, ForwardedHeader::XForwardedFor, values)
        };

        assert_eq!(read(&["198.51.100.1"]), ip("198.51.100.1"));
        assert_eq!(
            read(&["203.0.113.9, 198.51.100.1, 10.0.0.5"]),
            ip("198.51.100.1"),
            "the forged left-most entry is skipped"
        );
        assert_eq!(
            read(&["203.0.113.9", "198.51.100.1,10.0.0.5"]),
            ip("198.51.100.1"),
            "several field lines form one list"
        );
        assert_eq!(read(&["10.0.0.9, 10.0.0.5"]), ip("10.0.0.9"));
        assert_eq!(read(&[]), peer, "no header");
    }

    #[test]
    fn malformed_header_keeps_peer() {
        let trusted = networks(&["127.0.0.0/8"]);
        let peer = ip("127.0.0.1");
        for value in [
            "",
            "unknown",
            "198.51.100.1, ",
            "198.51.100.1:443",
            "198.51.100.1 203.0.113.9",
            "[2001:db8::1]",
            "999.1.1.1",
        ] {
            let client = client_address(peer, &trusted, ForwardedHeader::XForwardedFor, &[value]);
            assert_eq!(client, peer, "{value:?}");
        }
    }

    #[test]
    fn forwarded_header_reads_for() {
        let trusted = networks(&["127.0.0.1"]);
        let peer = ip("127.0.0.1");
        let read =
            |value: &str| client_address(peer, &trusted, ForwardedHeader::Forwarded, &[value]);

        assert_eq!(read("for=192.0.2.60;proto=https"), ip("192.0.2.60"));
        assert_eq!(
            read(r#"for=192.0.2.43, For="[2001:db8:cafe::17]:4711""#),
            ip("2001:db8:cafe::17")
        );
        assert_eq!(
            read(r#"for="192.0.2.43:80";by=127.0.0.1"#),
            ip("192.0.2.43")
        );
        for malformed in [
            "for=unknown",
            "for=_hidden",
            "proto=https",
            "for=192.0.2.1;for=192.0.2.2",
            r#"for="192.0.2.1"#,
            "for=[2001:db8::1]:x",
            "for",
        ] {
            assert_eq!(read(malformed), peer, "{malformed}");
        }
    }
}
