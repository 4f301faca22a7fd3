//! Records and batches as bytes: the JSON line of one record, the batch document of the ingest
//! contract (docs/sensor-ingest.md), gzip, and the spool frame that keeps a sealed batch with
//! its idempotency key and record count.

use flate2::Compression;
use flate2::write::GzEncoder;
use palisade_detect::alert::{AlertFormat, DetectAlert, write_alert};
use palisade_detect::node::NodeEvent;
use std::io::Write;

/// The `schema` value of a batch document.
pub const BATCH_SCHEMA: &str = "palisade.sensor.batch/v1";

/// Which array of the batch a record belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RecordKind {
    Event,
    Alert,
}

impl RecordKind {
    /// The `record` value of a JSON line.
    pub fn as_str(self) -> &'static str {
        match self {
            RecordKind::Event => "event",
            RecordKind::Alert => "alert",
        }
    }
}

/// One serialised record: a JSON object without the `record` tag.
#[derive(Debug, Clone)]
pub struct Record {
    pub kind: RecordKind,
    pub json: Vec<u8>,
}

impl Record {
    /// A node event as its serde JSON (the rule field names).
    pub fn event(event: &NodeEvent) -> Result<Record, serde_json::Error> {
        Ok(Record {
            kind: RecordKind::Event,
            json: serde_json::to_vec(event)?,
        })
    }

    /// An alert as the detect JSON alert document (ECS-style keys, the same as `detect serve`
    /// writes), which carries the node context the rules put in the alert.
    pub fn alert(alert: &DetectAlert) -> Result<Record, std::io::Error> {
        let mut json = Vec::with_capacity(1024);
        write_alert(alert, AlertFormat::Json, &mut json)?;
        while json.last() == Some(&b'\n') {
            json.pop();
        }
        Ok(Record {
            kind: RecordKind::Alert,
            json,
        })
    }

    /// Bytes the record holds in memory.
    pub fn len(&self) -> usize {
        self.json.len()
    }

    /// True for an empty object body (never produced by the constructors).
    pub fn is_empty(&self) -> bool {
        self.json.len() <= 2
    }

    /// The JSON line (newline-terminated) with `"record"` as its first key.
    pub fn write_line(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(b"{\"record\":\"");
        out.extend_from_slice(self.kind.as_str().as_bytes());
        out.push(b'"');
        // The serialised object is `{…}`; a non-empty one continues after a comma.
        let inner = self.json.get(1..).unwrap_or(b"}");
        if inner.first() != Some(&b'}') {
            out.push(b',');
        }
        out.extend_from_slice(inner);
        out.push(b'\n');
    }
}

/// Who sends: the `sensor` object of every batch.
#[derive(Debug, Clone, serde::Serialize)]
pub struct SensorIdentity {
    /// Unique per sensor run: `<node>-<start time in nanoseconds, hex>`; with the sequence number
    /// it makes the batch id.
    pub id: String,
    pub node: String,
    pub cluster: Option<String>,
    pub version: String,
    /// RFC 3339 start time of this sensor run.
    pub started: String,
}

/// A sealed batch: gzip body ready to POST.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EncodedBatch {
    /// The idempotency key (`batch_id` in the body and the `Idempotency-Key` header).
    pub id: String,
    /// Events + alerts in it.
    pub records: u32,
    /// The gzip-compressed batch document.
    pub body: Vec<u8>,
}

/// Builds the batch document and compresses it.
pub fn encode_batch(
    id: &str,
    sensor: &SensorIdentity,
    created: &str,
    records: &[Record],
    heartbeat: Option<&serde_json::Value>,
) -> std::io::Result<EncodedBatch> {
    let raw: usize = records.iter().map(Record::len).sum();
    let mut doc = Vec::with_capacity(raw + records.len() + 512);
    doc.extend_from_slice(b"{\"schema\":");
    serde_json::to_writer(&mut doc, BATCH_SCHEMA)?;
    doc.extend_from_slice(b",\"batch_id\":");
    serde_json::to_writer(&mut doc, id)?;
    doc.extend_from_slice(b",\"sensor\":");
    serde_json::to_writer(&mut doc, sensor)?;
    doc.extend_from_slice(b",\"created\":");
    serde_json::to_writer(&mut doc, created)?;
    for (key, kind) in [("events", RecordKind::Event), ("alerts", RecordKind::Alert)] {
        doc.extend_from_slice(b",\"");
        doc.extend_from_slice(key.as_bytes());
        doc.extend_from_slice(b"\":[");
        let mut first = true;
        for record in records.iter().filter(|r| r.kind == kind) {
            if !first {
                doc.push(b',');
            }
            first = false;
            doc.extend_from_slice(&record.json);
        }
        doc.push(b']');
    }
    if let Some(heartbeat) = heartbeat {
        doc.extend_from_slice(b",\"heartbeat\":");
        serde_json::to_writer(&mut doc, heartbeat)?;
    }
    doc.push(b'}');
    let mut gz = GzEncoder::new(Vec::with_capacity(doc.len() / 4 + 64), Compression::fast());
    gz.write_all(&doc)?;
    Ok(EncodedBatch {
        id: id.to_string(),
        records: u32::try_from(records.len()).unwrap_or(u32::MAX),
        body: gz.finish()?,
    })
}

/// The spool frame payload of a batch: `u32` LE record count, `u16` LE id length, id, body.
pub fn to_frame(batch: &EncodedBatch) -> Vec<u8> {
    let id = batch.id.as_bytes();
    let id_len = u16::try_from(id.len()).unwrap_or(u16::MAX);
    let id = &id[..usize::from(id_len)];
    let mut frame = Vec::with_capacity(6 + id.len() + batch.body.len());
    frame.extend_from_slice(&batch.records.to_le_bytes());
    frame.extend_from_slice(&id_len.to_le_bytes());
    frame.extend_from_slice(id);
    frame.extend_from_slice(&batch.body);
    frame
}

/// Reads a spool frame back; `None` when it is too short or the id is not UTF-8 (the spool's
/// CRC makes that a bug or a foreign file, counted as corrupt by the caller).
pub fn from_frame(frame: &[u8]) -> Option<EncodedBatch> {
    let records = u32::from_le_bytes(frame.get(0..4)?.try_into().ok()?);
    let id_len = usize::from(u16::from_le_bytes(frame.get(4..6)?.try_into().ok()?));
    let id = std::str::from_utf8(frame.get(6..6 + id_len)?).ok()?;
    Some(EncodedBatch {
        id: id.to_string(),
        records,
        body: frame.get(6 + id_len..)?.to_vec(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use flate2::read::GzDecoder;
    use std::io::Read;

    fn sensor() -> SensorIdentity {
        SensorIdentity {
            id: "node-a-1".into(),
            node: "node-a".into(),
            cluster: Some("prod".into()),
            version: "0.1.0".into(),
            started: "2026-01-01T00:00:00Z".into(),
        }
    }

    #[test]
    fn line_puts_the_record_tag_first_and_stays_valid_json() {
        let event = NodeEvent {
            id: "e1".into(),
            node: "node-a".into(),
            ..NodeEvent::default()
        };
        let mut line = Vec::new();
        Record::event(&event).unwrap().write_line(&mut line);
        assert!(line.starts_with(b"{\"record\":\"event\",\"id\":\"e1\""));
        assert_eq!(line.last(), Some(&b'\n'));
        let v: serde_json::Value = serde_json::from_slice(&line).unwrap();
        assert_eq!(v["record"], "event");
        assert_eq!(v["event.type"], "exec");
        let back: NodeEvent = serde_json::from_value(v).unwrap();
        assert_eq!(back, event);

        let empty = Record {
            kind: RecordKind::Alert,
            json: b"{}".to_vec(),
        };
        let mut line = Vec::new();
        empty.write_line(&mut line);
        assert_eq!(line, b"{\"record\":\"alert\"}\n");
    }

    #[test]
    fn batch_document_splits_events_and_alerts_and_round_trips_through_a_frame() {
        let records = vec![
            Record {
                kind: RecordKind::Event,
                json: br#"{"id":"e1"}"#.to_vec(),
            },
            Record {
                kind: RecordKind::Alert,
                json: br#"{"rule.id":"K8S.NODE_X"}"#.to_vec(),
            },
            Record {
                kind: RecordKind::Event,
                json: br#"{"id":"e2"}"#.to_vec(),
            },
        ];
        let heartbeat = serde_json::json!({"kernel": {"drops": 0}});
        let batch = encode_batch(
            "node-a-1-7",
            &sensor(),
            "2026-01-01T00:00:01Z",
            &records,
            Some(&heartbeat),
        )
        .unwrap();
        assert_eq!(batch.records, 3);
        let mut text = String::new();
        GzDecoder::new(batch.body.as_slice())
            .read_to_string(&mut text)
            .unwrap();
        let v: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert_eq!(v["schema"], BATCH_SCHEMA);
        assert_eq!(v["batch_id"], "node-a-1-7");
        assert_eq!(v["sensor"]["cluster"], "prod");
        assert_eq!(v["events"][1]["id"], "e2");
        assert_eq!(v["alerts"][0]["rule.id"], "K8S.NODE_X");
        assert_eq!(v["heartbeat"]["kernel"]["drops"], 0);

        let frame = to_frame(&batch);
        assert_eq!(from_frame(&frame), Some(batch));
        assert_eq!(from_frame(&frame[..5]), None);
    }
}
