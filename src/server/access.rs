//! Who may ask: the `Host` and `Origin` checks that stop DNS rebinding and cross-site requests,
//! and the access token (on every request off loopback, and in a header on every POST). These
//! run before a file is read or the page is built; see "Access" in `API.md`.

use std::net::IpAddr;

use super::http::Request;
use super::reply::Reply;
use super::target::Query;
use crate::error::Error;

/// The header that carries the access token (and proves a POST is not a cross-site form).
pub(crate) const TOKEN_HEADER: &str = "X-Expman-Token";
/// [`TOKEN_HEADER`] as the HTTP layer stores header names.
const TOKEN_HEADER_LOWER: &str = "x-expman-token";

/// What a request is checked against.
pub(crate) struct Access {
    /// The random token of this server.
    pub(crate) token: String,
    /// Whether every request (not only POSTs) must carry the token: true off loopback.
    pub(crate) token_required: bool,
    /// The address the server is bound to (a request may name it as its Host).
    pub(crate) bound: IpAddr,
    /// Further names a request may give as its Host, lowercase (`--allow-host`).
    pub(crate) allowed_hosts: Vec<String>,
}

impl Access {
    /// Refuses a request whose `Host` is not a name of this server, or whose `Origin` (when sent)
    /// is another site: DNS rebinding and cross-site requests.
    ///
    /// An IP literal cannot be rebound, so any that reaches us is accepted when bound to all
    /// addresses (0.0.0.0 or ::), and loopback literals always; a name must be `localhost` or one
    /// the user allowed. The port is not compared: a rebinding attack needs a name it controls,
    /// and an SSH tunnel or proxy may use another port.
    pub(crate) fn check_origin(&self, request: &Request) -> Result<(), Reply> {
        let Some(host) = request.header("host") else {
            return Err(Reply::error(
                400,
                "the request needs exactly one Host header naming this server (127.0.0.1:<port>)",
            ));
        };
        let name = authority_host(host).to_ascii_lowercase();
        let known = match name
            .trim_start_matches('[')
            .trim_end_matches(']')
            .parse::<IpAddr>()
        {
            Ok(ip) => ip.is_loopback() || ip == self.bound || self.bound.is_unspecified(),
            Err(_) => name == "localhost" || self.allowed_hosts.contains(&name),
        };
        if !known {
            return Err(Reply::error(
                403,
                format!(
                    "this server does not answer to the name {:.100?} (it answers to its address, \
                     localhost, 127.0.0.1 and [::1]); if you reach it under that name on purpose, \
                     start it with --allow-host {:.100}",
                    name, name
                ),
            ));
        }
        // Fetch metadata (every current browser sends it): a request another site's page
        // makes (an <img>, a script, a fetch: no Origin for the first two) is refused; opening
        // the UI from a link elsewhere (a top-level navigation) is not. Frames are refused by
        // the answer's X-Frame-Options.
        let foreign = matches!(
            request.header("sec-fetch-site"),
            Some("cross-site" | "same-site")
        );
        let navigation = request.header("sec-fetch-mode") == Some("navigate")
            && request.header("sec-fetch-dest") == Some("document");
        if foreign && !navigation {
            return Err(Reply::error(
                403,
                "requests made by another site's page are refused: only pages served by this \
                 server may call it (open the UI at the address the server printed)",
            ));
        }
        if request.header_count("origin") > 0 {
            let origin = request.header("origin").unwrap_or("null");
            let same = origin
                .strip_prefix("http://")
                .or_else(|| origin.strip_prefix("https://"))
                .is_some_and(|authority| same_authority(origin, authority, host));
            if !same {
                return Err(Reply::error(
                    403,
                    format!(
                        "requests from the page {:.100?} are refused: only pages served by this \
                         server (at {:.100}) may call it; to use another name, start the server \
                         with --allow-host and open the page under that name",
                        origin, host
                    ),
                ));
            }
        }
        Ok(())
    }

    /// Refuses a request without the token where one is needed: off loopback every request
    /// (in the header, or `?token=` in the query), and every POST (in the header only: a
    /// cross-site form can put it in a URL but cannot set a header).
    pub(crate) fn check_token(&self, request: &Request, query: &Query) -> Result<(), Reply> {
        let header_token = request.header(TOKEN_HEADER_LOWER);
        let token = Some(self.token.as_str());
        let in_query = query.all("token").any(|t| t == self.token);
        if self.token_required && header_token != token && !in_query {
            return Err(Reply::error(
                403,
                "this server needs its access token: open the URL it printed (with ?token=...)",
            ));
        }
        if request.method == "POST" && header_token != token {
            return Err(Reply::error(
                403,
                format!("state-changing requests need the {TOKEN_HEADER} header"),
            ));
        }
        Ok(())
    }
}

/// A name given to `--allow-host`, checked and lowercased.
pub(crate) fn host_name(name: &str) -> crate::Result<String> {
    let plain = !name.is_empty()
        && name.len() <= 253
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_'));
    if !plain {
        return Err(Error::config(
            "--allow-host",
            format!(
                "{name:.80?} is not a host name: give a name such as gpu-node-3 or \
                 ui.example.org, without a scheme, a port or a path"
            ),
        ));
    }
    Ok(name.to_ascii_lowercase())
}

/// The host part of `host[:port]` or `[v6][:port]`.
fn authority_host(authority: &str) -> &str {
    if authority.starts_with('[') {
        // `[v6]` or `[v6]:port`; anything else after the `]` leaves the whole as the name,
        // which then matches nothing.
        return match authority.find(']') {
            Some(i)
                if authority[i + 1..]
                    .strip_prefix(':')
                    .map_or(i + 1 == authority.len(), |port| {
                        port.bytes().all(|b| b.is_ascii_digit())
                    }) =>
            {
                &authority[..=i]
            }
            _ => authority,
        };
    }
    match authority.rsplit_once(':') {
        Some((host, port)) if port.bytes().all(|b| b.is_ascii_digit()) => host,
        _ => authority,
    }
}

/// Whether the Origin's authority (after its scheme) is the Host, the scheme's default port
/// being implied where either leaves it out.
fn same_authority(origin: &str, authority: &str, host: &str) -> bool {
    let default = if origin.starts_with("https://") {
        "443"
    } else {
        "80"
    };
    let split = |a: &str| -> (String, String) {
        let name = authority_host(a);
        let port = a[name.len()..].strip_prefix(':').unwrap_or(default);
        (name.to_ascii_lowercase(), port.to_string())
    };
    !authority.contains('/') && split(authority) == split(host)
}
