//! BerkeleyDB hash databases, as rpm up to 4.15 kept `/var/lib/rpm/Packages` (RHEL/CentOS 7 and 8,
//! Amazon Linux 2, older SUSE).
//!
//! Page 0 is the hash metadata page (magic 0x061561 at offset 12, page size at 20, type 8 at 25,
//! last page number at 32); its byte order is the file's (both orders occur: x86 vs s390x/ppc64
//! images). Every other page starts with a 26-byte header (`pgno` at 8, `next_pgno` at 16,
//! `entries` at 20, `hf_offset` at 22, `type` at 25). Hash pages (type 13, or 2 for unsorted)
//! hold `entries` item offsets after the header; items alternate key, data. An item is either
//! `H_KEYDATA` (type byte 1, then the bytes up to the previous item's offset) or `H_OFFPAGE`
//! (type 3, 3 pad bytes, first overflow page, total length): the value continues over a chain
//! of overflow pages (type 7) each holding `hf_offset` bytes after its header.
//!
//! All hash pages are read in page order (bucket pages and their overflow buckets alike); the
//! free list holds only pages of type 0, so no stale items are returned.

use super::RpmError;
use std::cell::Cell;
use std::collections::HashSet;

const HASH_MAGIC: u32 = 0x0006_1561;
const PAGE_HEADER: usize = 26;
const P_HASH_UNSORTED: u8 = 2;
const P_OVERFLOW: u8 = 7;
const P_HASHMETA: u8 = 8;
const P_HASH: u8 = 13;
const H_KEYDATA: u8 = 1;
const H_DUPLICATE: u8 = 2;
const H_OFFPAGE: u8 = 3;
const H_OFFDUP: u8 = 4;

/// One key and its data item.
pub type KeyData = (Vec<u8>, Vec<u8>);

fn err(msg: impl Into<String>) -> RpmError {
    RpmError::Bdb(msg.into())
}

#[derive(Clone, Copy)]
struct Order {
    big: bool,
}

impl Order {
    fn u32(self, b: &[u8], at: usize) -> Option<u32> {
        let s = b.get(at..at.checked_add(4)?)?;
        let a = [s[0], s[1], s[2], s[3]];
        Some(if self.big {
            u32::from_be_bytes(a)
        } else {
            u32::from_le_bytes(a)
        })
    }
    fn u16(self, b: &[u8], at: usize) -> Option<u16> {
        let s = b.get(at..at.checked_add(2)?)?;
        let a = [s[0], s[1]];
        Some(if self.big {
            u16::from_be_bytes(a)
        } else {
            u16::from_le_bytes(a)
        })
    }
}

/// Whether `data` starts like a BerkeleyDB hash database (either byte order).
pub fn is_bdb_hash(data: &[u8]) -> bool {
    let m = data.get(12..16);
    m == Some(&HASH_MAGIC.to_le_bytes()[..]) || m == Some(&HASH_MAGIC.to_be_bytes()[..])
}

/// A BerkeleyDB hash file in memory.
struct HashDb<'a> {
    data: &'a [u8],
    order: Order,
    page_size: usize,
    last_pgno: u32,
    /// Overflow bytes that may still be assembled: a sound file stores each byte once, so more
    /// than the file size means shared overflow chains (a memory bomb).
    budget: Cell<usize>,
}

impl<'a> HashDb<'a> {
    fn open(data: &'a [u8]) -> Result<Self, RpmError> {
        let magic = data.get(12..16).ok_or_else(|| err("file too short"))?;
        let big = if magic == HASH_MAGIC.to_le_bytes() {
            false
        } else if magic == HASH_MAGIC.to_be_bytes() {
            true
        } else {
            return Err(err("not a BerkeleyDB hash database (bad magic)"));
        };
        let order = Order { big };
        let page_size = order.u32(data, 20).unwrap_or(0) as usize;
        if !(512..=65536).contains(&page_size) || !page_size.is_power_of_two() {
            return Err(err(format!("invalid page size {page_size}")));
        }
        if data.len() < page_size {
            return Err(err("file shorter than one page"));
        }
        if data[24] != 0 {
            return Err(err("encrypted databases are not supported"));
        }
        if data[26] & 0x01 != 0 {
            return Err(err("checksummed databases are not supported"));
        }
        if data[25] != P_HASHMETA {
            return Err(err(format!(
                "page 0 has type {}, not hash metadata",
                data[25]
            )));
        }
        let in_file = (data.len() / page_size) as u32;
        let last_pgno = order.u32(data, 32).unwrap_or(0);
        if last_pgno >= in_file {
            return Err(err(format!(
                "truncated: last page {last_pgno}, file holds {in_file} pages"
            )));
        }
        Ok(HashDb {
            data,
            order,
            page_size,
            last_pgno,
            budget: Cell::new(data.len()),
        })
    }

    fn page(&self, n: u32) -> Result<&'a [u8], RpmError> {
        let start = (n as usize)
            .checked_mul(self.page_size)
            .ok_or_else(|| err(format!("page {n} out of range")))?;
        self.data
            .get(start..start + self.page_size)
            .ok_or_else(|| err(format!("page {n} beyond end of file")))
    }

    /// Every key/data pair on the hash pages, overflow items resolved.
    fn items(&self) -> Result<Vec<KeyData>, RpmError> {
        let mut out = Vec::new();
        for pgno in 1..=self.last_pgno {
            let page = self.page(pgno)?;
            let kind = page[25];
            if kind != P_HASH && kind != P_HASH_UNSORTED {
                continue;
            }
            let entries = self.order.u16(page, 20).unwrap_or(0) as usize;
            if PAGE_HEADER + entries * 2 > self.page_size {
                return Err(err(format!("page {pgno}: {entries} entries do not fit")));
            }
            let mut offsets = Vec::with_capacity(entries);
            for i in 0..entries {
                offsets.push(self.order.u16(page, PAGE_HEADER + 2 * i).unwrap_or(0) as usize);
            }
            let mut values = Vec::with_capacity(entries);
            for (i, &off) in offsets.iter().enumerate() {
                // H_KEYDATA items run up to the previous item (items grow down from the end).
                let end = if i == 0 {
                    self.page_size
                } else {
                    offsets[i - 1]
                };
                if off < PAGE_HEADER + entries * 2 || off >= end || end > self.page_size {
                    return Err(err(format!("page {pgno}: item {i} at {off} out of bounds")));
                }
                values.push(self.item(pgno, &page[off..end])?);
            }
            let mut it = values.into_iter();
            while let (Some(k), Some(v)) = (it.next(), it.next()) {
                if let (Some(k), Some(v)) = (k, v) {
                    out.push((k, v));
                }
            }
        }
        Ok(out)
    }

    /// One item's bytes; `None` for duplicate sets (rpm never writes them into `Packages`).
    fn item(&self, pgno: u32, raw: &[u8]) -> Result<Option<Vec<u8>>, RpmError> {
        match raw[0] {
            H_KEYDATA => Ok(Some(raw[1..].to_vec())),
            H_OFFPAGE => {
                let first = self
                    .order
                    .u32(raw, 4)
                    .ok_or_else(|| err(format!("page {pgno}: short off-page item")))?;
                let total = self
                    .order
                    .u32(raw, 8)
                    .ok_or_else(|| err(format!("page {pgno}: short off-page item")))?
                    as usize;
                self.overflow(first, total).map(Some)
            }
            H_DUPLICATE | H_OFFDUP => Ok(None),
            other => Err(err(format!("page {pgno}: unknown item type {other}"))),
        }
    }

    fn overflow(&self, first: u32, total: usize) -> Result<Vec<u8>, RpmError> {
        if total > self.data.len() {
            return Err(err(format!(
                "overflow item of {total} bytes exceeds the file"
            )));
        }
        let left = self.budget.get();
        if total > left {
            return Err(err(
                "overflow items add up to more than the file size (shared overflow pages?)",
            ));
        }
        self.budget.set(left - total);
        let mut out = Vec::with_capacity(total);
        let mut next = first;
        let mut seen = HashSet::new();
        while out.len() < total {
            if next == 0 || next > self.last_pgno {
                return Err(err(format!("overflow chain broken at page {next}")));
            }
            if !seen.insert(next) {
                return Err(err(format!("overflow page {next} reached twice (cycle)")));
            }
            let page = self.page(next)?;
            if page[25] != P_OVERFLOW {
                return Err(err(format!("page {next} is not an overflow page")));
            }
            let len = self.order.u16(page, 22).unwrap_or(0) as usize;
            let chunk = page
                .get(PAGE_HEADER..PAGE_HEADER + len)
                .ok_or_else(|| err(format!("overflow page {next}: length {len} too large")))?;
            let take = len.min(total - out.len());
            out.extend_from_slice(&chunk[..take]);
            next = self.order.u32(page, 16).unwrap_or(0);
        }
        Ok(out)
    }
}

/// All key/data pairs of a BerkeleyDB hash database.
pub fn read_items(data: &[u8]) -> Result<Vec<KeyData>, RpmError> {
    HashDb::open(data)?.items()
}

/// The header blobs of rpm's BerkeleyDB `Packages`, with their header numbers (keys are 4-byte
/// header numbers in the file's byte order; key 0, rpm's old instance counter, is skipped).
pub fn read_packages(data: &[u8]) -> Result<Vec<(u32, Vec<u8>)>, RpmError> {
    let db = HashDb::open(data)?;
    let order = db.order;
    let mut out = Vec::new();
    for (k, v) in db.items()? {
        let hnum = order
            .u32(&k, 0)
            .filter(|_| k.len() == 4)
            .ok_or_else(|| err(format!("key of {} bytes is not a header number", k.len())))?;
        if hnum == 0 {
            continue;
        }
        out.push((hnum, v));
    }
    out.sort_by_key(|(h, _)| *h);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rejects_non_bdb_and_short_files() {
        assert!(read_packages(b"").is_err());
        assert!(read_packages(&[0u8; 600]).is_err());
        let mut meta = vec![0u8; 512];
        meta[12..16].copy_from_slice(&HASH_MAGIC.to_le_bytes());
        meta[20..24].copy_from_slice(&512u32.to_le_bytes());
        meta[25] = P_HASHMETA;
        assert_eq!(read_packages(&meta).unwrap(), vec![]);
        meta[20..24].copy_from_slice(&513u32.to_le_bytes());
        assert!(read_packages(&meta).is_err());
    }

    #[test]
    fn overflow_cycles_are_detected() {
        let ps = 512usize;
        let mut db = vec![0u8; ps * 3];
        db[12..16].copy_from_slice(&HASH_MAGIC.to_le_bytes());
        db[20..24].copy_from_slice(&(ps as u32).to_le_bytes());
        db[25] = P_HASHMETA;
        db[32..36].copy_from_slice(&2u32.to_le_bytes());
        // Page 1: hash page, 2 items: key (H_KEYDATA 4 bytes), data (H_OFFPAGE → page 2).
        let p1 = ps;
        db[p1 + 25] = P_HASH;
        db[p1 + 20..p1 + 22].copy_from_slice(&2u16.to_le_bytes());
        let key_off = ps - 5;
        let data_off = ps - 5 - 12;
        db[p1 + 26..p1 + 28].copy_from_slice(&(key_off as u16).to_le_bytes());
        db[p1 + 28..p1 + 30].copy_from_slice(&(data_off as u16).to_le_bytes());
        db[p1 + key_off] = H_KEYDATA;
        db[p1 + key_off + 1..p1 + key_off + 5].copy_from_slice(&1u32.to_le_bytes());
        db[p1 + data_off] = H_OFFPAGE;
        db[p1 + data_off + 4..p1 + data_off + 8].copy_from_slice(&2u32.to_le_bytes());
        db[p1 + data_off + 8..p1 + data_off + 12].copy_from_slice(&100_000u32.to_le_bytes());
        // Page 2: overflow page pointing at itself.
        let p2 = 2 * ps;
        db[p2 + 25] = P_OVERFLOW;
        db[p2 + 16..p2 + 20].copy_from_slice(&2u32.to_le_bytes());
        db[p2 + 22..p2 + 24].copy_from_slice(&10u16.to_le_bytes());
        let e = read_packages(&db).unwrap_err().to_string();
        assert!(e.contains("exceeds the file"), "{e}");
        db[p1 + data_off + 8..p1 + data_off + 12].copy_from_slice(&1000u32.to_le_bytes());
        let e = read_packages(&db).unwrap_err().to_string();
        assert!(e.contains("cycle"), "{e}");
    }

    #[test]
    fn shared_overflow_chains_are_a_bomb_not_a_copy() {
        let ps = 512usize;
        let mut db = vec![0u8; ps * 3];
        db[12..16].copy_from_slice(&HASH_MAGIC.to_le_bytes());
        db[20..24].copy_from_slice(&(ps as u32).to_le_bytes());
        db[25] = P_HASHMETA;
        db[32..36].copy_from_slice(&2u32.to_le_bytes());
        let p1 = ps;
        db[p1 + 25] = P_HASH;
        let pairs = 8usize;
        db[p1 + 20..p1 + 22].copy_from_slice(&((pairs * 2) as u16).to_le_bytes());
        let mut off = ps;
        for i in 0..pairs {
            // key: H_KEYDATA with a 4-byte header number
            off -= 5;
            db[p1 + 26 + 4 * i..p1 + 28 + 4 * i].copy_from_slice(&(off as u16).to_le_bytes());
            db[p1 + off] = H_KEYDATA;
            db[p1 + off + 1..p1 + off + 5].copy_from_slice(&(i as u32 + 1).to_le_bytes());
            // data: every item points at the same overflow page
            off -= 12;
            db[p1 + 28 + 4 * i..p1 + 30 + 4 * i].copy_from_slice(&(off as u16).to_le_bytes());
            db[p1 + off] = H_OFFPAGE;
            db[p1 + off + 4..p1 + off + 8].copy_from_slice(&2u32.to_le_bytes());
            db[p1 + off + 8..p1 + off + 12].copy_from_slice(&400u32.to_le_bytes());
        }
        let p2 = 2 * ps;
        db[p2 + 25] = P_OVERFLOW;
        db[p2 + 22..p2 + 24].copy_from_slice(&400u16.to_le_bytes());
        let e = read_packages(&db).unwrap_err().to_string();
        assert!(e.contains("more than the file size"), "{e}");
    }
}
