//! rpm's "ndb" package database (`Packages.db`, SUSE and some Fedora-derived images).
//!
//! Layout (all little-endian): a 32-byte header at offset 0 (`"RpmP"` magic, version 0,
//! generation, number of slot pages, next package index) inside the first of `slotnpages` 4 KiB
//! slot pages. Each slot page is an array of 16-byte slots `{"Slot", pkgidx, blkoff, blkcnt}`
//! (the first two slots of page 0 hold the header). A slot with `blkoff != 0` points at a blob
//! `blkoff * 16` bytes into the file, `blkcnt * 16` bytes long: head
//! `{"BlbS", pkgidx, timestamp, bloblen}`, the header blob, zero padding, tail
//! `{adler32, bloblen, "BlbE"}`; the Adler-32 covers head, blob and padding.

use super::RpmError;

const DB_MAGIC: u32 = u32::from_le_bytes(*b"RpmP");
const SLOT_MAGIC: u32 = u32::from_le_bytes(*b"Slot");
const BLOB_HEAD_MAGIC: u32 = u32::from_le_bytes(*b"BlbS");
const BLOB_TAIL_MAGIC: u32 = u32::from_le_bytes(*b"BlbE");
const PAGE_SIZE: usize = 4096;
const SLOT_SIZE: usize = 16;
const BLK_SIZE: usize = 16;
const HEADER_SIZE: usize = 32;
const BLOB_HEAD: usize = 16;
const BLOB_TAIL: usize = 12;

fn err(msg: impl Into<String>) -> RpmError {
    RpmError::Ndb(msg.into())
}

fn le32(b: &[u8], at: usize) -> Option<u32> {
    let s = b.get(at..at.checked_add(4)?)?;
    Some(u32::from_le_bytes([s[0], s[1], s[2], s[3]]))
}

/// Whether `data` starts like an ndb package database.
pub fn is_ndb(data: &[u8]) -> bool {
    le32(data, 0) == Some(DB_MAGIC)
}

/// Adler-32 as in RFC 1950.
pub fn adler32(data: &[u8]) -> u32 {
    let (mut a, mut b) = (1u32, 0u32);
    for chunk in data.chunks(5552) {
        for x in chunk {
            a += *x as u32;
            b += a;
        }
        a %= 65521;
        b %= 65521;
    }
    (b << 16) | a
}

/// The header blobs of an ndb `Packages.db`, with their package indexes, in file order. Blobs
/// whose checksum, length or magic do not match fail the whole read (the database is corrupt).
pub fn read_packages(data: &[u8]) -> Result<Vec<(u32, Vec<u8>)>, RpmError> {
    if !is_ndb(data) || data.len() < HEADER_SIZE {
        return Err(err("not an ndb database (bad magic)"));
    }
    let version = le32(data, 4).unwrap_or(u32::MAX);
    if version != 0 {
        return Err(err(format!("unsupported ndb version {version}")));
    }
    let slot_pages = le32(data, 12).unwrap_or(0) as usize;
    if slot_pages == 0 || slot_pages.saturating_mul(PAGE_SIZE) > data.len() {
        return Err(err(format!(
            "{slot_pages} slot pages do not fit in {} bytes",
            data.len()
        )));
    }
    let file_blocks = data.len() / BLK_SIZE;
    let min_blkoff = slot_pages * (PAGE_SIZE / BLK_SIZE);
    let mut out = Vec::new();
    let mut total = 0usize;
    for page in 0..slot_pages {
        let first = if page == 0 { HEADER_SIZE } else { 0 };
        for o in (first..PAGE_SIZE).step_by(SLOT_SIZE) {
            let at = page * PAGE_SIZE + o;
            if le32(data, at) != Some(SLOT_MAGIC) {
                return Err(err(format!("bad slot magic at offset {at}")));
            }
            let pkgidx = le32(data, at + 4).unwrap_or(0);
            let blkoff = le32(data, at + 8).unwrap_or(0) as usize;
            let blkcnt = le32(data, at + 12).unwrap_or(0) as usize;
            if blkoff == 0 {
                continue;
            }
            if pkgidx == 0 || blkcnt == 0 || blkoff < min_blkoff {
                return Err(err(format!("bad slot at offset {at}")));
            }
            if blkoff.saturating_add(blkcnt) > file_blocks {
                return Err(err(format!(
                    "slot for package {pkgidx} points past the end of the file (truncated)"
                )));
            }
            // Blobs of a sound file do not overlap; slots sharing one blob would multiply it.
            total = total.saturating_add(blkcnt * BLK_SIZE);
            if total > data.len() {
                return Err(err(
                    "blobs add up to more than the file size (overlapping slots)",
                ));
            }
            let blob = read_blob(data, pkgidx, blkoff, blkcnt)?;
            out.push((pkgidx, blob));
        }
    }
    Ok(out)
}

fn read_blob(data: &[u8], pkgidx: u32, blkoff: usize, blkcnt: usize) -> Result<Vec<u8>, RpmError> {
    let start = blkoff * BLK_SIZE;
    let region = data
        .get(start..start + blkcnt * BLK_SIZE)
        .ok_or_else(|| err(format!("blob of package {pkgidx} outside file")))?;
    if region.len() < BLOB_HEAD + BLOB_TAIL {
        return Err(err(format!("blob of package {pkgidx} too small")));
    }
    if le32(region, 0) != Some(BLOB_HEAD_MAGIC) {
        return Err(err(format!("blob of package {pkgidx}: bad head magic")));
    }
    if le32(region, 4) != Some(pkgidx) {
        return Err(err(format!("blob of package {pkgidx}: index mismatch")));
    }
    let bloblen = le32(region, 12).unwrap_or(0) as usize;
    if (BLOB_HEAD + bloblen + BLOB_TAIL).div_ceil(BLK_SIZE) != blkcnt {
        return Err(err(format!(
            "blob of package {pkgidx}: length {bloblen} does not fill {blkcnt} blocks"
        )));
    }
    let tail = region.len() - BLOB_TAIL;
    let sum = le32(region, tail).unwrap_or(0);
    if le32(region, tail + 4) != Some(bloblen as u32)
        || le32(region, tail + 8) != Some(BLOB_TAIL_MAGIC)
    {
        return Err(err(format!("blob of package {pkgidx}: bad tail")));
    }
    if adler32(&region[..tail]) != sum {
        return Err(err(format!("blob of package {pkgidx}: checksum mismatch")));
    }
    Ok(region[BLOB_HEAD..BLOB_HEAD + bloblen].to_vec())
}

/// Writes an ndb database holding `blobs` (package index, header blob) in the layout rpm's ndb
/// backend uses, for tests and fuzz seeds (the committed fixture itself comes from rpm's own
/// ndb code, see tests/fixtures/rpm/make.sh).
#[doc(hidden)]
pub fn write_packages(blobs: &[(u32, Vec<u8>)], timestamp: u32) -> Vec<u8> {
    let slots_per_page = PAGE_SIZE / SLOT_SIZE;
    let slot_pages = (blobs.len() + 2).div_ceil(slots_per_page).max(1);
    let mut out = vec![0u8; slot_pages * PAGE_SIZE];
    for s in (0..out.len()).step_by(SLOT_SIZE) {
        out[s..s + 4].copy_from_slice(&SLOT_MAGIC.to_le_bytes());
    }
    out[0..4].copy_from_slice(&DB_MAGIC.to_le_bytes());
    out[4..8].copy_from_slice(&0u32.to_le_bytes());
    out[8..12].copy_from_slice(&(blobs.len() as u32 + 1).to_le_bytes());
    out[12..16].copy_from_slice(&(slot_pages as u32).to_le_bytes());
    let next = blobs.iter().map(|(i, _)| *i).max().unwrap_or(0) + 1;
    out[16..20].copy_from_slice(&next.to_le_bytes());
    out[20..32].fill(0);
    for (n, (pkgidx, blob)) in blobs.iter().enumerate() {
        let blkoff = out.len() / BLK_SIZE;
        let blkcnt = (BLOB_HEAD + blob.len() + BLOB_TAIL).div_ceil(BLK_SIZE);
        let mut region = Vec::with_capacity(blkcnt * BLK_SIZE);
        region.extend_from_slice(&BLOB_HEAD_MAGIC.to_le_bytes());
        region.extend_from_slice(&pkgidx.to_le_bytes());
        region.extend_from_slice(&timestamp.to_le_bytes());
        region.extend_from_slice(&(blob.len() as u32).to_le_bytes());
        region.extend_from_slice(blob);
        region.resize(blkcnt * BLK_SIZE - BLOB_TAIL, 0);
        let sum = adler32(&region);
        region.extend_from_slice(&sum.to_le_bytes());
        region.extend_from_slice(&(blob.len() as u32).to_le_bytes());
        region.extend_from_slice(&BLOB_TAIL_MAGIC.to_le_bytes());
        out.extend_from_slice(&region);
        let slot = HEADER_SIZE + n * SLOT_SIZE;
        out[slot + 4..slot + 8].copy_from_slice(&pkgidx.to_le_bytes());
        out[slot + 8..slot + 12].copy_from_slice(&(blkoff as u32).to_le_bytes());
        out[slot + 12..slot + 16].copy_from_slice(&(blkcnt as u32).to_le_bytes());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn adler_matches_rfc1950_example() {
        assert_eq!(adler32(b"Wikipedia"), 0x11E6_0398);
    }

    #[test]
    fn round_trips_and_detects_corruption() {
        let blobs = vec![(1, b"first header".to_vec()), (7, vec![0xab; 5000])];
        let db = write_packages(&blobs, 1_700_000_000);
        assert_eq!(read_packages(&db).unwrap(), blobs);
        let mut bad = db.clone();
        let last = bad.len() - 20;
        bad[last] ^= 1;
        assert!(
            read_packages(&bad)
                .unwrap_err()
                .to_string()
                .contains("checksum")
        );
        for n in [0, 10, 31, 4096, db.len() - 1] {
            assert!(read_packages(&db[..n]).is_err());
        }
    }
}
