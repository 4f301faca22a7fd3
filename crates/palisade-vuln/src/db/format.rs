//! The on-disk layout of the advisory DB (schema version [`SCHEMA_VERSION`]).
//!
//! ```text
//! header (HEADER_LEN bytes, little endian)
//!   0   magic            b"PALISDB\0"
//!   8   schema version   u32
//!   12  flags            u32 (0)
//!   16  file length      u64 (detects truncation)
//!   24  sha256           of bytes [HEADER_LEN, advisory-table end): metadata, index, keys, table
//!   56  sha256           of the data section (checked by `verify`, not at open)
//!   88  sections         5 × (offset u64, length u64): metadata, index, keys, advisory table, data
//! metadata         postcard DbMetadata
//! index            n × 24-byte entries (key offset u32, key length u32, block offset u64,
//!                  block length u32, reserved u32), sorted by key bytes
//! keys             "<ecosystem key>\0<package name>" strings the index points into
//! advisory table   m × 12-byte entries (record offset u64, record length u32)
//! data             postcard AdvisoryRecord (affected emptied) per advisory, and per package a
//!                  postcard Vec<(advisory number u32, AffectedPackage)> block
//! ```
//! Opening reads only the header, metadata, index, keys and advisory table (a few percent of the
//! file), checks their checksum and decodes the metadata; the index is binary-searched in place,
//! and package blocks and advisories are read from the file (positioned reads) and decoded on
//! lookup. Memory use and open time therefore do not grow with the data section.

/// File magic.
pub const MAGIC: &[u8; 8] = b"PALISDB\0";
/// Bumped whenever the layout or the encoding of a stored type changes.
pub const SCHEMA_VERSION: u32 = 1;
/// Bytes before the first section.
pub const HEADER_LEN: usize = 88 + 5 * 16;
/// Bytes per index entry.
pub const INDEX_ENTRY: usize = 24;
/// Bytes per advisory table entry.
pub const ADV_ENTRY: usize = 12;

/// A section's place in the file.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Section {
    pub offset: u64,
    pub len: u64,
}

/// The decoded header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Header {
    pub schema_version: u32,
    pub file_len: u64,
    pub index_sha256: [u8; 32],
    pub data_sha256: [u8; 32],
    pub metadata: Section,
    pub index: Section,
    pub keys: Section,
    pub advisories: Section,
    pub data: Section,
}

impl Header {
    pub fn encode(&self) -> [u8; HEADER_LEN] {
        let mut out = [0u8; HEADER_LEN];
        out[0..8].copy_from_slice(MAGIC);
        out[8..12].copy_from_slice(&self.schema_version.to_le_bytes());
        out[16..24].copy_from_slice(&self.file_len.to_le_bytes());
        out[24..56].copy_from_slice(&self.index_sha256);
        out[56..88].copy_from_slice(&self.data_sha256);
        let sections = [
            self.metadata,
            self.index,
            self.keys,
            self.advisories,
            self.data,
        ];
        for (i, s) in sections.iter().enumerate() {
            let at = 88 + i * 16;
            out[at..at + 8].copy_from_slice(&s.offset.to_le_bytes());
            out[at + 8..at + 16].copy_from_slice(&s.len.to_le_bytes());
        }
        out
    }

    /// Decodes and bounds-checks a header (`bytes`: at least the first [`HEADER_LEN`] bytes of
    /// the file) against the actual file length. Errors are plain reasons.
    pub fn decode(bytes: &[u8], actual_len: u64) -> Result<Header, String> {
        if bytes.len() < HEADER_LEN || actual_len < HEADER_LEN as u64 {
            return Err(format!(
                "file is {actual_len} bytes, shorter than the {HEADER_LEN}-byte header (truncated \
                 or not a palisade advisory DB)"
            ));
        }
        if &bytes[0..8] != MAGIC {
            return Err("not a palisade advisory DB (bad magic)".into());
        }
        let schema_version = u32_at(bytes, 8);
        if schema_version != SCHEMA_VERSION {
            return Err(format!(
                "written with schema version {schema_version}, this palisade reads version \
                 {SCHEMA_VERSION}"
            ));
        }
        let file_len = u64_at(bytes, 16);
        if file_len != actual_len {
            return Err(format!(
                "file is {actual_len} bytes but its header says {file_len} (truncated or damaged)"
            ));
        }
        let mut index_sha256 = [0u8; 32];
        index_sha256.copy_from_slice(&bytes[24..56]);
        let mut data_sha256 = [0u8; 32];
        data_sha256.copy_from_slice(&bytes[56..88]);
        let mut sections = [Section::default(); 5];
        for (i, s) in sections.iter_mut().enumerate() {
            let at = 88 + i * 16;
            *s = Section {
                offset: u64_at(bytes, at),
                len: u64_at(bytes, at + 8),
            };
            let end = s.offset.checked_add(s.len);
            if s.offset < HEADER_LEN as u64 || end.is_none_or(|e| e > file_len) {
                return Err(format!("section {i} lies outside the file"));
            }
        }
        let [metadata, index, keys, advisories, data] = sections;
        if index.len % INDEX_ENTRY as u64 != 0 || advisories.len % ADV_ENTRY as u64 != 0 {
            return Err("index or advisory table has a partial entry".into());
        }
        // The checksummed region must be contiguous: metadata, index, keys, table.
        if index.offset != metadata.offset + metadata.len
            || keys.offset != index.offset + index.len
            || advisories.offset != keys.offset + keys.len
            || metadata.offset != HEADER_LEN as u64
        {
            return Err("sections are not laid out in order".into());
        }
        Ok(Header {
            schema_version,
            file_len,
            index_sha256,
            data_sha256,
            metadata,
            index,
            keys,
            advisories,
            data,
        })
    }
}

pub fn u32_at(b: &[u8], at: usize) -> u32 {
    let mut a = [0u8; 4];
    a.copy_from_slice(&b[at..at + 4]);
    u32::from_le_bytes(a)
}

pub fn u64_at(b: &[u8], at: usize) -> u64 {
    let mut a = [0u8; 8];
    a.copy_from_slice(&b[at..at + 8]);
    u64::from_le_bytes(a)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_round_trip_and_checks() {
        let h = Header {
            schema_version: SCHEMA_VERSION,
            file_len: HEADER_LEN as u64 + 10,
            index_sha256: [1; 32],
            data_sha256: [2; 32],
            metadata: Section {
                offset: HEADER_LEN as u64,
                len: 10,
            },
            index: Section {
                offset: HEADER_LEN as u64 + 10,
                len: 0,
            },
            keys: Section {
                offset: HEADER_LEN as u64 + 10,
                len: 0,
            },
            advisories: Section {
                offset: HEADER_LEN as u64 + 10,
                len: 0,
            },
            data: Section {
                offset: HEADER_LEN as u64 + 10,
                len: 0,
            },
        };
        let mut bytes = h.encode().to_vec();
        bytes.extend_from_slice(&[0; 10]);
        let n = bytes.len() as u64;
        assert_eq!(Header::decode(&bytes, n).unwrap(), h);
        assert!(Header::decode(&bytes, n - 1).is_err());
        assert!(Header::decode(&bytes[..HEADER_LEN - 1], n).is_err());
        let mut bad = bytes.clone();
        bad[8] = 99;
        assert!(
            Header::decode(&bad, n)
                .unwrap_err()
                .contains("schema version 99")
        );
        let mut bad = bytes.clone();
        bad[0] = b'X';
        assert!(Header::decode(&bad, n).is_err());
    }
}
