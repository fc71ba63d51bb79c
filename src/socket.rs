//! Listening sockets with the options std does not expose: an explicit
//! IPV6_V6ONLY (dual-stack for the default `[::]`, IPv6-only for an explicit IPv6
//! address, as nginx does, so `--listen 0.0.0.0:8001 --listen [::]:8001` works)
//! and a backlog large enough for bursts of scrapers.
//!
//! Platforms differ in three places, kept here: where the socket type takes no
//! SOCK_CLOEXEC (macOS) the flag is set right after; SO_REUSEADDR, which on Unix only
//! lets a restarted server bind past TIME_WAIT, would let another program steal the
//! port on Windows, which gets SO_EXCLUSIVEADDRUSE instead; and Winsock is started
//! before the first socket on Windows (std does it for its own sockets, rustix does
//! not). The Windows calls are in `crate::windows`.

use std::io;
use std::net::{SocketAddr, TcpListener};

use rustix::net::{sockopt, AddressFamily, SocketFlags, SocketType};

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

/// Whether a failure to open an IPv6 socket means the kernel has no IPv6, so the
/// default listener should fall back to IPv4.
pub fn no_ipv6(e: &io::Error) -> bool {
    matches!(e.raw_os_error(), Some(code) if code == rustix::io::Errno::AFNOSUPPORT.raw_os_error()
        || code == rustix::io::Errno::ADDRNOTAVAIL.raw_os_error())
}

/// Opens every configured listener. On failure, the error names the address.
pub fn bind_all(listen: &crate::config::Listen) -> Result<Vec<TcpListener>, String> {
    use crate::config::{Listen, DEFAULT_PORT};
    use std::net::{Ipv4Addr, Ipv6Addr};
    let fail = |addr: &SocketAddr, e: io::Error| format!("cannot listen on {addr}: {e}");
    match listen {
        Listen::Default => {
            let v6 = SocketAddr::from((Ipv6Addr::UNSPECIFIED, DEFAULT_PORT));
            match self::listen(v6, true) {
                Ok(l) => Ok(vec![l]),
                Err(e) if no_ipv6(&e) => {
                    let v4 = SocketAddr::from((Ipv4Addr::UNSPECIFIED, DEFAULT_PORT));
                    crate::info!("no IPv6 on this machine ({e}); listening on IPv4 only");
                    self::listen(v4, false).map(|l| vec![l]).map_err(|e| fail(&v4, e))
                }
                Err(e) => Err(fail(&v6, e)),
            }
        }
        Listen::Addrs(addrs) => addrs.iter().map(|a| self::listen(*a, false).map_err(|e| fail(a, e))).collect(),
    }
}
