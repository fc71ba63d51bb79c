//! Wi-Fi: per wireless interface, the associated stations (count, weakest and
//! mean signal in dBm) and the interface's frequency and channel, asked of the
//! kernel over generic netlink (nl80211), as `iw` and OpenWrt's `iwinfo` do.
//!
//! **Why nl80211 and not debugfs.** nl80211 is cfg80211's stable ABI: every
//! Wi-Fi driver answers it (mac80211 ones and full-MAC ones such as the Pi's
//! brcmfmac), it needs no privilege for these two dumps (neither command is
//! marked admin-only) and no mount, and it gives the signal directly. The
//! debugfs station list (`/sys/kernel/debug/ieee80211/phy*/netdev:*/stations/`)
//! exists only for mac80211 drivers, only where debugfs is mounted and readable
//! (root), is not an ABI (files come and go between kernels; recent ones no
//! longer have the signal there) and names each station by its MAC address,
//! which fluxstat must not handle. The netlink cost is one socket kept open and,
//! every 5 s, one interface dump plus one station dump per interface.
//!
//! **Bounded.** The socket has a 200 ms receive timeout, a reply is read to at
//! most 1 MiB, and the reader runs under the sampler's deadline worker (cfg80211
//! takes the RTNL lock for these dumps, which another process can hold).
//! Replies are matched by sequence number, so a late answer to an earlier
//! request is skipped. A kernel without nl80211 (no Wi-Fi driver loaded) makes
//! the family `null`, looked for again every 60 s.
//!
//! **Privacy.** Only the signal attribute of each station is read; station
//! addresses (`NL80211_ATTR_MAC`) are never decoded or kept.
//!
//! The parse is pure (`parse_*` on reply bytes); tests replay reply bytes laid
//! out as the kernel sends them (`tests/fixtures/openwrt-ap/nl80211/`).

use std::io;
use std::os::fd::OwnedFd;
use std::time::{Duration, Instant};

use super::names;
use crate::snapshot::Radio;

// netlink(7), genetlink and nl80211.h numbers.
const NLMSG_ERROR: u16 = 2;
const NLMSG_DONE: u16 = 3;
const NLM_F_REQUEST: u16 = 1;
const NLM_F_MULTI: u16 = 2;
const NLM_F_DUMP: u16 = 0x300;
const GENL_ID_CTRL: u16 = 0x10;
const CTRL_CMD_GETFAMILY: u8 = 3;
const CTRL_ATTR_FAMILY_ID: u16 = 1;
const CTRL_ATTR_FAMILY_NAME: u16 = 2;
const NL80211_CMD_GET_INTERFACE: u8 = 5;
const NL80211_CMD_GET_STATION: u8 = 17;
const NL80211_ATTR_IFINDEX: u16 = 3;
const NL80211_ATTR_IFNAME: u16 = 4;
const NL80211_ATTR_STA_INFO: u16 = 21;
const NL80211_ATTR_WIPHY_FREQ: u16 = 38;
const NL80211_STA_INFO_SIGNAL: u16 = 7;
const NL80211_STA_INFO_SIGNAL_AVG: u16 = 13;

const MAX_REPLY: usize = 1 << 20;
const TIMEOUT: Duration = Duration::from_millis(200);
/// How often stations are counted again.
pub const REFRESH: Duration = Duration::from_secs(5);
/// How often a kernel without nl80211 is asked again.
const ABSENT_RETRY: Duration = Duration::from_secs(60);

/// One request out, all reply messages (header included) back.
pub trait Transport {
    fn exchange(&mut self, request: &[u8]) -> io::Result<Vec<u8>>;
}

/// The kernel, over a generic netlink socket.
#[derive(Default)]
pub struct Kernel {
    fd: Option<OwnedFd>,
}

impl Transport for Kernel {
    fn exchange(&mut self, request: &[u8]) -> io::Result<Vec<u8>> {
        use rustix::net::{self, netlink, AddressFamily, SocketFlags, SocketType};
        let fd = match &self.fd {
            Some(fd) => fd,
            None => {
                let fd = net::socket_with(
                    AddressFamily::NETLINK,
                    SocketType::DGRAM,
                    SocketFlags::CLOEXEC,
                    Some(netlink::GENERIC),
                )?;
                net::sockopt::set_socket_timeout(&fd, net::sockopt::Timeout::Recv, Some(TIMEOUT))?;
                self.fd.insert(fd)
            }
        };
        let r = exchange_on(fd, request);
        if r.is_err() {
            self.fd = None; // a fresh socket next time: no late replies queued
        }
        r
    }
}

fn exchange_on(fd: &OwnedFd, request: &[u8]) -> io::Result<Vec<u8>> {
    use rustix::net::{self, netlink, RecvFlags, SendFlags};
    let seq = request.get(8..12).and_then(u32_of).unwrap_or(0);
    net::sendto(fd, request, SendFlags::empty(), &netlink::SocketAddrNetlink::new(0, 0))?;
    let mut out = Vec::new();
    let mut buf = vec![0u8; 32 * 1024];
    let deadline = Instant::now() + TIMEOUT * 2;
    loop {
        let (n, _) = net::recv(fd, &mut buf[..], RecvFlags::empty())?;
        let mut finished = false;
        for (ty, flags, this_seq, msg) in messages(&buf[..n.min(buf.len())]) {
            if this_seq != seq {
                continue; // a late reply to an earlier request
            }
            out.extend_from_slice(msg);
            finished |= ty == NLMSG_DONE || ty == NLMSG_ERROR || flags & NLM_F_MULTI == 0;
        }
        if finished {
            return Ok(out);
        }
        if out.len() > MAX_REPLY || Instant::now() > deadline {
            return Err(io::Error::new(io::ErrorKind::TimedOut, "nl80211 reply too long or too slow"));
        }
    }
}

/// The reader's state: the transport, the family id, the last result.
pub struct Wifi<T: Transport> {
    transport: T,
    seq: u32,
    family: Option<u16>,
    absent_since: Option<Instant>,
    last: Option<(Instant, Option<Vec<Radio>>)>,
}

impl<T: Transport> Wifi<T> {
    pub fn new(transport: T) -> Wifi<T> {
        Wifi { transport, seq: 0, family: None, absent_since: None, last: None }
    }

    /// The radios, asked again every `REFRESH`.
    pub fn read(&mut self) -> Option<Vec<Radio>> {
        match &self.last {
            Some((at, radios)) if at.elapsed() < REFRESH => radios.clone(),
            _ => {
                let radios = self.read_now();
                self.last = Some((Instant::now(), radios.clone()));
                radios
            }
        }
    }

    /// Asks the kernel now: the family id (once), the interfaces, their stations.
    pub fn read_now(&mut self) -> Option<Vec<Radio>> {
        let family = match self.family {
            Some(f) => f,
            None => {
                if self.absent_since.is_some_and(|t| t.elapsed() < ABSENT_RETRY) {
                    return None;
                }
                match self.resolve("nl80211") {
                    Some(f) => *self.family.insert(f),
                    None => {
                        self.absent_since = Some(Instant::now());
                        return None;
                    }
                }
            }
        };
        let reply = self.ask(family, NL80211_CMD_GET_INTERFACE, NLM_F_DUMP, &[]);
        let Some(interfaces) = reply.as_deref().and_then(parse_interfaces) else {
            self.family = None; // the module may have been unloaded: resolve again
            return None;
        };
        let mut radios: Vec<Radio> = interfaces
            .into_iter()
            .map(|(ifindex, name, freq)| {
                let attr = attribute(NL80211_ATTR_IFINDEX, &ifindex.to_ne_bytes());
                let signals =
                    self.ask(family, NL80211_CMD_GET_STATION, NLM_F_DUMP, &attr).as_deref().and_then(parse_stations);
                radio(name, freq, signals.unwrap_or_default())
            })
            .collect();
        let mut unique: Vec<String> = radios.iter().map(|r| r.name.clone()).collect();
        names::make_unique(&mut unique);
        for (r, n) in radios.iter_mut().zip(unique) {
            r.name = n;
        }
        names::sort_by_key(&mut radios, |r| r.name.as_str());
        Some(radios)
    }

    /// A generic netlink family's id by name.
    pub fn resolve(&mut self, name: &str) -> Option<u16> {
        let mut value = name.as_bytes().to_vec();
        value.push(0);
        let attr = attribute(CTRL_ATTR_FAMILY_NAME, &value);
        parse_family_id(&self.ask(GENL_ID_CTRL, CTRL_CMD_GETFAMILY, 0, &attr)?)
    }

    fn ask(&mut self, family: u16, cmd: u8, flags: u16, attrs: &[u8]) -> Option<Vec<u8>> {
        self.seq = self.seq.wrapping_add(1);
        let request = request(family, cmd, flags, self.seq, attrs);
        self.transport.exchange(&request).ok()
    }
}

/// A generic netlink request: netlink header, genl header (version 1), attributes.
pub fn request(family: u16, cmd: u8, flags: u16, seq: u32, attrs: &[u8]) -> Vec<u8> {
    let len = 16 + 4 + attrs.len();
    let mut m = Vec::with_capacity(len);
    m.extend_from_slice(&u32::try_from(len).unwrap_or(u32::MAX).to_ne_bytes());
    m.extend_from_slice(&family.to_ne_bytes());
    m.extend_from_slice(&(NLM_F_REQUEST | flags).to_ne_bytes());
    m.extend_from_slice(&seq.to_ne_bytes());
    m.extend_from_slice(&0u32.to_ne_bytes());
    m.extend_from_slice(&[cmd, 1, 0, 0]);
    m.extend_from_slice(attrs);
    m
}

/// One attribute, padded to 4 bytes.
pub fn attribute(ty: u16, value: &[u8]) -> Vec<u8> {
    let len = 4 + value.len();
    let mut a = Vec::with_capacity(len.next_multiple_of(4));
    a.extend_from_slice(&u16::try_from(len).unwrap_or(u16::MAX).to_ne_bytes());
    a.extend_from_slice(&ty.to_ne_bytes());
    a.extend_from_slice(value);
    a.resize(len.next_multiple_of(4), 0);
    a
}

/// The messages of a reply: (type, flags, sequence, whole message).
pub fn messages(buf: &[u8]) -> Vec<(u16, u16, u32, &[u8])> {
    let mut out = Vec::new();
    let mut rest = buf;
    while rest.len() >= 16 {
        let len = u32::from_ne_bytes([rest[0], rest[1], rest[2], rest[3]]) as usize;
        if len < 16 || len > rest.len() {
            break;
        }
        let ty = u16::from_ne_bytes([rest[4], rest[5]]);
        let flags = u16::from_ne_bytes([rest[6], rest[7]]);
        let seq = u32::from_ne_bytes([rest[8], rest[9], rest[10], rest[11]]);
        out.push((ty, flags, seq, &rest[..len]));
        rest = &rest[len.next_multiple_of(4).min(rest.len())..];
    }
    out
}

/// The attributes of a block: (type without flag bits, value).
pub fn attributes(mut rest: &[u8]) -> Vec<(u16, &[u8])> {
    let mut out = Vec::new();
    while rest.len() >= 4 {
        let len = usize::from(u16::from_ne_bytes([rest[0], rest[1]]));
        if len < 4 || len > rest.len() {
            break;
        }
        let ty = u16::from_ne_bytes([rest[2], rest[3]]) & 0x3fff;
        out.push((ty, &rest[4..len]));
        rest = &rest[len.next_multiple_of(4).min(rest.len())..];
    }
    out
}

/// The attributes of each data message (after the genl header); `None` when the
/// reply is an error (other than the ACK that follows some answers).
fn payloads(reply: &[u8]) -> Option<Vec<Vec<(u16, &[u8])>>> {
    let mut out = Vec::new();
    for (ty, _, _, msg) in messages(reply) {
        match ty {
            NLMSG_DONE => break,
            NLMSG_ERROR => {
                let code = msg.get(16..20).map(|b| i32::from_ne_bytes([b[0], b[1], b[2], b[3]]));
                if code != Some(0) {
                    return None;
                }
            }
            _ => out.push(attributes(msg.get(20..)?)),
        }
    }
    Some(out)
}

fn u32_of(v: &[u8]) -> Option<u32> {
    Some(u32::from_ne_bytes(v.get(..4)?.try_into().ok()?))
}

/// CTRL_CMD_NEWFAMILY's family id.
pub fn parse_family_id(reply: &[u8]) -> Option<u16> {
    payloads(reply)?
        .iter()
        .flatten()
        .find(|(t, _)| *t == CTRL_ATTR_FAMILY_ID)
        .and_then(|(_, v)| Some(u16::from_ne_bytes(v.get(..2)?.try_into().ok()?)))
}

/// Each interface of an interface dump: (ifindex, name, frequency MHz).
pub fn parse_interfaces(reply: &[u8]) -> Option<Vec<(u32, String, Option<u32>)>> {
    let list = payloads(reply)?
        .iter()
        .filter_map(|attrs| {
            let find = |ty: u16| attrs.iter().find(|(t, _)| *t == ty).map(|(_, v)| *v);
            let ifindex = u32_of(find(NL80211_ATTR_IFINDEX)?)?;
            let raw = find(NL80211_ATTR_IFNAME)?;
            let name = super::fs::decode(raw.split(|b| *b == 0).next().unwrap_or_default());
            Some((ifindex, name, find(NL80211_ATTR_WIPHY_FREQ).and_then(u32_of)))
        })
        .collect();
    Some(list)
}

/// The signal of each station of a station dump, dBm (the last signal, else the
/// average; a station without either is counted with no signal).
pub fn parse_stations(reply: &[u8]) -> Option<Vec<Option<i8>>> {
    let list = payloads(reply)?
        .iter()
        .filter_map(|attrs| {
            let info = attrs.iter().find(|(t, _)| *t == NL80211_ATTR_STA_INFO)?.1;
            let info = attributes(info);
            let signal = |ty: u16| info.iter().find(|(t, _)| *t == ty).and_then(|(_, v)| v.first()).map(|b| *b as i8);
            Some(signal(NL80211_STA_INFO_SIGNAL).or_else(|| signal(NL80211_STA_INFO_SIGNAL_AVG)))
        })
        .collect();
    Some(list)
}

/// One interface's figures from its stations' signals.
pub fn radio(name: String, freq: Option<u32>, signals: Vec<Option<i8>>) -> Radio {
    let known: Vec<i64> = signals.iter().flatten().map(|s| i64::from(*s)).collect();
    let mean = (!known.is_empty()).then(|| {
        // A few hundred values of −128..127: exact in f64.
        let sum: i64 = known.iter().sum();
        (sum as f64 / known.len() as f64 * 10.0).round() / 10.0
    });
    Radio {
        name,
        stations: signals.len() as u64,
        signal_min_dbm: known.iter().min().copied(),
        signal_mean_dbm: mean,
        frequency_mhz: freq,
        channel: freq.and_then(channel),
    }
}

/// The IEEE 802.11 channel number of a centre frequency, MHz (2.4, 5 and 6 GHz).
pub fn channel(freq: u32) -> Option<u32> {
    match freq {
        2484 => Some(14),
        2412..=2472 => Some((freq - 2407) / 5),
        5955..=7115 => Some((freq - 5950) / 5),
        5160..=5885 => Some((freq - 5000) / 5),
        _ => None,
    }
}

/// Replayed replies, for tests and fixtures: the reply to each request in turn,
/// chosen by the request's command (`family`, `interfaces`, `stations-<ifindex>`).
pub struct Replay {
    pub replies: Vec<(String, Vec<u8>)>,
}

impl Replay {
    /// Reads `<name>.hex` files of a directory: hex bytes, `#` comments.
    pub fn load(dir: &std::path::Path) -> io::Result<Replay> {
        let mut replies = Vec::new();
        for e in std::fs::read_dir(dir)? {
            let path = e?.path();
            if path.extension().is_none_or(|x| x != "hex") {
                continue;
            }
            let Some(name) = path.file_stem().and_then(|s| s.to_str()).map(str::to_owned) else { continue };
            replies.push((name, parse_hex(&std::fs::read_to_string(&path)?)?));
        }
        Ok(Replay { replies })
    }
}

/// `0a 1b # comment` lines to bytes.
pub fn parse_hex(text: &str) -> io::Result<Vec<u8>> {
    let bad = |t: &str| io::Error::new(io::ErrorKind::InvalidData, format!("not a hex byte: {t}"));
    text.lines()
        .flat_map(|l| l.split('#').next().unwrap_or_default().split_ascii_whitespace())
        .map(|t| u8::from_str_radix(t, 16).map_err(|_| bad(t)))
        .collect()
}

impl Transport for Replay {
    fn exchange(&mut self, request: &[u8]) -> io::Result<Vec<u8>> {
        let short = || io::Error::new(io::ErrorKind::InvalidInput, "short request");
        let ty = request.get(4..6).map(|b| u16::from_ne_bytes([b[0], b[1]])).ok_or_else(short)?;
        let cmd = *request.get(16).ok_or_else(short)?;
        let key = if ty == GENL_ID_CTRL {
            "family".to_owned()
        } else if cmd == NL80211_CMD_GET_INTERFACE {
            "interfaces".to_owned()
        } else {
            let ifindex = attributes(request.get(20..).unwrap_or_default())
                .iter()
                .find(|(t, _)| *t == NL80211_ATTR_IFINDEX)
                .and_then(|(_, v)| u32_of(v));
            format!("stations-{}", ifindex.unwrap_or(0))
        };
        self.replies
            .iter()
            .find(|(k, _)| *k == key)
            .map(|(_, v)| v.clone())
            .ok_or_else(|| io::Error::new(io::ErrorKind::NotFound, key))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message(ty: u16, flags: u16, cmd: u8, attrs: &[u8]) -> Vec<u8> {
        let mut m = request(ty, cmd, flags, 7, attrs);
        m[6..8].copy_from_slice(&flags.to_ne_bytes());
        m
    }

    fn station(signal: Option<i8>, avg: Option<i8>) -> Vec<u8> {
        let mut info = Vec::new();
        info.extend(attribute(1, &1200u32.to_ne_bytes())); // inactive time
        if let Some(s) = signal {
            info.extend(attribute(NL80211_STA_INFO_SIGNAL, &[s as u8]));
        }
        if let Some(s) = avg {
            info.extend(attribute(NL80211_STA_INFO_SIGNAL_AVG, &[s as u8]));
        }
        let mut attrs = attribute(NL80211_ATTR_IFINDEX, &9u32.to_ne_bytes());
        attrs.extend(attribute(6, &[0x3c, 0x22, 0xfb, 1, 2, 3])); // the MAC, never read
        attrs.extend(attribute(NL80211_ATTR_STA_INFO | 0x8000, &info));
        message(0x22, NLM_F_MULTI, 19, &attrs)
    }

    #[test]
    fn stations_signal_table() {
        let mut reply = station(Some(-48), Some(-50));
        reply.extend(station(None, Some(-71)));
        reply.extend(station(None, None));
        reply.extend(message(NLMSG_DONE, NLM_F_MULTI, 0, &[0, 0, 0, 0]));
        assert_eq!(parse_stations(&reply), Some(vec![Some(-48), Some(-71), None]));
        let r = radio("phy0-ap0".into(), Some(5180), parse_stations(&reply).unwrap_or_default());
        assert_eq!((r.stations, r.signal_min_dbm, r.signal_mean_dbm, r.channel), (3, Some(-71), Some(-59.5), Some(36)));
        let empty = radio("phy1-ap0".into(), None, vec![]);
        assert_eq!((empty.stations, empty.signal_min_dbm, empty.signal_mean_dbm), (0, None, None));
        // An error reply (ENODEV = 19) is no answer, not zero stations.
        let err = message(NLMSG_ERROR, 0, 0, &(-19i32).to_ne_bytes());
        assert_eq!(parse_stations(&err), None);
        // Truncated bytes are skipped, never read past.
        assert_eq!(parse_stations(&reply[..reply.len() - 30]).map(|v| v.len()), Some(2));
    }

    #[test]
    fn channel_table() {
        let table: &[(u32, Option<u32>)] = &[
            (2412, Some(1)),
            (2437, Some(6)),
            (2472, Some(13)),
            (2484, Some(14)),
            (5180, Some(36)),
            (5500, Some(100)),
            (5825, Some(165)),
            (5955, Some(1)),
            (6115, Some(33)),
            (58320, None),
            (0, None),
        ];
        for &(f, want) in table {
            assert_eq!(channel(f), want, "{f}");
        }
    }

    #[test]
    fn hex_table() {
        assert_eq!(parse_hex("0a ff # x\n 00 # y z\n").ok(), Some(vec![10, 255, 0]));
        assert!(parse_hex("0g").is_err());
    }

    // A real exchange with this machine's kernel: the controller family always
    // exists; nl80211 exists only with a Wi-Fi driver, and its absence is `None`.
    #[test]
    fn the_kernel_answers_over_generic_netlink() {
        if std::env::var_os("FLUXSTAT_TEST_RUNNER").is_some_and(|r| !r.is_empty()) {
            eprintln!("skipped: qemu-user does not translate generic netlink");
            return;
        }
        let mut w = Wifi::new(Kernel::default());
        assert_eq!(w.resolve("nlctrl"), Some(GENL_ID_CTRL));
        assert_eq!(w.resolve("no-such-family"), None);
        let started = Instant::now();
        let radios = w.read_now();
        assert!(started.elapsed() < Duration::from_secs(2));
        if std::path::Path::new("/sys/class/ieee80211").read_dir().map_or(true, |mut d| d.next().is_none()) {
            assert_eq!(radios, None, "no Wi-Fi driver here");
        }
    }
}
