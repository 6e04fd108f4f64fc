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
//! [`RouterBuilder::allow_private_targets`](crate::RouterBuilder::allow_private_targets), or
//! only some networks with [`RouterBuilder::allow_targets`](crate::RouterBuilder::allow_targets).
//! Redirects are followed only to targets that pass the same check.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;

use ipnet::IpNet;

use reqwest::dns::{Addrs, Name, Resolve, Resolving};

/// Whether an address is on the public internet (not loopback, private, link-local, shared,
/// unspecified, multicast, broadcast, documentation or reserved). IPv6 forms that carry an
/// IPv4 address (IPv4-mapped `::ffff:a.b.c.d`, IPv4-compatible `::a.b.c.d`, NAT64
/// `64:ff9b::/96` and `64:ff9b:1::/48`, 6to4 `2002::/16`) are judged by that address, since
/// they reach it.
pub fn is_public(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => is_public_v4(v4),
        IpAddr::V6(v6) => match embedded_v4(v6) {
            Some(v4) => is_public_v4(v4),
            None => is_public_v6(v6),
        },
    }
}

/// The IPv4 address an IPv6 address stands for, in the forms that route to one.
fn embedded_v4(ip: Ipv6Addr) -> Option<Ipv4Addr> {
    let s = ip.segments();
    let low = |hi: u16, lo: u16| Ipv4Addr::from((u32::from(hi) << 16) | u32::from(lo));
    if let Some(v4) = ip.to_ipv4_mapped() {
        return Some(v4);
    }
    // IPv4-compatible (deprecated, still routed by some stacks): ::a.b.c.d, but not :: or ::1.
    if s[..6] == [0; 6] && !(s[6] == 0 && s[7] <= 1) {
        return Some(low(s[6], s[7]));
    }
    // NAT64: the well-known prefix 64:ff9b::/96 and the local-use 64:ff9b:1::/48.
    if s[0] == 0x64 && s[1] == 0xff9b && (s[2..6] == [0; 4] || s[2] == 1) {
        return Some(low(s[6], s[7]));
    }
    // 6to4: 2002:a.b.c.d::/48.
    if s[0] == 0x2002 {
        return Some(low(s[1], s[2]));
    }
    None
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
        || (first == 0x2001 && ip.segments()[1] == 0x0db8)
        // Teredo 2001::/32 tunnels to an address it hides.
        || (first == 0x2001 && ip.segments()[1] == 0))
}

/// Where outgoing calls may go: public addresses, plus the networks an operator allows
/// (`ROUTER_ALLOWED_TARGETS`: modules on `10.0.5.0/24`), or anywhere.
#[derive(Debug, Clone, Default)]
pub struct Egress {
    allow_private: bool,
    allowed: Arc<[IpNet]>,
}

impl Egress {
    /// Public addresses only (the default).
    pub fn public_only() -> Self {
        Self::default()
    }

    /// The same, allowing any address (private and local ones included) or not.
    pub fn private_allowed(mut self, allow: bool) -> Self {
        self.allow_private = allow;
        self
    }

    /// The same, also allowing these networks.
    pub fn allowing(mut self, networks: impl IntoIterator<Item = IpNet>) -> Self {
        self.allowed = self.allowed.iter().copied().chain(networks).collect();
        self
    }

    /// Whether a call may go to `ip`.
    pub fn permits(&self, ip: IpAddr) -> bool {
        self.allow_private || is_public(ip) || self.allowed.iter().any(|net| net.contains(&ip))
    }

    /// Refuses a URL that names an address this policy does not permit, or `localhost`;
    /// names are checked again when they are resolved, and every redirect hop again.
    pub fn check_url(&self, url: &str) -> Result<(), String> {
        if self.allow_private {
            return Ok(());
        }
        let parsed = reqwest::Url::parse(url).map_err(|err| format!("bad URL: {err}"))?;
        self.check(&parsed)
    }

    fn check(&self, url: &reqwest::Url) -> Result<(), String> {
        if self.allow_private {
            return Ok(());
        }
        let refused = || {
            Err(format!(
                "{url} points at a private or local address; only public addresses may be called"
            ))
        };
        match url.host() {
            Some(url::Host::Ipv4(ip)) if !self.permits(IpAddr::V4(ip)) => refused(),
            Some(url::Host::Ipv6(ip)) if !self.permits(IpAddr::V6(ip)) => refused(),
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

    /// The client for remote modules and rule webhooks: names resolve to permitted addresses
    /// only, and each redirect (at most [`MAX_REDIRECTS`]) is followed only when its target
    /// passes the same check as the first URL. An address literal is never resolved, so the
    /// redirect check is what stops `307 Location: http://127.0.0.1/`.
    pub(crate) fn client(&self) -> reqwest::Client {
        let builder =
            reqwest::Client::builder().user_agent(concat!("WaddleBot/", env!("CARGO_PKG_VERSION")));
        let builder = if self.allow_private {
            builder.redirect(reqwest::redirect::Policy::limited(MAX_REDIRECTS))
        } else {
            let hops = self.clone();
            builder.dns_resolver(Permitted(self.clone())).redirect(
                reqwest::redirect::Policy::custom(move |attempt| {
                    if attempt.previous().len() > MAX_REDIRECTS {
                        return attempt.error("too many redirects");
                    }
                    match hops.check(attempt.url()) {
                        Ok(()) => attempt.follow(),
                        Err(why) => attempt.error(format!("redirect refused: {why}")),
                    }
                }),
            )
        };
        builder.build().unwrap_or_else(|err| {
            tracing::error!(error = %err, "cannot build the outgoing HTTP client; calling nowhere");
            // Not reqwest's default client: that one follows redirects anywhere.
            reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .dns_resolver(Permitted(Self::public_only()))
                .build()
                .unwrap_or_default()
        })
    }
}

/// The most redirects followed for one outgoing call.
pub const MAX_REDIRECTS: usize = 5;

/// Refuses a URL that names a non-public address or `localhost` (unless private targets are
/// allowed); names are checked again when they are resolved.
pub fn check_url(url: &str, allow_private: bool) -> Result<(), String> {
    Egress::public_only()
        .private_allowed(allow_private)
        .check_url(url)
}

/// Resolves names with the system resolver and keeps only permitted addresses.
#[derive(Debug, Clone)]
struct Permitted(Egress);

impl Resolve for Permitted {
    fn resolve(&self, name: Name) -> Resolving {
        let host = name.as_str().to_owned();
        let egress = self.0.clone();
        Box::pin(async move {
            let found: Vec<SocketAddr> =
                tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            let permitted: Vec<SocketAddr> = found
                .into_iter()
                .filter(|a| egress.permits(a.ip()))
                .collect();
            if permitted.is_empty() {
                return Err(format!("{host} resolves only to private or local addresses").into());
            }
            let addrs: Addrs = Box::new(permitted.into_iter());
            Ok(addrs)
        })
    }
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
        let resolved = Permitted(Egress::public_only())
            .resolve("localhost".parse().expect("name"))
            .await;
        assert!(resolved.is_err(), "localhost resolves to loopback only");
    }

    #[test]
    fn ipv6_forms_that_reach_a_private_ipv4_address_are_refused() {
        for url in [
            "http://[::127.0.0.1]/",
            "http://[::ffff:127.0.0.1]/",
            "http://[::ffff:10.0.0.1]/",
            "http://[64:ff9b::7f00:1]/",
            "http://[64:ff9b::a9fe:a9fe]/",
            "http://[64:ff9b:1::a00:1]/",
            "http://[2002:7f00:1::]/",
            "http://[2001:0:4136:e378:8000:63bf:3fff:fdd2]/",
        ] {
            assert!(check_url(url, false).is_err(), "{url}");
        }
        for url in [
            "http://[64:ff9b::5db8:d822]/",
            "http://[2002:5db8:d822::1]/",
        ] {
            assert!(
                check_url(url, false).is_ok(),
                "{url} reaches a public address"
            );
        }
    }

    #[test]
    fn allowed_networks_are_permitted_and_nothing_else_private() {
        let egress = Egress::public_only().allowing(["127.0.0.2/32".parse().expect("net")]);
        assert!(egress.check_url("http://127.0.0.2:8080/").is_ok());
        assert!(egress.check_url("http://127.0.0.1:8080/").is_err());
        assert!(egress.check_url("http://localhost/").is_err());
    }
}
