//! Who the client is, by address, for per-address limits and logs.
//!
//! The client is the TCP peer, unless that peer is one of the operator's trusted proxies (a
//! load balancer in front of Bestow): then it is the right-most address of `X-Forwarded-For`
//! that is not itself a trusted proxy. Anything a client writes to the left of that is its
//! own claim and is ignored. With no trusted proxies (the default) the header is never read.
//!
//! IPv6 clients are keyed by their /64: one subscriber usually holds a whole /64, so keying by
//! full address would let one machine rotate through 2^64 budgets.

use std::net::{IpAddr, Ipv6Addr, SocketAddr};
use std::str::FromStr;

use axum::extract::{ConnectInfo, Request, State};
use axum::http::HeaderMap;
use axum::middleware::Next;
use axum::response::Response;
use ipnet::IpNet;

/// The client's address as every limit keys it, set on each request by [`identify_client`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClientIp(pub IpAddr);

/// The client address a trusted gateway forwarded; set only by `crate::http::trust_gateway`,
/// read by the `ClientAddress` extractor.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ForwardedClient(pub IpAddr);

/// Networks whose `X-Forwarded-For` is believed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TrustedProxies(Vec<IpNet>);

impl FromStr for TrustedProxies {
    type Err = String;

    /// A comma-separated list of CIDR blocks or single addresses, e.g. `10.0.0.0/8, ::1`.
    fn from_str(list: &str) -> Result<Self, Self::Err> {
        let parse = |item: &str| {
            IpNet::from_str(item)
                .or_else(|_| IpAddr::from_str(item).map(IpNet::from))
                .map_err(|_| format!("`{item}` is not an address or a CIDR block"))
        };
        let networks = list.split(',').map(str::trim).filter(|item| !item.is_empty()).map(parse);
        Ok(Self(networks.collect::<Result<_, _>>()?))
    }
}

impl TrustedProxies {
    fn trusts(&self, address: IpAddr) -> bool {
        self.0.iter().any(|network| network.contains(&address))
    }

    /// The client behind `peer`: `peer` itself unless it is trusted, else the right-most
    /// untrusted hop of `X-Forwarded-For` (every such header, in order). When every hop is
    /// trusted, the left-most one; when a hop is unreadable, the last trusted address seen.
    pub fn client_of(&self, peer: IpAddr, headers: &HeaderMap) -> IpAddr {
        self.client_hop(peer, headers).0
    }

    /// The client as [`Self::client_of`] finds it, and its position in `X-Forwarded-For`
    /// (`None` when it is the peer).
    fn client_hop(&self, peer: IpAddr, headers: &HeaderMap) -> (IpAddr, Option<usize>) {
        if !self.trusts(peer) {
            return (peer, None);
        }
        let hops = header_list(headers, crate::http::FORWARDED_FOR.as_str());
        let mut client = (peer, None);
        for (position, hop) in hops.iter().enumerate().rev() {
            match hop.parse::<IpAddr>() {
                Ok(address) => {
                    client = (address, Some(position));
                    if !self.trusts(address) {
                        break;
                    }
                }
                Err(_) => break,
            }
        }
        client
    }

    /// The scheme the client used, as the trusted proxies report it: never believed from an
    /// untrusted peer. `X-Forwarded-Proto` (else the `proto` of `Forwarded`) lists one scheme
    /// per hop, like `X-Forwarded-For`; the client's is the one beside its address there, or,
    /// when the two lists do not line up, the one the nearest proxy wrote (the right-most).
    pub fn scheme_of(&self, peer: IpAddr, headers: &HeaderMap) -> ClientScheme {
        if !self.trusts(peer) {
            return ClientScheme::Http;
        }
        let mut schemes = header_list(headers, "x-forwarded-proto");
        if schemes.is_empty() {
            schemes = forwarded_protos(headers);
        }
        let hops = header_list(headers, crate::http::FORWARDED_FOR.as_str());
        let scheme = match self.client_hop(peer, headers).1 {
            Some(position) if schemes.len() == hops.len() => schemes.get(position),
            _ => schemes.last(),
        };
        match scheme {
            Some(scheme) if scheme.eq_ignore_ascii_case("https") => ClientScheme::Https,
            _ => ClientScheme::Http,
        }
    }
}

/// Whether the client reached us (or the first trusted proxy) over HTTPS; set on each request
/// by [`identify_client`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClientScheme {
    Http,
    Https,
}

/// The comma-separated items of every `name` header, in order, trimmed.
fn header_list(headers: &HeaderMap, name: &str) -> Vec<String> {
    headers
        .get_all(name)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .map(|item| item.trim().to_owned())
        .collect()
}

/// The `proto` parameter of each element of `Forwarded` (RFC 7239), "" where it has none.
fn forwarded_protos(headers: &HeaderMap) -> Vec<String> {
    header_list(headers, "forwarded")
        .iter()
        .map(|element| {
            let proto = element.split(';').filter_map(|pair| pair.split_once('=')).find_map(|(key, value)| {
                key.trim().eq_ignore_ascii_case("proto").then(|| value.trim().trim_matches('"').to_owned())
            });
            proto.unwrap_or_default()
        })
        .collect()
}

/// The key of `address` for limits: IPv4 as is (IPv4-mapped IPv6 as IPv4), IPv6 narrowed to
/// its /64.
pub fn limit_key(address: IpAddr) -> IpAddr {
    match address {
        IpAddr::V4(v4) => IpAddr::V4(v4),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => IpAddr::V6(Ipv6Addr::from(u128::from(v6) & !((1u128 << 64) - 1))),
        },
    }
}

/// Middleware that sets [`ClientIp`] and [`ClientScheme`] on every request, from the peer and
/// the trusted proxies.
pub async fn identify_client(State(trusted): State<TrustedProxies>, mut request: Request, next: Next) -> Response {
    let peer = request.extensions().get::<ConnectInfo<SocketAddr>>().map(|info| info.0.ip());
    if let Some(peer) = peer {
        let client = limit_key(trusted.client_of(peer, request.headers()));
        let scheme = trusted.scheme_of(peer, request.headers());
        request.extensions_mut().insert(ClientIp(client));
        request.extensions_mut().insert(scheme);
    }
    next.run(request).await
}

#[cfg(test)]
mod tests {
    use axum::http::HeaderValue;

    use super::*;

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap_or_else(|_| panic!("{text}"))
    }

    fn forwarded(values: &[&str]) -> HeaderMap {
        let mut headers = HeaderMap::new();
        for value in values {
            headers.append(crate::http::FORWARDED_FOR, HeaderValue::from_str(value).unwrap_or_else(|_| panic!()));
        }
        headers
    }

    #[test]
    fn the_header_is_ignored_unless_the_peer_is_trusted() {
        let none = TrustedProxies::default();
        assert_eq!(none.client_of(ip("10.0.0.5"), &forwarded(&["203.0.113.7"])), ip("10.0.0.5"));
        let lb: TrustedProxies = "10.0.0.0/8".parse().unwrap_or_default();
        assert_eq!(lb.client_of(ip("192.0.2.1"), &forwarded(&["203.0.113.7"])), ip("192.0.2.1"));
    }

    #[test]
    fn the_right_most_untrusted_hop_is_the_client() {
        let trusted: TrustedProxies = "10.0.0.0/8, 172.16.0.1".parse().unwrap_or_default();
        // The client forged "1.2.3.4"; the load balancers appended what they saw.
        let headers = forwarded(&["1.2.3.4, 203.0.113.7", "172.16.0.1"]);
        assert_eq!(trusted.client_of(ip("10.1.2.3"), &headers), ip("203.0.113.7"));
        assert_eq!(trusted.client_of(ip("10.1.2.3"), &forwarded(&["10.9.9.9"])), ip("10.9.9.9"));
        assert_eq!(trusted.client_of(ip("10.1.2.3"), &HeaderMap::new()), ip("10.1.2.3"));
        assert_eq!(trusted.client_of(ip("10.1.2.3"), &forwarded(&["garbage, 10.2.2.2"])), ip("10.2.2.2"));
    }

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut headers = HeaderMap::new();
        for (name, value) in pairs {
            headers.append(*name, HeaderValue::from_str(value).unwrap_or_else(|_| panic!()));
        }
        headers
    }

    #[test]
    fn the_scheme_is_believed_only_from_a_trusted_proxy_and_read_exactly() {
        let trusted: TrustedProxies = "10.0.0.0/8".parse().unwrap_or_default();
        let https = |pairs: &[(&'static str, &str)], peer: &str| trusted.scheme_of(ip(peer), &headers(pairs));
        // The attack: a client says https itself, or something that merely contains it.
        assert_eq!(https(&[("x-forwarded-proto", "https")], "192.0.2.1"), ClientScheme::Http);
        assert_eq!(https(&[("forwarded", "proto=https")], "192.0.2.1"), ClientScheme::Http);
        assert_eq!(https(&[("x-forwarded-proto", "httpsX")], "10.0.0.1"), ClientScheme::Http);
        assert_eq!(https(&[("forwarded", "proto=httpsX")], "10.0.0.1"), ClientScheme::Http);
        // A trusted proxy's word, set or appended.
        assert_eq!(https(&[("x-forwarded-proto", "HTTPS")], "10.0.0.1"), ClientScheme::Https);
        assert_eq!(https(&[("x-forwarded-proto", "http, https")], "10.0.0.1"), ClientScheme::Https);
        assert_eq!(https(&[("forwarded", "for=192.0.2.7;proto=\"https\"")], "10.0.0.1"), ClientScheme::Https);
        assert_eq!(https(&[], "10.0.0.1"), ClientScheme::Http);
        // One scheme per hop: the client's is the one beside its address.
        let chain = [("x-forwarded-for", "203.0.113.7, 10.0.0.2"), ("x-forwarded-proto", "https, http")];
        assert_eq!(https(&chain, "10.0.0.1"), ClientScheme::Https);
        let forged = [("x-forwarded-for", "1.2.3.4, 203.0.113.7"), ("x-forwarded-proto", "https, http")];
        assert_eq!(https(&forged, "10.0.0.1"), ClientScheme::Http, "the client's own claim to the left is ignored");
    }

    #[test]
    fn lists_parse_or_name_the_bad_item() {
        assert!("".parse::<TrustedProxies>().is_ok_and(|t| t == TrustedProxies::default()));
        assert!("10.0.0.0/8,::1,fd00::/8".parse::<TrustedProxies>().is_ok());
        assert_eq!(
            "10.0.0.0/8, nope".parse::<TrustedProxies>().err().as_deref(),
            Some("`nope` is not an address or a CIDR block")
        );
    }

    #[test]
    fn ipv6_clients_are_keyed_by_their_64() {
        assert_eq!(limit_key(ip("2001:db8:1:2:aaaa:bbbb:cccc:dddd")), ip("2001:db8:1:2::"));
        assert_eq!(limit_key(ip("::ffff:192.0.2.9")), ip("192.0.2.9"));
        assert_eq!(limit_key(ip("192.0.2.9")), ip("192.0.2.9"));
    }
}
