//! The request target decoded: the path (percent-escapes resolved, so the router and the path
//! confinement see what the file system would) and the query's key/value pairs.

use super::reply::Reply;

/// A request target split into its decoded path and query.
pub(crate) struct Target {
    /// The decoded path, e.g. `/api/experiments/exp_2026-01-01__00-00-00`.
    pub(crate) path: String,
    /// The decoded query.
    pub(crate) query: Query,
}

impl Target {
    /// Decodes `target` (`/path?query`); a malformed escape (or one that is not UTF-8) in the
    /// path or the query is a 400: leaving such a parameter out answered another question than
    /// the one asked (`search=%ZZ` gave the log's tail).
    pub(crate) fn parse(target: &str) -> Result<Target, Reply> {
        let (path, query) = target.split_once('?').unwrap_or((target, ""));
        let Some(path) = percent_decode(path) else {
            return Err(Reply::error(400, "malformed percent-encoding in the path"));
        };
        Ok(Target {
            path,
            query: Query::parse(query)?,
        })
    }

    /// The path's segments between slashes (`[""]` for `/`).
    pub(crate) fn segments(&self) -> Vec<&str> {
        self.path.trim_matches('/').split('/').collect()
    }
}

/// The query's pairs, in order (`+` read as a space in values).
pub(crate) struct Query(Vec<(String, String)>);

impl Query {
    fn parse(query: &str) -> Result<Query, Reply> {
        query
            .split('&')
            .filter(|p| !p.is_empty())
            .map(|pair| {
                let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
                match (percent_decode(k), percent_decode(&v.replace('+', " "))) {
                    (Some(k), Some(v)) => Ok((k, v)),
                    _ => Err(Reply::error(
                        400,
                        format!(
                            "the query parameter {pair:.80?} is not percent-encoded UTF-8 \
                             (encode a `%` as %25)"
                        ),
                    )),
                }
            })
            .collect::<Result<_, _>>()
            .map(Query)
    }

    /// The first value of `key`.
    pub(crate) fn get(&self, key: &str) -> Option<&str> {
        self.all(key).next()
    }

    /// Every value of `key`, in order.
    pub(crate) fn all<'a>(&'a self, key: &str) -> impl Iterator<Item = &'a str> {
        self.0
            .iter()
            .filter(move |(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    /// The value of `key` parsed as a `T`: `None` when absent, a 400 saying `what` it must be
    /// when it does not parse.
    pub(crate) fn number<T: std::str::FromStr>(
        &self,
        key: &str,
        what: &str,
    ) -> Result<Option<T>, Reply> {
        match self.get(key).map(str::parse::<T>) {
            None => Ok(None),
            Some(Ok(v)) => Ok(Some(v)),
            Some(Err(_)) => Err(Reply::error(400, format!("{key} must be {what}"))),
        }
    }
}

/// Decodes %XX escapes; `None` for malformed escapes or invalid UTF-8.
fn percent_decode(text: &str) -> Option<String> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = std::str::from_utf8(bytes.get(i + 1..i + 3)?).ok()?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}
