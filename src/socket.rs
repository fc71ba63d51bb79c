//! Listening sockets with the options std does not expose: an explicit
//! IPV6_V6ONLY and a backlog large enough for bursts of scrapers. Turns each
//! `--listen` entry into its sockets: `[::]:PORT` is one dual-stack socket (or
//! `0.0.0.0:PORT` where the kernel has no IPv6), `localhost:PORT` is 127.0.0.1
//! and, where there is IPv6, ::1; anything else is the one address given. Says in
//! the log which families each socket takes.
//!
//! Platforms differ in three places, kept here: where the socket type takes no
//! SOCK_CLOEXEC (macOS) the flag is set right after; SO_REUSEADDR, which on Unix only
//! lets a restarted server bind past TIME_WAIT, would let another program steal the
//! port on Windows, which gets SO_EXCLUSIVEADDRUSE instead; and Winsock is started
//! before the first socket on Windows (std does it for its own sockets, rustix does
//! not). The Windows calls are in `crate::windows`.

use std::io;
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr, TcpListener};

use rustix::net::{sockopt, AddressFamily, SocketFlags, SocketType};

use crate::config::{Endpoint, Listen};

const BACKLOG: i32 = 1024;

/// Binds and listens. `dual_stack` only matters for IPv6 addresses.
pub fn listen(addr: SocketAddr, dual_stack: bool) -> io::Result<TcpListener> {
    let family = if addr.is_ipv6() { AddressFamily::INET6 } else { AddressFamily::INET };
    #[cfg(windows)]
    crate::windows::start_winsock()?;
    #[cfg(not(any(windows, target_vendor = "apple")))]
    let fd = rustix::net::socket_with(family, SocketType::STREAM, SocketFlags::CLOEXEC, None)?;
    #[cfg(any(windows, target_vendor = "apple"))]
    let fd = rustix::net::socket_with(family, SocketType::STREAM, SocketFlags::empty(), None)?;
    #[cfg(target_vendor = "apple")]
    rustix::io::fcntl_setfd(&fd, rustix::io::FdFlags::CLOEXEC)?;
    #[cfg(not(windows))]
    sockopt::set_socket_reuseaddr(&fd, true)?;
    #[cfg(windows)]
    crate::windows::exclusive_address(&fd)?;
    if addr.is_ipv6() {
        sockopt::set_ipv6_v6only(&fd, !dual_stack)?;
    }
    rustix::net::bind(&fd, &addr)?;
    rustix::net::listen(&fd, BACKLOG)?;
    Ok(TcpListener::from(fd))
}

/// Whether a failure to open an IPv6 socket means the kernel has no IPv6 (or
/// no `::1`), so an entry that also takes IPv4 goes on without it.
pub fn no_ipv6(e: &io::Error) -> bool {
    matches!(e.raw_os_error(), Some(code) if code == rustix::io::Errno::AFNOSUPPORT.raw_os_error()
        || code == rustix::io::Errno::ADDRNOTAVAIL.raw_os_error())
}

/// Opens every configured listener. On failure, the error names the address.
pub fn bind_all(listen: &Listen) -> Result<Vec<TcpListener>, String> {
    let mut out = Vec::new();
    for &endpoint in &listen.0 {
        bind(endpoint, &mut out)?;
    }
    Ok(out)
}

fn bind(endpoint: Endpoint, out: &mut Vec<TcpListener>) -> Result<(), String> {
    let fail = |addr: &SocketAddr, e: io::Error| format!("cannot listen on {addr}: {e}");
    match endpoint {
        Endpoint::Any(port) => {
            let v6 = SocketAddr::from((Ipv6Addr::UNSPECIFIED, port));
            match listen(v6, true) {
                Ok(l) => out.push(l),
                Err(e) if no_ipv6(&e) => {
                    let v4 = SocketAddr::from((Ipv4Addr::UNSPECIFIED, port));
                    crate::info!("no IPv6 on this machine ({e}); {endpoint} takes IPv4 only");
                    out.push(listen(v4, false).map_err(|e| fail(&v4, e))?);
                }
                Err(e) => return Err(fail(&v6, e)),
            }
        }
        Endpoint::Localhost(port) => {
            let v4 = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
            let l = listen(v4, false).map_err(|e| fail(&v4, e))?;
            // With port 0, ::1 takes the port the kernel chose for 127.0.0.1.
            let port = l.local_addr().map_or(port, |a| a.port());
            out.push(l);
            let v6 = SocketAddr::from((Ipv6Addr::LOCALHOST, port));
            match listen(v6, false) {
                Ok(l) => out.push(l),
                Err(e) if no_ipv6(&e) => {
                    crate::info!("no IPv6 loopback on this machine ({e}); {endpoint} is 127.0.0.1 only")
                }
                Err(e) => return Err(fail(&v6, e)),
            }
        }
        Endpoint::Addr(addr) => out.push(listen(addr, false).map_err(|e| fail(&addr, e))?),
    }
    Ok(())
}

/// The address of a listener for the log, with the families a wildcard takes:
/// `[::]:8001 (IPv4 and IPv6)`, `0.0.0.0:8001 (IPv4 only)`.
pub fn describe(l: &TcpListener) -> String {
    match l.local_addr() {
        Ok(addr @ SocketAddr::V6(a)) if a.ip().is_unspecified() => match sockopt::ipv6_v6only(l) {
            Ok(false) => format!("{addr} (IPv4 and IPv6)"),
            Ok(true) => format!("{addr} (IPv6 only)"),
            Err(_) => addr.to_string(),
        },
        Ok(addr @ SocketAddr::V4(a)) if a.ip().is_unspecified() => format!("{addr} (IPv4 only)"),
        Ok(addr) => addr.to_string(),
        Err(e) => format!("an address the kernel cannot name ({e})"),
    }
}
