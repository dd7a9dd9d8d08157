//! Where a webhook may be sent: SSRF defence.
//!
//! A partner chooses the URL, so a URL naming this network (the database,
//! the metadata service, a neighbour's admin port) would let it make this
//! server call there. An endpoint must be `https://` and reach only public
//! addresses. The address is checked where the connection is made: the
//! delivery client resolves names through [`Guarded`], which hands the
//! connector only allowed addresses, so a DNS answer that changes between a
//! check and the connection cannot get through; an IP literal in a URL,
//! which is never resolved, is checked before sending. Redirects are never
//! followed (see `delivery`). `--allow-insecure-webhooks` lifts both rules,
//! for tests and closed networks.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use reqwest::Url;
use reqwest::dns::{Addrs, Name, Resolve, Resolving};

/// Whether a webhook may connect to `ip`: not loopback, private, link-local,
/// multicast, unspecified, or another range that is not the public internet.
pub fn allowed(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(ip) => allowed_v4(ip),
        IpAddr::V6(ip) => match ip.to_ipv4_mapped() {
            Some(ip) => allowed_v4(ip),
            None => allowed_v6(ip),
        },
    }
}

fn allowed_v4(ip: Ipv4Addr) -> bool {
    let [a, b, ..] = ip.octets();
    !(ip.is_loopback()
        || ip.is_private()
        || ip.is_link_local()
        || ip.is_multicast()
        || ip.is_unspecified()
        || ip.is_broadcast()
        || ip.is_documentation()
        || a == 0
        // Shared address space (carrier-grade NAT), 100.64.0.0/10.
        || (a == 100 && (64..128).contains(&b))
        // Benchmarking, 198.18.0.0/15.
        || (a == 198 && (b == 18 || b == 19))
        // Reserved, 240.0.0.0/4.
        || a >= 240)
}

fn allowed_v6(ip: Ipv6Addr) -> bool {
    let first = ip.segments()[0];
    !(ip.is_loopback()
        || ip.is_unspecified()
        || ip.is_multicast()
        // Unique local, fc00::/7.
        || (first & 0xfe00) == 0xfc00
        // Link-local, fe80::/10.
        || (first & 0xffc0) == 0xfe80
        // Documentation, 2001:db8::/32.
        || (first == 0x2001 && ip.segments()[1] == 0x0db8)
        // IPv4-compatible and NAT64 forms carry an IPv4 address: refused
        // rather than decoded.
        || ip.to_ipv4().is_some()
        || (first == 0x0064 && ip.segments()[1] == 0xff9b))
}

/// What is wrong with `url` as a webhook endpoint, before any lookup: the
/// scheme, a missing host, credentials, or an IP literal that is not allowed.
pub fn check_url(url: &Url, allow_insecure: bool) -> Result<(), String> {
    if url.scheme() != "https" && !(allow_insecure && url.scheme() == "http") {
        return Err("must be an https:// URL".into());
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err("must not carry a user name or password".into());
    }
    if url.fragment().is_some() {
        return Err("must not have a #fragment".into());
    }
    match url.host() {
        None => Err("must name a host".into()),
        Some(url::Host::Ipv4(ip)) if !allow_insecure && !allowed(IpAddr::V4(ip)) => Err(format!(
            "must not point at {ip}, which is not a public address"
        )),
        Some(url::Host::Ipv6(ip)) if !allow_insecure && !allowed(IpAddr::V6(ip)) => Err(format!(
            "must not point at {ip}, which is not a public address"
        )),
        Some(_) => Ok(()),
    }
}

/// Resolves `url`'s host now, at registration: every address must be
/// allowed (a name that also resolves to a private address is refused).
pub async fn check_resolves(url: &Url, allow_insecure: bool) -> Result<(), String> {
    let Some(url::Host::Domain(host)) = url.host() else {
        return Ok(());
    };
    if allow_insecure {
        return Ok(());
    }
    let addresses: Vec<SocketAddr> = tokio::net::lookup_host((host, 443))
        .await
        .map_err(|_| format!("host {host} does not resolve"))?
        .collect();
    // Which address is not said: a partner must not map this network's
    // names to its addresses through the answer.
    match addresses.iter().find(|address| !allowed(address.ip())) {
        Some(_) => Err(format!(
            "host {host} resolves to an address that is not a public address"
        )),
        None if addresses.is_empty() => Err(format!("host {host} does not resolve")),
        None => Ok(()),
    }
}

/// The delivery client's resolver: the system's answer, less every address
/// that is not allowed; an error when nothing is left.
#[derive(Debug, Clone, Copy)]
pub struct Guarded;

impl Resolve for Guarded {
    fn resolve(&self, name: Name) -> Resolving {
        Box::pin(async move {
            let host = name.as_str().to_owned();
            let resolved = tokio::net::lookup_host((host.as_str(), 0)).await?;
            let addresses = only_allowed(&host, resolved)?;
            Ok(Box::new(addresses.into_iter()) as Addrs)
        })
    }
}

/// `resolved` without the addresses a webhook may not reach.
fn only_allowed(
    host: &str,
    resolved: impl Iterator<Item = SocketAddr>,
) -> Result<Vec<SocketAddr>, Box<dyn std::error::Error + Send + Sync>> {
    let (allowed, refused): (Vec<SocketAddr>, Vec<SocketAddr>) =
        resolved.partition(|address| allowed(address.ip()));
    if allowed.is_empty() {
        // The partner reads this in its attempts: which addresses is logged
        // here only, not told (see `check_resolves`).
        let refused: Vec<String> = refused.iter().map(|a| a.ip().to_string()).collect();
        tracing::info!(host, refused = %refused.join(", "), "webhook host resolves only to addresses not allowed");
        return Err(format!("{host} resolves only to addresses a webhook may not reach").into());
    }
    Ok(allowed)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    #[test]
    fn only_public_addresses_are_allowed() {
        for refused in [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "169.254.169.254",
            "0.0.0.0",
            "224.0.0.1",
            "255.255.255.255",
            "100.64.0.1",
            "::1",
            "::",
            "fe80::1",
            "fd00::1",
            "ff02::1",
            "::ffff:127.0.0.1",
            "::ffff:10.0.0.1",
            "64:ff9b::a00:1",
        ] {
            assert!(!allowed(ip(refused)), "{refused} must be refused");
        }
        for public in [
            "93.184.216.34",
            "8.8.8.8",
            "2606:4700::1111",
            "::ffff:8.8.8.8",
        ] {
            assert!(allowed(ip(public)), "{public} must be allowed");
        }
    }

    #[test]
    fn a_name_resolving_to_loopback_is_refused_at_the_connection() {
        let resolved = ["127.0.0.1:0".parse().unwrap()].into_iter();
        let error = only_allowed("evil.example", resolved).unwrap_err();
        assert!(error.to_string().contains("may not reach"), "{error}");
        assert!(!error.to_string().contains("127.0.0.1"), "{error}");

        // Of a mixed answer only the public addresses are handed on.
        let resolved = ["10.0.0.1:0", "93.184.216.34:0"]
            .map(|a| a.parse::<SocketAddr>().unwrap())
            .into_iter();
        let kept = only_allowed("mixed.example", resolved).unwrap();
        assert_eq!(kept, ["93.184.216.34:0".parse().unwrap()]);
    }

    #[tokio::test]
    async fn the_resolver_refuses_localhost() {
        let error = Guarded.resolve("localhost".parse().unwrap()).await;
        assert!(error.is_err());
    }

    #[test]
    fn urls_must_be_https_without_credentials_or_private_literals() {
        let check = |url: &str, insecure| check_url(&Url::parse(url).unwrap(), insecure);
        assert!(check("https://erp.example.com/hook", false).is_ok());
        assert!(check("http://erp.example.com/hook", false).is_err());
        assert!(check("http://127.0.0.1:8080/hook", true).is_ok());
        assert!(check("https://127.0.0.1/hook", false).is_err());
        assert!(check("https://[::1]/hook", false).is_err());
        assert!(check("https://user:pw@erp.example.com/", false).is_err());
        assert!(check("ftp://erp.example.com/", true).is_err());
        assert!(check("https://93.184.216.34/hook", false).is_ok());
    }

    #[tokio::test]
    async fn registration_refuses_a_name_that_resolves_to_loopback() {
        let url = Url::parse("https://localhost/hook").unwrap();
        let error = check_resolves(&url, false).await.unwrap_err();
        assert!(error.contains("not a public address"), "{error}");
        assert!(check_resolves(&url, true).await.is_ok());
    }
}
