//! The families read less often than every sample, with their cached results:
//! DHCP leases every 10 s (a lease table moves slowly), flash wear and the reboot
//! flag every 60 s (the kernel reads eMMC wear once at boot; a pending reboot is
//! not urgent to the second).

use std::path::PathBuf;
use std::time::{Duration, Instant, SystemTime};

use super::{dhcp, flash, reboot, Roots};
use crate::snapshot::{FlashWear, Snapshot};

/// How often the DHCP lease files are counted again.
const DHCP_REFRESH: Duration = Duration::from_secs(10);
/// How often flash wear and the reboot flag are read again.
const RARE_REFRESH: Duration = Duration::from_secs(60);

#[derive(Default)]
pub struct Slow {
    rare: Option<(Instant, Option<Vec<FlashWear>>, Option<bool>)>,
    dhcp: Option<(Instant, Option<u64>)>,
}

impl Slow {
    /// Fills `flash`, `reboot_required` and `dhcp_leases` of `s`, reading what is due.
    pub fn fill(&mut self, s: &mut Snapshot, roots: &Roots, lease_files: &[PathBuf], now: Instant) {
        let (flash, reboot) = match &self.rare {
            Some((at, f, r)) if now.saturating_duration_since(*at) < RARE_REFRESH => (f.clone(), *r),
            _ => {
                let (f, r) = (flash::read(&roots.sysfs), reboot::read(&roots.rootfs));
                self.rare = Some((now, f.clone(), r));
                (f, r)
            }
        };
        (s.flash, s.reboot_required) = (flash, reboot);
        s.dhcp_leases = match self.dhcp {
            Some((at, n)) if now.saturating_duration_since(at) < DHCP_REFRESH => n,
            _ => {
                let unix = super::unix_micros(SystemTime::now()).max(0).unsigned_abs() / 1_000_000;
                let n = dhcp::read(&dhcp::paths(lease_files, &roots.rootfs), unix);
                self.dhcp = Some((now, n));
                n
            }
        };
    }
}
