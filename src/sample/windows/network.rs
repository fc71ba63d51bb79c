//! Network interfaces on Windows: the counters of `GetIfTable2`, named by their
//! alias (`Ethernet`, `Wi-Fi`), with the byte rates computed by the shared
//! `network::Rates` and filtered by the shared `NetFilter`, as on Linux. Loopback
//! and the filter-driver rows Windows adds for each adapter (same counters under
//! another name) are left out. (Why not sysinfo: see the parent module.)

use std::time::Instant;

use windows_sys::Win32::NetworkManagement::IpHelper::{FreeMibTable, GetIfTable2, MIB_IF_ROW2, MIB_IF_TABLE2};

use crate::sample::network::{unique_and_sorted, DevLine, NetFilter, Rates};
use crate::snapshot::{Counters, Interface};

/// IF_TYPE_SOFTWARE_LOOPBACK (ipifcons.h).
const LOOPBACK: u32 = 24;
/// The FilterInterface bit of MIB_IF_ROW2's InterfaceAndOperStatusFlags.
const FILTER_INTERFACE: u8 = 0b10;

/// Reads the interfaces and computes the rates since the previous call; `None`
/// when the table cannot be read.
pub fn read(filter: &NetFilter, rates: &mut Rates, now: Instant) -> Option<Vec<Interface>> {
    let lines: Vec<DevLine> = table()?.into_iter().filter(|l| filter.keeps(&l.name)).collect();
    Some(rates.update(unique_and_sorted(lines), now))
}

fn table() -> Option<Vec<DevLine>> {
    let mut table: *mut MIB_IF_TABLE2 = std::ptr::null_mut();
    // SAFETY: GetIfTable2 allocates the table and stores its address in `table`.
    if unsafe { GetIfTable2(&mut table) } != 0 || table.is_null() {
        return None;
    }
    // SAFETY: on success `table` points to NumEntries rows, valid until FreeMibTable.
    let rows: &[MIB_IF_ROW2] = unsafe {
        let n = (*table).NumEntries as usize;
        std::slice::from_raw_parts(std::ptr::addr_of!((*table).Table).cast::<MIB_IF_ROW2>(), n)
    };
    let lines = rows.iter().filter(|r| keeps(r)).map(line).collect();
    // SAFETY: `table` came from GetIfTable2 and is not used afterwards.
    unsafe { FreeMibTable(table.cast()) };
    Some(lines)
}

fn keeps(row: &MIB_IF_ROW2) -> bool {
    row.Type != LOOPBACK && row.InterfaceAndOperStatusFlags._bitfield & FILTER_INTERFACE == 0
}

fn line(row: &MIB_IF_ROW2) -> DevLine {
    DevLine {
        name: super::from_wide(&row.Alias),
        rx: Counters {
            bytes: row.InOctets,
            packets: row.InUcastPkts.saturating_add(row.InNUcastPkts),
            errors: row.InErrors,
            drops: row.InDiscards,
        },
        tx: Counters {
            bytes: row.OutOctets,
            packets: row.OutUcastPkts.saturating_add(row.OutNUcastPkts),
            errors: row.OutErrors,
            drops: row.OutDiscards,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lists_interfaces_without_loopback() {
        let lines = table().expect("GetIfTable2 answers");
        assert!(lines.iter().all(|l| !l.name.is_empty()), "{lines:?}");
    }
}
