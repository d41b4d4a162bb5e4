//! Who is asking: the client's address, for login throttling.
//!
//! The peer of the TCP connection, unless that peer is one of the
//! operator's trusted proxies (`--trust-forwarded-for CIDR`): then the
//! nearest address in `X-Forwarded-For` that is not itself a trusted
//! proxy. Anyone else can write any `X-Forwarded-For` they like, so it is
//! believed from trusted proxies only.

use std::net::{IpAddr, SocketAddr};

use axum::extract::connect_info::{ConnectInfo, Connected};
use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::HeaderMap;
use axum::serve::IncomingStream;
use ipnet::IpNet;

use super::AppState;
use crate::tls::TlsListener;

/// The peer address of a connection, plain or TLS.
#[derive(Debug, Clone, Copy)]
pub struct PeerAddr(pub SocketAddr);

impl Connected<IncomingStream<'_, tokio::net::TcpListener>> for PeerAddr {
    fn connect_info(stream: IncomingStream<'_, tokio::net::TcpListener>) -> Self {
        PeerAddr(*stream.remote_addr())
    }
}

impl Connected<IncomingStream<'_, TlsListener>> for PeerAddr {
    fn connect_info(stream: IncomingStream<'_, TlsListener>) -> Self {
        PeerAddr(*stream.remote_addr())
    }
}

/// The client's address; `None` where the connection's is unknown (a
/// request handed to the router directly, as unit tests do).
#[derive(Debug, Clone, Copy)]
pub struct ClientIp(pub Option<IpAddr>);

impl FromRequestParts<AppState> for ClientIp {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        let peer = parts.extensions.get::<ConnectInfo<PeerAddr>>().map(|ConnectInfo(PeerAddr(addr))| addr.ip());
        Ok(ClientIp(peer.map(|peer| client_ip(peer, &parts.headers, &state.trusted_proxies))))
    }
}

fn client_ip(peer: IpAddr, headers: &HeaderMap, trusted: &[IpNet]) -> IpAddr {
    let is_trusted = |ip: &IpAddr| trusted.iter().any(|net| net.contains(&canonical(*ip)));
    if !is_trusted(&peer) {
        return peer;
    }
    // Each proxy appends the address it got the request from: walk from
    // the nearest, past our own proxies, to the first address we did not
    // add ourselves.
    let forwarded: Vec<IpAddr> = headers
        .get_all("x-forwarded-for")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter_map(|part| part.trim().parse::<IpAddr>().ok())
        .collect();
    forwarded.iter().rev().find(|ip| !is_trusted(ip)).or(forwarded.first()).copied().unwrap_or(peer)
}

/// IPv4 peers of a dual-stack socket arrive as `::ffff:a.b.c.d`.
fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map(IpAddr::V4).unwrap_or(ip),
        v4 => v4,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(xff: &[&str]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for v in xff {
            h.append("x-forwarded-for", v.parse().unwrap());
        }
        h
    }

    #[test]
    fn forwarded_for_is_believed_from_trusted_proxies_only() {
        let trusted: Vec<IpNet> = vec!["10.0.0.0/24".parse().unwrap()];
        let ip = |s: &str| s.parse::<IpAddr>().unwrap();
        // An untrusted peer's header is ignored.
        assert_eq!(client_ip(ip("198.51.100.9"), &headers(&["192.0.2.1"]), &trusted), ip("198.51.100.9"));
        // A trusted proxy: the nearest address it did not add.
        assert_eq!(client_ip(ip("10.0.0.5"), &headers(&["192.0.2.1"]), &trusted), ip("192.0.2.1"));
        // A client's own forged entry sits left of the real one.
        assert_eq!(client_ip(ip("10.0.0.5"), &headers(&["6.6.6.6, 192.0.2.1", "10.0.0.7"]), &trusted), ip("192.0.2.1"));
        // Without a header, or only proxies in it.
        assert_eq!(client_ip(ip("10.0.0.5"), &headers(&[]), &trusted), ip("10.0.0.5"));
        assert_eq!(client_ip(ip("10.0.0.5"), &headers(&["10.0.0.6"]), &trusted), ip("10.0.0.6"));
        assert_eq!(client_ip(ip("::ffff:10.0.0.5"), &headers(&["192.0.2.1"]), &trusted), ip("192.0.2.1"));
        assert_eq!(client_ip(ip("10.0.0.5"), &headers(&["garbage"]), &[]), ip("10.0.0.5"));
    }
}
