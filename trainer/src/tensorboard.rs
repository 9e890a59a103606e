//! TensorBoard scalars next to a run's JSONL logs: every number of an `epochs.jsonl` line, under
//! its JSON path as the tag (`test/fused/accuracy`, `mean_k_a`), at the epoch as the step.
//!
//! The event file is TensorFlow's record format written by hand (no TensorFlow, no protobuf
//! crate): each record is its length (u64 LE), the length's masked CRC-32C, the bytes, their
//! masked CRC-32C; each record one `Event` protobuf (`wall_time` = 1, `step` = 2, `file_version`
//! = 3, `summary` = 5 holding `Value { tag = 1, simple_value = 2 }`s). Below the loops, like
//! `run_log`: it knows JSON values, not what a loop logs.

use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use anyhow::{Context, Result};
use serde::Serialize;
use serde_json::Value;

/// The run folder's event file. One fixed name (TensorBoard reads any `*tfevents*` file), so a
/// resumed run rewrites the file its interrupted run started instead of adding a second one.
pub const EVENT_FILE: &str = "events.out.tfevents.ogmge";

/// The scalars of one log line: `(tag, value)` for every number in it, nested keys joined with
/// `/`; the `epoch` field itself (the step) and non-numbers left out.
pub fn scalars(line: &Value) -> Vec<(String, f64)> {
    fn walk(prefix: &str, v: &Value, out: &mut Vec<(String, f64)>) {
        match v {
            Value::Number(n) => out.extend(n.as_f64().map(|x| (prefix.to_owned(), x))),
            Value::Object(map) => {
                for (k, v) in map {
                    let tag = if prefix.is_empty() { k.clone() } else { format!("{prefix}/{k}") };
                    if tag != "epoch" {
                        walk(&tag, v, out);
                    }
                }
            }
            _ => {}
        }
    }
    let mut out = Vec::new();
    walk("", line, &mut out);
    out
}

/// One log line's record: its scalars at its `epoch` field as the step.
fn line_record(wall_time: f64, line: &impl Serialize) -> Result<Vec<u8>> {
    let value = serde_json::to_value(line)?;
    let epoch = value.get("epoch").and_then(Value::as_i64).context("a log line without an epoch")?;
    Ok(record(&event(wall_time, epoch, None, &scalars(&value))))
}

/// Writes a run's event file: [`EventWriter::rewrite`] once when a loop starts (the history a
/// resumed run kept), [`EventWriter::append`] after each epoch.
#[derive(Debug)]
pub struct EventWriter {
    path: PathBuf,
}

impl EventWriter {
    /// The event file of `dir`, made anew with the version record and `history` (each line at
    /// its `epoch` field as the step); written aside and renamed, so a reader never sees half of it.
    pub fn rewrite<L: Serialize>(dir: &Path, history: &[L]) -> Result<Self> {
        let path = dir.join(EVENT_FILE);
        let now = wall_time();
        let mut bytes = record(&event(now, 0, Some("brain.Event:2"), &[]));
        for line in history {
            bytes.extend(line_record(now, line)?);
        }
        datasets::durable::write_atomic(&path, &bytes)?;
        Ok(Self { path })
    }

    /// Appends one log line's scalars (at its `epoch` field as the step).
    pub fn append(&self, line: &impl Serialize) -> Result<()> {
        let bytes = line_record(wall_time(), line)?;
        Ok(datasets::durable::append_whole(&self.path, &bytes)?)
    }
}

/// The scalars of an event file as `(step, tag, value)`, in file order (records checked against
/// their CRCs): what a test compares two runs' files with. TensorBoard's own reader is the
/// Python package's test's.
pub fn read_scalars(path: &Path) -> Result<Vec<(i64, String, f32)>> {
    let bytes = std::fs::read(path).with_context(|| path.display().to_string())?;
    let bad = || anyhow::anyhow!("{}: not a well-formed event file", path.display());
    let mut out = Vec::new();
    let mut at = 0;
    while at < bytes.len() {
        let header = bytes.get(at..at + 12).ok_or_else(bad)?;
        let len = u64::from_le_bytes(header[..8].try_into()?) as usize;
        anyhow::ensure!(masked_crc(&header[..8]).to_le_bytes() == header[8..12], "{}: length CRC mismatch at byte {at}", path.display());
        let data = bytes.get(at + 12..at + 12 + len).ok_or_else(bad)?;
        let crc = bytes.get(at + 12 + len..at + 16 + len).ok_or_else(bad)?;
        anyhow::ensure!(masked_crc(data).to_le_bytes() == crc, "{}: data CRC mismatch at byte {at}", path.display());
        let (mut step, mut values) = (0i64, Vec::new());
        for (field, value) in fields(data).ok_or_else(bad)? {
            match (field, value) {
                (2, Field::Varint(v)) => step = v as i64,
                (5, Field::Bytes(summary)) => {
                    for (_, v) in fields(summary).ok_or_else(bad)? {
                        let Field::Bytes(v) = v else { continue };
                        let (mut tag, mut x) = (String::new(), f32::NAN);
                        for (f, inner) in fields(v).ok_or_else(bad)? {
                            match (f, inner) {
                                (1, Field::Bytes(t)) => tag = String::from_utf8_lossy(t).into_owned(),
                                (2, Field::Fixed32(b)) => x = f32::from_le_bytes(b),
                                _ => {}
                            }
                        }
                        values.push((tag, x));
                    }
                }
                _ => {}
            }
        }
        out.extend(values.into_iter().map(|(t, x)| (step, t, x)));
        at += 16 + len;
    }
    Ok(out)
}

enum Field<'a> {
    Varint(u64),
    Fixed64,
    Fixed32([u8; 4]),
    Bytes(&'a [u8]),
}

/// The fields of one protobuf message, or None where it is malformed.
fn fields(mut b: &[u8]) -> Option<Vec<(u64, Field<'_>)>> {
    fn read_varint(b: &mut &[u8]) -> Option<u64> {
        let mut v = 0u64;
        for shift in (0..64).step_by(7) {
            let (&byte, rest) = b.split_first()?;
            *b = rest;
            v |= u64::from(byte & 0x7f) << shift;
            if byte & 0x80 == 0 {
                return Some(v);
            }
        }
        None
    }
    let mut out = Vec::new();
    while !b.is_empty() {
        let key = read_varint(&mut b)?;
        let field = match key & 7 {
            0 => Field::Varint(read_varint(&mut b)?),
            1 => {
                b = b.get(8..)?;
                Field::Fixed64
            }
            2 => {
                let n = read_varint(&mut b)? as usize;
                let (v, rest) = (b.get(..n)?, b.get(n..)?);
                b = rest;
                Field::Bytes(v)
            }
            5 => {
                let v: [u8; 4] = b.get(..4)?.try_into().ok()?;
                b = &b[4..];
                Field::Fixed32(v)
            }
            _ => return None,
        };
        out.push((key >> 3, field));
    }
    Some(out)
}

fn wall_time() -> f64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0.0, |d| d.as_secs_f64())
}

/// One `Event` message.
fn event(wall_time: f64, step: i64, file_version: Option<&str>, values: &[(String, f64)]) -> Vec<u8> {
    let mut e = Vec::new();
    e.push(1 << 3 | 1); // wall_time: double
    e.extend(wall_time.to_le_bytes());
    if step != 0 {
        e.push(2 << 3); // step: int64 varint
        varint(&mut e, step as u64);
    }
    if let Some(v) = file_version {
        bytes_field(&mut e, 3, v.as_bytes());
    }
    if !values.is_empty() {
        let mut summary = Vec::new();
        for (tag, x) in values {
            let mut value = Vec::new();
            bytes_field(&mut value, 1, tag.as_bytes());
            value.push(2 << 3 | 5); // simple_value: float
            value.extend((*x as f32).to_le_bytes());
            bytes_field(&mut summary, 1, &value);
        }
        bytes_field(&mut e, 5, &summary);
    }
    e
}

fn varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

fn bytes_field(out: &mut Vec<u8>, field: u8, bytes: &[u8]) {
    out.push(field << 3 | 2);
    varint(out, bytes.len() as u64);
    out.extend_from_slice(bytes);
}

/// One TFRecord: length, its masked CRC, data, its masked CRC.
fn record(data: &[u8]) -> Vec<u8> {
    let len = (data.len() as u64).to_le_bytes();
    let mut out = Vec::with_capacity(data.len() + 16);
    out.extend(len);
    out.extend(masked_crc(&len).to_le_bytes());
    out.extend_from_slice(data);
    out.extend(masked_crc(data).to_le_bytes());
    out
}

fn masked_crc(data: &[u8]) -> u32 {
    let c = crc32c(data);
    (c.rotate_right(15)).wrapping_add(0xa282_ead8)
}

/// CRC-32C (Castagnoli), bitwise: event files are a few kilobytes.
fn crc32c(data: &[u8]) -> u32 {
    let mut crc = !0u32;
    for &b in data {
        crc ^= u32::from(b);
        for _ in 0..8 {
            crc = if crc & 1 != 0 { (crc >> 1) ^ 0x82f6_3b78 } else { crc >> 1 };
        }
    }
    !crc
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crc32c_matches_the_standard_check_values() {
        // RFC 3720 (iSCSI) B.4 and the common "123456789" check value.
        assert_eq!(crc32c(b"123456789"), 0xe306_9283);
        assert_eq!(crc32c(&[0u8; 32]), 0x8a91_36aa);
        assert_eq!(crc32c(&[0xffu8; 32]), 0x62a8_ab43);
    }

    #[test]
    fn an_event_file_reads_back_with_every_scalar_at_its_step() {
        let dir = tempfile::tempdir().unwrap();
        let lines = [serde_json::json!({"epoch": 0, "loss": 2.5}), serde_json::json!({"epoch": 1, "loss": 1.5})];
        let w = EventWriter::rewrite(dir.path(), &lines[..1]).unwrap();
        w.append(&lines[1]).unwrap();
        let got = read_scalars(&dir.path().join(EVENT_FILE)).unwrap();
        assert_eq!(got, [(0, "loss".to_owned(), 2.5), (1, "loss".to_owned(), 1.5)]);
        // A resumed run's history replaces the file: epoch 1 is gone until it is logged again.
        EventWriter::rewrite(dir.path(), &lines[..1]).unwrap();
        assert_eq!(read_scalars(&dir.path().join(EVENT_FILE)).unwrap().len(), 1);
        // A flipped byte is refused.
        let path = dir.path().join(EVENT_FILE);
        let mut bytes = std::fs::read(&path).unwrap();
        let n = bytes.len();
        bytes[n - 6] ^= 1;
        std::fs::write(&path, bytes).unwrap();
        assert!(read_scalars(&path).unwrap_err().to_string().contains("CRC"));
    }

    #[test]
    fn scalars_are_the_numbers_under_their_json_paths() {
        let line = serde_json::json!({"epoch": 3, "lr": 0.01, "val": null, "test": {"fused": {"accuracy": 0.5}, "name": "x"}});
        let mut got = scalars(&line);
        got.sort_by(|a, b| a.0.cmp(&b.0));
        assert_eq!(got, [("lr".to_owned(), 0.01), ("test/fused/accuracy".to_owned(), 0.5)]);
    }
}
