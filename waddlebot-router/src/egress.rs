//! Where the router's own outgoing requests may go: remote modules and rule webhooks are URLs
//! that community admins and moderators choose, so by default they may only reach public
//! addresses. Otherwise anyone allowed to register one could make the bot call services on its
//! own network (the database's admin port, a cloud metadata endpoint): server-side request
//! forgery.
//!
//! Checked twice: when the URL is saved ([`check_url`]: literal addresses and `localhost`) and
//! when it is called (the same check, plus a resolver that drops private addresses from DNS
//! answers, so a public name pointing at a private address is refused too). An operator who
//! runs modules beside the bot allows private targets with
//! [`RouterBuilder::allow_private_targets`](crate::RouterBuilder::allow_private_targets).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use reqwest::dns::{Addrs, Name, Resolve, Resolving};

/// Whether an address is on the public internet (not loopback, private, link-local, shared,
/// unspecified, multicast, broadcast, documentation or reserved).
pub fn is_public(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => is_public_v4(v4),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => is_public_v4(v4),
            None => is_public_v6(v6),
        },
    }
}

fn is_public_v4(ip: Ipv4Addr) -> bool {
    let [a, b, _, _] = ip.octets();
    !(ip.is_private()
        || ip.is_loopback()
        || ip.is_link_local()
        || ip.is_unspecified()
        || ip.is_broadcast()
        || ip.is_multicast()
        || ip.is_documentation()
        || a == 0
        || a >= 240
        // Shared address space (carrier-grade NAT), 100.64.0.0/10.
        || (a == 100 && (64..128).contains(&b))
        // Benchmarking, 198.18.0.0/15.
        || (a == 198 && (b == 18 || b == 19)))
}

fn is_public_v6(ip: Ipv6Addr) -> bool {
    let first = ip.segments()[0];
    !(ip.is_loopback()
        || ip.is_unspecified()
        || ip.is_multicast()
        // Unique local fc00::/7, link-local fe80::/10, documentation 2001:db8::/32.
        || (first & 0xfe00) == 0xfc00
        || (first & 0xffc0) == 0xfe80
        || (first == 0x2001 && ip.segments()[1] == 0x0db8))
}

/// Refuses a URL that names a non-public address or `localhost` (unless private targets are
/// allowed); names are checked again when they are resolved.
pub fn check_url(url: &str, allow_private: bool) -> Result<(), String> {
    if allow_private {
        return Ok(());
    }
    let parsed = reqwest::Url::parse(url).map_err(|err| format!("bad URL: {err}"))?;
    let refused = || {
        Err(format!(
            "{url} points at a private or local address; only public addresses may be called"
        ))
    };
    match parsed.host() {
        Some(url::Host::Ipv4(ip)) if !is_public_v4(ip) => refused(),
        Some(url::Host::Ipv6(ip)) if !is_public(IpAddr::V6(ip)) => refused(),
        Some(url::Host::Domain(name)) => {
            let name = name.trim_end_matches('.').to_ascii_lowercase();
            if name == "localhost" || name.ends_with(".localhost") {
                refused()
            } else {
                Ok(())
            }
        }
        _ => Ok(()),
    }
}

/// Resolves names with the system resolver and keeps only public addresses.
#[derive(Debug, Clone, Copy)]
struct PublicOnly;

impl Resolve for PublicOnly {
    fn resolve(&self, name: Name) -> Resolving {
        let host = name.as_str().to_owned();
        Box::pin(async move {
            let found: Vec<SocketAddr> =
                tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            let public: Vec<SocketAddr> = found.into_iter().filter(|a| is_public(a.ip())).collect();
            if public.is_empty() {
                return Err(format!("{host} resolves only to private or local addresses").into());
            }
            let addrs: Addrs = Box::new(public.into_iter());
            Ok(addrs)
        })
    }
}

/// The client for remote modules and rule webhooks.
pub(crate) fn client(allow_private: bool) -> reqwest::Client {
    let builder =
        reqwest::Client::builder().user_agent(concat!("WaddleBot/", env!("CARGO_PKG_VERSION")));
    let builder = if allow_private {
        builder
    } else {
        builder.dns_resolver(PublicOnly)
    };
    builder.build().unwrap_or_else(|err| {
        tracing::error!(error = %err, "cannot build the outgoing HTTP client; using the default");
        reqwest::Client::new()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn private_and_local_targets_are_refused_unless_allowed() {
        for url in [
            "http://127.0.0.1:5432/",
            "http://10.0.0.8/hook",
            "http://192.168.1.1/",
            "http://172.16.0.1/",
            "http://169.254.169.254/latest/meta-data/",
            "http://100.64.0.1/",
            "http://[::1]/",
            "http://[fd00::1]/",
            "http://[::ffff:127.0.0.1]/",
            "http://0.0.0.0/",
            "http://localhost:8080/",
            "http://api.localhost/",
        ] {
            assert!(check_url(url, false).is_err(), "{url}");
            assert!(check_url(url, true).is_ok(), "{url} when allowed");
        }
        for url in [
            "https://weather.example/hook",
            "http://93.184.216.34/",
            "http://[2606:4700::1111]/",
        ] {
            assert!(check_url(url, false).is_ok(), "{url}");
        }
    }

    #[tokio::test]
    async fn names_that_resolve_to_private_addresses_are_refused() {
        let resolved = PublicOnly.resolve("localhost".parse().expect("name")).await;
        assert!(resolved.is_err(), "localhost resolves to loopback only");
    }
}
