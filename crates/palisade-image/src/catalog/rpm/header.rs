//! The rpm header blob as rpm stores it in its databases: an index of typed tag entries over a data
//! store, all big-endian (no lead, no signature; optionally prefixed by the 8-byte header magic).
//!
//! Layout: `il: u32` (index entries), `dl: u32` (data bytes), `il` entries of
//! `{tag: i32, type: u32, offset: i32, count: u32}`, then `dl` bytes of data. The first entry may be
//! a region tag (HEADERIMMUTABLE 63, HEADERSIGNATURES 62, HEADERIMAGE 61) whose data is a 16-byte
//! trailer entry pointing back at the region. Only the tags a scanner needs are decoded; every
//! offset and count is checked against the blob.

use super::RpmError;

/// Header magic some blobs start with (`8e ad e8 01` + 4 reserved bytes).
const HEADER_MAGIC: [u8; 4] = [0x8e, 0xad, 0xe8, 0x01];
/// rpm's own limits (`hdrchkTags`, `hdrchkData`): at most 65535 entries and 256 MiB of data.
const MAX_INDEX_ENTRIES: u32 = 0xffff;
const MAX_DATA_LEN: u32 = 0x0fff_ffff;
const ENTRY_SIZE: usize = 16;

pub const TAG_HEADERIMAGE: i32 = 61;
pub const TAG_HEADERSIGNATURES: i32 = 62;
pub const TAG_HEADERIMMUTABLE: i32 = 63;
pub const TAG_NAME: i32 = 1000;
pub const TAG_VERSION: i32 = 1001;
pub const TAG_RELEASE: i32 = 1002;
pub const TAG_EPOCH: i32 = 1003;
pub const TAG_VENDOR: i32 = 1011;
pub const TAG_LICENSE: i32 = 1014;
pub const TAG_ARCH: i32 = 1022;
pub const TAG_SOURCERPM: i32 = 1044;

const TYPE_INT32: u32 = 4;
const TYPE_STRING: u32 = 6;
const TYPE_BIN: u32 = 7;
const TYPE_STRING_ARRAY: u32 = 8;
const TYPE_I18NSTRING: u32 = 9;

/// The package identity read from one rpm header.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct RpmHeader {
    pub name: String,
    pub epoch: Option<i32>,
    pub version: String,
    pub release: String,
    pub arch: Option<String>,
    pub license: Option<String>,
    /// `SOURCERPM`, e.g. `openssl-1.0.2k-19.el7.src.rpm`; absent for source packages and gpg-pubkey.
    pub source_rpm: Option<String>,
    pub vendor: Option<String>,
}

impl RpmHeader {
    /// The version string advisories compare against: `[epoch:]version-release`.
    pub fn evr(&self) -> String {
        let mut s = String::new();
        if let Some(e) = self.epoch {
            s.push_str(&e.to_string());
            s.push(':');
        }
        s.push_str(&self.version);
        if !self.release.is_empty() {
            s.push('-');
            s.push_str(&self.release);
        }
        s
    }

    /// Source package name and `version-release` from `SOURCERPM` (`name-version-release.src.rpm`).
    pub fn source(&self) -> Option<(String, String)> {
        parse_source_rpm(self.source_rpm.as_deref()?)
    }
}

/// Splits `openssl-1.0.2k-19.el7.src.rpm` into (`openssl`, `1.0.2k-19.el7`). The name may contain
/// dashes; version and release may not.
pub fn parse_source_rpm(s: &str) -> Option<(String, String)> {
    let base = s
        .strip_suffix(".src.rpm")
        .or_else(|| s.strip_suffix(".nosrc.rpm"))
        .unwrap_or(s);
    let (rest, release) = base.rsplit_once('-')?;
    let (name, version) = rest.rsplit_once('-')?;
    if name.is_empty() || version.is_empty() || release.is_empty() {
        return None;
    }
    Some((name.to_string(), format!("{version}-{release}")))
}

fn be_u32(b: &[u8], at: usize) -> Option<u32> {
    let s = b.get(at..at.checked_add(4)?)?;
    Some(u32::from_be_bytes([s[0], s[1], s[2], s[3]]))
}

fn err(msg: impl Into<String>) -> RpmError {
    RpmError::Header(msg.into())
}

/// One index entry, as stored.
#[derive(Debug, Clone, Copy)]
struct Entry {
    tag: i32,
    kind: u32,
    offset: i32,
    count: u32,
}

/// Parses a header blob and extracts the package identity. Fails on any out-of-bounds offset,
/// impossible count, or missing NAME/VERSION.
pub fn parse_header(blob: &[u8]) -> Result<RpmHeader, RpmError> {
    let blob = if blob.len() >= 8 && blob[..4] == HEADER_MAGIC {
        &blob[8..]
    } else {
        blob
    };
    let il = be_u32(blob, 0).ok_or_else(|| err("blob shorter than 8 bytes"))?;
    let dl = be_u32(blob, 4).ok_or_else(|| err("blob shorter than 8 bytes"))?;
    if il == 0 || il > MAX_INDEX_ENTRIES {
        return Err(err(format!("implausible index entry count {il}")));
    }
    if dl > MAX_DATA_LEN {
        return Err(err(format!("implausible data length {dl}")));
    }
    let index_len = il as usize * ENTRY_SIZE;
    let need = 8 + index_len + dl as usize;
    if blob.len() < need {
        return Err(err(format!(
            "truncated: {il} entries and {dl} data bytes need {need} bytes, blob has {}",
            blob.len()
        )));
    }
    let index = &blob[8..8 + index_len];
    let data = &blob[8 + index_len..need];
    let mut entries = Vec::with_capacity(il as usize);
    for chunk in index.chunks_exact(ENTRY_SIZE) {
        entries.push(Entry {
            tag: i32::from_be_bytes([chunk[0], chunk[1], chunk[2], chunk[3]]),
            kind: u32::from_be_bytes([chunk[4], chunk[5], chunk[6], chunk[7]]),
            offset: i32::from_be_bytes([chunk[8], chunk[9], chunk[10], chunk[11]]),
            count: u32::from_be_bytes([chunk[12], chunk[13], chunk[14], chunk[15]]),
        });
    }
    if let Some(first) = entries.first()
        && matches!(
            first.tag,
            TAG_HEADERIMAGE | TAG_HEADERSIGNATURES | TAG_HEADERIMMUTABLE
        )
    {
        check_region(first, data, il)?;
    }

    let mut h = RpmHeader::default();
    let mut have_name = false;
    let mut have_version = false;
    // Later entries win: entries appended after the immutable region ("dribbles") override it.
    for e in &entries {
        if e.offset < 0 || e.offset as u64 >= data.len() as u64 {
            // Region tags point at their trailer (checked above); other entries must lie inside.
            if matches!(
                e.tag,
                TAG_HEADERIMAGE | TAG_HEADERSIGNATURES | TAG_HEADERIMMUTABLE
            ) {
                continue;
            }
            if is_wanted(e.tag) {
                return Err(err(format!(
                    "tag {} offset {} outside data of {} bytes",
                    e.tag,
                    e.offset,
                    data.len()
                )));
            }
            continue;
        }
        match e.tag {
            TAG_NAME => {
                h.name = string(e, data)?;
                have_name = true;
            }
            TAG_VERSION => {
                h.version = string(e, data)?;
                have_version = true;
            }
            TAG_RELEASE => h.release = string(e, data)?,
            TAG_EPOCH => h.epoch = Some(int32(e, data)?),
            TAG_ARCH => h.arch = Some(string(e, data)?),
            TAG_LICENSE => h.license = Some(string(e, data)?),
            TAG_SOURCERPM => h.source_rpm = Some(string(e, data)?),
            TAG_VENDOR => h.vendor = Some(string(e, data)?),
            _ => {}
        }
    }
    if !have_name || h.name.is_empty() {
        return Err(err("no NAME tag"));
    }
    if !have_version {
        return Err(err(format!("{}: no VERSION tag", h.name)));
    }
    Ok(h)
}

fn is_wanted(tag: i32) -> bool {
    matches!(
        tag,
        TAG_NAME
            | TAG_VERSION
            | TAG_RELEASE
            | TAG_EPOCH
            | TAG_ARCH
            | TAG_LICENSE
            | TAG_SOURCERPM
            | TAG_VENDOR
    )
}

/// A region tag: BIN of 16 bytes at `offset`, holding a trailer entry whose negative offset
/// covers at most the whole index.
fn check_region(e: &Entry, data: &[u8], il: u32) -> Result<(), RpmError> {
    if e.kind != TYPE_BIN || e.count != ENTRY_SIZE as u32 {
        return Err(err(format!(
            "region tag {} has type {} count {}",
            e.tag, e.kind, e.count
        )));
    }
    let off = usize::try_from(e.offset).map_err(|_| err("negative region offset"))?;
    let trailer = data
        .get(off..off.saturating_add(ENTRY_SIZE))
        .filter(|t| t.len() == ENTRY_SIZE)
        .ok_or_else(|| err(format!("region trailer at {off} outside data")))?;
    let ttag = i32::from_be_bytes([trailer[0], trailer[1], trailer[2], trailer[3]]);
    let toff = i32::from_be_bytes([trailer[8], trailer[9], trailer[10], trailer[11]]);
    // rpm writes the trailer with the region tag (or HEADERIMAGE for some legacy headers).
    if ttag != e.tag && ttag != TAG_HEADERIMAGE {
        return Err(err(format!("region trailer tag {ttag} != {}", e.tag)));
    }
    let ril = (toff as i64).checked_neg().unwrap_or(0) / ENTRY_SIZE as i64;
    if toff > 0 || ril > il as i64 {
        return Err(err(format!("region trailer offset {toff} out of range")));
    }
    Ok(())
}

/// STRING / I18NSTRING (first translation) / STRING_ARRAY (first element): NUL-terminated.
fn string(e: &Entry, data: &[u8]) -> Result<String, RpmError> {
    if !matches!(e.kind, TYPE_STRING | TYPE_I18NSTRING | TYPE_STRING_ARRAY) {
        return Err(err(format!(
            "tag {} has type {}, not a string",
            e.tag, e.kind
        )));
    }
    if e.count == 0 {
        return Err(err(format!("tag {} has count 0", e.tag)));
    }
    let start = e.offset as usize;
    let rest = &data[start..];
    let end = memchr::memchr(0, rest)
        .ok_or_else(|| err(format!("tag {} string not NUL-terminated", e.tag)))?;
    Ok(String::from_utf8_lossy(&rest[..end]).into_owned())
}

fn int32(e: &Entry, data: &[u8]) -> Result<i32, RpmError> {
    if e.kind != TYPE_INT32 || e.count == 0 {
        return Err(err(format!(
            "tag {} has type {} count {}, not INT32",
            e.tag, e.kind, e.count
        )));
    }
    let start = e.offset as usize;
    if !start.is_multiple_of(4) {
        return Err(err(format!("tag {} INT32 misaligned at {start}", e.tag)));
    }
    be_u32(data, start)
        .map(|v| v as i32)
        .ok_or_else(|| err(format!("tag {} INT32 outside data", e.tag)))
}

/// Builds a header blob from (tag, type, value bytes) entries, with an immutable region around
/// them — the shape rpm writes. For tests and the ndb test writer.
#[doc(hidden)]
pub fn build_header(entries: &[(i32, u32, Vec<u8>)]) -> Vec<u8> {
    let il = entries.len() + 1;
    let mut index = Vec::new();
    let mut data = Vec::new();
    let mut body = Vec::new();
    for (tag, kind, value) in entries {
        if *kind == TYPE_INT32 {
            while data.len() % 4 != 0 {
                data.push(0);
            }
        }
        let mut e = Vec::new();
        e.extend_from_slice(&tag.to_be_bytes());
        e.extend_from_slice(&kind.to_be_bytes());
        e.extend_from_slice(&(data.len() as i32).to_be_bytes());
        let count: u32 = if *kind == TYPE_INT32 {
            (value.len() / 4) as u32
        } else {
            1
        };
        e.extend_from_slice(&count.to_be_bytes());
        body.push(e);
        data.extend_from_slice(value);
    }
    let trailer_off = data.len() as i32;
    data.extend_from_slice(&TAG_HEADERIMMUTABLE.to_be_bytes());
    data.extend_from_slice(&TYPE_BIN.to_be_bytes());
    data.extend_from_slice(&(-((il * ENTRY_SIZE) as i32)).to_be_bytes());
    data.extend_from_slice(&16u32.to_be_bytes());
    index.extend_from_slice(&TAG_HEADERIMMUTABLE.to_be_bytes());
    index.extend_from_slice(&TYPE_BIN.to_be_bytes());
    index.extend_from_slice(&trailer_off.to_be_bytes());
    index.extend_from_slice(&16u32.to_be_bytes());
    for e in body {
        index.extend_from_slice(&e);
    }
    let mut out = Vec::new();
    out.extend_from_slice(&(il as u32).to_be_bytes());
    out.extend_from_slice(&(data.len() as u32).to_be_bytes());
    out.extend_from_slice(&index);
    out.extend_from_slice(&data);
    out
}

/// A NUL-terminated STRING value for [`build_header`].
#[doc(hidden)]
pub fn string_value(tag: i32, s: &str) -> (i32, u32, Vec<u8>) {
    let mut v = s.as_bytes().to_vec();
    v.push(0);
    (tag, TYPE_STRING, v)
}

/// An INT32 value for [`build_header`].
#[doc(hidden)]
pub fn int32_value(tag: i32, v: i32) -> (i32, u32, Vec<u8>) {
    (tag, TYPE_INT32, v.to_be_bytes().to_vec())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Vec<u8> {
        build_header(&[
            string_value(TAG_NAME, "openssl-libs"),
            string_value(TAG_VERSION, "1.0.2k"),
            string_value(TAG_RELEASE, "19.el7"),
            int32_value(TAG_EPOCH, 1),
            string_value(TAG_VENDOR, "CentOS"),
            string_value(TAG_LICENSE, "OpenSSL"),
            string_value(TAG_ARCH, "x86_64"),
            string_value(TAG_SOURCERPM, "openssl-1.0.2k-19.el7.src.rpm"),
        ])
    }

    #[test]
    fn parses_identity() {
        let h = parse_header(&sample()).unwrap();
        assert_eq!(h.name, "openssl-libs");
        assert_eq!(h.evr(), "1:1.0.2k-19.el7");
        assert_eq!(h.arch.as_deref(), Some("x86_64"));
        assert_eq!(h.license.as_deref(), Some("OpenSSL"));
        assert_eq!(h.vendor.as_deref(), Some("CentOS"));
        assert_eq!(
            h.source(),
            Some(("openssl".to_string(), "1.0.2k-19.el7".to_string()))
        );
    }

    #[test]
    fn accepts_magic_prefix() {
        let mut b = vec![0x8e, 0xad, 0xe8, 0x01, 0, 0, 0, 0];
        b.extend(sample());
        assert_eq!(parse_header(&b).unwrap().name, "openssl-libs");
    }

    #[test]
    fn source_rpm_names() {
        assert_eq!(
            parse_source_rpm("python3-pip-21.3.1-1.el9.src.rpm"),
            Some(("python3-pip".into(), "21.3.1-1.el9".into()))
        );
        assert_eq!(parse_source_rpm("broken.src.rpm"), None);
    }

    #[test]
    fn rejects_every_truncation_without_panicking() {
        let b = sample();
        for n in 0..b.len() {
            assert!(parse_header(&b[..n]).is_err(), "prefix {n} accepted");
        }
    }

    #[test]
    fn rejects_out_of_bounds_offsets_and_bad_types() {
        let mut b = sample();
        // Entry 1 (NAME): offset field at 8 + 16 + 8.
        b[8 + 16 + 8..8 + 16 + 12].copy_from_slice(&0x7fff_fff0i32.to_be_bytes());
        assert!(parse_header(&b).is_err());
        let mut b = sample();
        // NAME type → INT32.
        b[8 + 16 + 4..8 + 16 + 8].copy_from_slice(&4u32.to_be_bytes());
        assert!(parse_header(&b).is_err());
        let mut b = sample();
        b[0..4].copy_from_slice(&0x10_0000u32.to_be_bytes());
        assert!(parse_header(&b).is_err());
    }

    #[test]
    fn missing_name_is_an_error() {
        let b = build_header(&[string_value(TAG_VERSION, "1")]);
        assert!(parse_header(&b).is_err());
    }
}
