//! `expman_server`: the status server and web UI on background threads of the calling process,
//! so a C, C++ or Python trainer can expose its own live page. Answers EXPMAN_ERR_UNSUPPORTED
//! in a build without the `server` feature (the symbols exist in every build).

use std::ffi::{CString, c_char};

use super::{FfiResult, c_opt_str, c_out, c_path, expman_status, ffi_status, ffi_value};

/// A running server. Start with expman_server_start(), stop and release with
/// expman_server_stop(). Thread-safe.
pub struct expman_server {
    /// Held only to keep serving: dropping it stops the server.
    #[cfg(feature = "server")]
    _server: crate::server::Server,
    url: CString,
}

/// Serves the web UI for the experiments directory `dir` on background threads and stores the
/// handle in `*out`. `host` is NULL for 127.0.0.1; any other address requires the access token
/// that the URL carries. Requests must name the server in their Host header by its address,
/// `localhost`, `127.0.0.1` or `[::1]` (any IP address when `host` is 0.0.0.0 or ::); other
/// names are refused (DNS-rebinding protection). No request can abort or stall the calling
/// process. `port` is tried first and the next free one taken if it is busy; 0
/// picks any free port. The caller owns `*out` and releases it with expman_server_stop();
/// `*out` is written only on success.
///
/// # Safety
/// `dir` is NULL or a NUL-terminated path; `host` is NULL or a NUL-terminated string; `out` is
/// NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn expman_server_start(
    dir: *const c_char,
    host: *const c_char,
    port: u16,
    out: *mut *mut expman_server,
) -> expman_status {
    ffi_status! {
        let out = c_out(out, "out")?;
        // SAFETY: the caller's promise above.
        let dir = unsafe { c_path(dir, "dir") }?;
        // SAFETY: the caller's promise above.
        let host = unsafe { c_opt_str(host, "host") }?;
        let server = start(dir, host, port)?;
        // SAFETY: checked by c_out; writable by the caller's promise.
        unsafe { out.write(Box::into_raw(Box::new(server))) };
        Ok(())
    }
}

#[cfg(feature = "server")]
fn start(dir: &std::path::Path, host: Option<&str>, port: u16) -> FfiResult<expman_server> {
    let mut options = crate::server::ServerOptions {
        port,
        ..Default::default()
    };
    if let Some(host) = host {
        options.host = host.parse().map_err(|_| {
            crate::Error::config(
                "host",
                format!(
                    "{} is not an IP address such as 127.0.0.1",
                    crate::error::quote(host)
                ),
            )
        })?;
    }
    let server = crate::server::Server::start(dir, &options)?;
    Ok(expman_server {
        url: super::to_c_string(server.url().as_bytes()),
        _server: server,
    })
}

#[cfg(not(feature = "server"))]
fn start(_dir: &std::path::Path, _host: Option<&str>, _port: u16) -> FfiResult<expman_server> {
    Err(crate::Error::unsupported("server").into())
}

/// The server's URL (with its access token where one is required), borrowed from the server:
/// valid until expman_server_stop(). NULL if `server` is NULL.
///
/// # Safety
/// `server` is NULL or a live server.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn expman_server_url(server: *const expman_server) -> *const c_char {
    ffi_value! { std::ptr::null(),
        // SAFETY: the caller's promise above.
        let server = unsafe { server.as_ref() }.ok_or(super::Failure::Null("server".into()))?;
        Ok(server.url.as_ptr())
    }
}

/// Stops the server, waits for its threads and releases it. NULL is a no-op.
///
/// # Safety
/// `server` is NULL or a live server, not used again afterwards.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn expman_server_stop(server: *mut expman_server) {
    if !server.is_null() {
        // SAFETY: a live server from expman_server_start, given back exactly once.
        let server = unsafe { Box::from_raw(server) };
        // Dropping stops it; a panic in a worker was already contained there.
        let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(move || drop(server)));
    }
}
