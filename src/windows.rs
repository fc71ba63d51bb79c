//! What the server needs from Windows beyond std and rustix (the sampler's Windows
//! readers are in `sample::windows`):
//! - Winsock started before rustix's first socket (std starts it for its own
//!   sockets only);
//! - exclusive use of a listening address (`SO_EXCLUSIVEADDRUSE`): on Windows any
//!   program could otherwise bind the same port with `SO_REUSEADDR` and take over
//!   its connections;
//! - the console's stop requests besides Ctrl-C (which async-signal delivers):
//!   Ctrl-Break, the console window being closed, the user logging off, the system
//!   shutting down. Windows ends the process once the handler returns (at the
//!   latest 5 s after a close), so the handler waits until `stopped` is called,
//!   at most `CLOSE_WAIT`, and the server's own grace period fits in that.

use std::io::{self, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::os::windows::io::AsRawSocket;
use std::sync::{Condvar, Mutex, OnceLock, PoisonError};
use std::time::{Duration, Instant};

use windows_sys::Win32::Networking::WinSock::{setsockopt, SOCKET, SOL_SOCKET, SO_EXCLUSIVEADDRUSE};
use windows_sys::Win32::System::Console::{
    SetConsoleCtrlHandler, CTRL_BREAK_EVENT, CTRL_CLOSE_EVENT, CTRL_LOGOFF_EVENT, CTRL_SHUTDOWN_EVENT,
};

/// Two connected sockets, where Unix has a socket pair: a loopback connection.
pub trait Pair: Sized {
    fn pair() -> io::Result<(Self, Self)>;
}

impl Pair for TcpStream {
    fn pair() -> io::Result<(TcpStream, TcpStream)> {
        let listener = TcpListener::bind("127.0.0.1:0")?;
        let one = TcpStream::connect(listener.local_addr()?)?;
        let (other, from) = listener.accept()?;
        // Anyone on this machine could connect first: only our own end is taken.
        if from != one.local_addr()? {
            return Err(io::Error::other("a stranger connected to the loopback pair"));
        }
        Ok((one, other))
    }
}

/// How long a close, logoff or shutdown handler keeps the process alive for the
/// server to stop (Windows allows 5 s for a close, less for a shutdown).
pub const CLOSE_WAIT: Duration = Duration::from_secs(2);

pub fn start_winsock() -> io::Result<()> {
    rustix::net::wsa_startup().map(drop).map_err(io::Error::from)
}

/// Sets SO_EXCLUSIVEADDRUSE on a socket that is not bound yet.
pub fn exclusive_address(socket: &impl AsRawSocket) -> io::Result<()> {
    let on: i32 = 1;
    // SAFETY: a valid socket and a 4-byte option value.
    let r = unsafe {
        setsockopt(socket.as_raw_socket() as SOCKET, SOL_SOCKET, SO_EXCLUSIVEADDRUSE, (&on as *const i32).cast(), 4)
    };
    if r == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// The name a console event is logged with; `None` for events that do not stop
/// fluxstat (Ctrl-C goes through async-signal).
pub fn event_name(event: u32) -> Option<&'static str> {
    match event {
        CTRL_BREAK_EVENT => Some("Ctrl-Break"),
        CTRL_CLOSE_EVENT => Some("console close"),
        CTRL_LOGOFF_EVENT => Some("logoff"),
        CTRL_SHUTDOWN_EVENT => Some("system shutdown"),
        _ => None,
    }
}

/// The handler's end of a loopback connection, and whether the server stopped.
struct Shared {
    writer: Mutex<TcpStream>,
    stopped: Mutex<bool>,
    done: Condvar,
}

static SHARED: OnceLock<Shared> = OnceLock::new();

/// The console's stop requests as something to await.
pub struct ConsoleEvents {
    reader: smol::Async<TcpStream>,
}

/// Installs the console handler (once per process).
pub fn console_events() -> io::Result<ConsoleEvents> {
    let (writer, reader) = TcpStream::pair()?;
    let shared = Shared { writer: Mutex::new(writer), stopped: Mutex::new(false), done: Condvar::new() };
    SHARED.set(shared).map_err(|_| io::Error::other("the console handler is already installed"))?;
    // SAFETY: `handler` is a valid handler routine for the life of the process.
    if unsafe { SetConsoleCtrlHandler(Some(handler), 1) } == 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(ConsoleEvents { reader: smol::Async::new(reader)? })
}

impl ConsoleEvents {
    /// The name of the next stop request.
    pub async fn next(&self) -> &'static str {
        let mut byte = [0u8; 1];
        loop {
            match self.reader.read_with(|mut s| s.read(&mut byte)).await {
                Ok(1) => {
                    if let Some(name) = event_name(u32::from(byte[0])) {
                        return name;
                    }
                }
                // The writer lives in a static; an end or error here means the
                // handler can no longer reach us, so stop rather than hang.
                _ => return "console handler failure",
            }
        }
    }
}

/// The next request to stop: Ctrl-C (through async-signal) or a console event.
pub async fn stop_requested(signals: &mut async_signal::Signals, console: &ConsoleEvents) -> &'static str {
    use smol::stream::StreamExt;
    let ctrl_c = async {
        let _ = signals.next().await;
        "Ctrl-C"
    };
    smol::future::or(ctrl_c, console.next()).await
}

/// Tells a waiting close/logoff/shutdown handler that the server has stopped.
pub fn stopped() {
    if let Some(shared) = SHARED.get() {
        *shared.stopped.lock().unwrap_or_else(PoisonError::into_inner) = true;
        shared.done.notify_all();
    }
}

/// Runs on a thread Windows creates for the event.
unsafe extern "system" fn handler(event: u32) -> windows_sys::core::BOOL {
    let (Some(_), Some(shared)) = (event_name(event), SHARED.get()) else { return 0 };
    let sent = shared.writer.lock().unwrap_or_else(PoisonError::into_inner).write_all(&[event as u8]).is_ok();
    if sent && event != CTRL_BREAK_EVENT {
        // The process ends when this returns: wait for the server to stop.
        let deadline = Instant::now() + CLOSE_WAIT;
        let mut stopped = shared.stopped.lock().unwrap_or_else(PoisonError::into_inner);
        while !*stopped {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                break;
            }
            stopped = shared.done.wait_timeout(stopped, left).unwrap_or_else(PoisonError::into_inner).0;
        }
    }
    1
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_close_event_is_delivered_and_held_until_the_server_stopped() {
        let events = console_events().expect("handler installed");
        assert!(console_events().is_err(), "one handler per process");

        // Ctrl-Break: delivered, the handler returns at once.
        // SAFETY: called as Windows would call it.
        assert_eq!(unsafe { handler(CTRL_BREAK_EVENT) }, 1);
        assert_eq!(smol::block_on(events.next()), "Ctrl-Break");
        // Ctrl-C is async-signal's: not handled here.
        assert_eq!(unsafe { handler(0) }, 0);

        // Close: the handler keeps the process alive until `stopped`.
        let started = Instant::now();
        let close = std::thread::spawn(|| unsafe { handler(CTRL_CLOSE_EVENT) });
        assert_eq!(smol::block_on(events.next()), "console close");
        std::thread::sleep(Duration::from_millis(200));
        assert!(!close.is_finished(), "returned before the server stopped");
        stopped();
        assert_eq!(close.join().expect("handler thread"), 1);
        assert!(started.elapsed() < CLOSE_WAIT, "held past the stop: {:?}", started.elapsed());
    }

    #[test]
    fn event_names() {
        assert_eq!(event_name(CTRL_LOGOFF_EVENT), Some("logoff"));
        assert_eq!(event_name(CTRL_SHUTDOWN_EVENT), Some("system shutdown"));
        assert_eq!(event_name(0), None);
    }
}
