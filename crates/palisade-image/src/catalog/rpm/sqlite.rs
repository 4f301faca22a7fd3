//! A minimal read-only reader of the SQLite 3 file format, enough to list one rowid table
//! (rpm's `Packages (hnum INTEGER PRIMARY KEY, blob BLOB)`) of an `rpmdb.sqlite` held in memory.
//!
//! Covered: the 100-byte database header (page size, reserved bytes, text encoding), the schema
//! table on page 1, table b-tree interior and leaf pages, overflow page chains, and the record
//! format with its serial types, and the write-ahead log (`rpmdb.sqlite-wal`: rpm opens the
//! database in WAL mode, and an image can be built before the log is checkpointed) — committed
//! frames with matching salts and checksums override the main file's pages. Not covered: index
//! b-trees (not needed). Every loop is bounded: each page is visited at most
//! once per walk, the tree depth is capped, and payload sizes are checked against the file size
//! before anything is allocated.

use super::RpmError;
use std::cell::Cell;
use std::collections::{HashMap, HashSet};

const MAGIC: &[u8; 16] = b"SQLite format 3\0";
const MAX_DEPTH: usize = 64;

/// A column value of a record. Text is decoded to UTF-8 whatever the database encoding.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Null,
    Integer(i64),
    Real(f64),
    Text(String),
    Blob(Vec<u8>),
}

/// One table row: its rowid and its column values (an `INTEGER PRIMARY KEY` column is stored as
/// NULL; its value is the rowid).
#[derive(Debug, Clone, PartialEq)]
pub struct Row {
    pub rowid: i64,
    pub values: Vec<Value>,
}

fn err(msg: impl Into<String>) -> RpmError {
    RpmError::Sqlite(msg.into())
}

/// An SQLite database file in memory.
pub struct Database<'a> {
    data: &'a [u8],
    page_size: usize,
    usable: usize,
    page_count: u32,
    encoding: u32,
    /// Pages newer than the main file, from the committed part of the write-ahead log.
    wal: HashMap<u32, &'a [u8]>,
    /// Payload bytes that may still be assembled. Every payload byte of a sound database lives in
    /// its own place in the file, so more than the file size means overflow chains are shared
    /// (a memory bomb) and the read stops.
    budget: Cell<usize>,
}

impl<'a> Database<'a> {
    /// Checks the header. Fails if this is not an SQLite 3 file or its geometry is impossible.
    pub fn open(data: &'a [u8]) -> Result<Self, RpmError> {
        Self::open_with_wal(data, None)
    }

    /// Like [`Database::open`], with the `-wal` file next to the database, if there is one. A
    /// log that does not belong to this database (wrong magic, page size or salts) or whose
    /// frames fail their checksums is ignored from the first bad frame on, as SQLite does.
    pub fn open_with_wal(data: &'a [u8], wal: Option<&'a [u8]>) -> Result<Self, RpmError> {
        if data.len() < 100 || &data[..16] != MAGIC {
            return Err(err("not an SQLite 3 database (bad magic)"));
        }
        let raw = u16::from_be_bytes([data[16], data[17]]);
        let page_size = if raw == 1 { 65536 } else { raw as usize };
        if !(512..=65536).contains(&page_size) || !page_size.is_power_of_two() {
            return Err(err(format!("invalid page size {raw}")));
        }
        let reserved = data[20] as usize;
        let usable = page_size - reserved;
        if usable < 480 {
            return Err(err(format!("usable page size {usable} below 480")));
        }
        let encoding = be32(data, 56).unwrap_or(1);
        // The in-header page count is only valid if the change counters match; the file length
        // is authoritative otherwise. Never trust more pages than the file holds.
        let by_len = (data.len() / page_size) as u32;
        let in_header = be32(data, 28).unwrap_or(0);
        let valid_for = be32(data, 92);
        let change = be32(data, 24);
        let page_count = if in_header != 0 && valid_for == change {
            if in_header > by_len {
                return Err(err(format!(
                    "truncated: header says {in_header} pages, file holds {by_len}"
                )));
            }
            in_header
        } else {
            by_len
        };
        let (wal, wal_size) = match wal {
            Some(w) => committed_wal_pages(w, page_size),
            None => (HashMap::new(), None),
        };
        let page_count = match wal_size {
            // Pages past the end of the main file may live only in the log.
            Some(n) if n > page_count => {
                if (page_count + 1..=n).any(|p| !wal.contains_key(&p)) {
                    return Err(err(format!(
                        "write-ahead log grows the database to {n} pages but lacks some of them"
                    )));
                }
                n
            }
            Some(n) => n,
            None => page_count,
        };
        if page_count == 0 {
            return Err(err("database has no complete page"));
        }
        Ok(Database {
            data,
            page_size,
            usable,
            page_count,
            encoding,
            budget: Cell::new(data.len() + wal.len() * page_size),
            wal,
        })
    }

    fn page(&self, n: u32) -> Result<&'a [u8], RpmError> {
        if n == 0 || n > self.page_count {
            return Err(err(format!(
                "page {n} out of range (1..={})",
                self.page_count
            )));
        }
        if let Some(p) = self.wal.get(&n) {
            return Ok(p);
        }
        let start = (n as usize - 1) * self.page_size;
        self.data
            .get(start..start + self.page_size)
            .ok_or_else(|| err(format!("page {n} beyond end of file")))
    }

    /// The root page of a table, from the schema on page 1 (names compared ASCII
    /// case-insensitively, as SQLite does).
    pub fn table_root(&self, name: &str) -> Result<Option<u32>, RpmError> {
        let mut found = None;
        self.walk_table(1, &mut |row| {
            let is_table = matches!(row.values.first(), Some(Value::Text(t)) if t == "table");
            let matches_name =
                matches!(row.values.get(1), Some(Value::Text(n)) if n.eq_ignore_ascii_case(name));
            if is_table
                && matches_name
                && let Some(Value::Integer(root)) = row.values.get(3)
            {
                found = u32::try_from(*root).ok().filter(|r| *r != 0);
            }
            Ok(())
        })?;
        Ok(found)
    }

    /// All rows of the table named `name`, in rowid order.
    pub fn read_table(&self, name: &str) -> Result<Vec<Row>, RpmError> {
        let root = self
            .table_root(name)?
            .ok_or_else(|| err(format!("no table {name:?} in schema")))?;
        let mut rows = Vec::new();
        self.walk_table(root, &mut |row| {
            rows.push(row);
            Ok(())
        })?;
        Ok(rows)
    }

    /// Visits every row of the table b-tree rooted at `root`, depth first.
    pub fn walk_table(
        &self,
        root: u32,
        f: &mut dyn FnMut(Row) -> Result<(), RpmError>,
    ) -> Result<(), RpmError> {
        let mut visited = HashSet::new();
        self.walk(root, 0, &mut visited, f)
    }

    fn walk(
        &self,
        pgno: u32,
        depth: usize,
        visited: &mut HashSet<u32>,
        f: &mut dyn FnMut(Row) -> Result<(), RpmError>,
    ) -> Result<(), RpmError> {
        if depth > MAX_DEPTH {
            return Err(err("b-tree deeper than 64 levels"));
        }
        if !visited.insert(pgno) {
            return Err(err(format!("b-tree page {pgno} reached twice (cycle)")));
        }
        let page = self.page(pgno)?;
        let hdr = if pgno == 1 { 100 } else { 0 };
        let kind = *page
            .get(hdr)
            .ok_or_else(|| err(format!("page {pgno} header")))?;
        let ncells = be16(page, hdr + 3).ok_or_else(|| err("page header"))? as usize;
        match kind {
            0x0d => {
                let ptrs = hdr + 8;
                check_ptr_array(page, ptrs, ncells, pgno)?;
                for i in 0..ncells {
                    let off = be16(page, ptrs + 2 * i).unwrap_or(0) as usize;
                    let row = self.leaf_cell(page, off, pgno)?;
                    f(row)?;
                }
                Ok(())
            }
            0x05 => {
                let ptrs = hdr + 12;
                check_ptr_array(page, ptrs, ncells, pgno)?;
                for i in 0..ncells {
                    let off = be16(page, ptrs + 2 * i).unwrap_or(0) as usize;
                    let child = be32(page, off)
                        .filter(|_| off >= ptrs + 2 * ncells)
                        .ok_or_else(|| err(format!("page {pgno}: cell {i} out of page")))?;
                    self.walk(child, depth + 1, visited, f)?;
                }
                let right = be32(page, hdr + 8).ok_or_else(|| err("page header"))?;
                self.walk(right, depth + 1, visited, f)
            }
            0x02 | 0x0a => Err(err(format!("page {pgno} is an index page, not a table"))),
            other => Err(err(format!("page {pgno} has unknown type {other:#x}"))),
        }
    }

    fn leaf_cell(&self, page: &[u8], off: usize, pgno: u32) -> Result<Row, RpmError> {
        let bad = || err(format!("page {pgno}: cell at {off} out of page"));
        let (payload_len, n1) = varint(page.get(off..).ok_or_else(bad)?).ok_or_else(bad)?;
        let (rowid, n2) = varint(page.get(off + n1..).ok_or_else(bad)?).ok_or_else(bad)?;
        if payload_len > self.data.len() as u64 {
            return Err(err(format!(
                "page {pgno}: payload of {payload_len} bytes exceeds the file"
            )));
        }
        let p = payload_len as usize;
        let start = off + n1 + n2;
        let u = self.usable;
        let x = u - 35;
        let local = if p <= x {
            p
        } else {
            let m = ((u - 12) * 32 / 255) - 23;
            let k = m + ((p - m) % (u - 4));
            if k <= x { k } else { m }
        };
        let local_bytes = page.get(start..start + local).ok_or_else(bad)?;
        let left = self.budget.get();
        if p > left {
            return Err(err(format!(
                "page {pgno}: payloads add up to more than the file size (shared overflow pages?)"
            )));
        }
        self.budget.set(left - p);
        let mut payload = Vec::with_capacity(p);
        payload.extend_from_slice(local_bytes);
        if local < p {
            let mut next = be32(page, start + local).ok_or_else(bad)?;
            let mut seen = HashSet::new();
            while payload.len() < p {
                if next == 0 {
                    return Err(err(format!("page {pgno}: overflow chain ends early")));
                }
                if !seen.insert(next) {
                    return Err(err(format!("overflow page {next} reached twice (cycle)")));
                }
                let ov = self.page(next)?;
                let take = (p - payload.len()).min(u - 4);
                let chunk = ov
                    .get(4..4 + take)
                    .ok_or_else(|| err(format!("overflow page {next} too short")))?;
                payload.extend_from_slice(chunk);
                next = be32(ov, 0).unwrap_or(0);
            }
        }
        let values = self.record(&payload)?;
        Ok(Row {
            rowid: rowid as i64,
            values,
        })
    }

    fn record(&self, payload: &[u8]) -> Result<Vec<Value>, RpmError> {
        let (hsize, n) = varint(payload).ok_or_else(|| err("record header size"))?;
        let hsize = usize::try_from(hsize)
            .ok()
            .filter(|h| *h >= n && *h <= payload.len())
            .ok_or_else(|| err(format!("record header size {hsize} out of range")))?;
        let mut types = Vec::new();
        let mut pos = n;
        while pos < hsize {
            let (t, k) = varint(&payload[pos..hsize]).ok_or_else(|| err("record serial type"))?;
            types.push(t);
            pos += k;
        }
        let mut body = hsize;
        let mut values = Vec::with_capacity(types.len());
        for t in types {
            let len = serial_len(t).ok_or_else(|| err(format!("reserved serial type {t}")))?;
            let bytes = payload
                .get(body..body.saturating_add(len))
                .filter(|b| b.len() == len)
                .ok_or_else(|| err("record value past end of payload"))?;
            body += len;
            values.push(match t {
                0 => Value::Null,
                1..=6 => Value::Integer(int_be(bytes)),
                7 => Value::Real(f64::from_bits(int_be(bytes) as u64)),
                8 => Value::Integer(0),
                9 => Value::Integer(1),
                t if t % 2 == 0 => Value::Blob(bytes.to_vec()),
                _ => Value::Text(self.text(bytes)),
            });
        }
        Ok(values)
    }

    fn text(&self, bytes: &[u8]) -> String {
        match self.encoding {
            2 | 3 => {
                let units: Vec<u16> = bytes
                    .chunks_exact(2)
                    .map(|c| {
                        if self.encoding == 2 {
                            u16::from_le_bytes([c[0], c[1]])
                        } else {
                            u16::from_be_bytes([c[0], c[1]])
                        }
                    })
                    .collect();
                String::from_utf16_lossy(&units)
            }
            _ => String::from_utf8_lossy(bytes).into_owned(),
        }
    }
}

/// The newest committed version of each page in a write-ahead log, and the database size in
/// pages after the last commit. Frames are taken while their salts match the log header and their
/// running checksum holds; only frames up to the last commit frame among those count.
fn committed_wal_pages(wal: &[u8], page_size: usize) -> (HashMap<u32, &[u8]>, Option<u32>) {
    let mut pages = HashMap::new();
    let Some(magic) = be32(wal, 0) else {
        return (pages, None);
    };
    let big_endian = match magic {
        0x377f_0682 => false,
        0x377f_0683 => true,
        _ => return (pages, None),
    };
    if be32(wal, 8) != Some(page_size as u32) || wal.len() < 32 {
        return (pages, None);
    }
    let salts = (be32(wal, 16), be32(wal, 20));
    let mut sum = wal_checksum(big_endian, (0, 0), &wal[..24]);
    if (be32(wal, 24), be32(wal, 28)) != (Some(sum.0), Some(sum.1)) {
        return (pages, None);
    }
    let mut pending: Vec<(u32, &[u8])> = Vec::new();
    let mut size = None;
    let frame = 24 + page_size;
    let mut at = 32;
    while at + frame <= wal.len() {
        let head = &wal[at..at + 24];
        let body = &wal[at + 24..at + frame];
        if (be32(head, 8), be32(head, 12)) != salts {
            break;
        }
        sum = wal_checksum(big_endian, sum, &head[..8]);
        sum = wal_checksum(big_endian, sum, body);
        if (be32(head, 16), be32(head, 20)) != (Some(sum.0), Some(sum.1)) {
            break;
        }
        let pgno = be32(head, 0).unwrap_or(0);
        if pgno == 0 {
            break;
        }
        pending.push((pgno, body));
        let commit = be32(head, 4).unwrap_or(0);
        if commit != 0 {
            pages.extend(pending.drain(..));
            size = Some(commit);
        }
        at += frame;
    }
    (pages, size)
}

/// SQLite's WAL checksum over 32-bit words of the writer's byte order.
fn wal_checksum(big_endian: bool, (mut s0, mut s1): (u32, u32), data: &[u8]) -> (u32, u32) {
    for pair in data.chunks_exact(8) {
        let word = |b: &[u8]| {
            let a = [b[0], b[1], b[2], b[3]];
            if big_endian {
                u32::from_be_bytes(a)
            } else {
                u32::from_le_bytes(a)
            }
        };
        s0 = s0.wrapping_add(word(&pair[..4])).wrapping_add(s1);
        s1 = s1.wrapping_add(word(&pair[4..])).wrapping_add(s0);
    }
    (s0, s1)
}

fn check_ptr_array(page: &[u8], at: usize, n: usize, pgno: u32) -> Result<(), RpmError> {
    if at + 2 * n > page.len() {
        return Err(err(format!("page {pgno}: {n} cells do not fit")));
    }
    Ok(())
}

fn serial_len(t: u64) -> Option<usize> {
    Some(match t {
        0 | 8 | 9 => 0,
        1 => 1,
        2 => 2,
        3 => 3,
        4 => 4,
        5 => 6,
        6 | 7 => 8,
        10 | 11 => return None,
        t => usize::try_from((t - 12) / 2).ok()?,
    })
}

fn int_be(b: &[u8]) -> i64 {
    let mut v: i64 = if b.first().is_some_and(|x| x & 0x80 != 0) {
        -1
    } else {
        0
    };
    for x in b {
        v = (v << 8) | *x as i64;
    }
    v
}

/// SQLite varint: 1–9 bytes, big-endian 7-bit groups, the ninth byte contributes 8 bits.
fn varint(b: &[u8]) -> Option<(u64, usize)> {
    let mut v: u64 = 0;
    for i in 0..9 {
        let x = *b.get(i)?;
        if i == 8 {
            return Some(((v << 8) | x as u64, 9));
        }
        v = (v << 7) | (x & 0x7f) as u64;
        if x & 0x80 == 0 {
            return Some((v, i + 1));
        }
    }
    None
}

fn be16(b: &[u8], at: usize) -> Option<u16> {
    let s = b.get(at..at + 2)?;
    Some(u16::from_be_bytes([s[0], s[1]]))
}

fn be32(b: &[u8], at: usize) -> Option<u32> {
    let s = b.get(at..at + 4)?;
    Some(u32::from_be_bytes([s[0], s[1], s[2], s[3]]))
}

/// The header blobs of rpm's `Packages` table, with their header numbers.
pub fn read_packages(data: &[u8]) -> Result<Vec<(u32, Vec<u8>)>, RpmError> {
    read_packages_with_wal(data, None)
}

/// [`read_packages`] with the database's `-wal` file, if present.
pub fn read_packages_with_wal(
    data: &[u8],
    wal: Option<&[u8]>,
) -> Result<Vec<(u32, Vec<u8>)>, RpmError> {
    let db = Database::open_with_wal(data, wal)?;
    let rows = db.read_table("Packages")?;
    let mut out = Vec::with_capacity(rows.len());
    for row in rows {
        let hnum = u32::try_from(row.rowid)
            .map_err(|_| err(format!("hnum {} out of range", row.rowid)))?;
        match row.values.into_iter().nth(1) {
            Some(Value::Blob(b)) => out.push((hnum, b)),
            other => {
                return Err(err(format!(
                    "Packages row {hnum}: blob column is {}",
                    match other {
                        None => "missing",
                        Some(Value::Null) => "NULL",
                        Some(Value::Text(_)) => "TEXT",
                        Some(_) => "a number",
                    }
                )));
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn varints() {
        assert_eq!(varint(&[0x05]), Some((5, 1)));
        assert_eq!(varint(&[0x81, 0x00]), Some((128, 2)));
        assert_eq!(varint(&[0xff; 9]), Some((u64::MAX, 9)));
        assert_eq!(varint(&[0x81]), None);
    }

    #[test]
    fn ints() {
        assert_eq!(int_be(&[0xff]), -1);
        assert_eq!(int_be(&[0x01, 0x00]), 256);
        assert_eq!(int_be(&[0x80, 0, 0, 0, 0, 0]), -(1i64 << 47));
    }

    #[test]
    fn rejects_non_sqlite() {
        assert!(Database::open(b"hello").is_err());
        let mut h = vec![0u8; 512];
        h[..16].copy_from_slice(MAGIC);
        h[16] = 0x03; // 768: not a power of two
        assert!(Database::open(&h).is_err());
    }
}
