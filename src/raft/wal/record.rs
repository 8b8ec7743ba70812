//! The record framing of a WAL segment (drawn in `mod.rs`, "On-disk layout"): what a record
//! holds ([`Record`]), how it is framed (length, CRC32C, padding), and how a frame is parsed
//! and checked. Pure functions over bytes: no file, no state.

use std::io;

use bytes::Bytes;
use openraft::entry::RaftEntry;
use openraft::EntryPayload;
use serde::{Deserialize, Serialize};

use super::super::codec;
use super::super::typ::{Entry, LogId, Vote};
use super::super::EncodedRequest;

/// Bytes of a record's frame before its payload: length and CRC32C.
pub(super) const FRAME: u64 = 8;
/// Records start on multiples of this.
pub(super) const ALIGN: u64 = 8;
/// The largest payload a record may claim (an entry is at most ~1 GiB: `MAX_ENTRY_BYTES`).
pub(super) const MAX_RECORD: u64 = 1 << 31;
/// Bytes of CRC work the open-time scan for valid records after a bad one may spend before
/// it gives up and calls the damage corruption (refusing to start rather than guess).
pub(super) const SCAN_BUDGET: u64 = 256 << 20;

/// What the WAL stores. Variants only grow (postcard numbers them by position).
#[derive(Serialize, Deserialize)]
pub(super) enum Record {
    Entry(Entry),
    Vote(Vote),
    Committed(Option<LogId>),
    Purged(LogId),
    /// Entries with an index above this one (all if `None`) are gone.
    Truncated(Option<u64>),
    /// A sync had covered the first `off` bytes of segment `seq` when this record was written
    /// (SyncedMarks, `mod.rs`): only read at open, to tell damage a sync covered from a write
    /// that never reached the disk.
    Synced {
        seq: u64,
        off: u64,
    },
}

pub(super) fn seg_name(seq: u64) -> String {
    format!("{seq:020}.seg")
}

pub(super) fn parse_seg_name(name: &str) -> Option<u64> {
    let digits = name.strip_suffix(".seg")?;
    if digits.len() != 20 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

pub(super) fn padded(n: u64) -> u64 {
    n.div_ceil(ALIGN) * ALIGN
}

/// Frames `payload` as one record (length, CRC32C, payload, padding) onto `buf`.
pub(super) fn frame_into(buf: &mut Vec<u8>, payload: &[u8]) {
    buf.extend_from_slice(&(payload.len() as u32).to_le_bytes());
    buf.extend_from_slice(&crc32c::crc32c(payload).to_le_bytes());
    buf.extend_from_slice(payload);
    let pad = padded(FRAME + payload.len() as u64) - (FRAME + payload.len() as u64);
    buf.extend(std::iter::repeat_n(0u8, pad as usize));
}

/// Frames `r` as one record onto the end of `buf`, encoded in place (no buffer of its own):
/// the same bytes as [`frame_into`] of [`encode_record`]. Returns the payload's length. On an
/// error `buf` is left as it was.
pub(super) fn frame_onto(buf: &mut Vec<u8>, r: &Record) -> io::Result<u64> {
    let at = buf.len();
    buf.extend_from_slice(&[0; FRAME as usize]);
    let encoded = match r {
        Record::Entry(Entry {
            log_id,
            payload: EntryPayload::Normal(req),
        }) => encode_normal_entry_onto(log_id, req, buf),
        _ => codec::encode_onto(r, buf),
    };
    if let Err(e) = encoded {
        buf.truncate(at);
        return Err(e);
    }
    let body = at + FRAME as usize;
    let len = (buf.len() - body) as u64;
    let crc = crc32c::crc32c(&buf[body..]);
    buf[at..at + 4].copy_from_slice(&(len as u32).to_le_bytes());
    buf[at + 4..body].copy_from_slice(&crc.to_le_bytes());
    let pad = padded(FRAME + len) - (FRAME + len);
    buf.resize(buf.len() + pad as usize, 0);
    Ok(len)
}

/// The head of a `Record::Entry` of a normal entry as postcard writes it, up to where the
/// request's own bytes start: the record's variant, the log id, the payload's variant
/// (InlineFormat, `raft/encoded_request.rs`). Variant order is [`Record`]'s and openraft's
/// `EntryPayload`'s.
#[derive(Serialize)]
enum RecordHead<'a> {
    Entry {
        log_id: &'a LogId,
        payload: PayloadVariant,
    },
}

/// The variant of an entry's payload, without its content.
#[derive(Serialize, Deserialize, PartialEq, Eq)]
enum PayloadVariant {
    Blank,
    Normal,
    Membership,
}

/// The variant of a record, without its content.
#[derive(Deserialize)]
enum RecordVariant {
    Entry,
    Vote,
    Committed,
    Purged,
    Truncated,
    Synced,
}

/// [`codec::encode_onto`] of `Record::Entry` of a normal entry, with the request's bytes copied
/// (DecodeOnApply): the same bytes.
fn encode_normal_entry_onto(
    log_id: &LogId,
    req: &EncodedRequest,
    buf: &mut Vec<u8>,
) -> io::Result<()> {
    let head = RecordHead::Entry {
        log_id,
        payload: PayloadVariant::Normal,
    };
    codec::encode_onto(&head, buf)?;
    buf.extend_from_slice(req.bytes());
    Ok(())
}

/// Decodes a record that should be an entry's (`payload`: a record's payload as
/// [`parse_at`] finds it). A normal entry's request is not decoded: it is the record's tail,
/// taken as it is (DecodeOnApply).
pub(super) fn decode_entry(payload: Bytes) -> io::Result<Entry> {
    if let Some(entry) = normal_entry(&payload) {
        return Ok(entry);
    }
    match codec::decode::<Record>(&payload)? {
        Record::Entry(e) => Ok(e),
        _ => Err(data_error("not an entry record".into())),
    }
}

/// A normal entry's record, the request left encoded; `None` for any other record and for
/// bytes that are not one (which [`codec::decode`] then explains).
fn normal_entry(payload: &Bytes) -> Option<Entry> {
    let (&version, rest) = payload.split_first()?;
    if version != crate::store::FORMAT_VERSION {
        return None;
    }
    let (variant, rest) = postcard::take_from_bytes::<RecordVariant>(rest).ok()?;
    if !matches!(variant, RecordVariant::Entry) {
        return None;
    }
    let (log_id, rest) = postcard::take_from_bytes::<LogId>(rest).ok()?;
    let (kind, rest) = postcard::take_from_bytes::<PayloadVariant>(rest).ok()?;
    if kind != PayloadVariant::Normal || rest.is_empty() {
        return None;
    }
    let start = payload.len() - rest.len();
    let req = EncodedRequest::from_bytes(payload.slice(start..));
    Some(Entry::new_normal(log_id, req))
}

pub(super) fn encode_record(r: &Record) -> io::Result<Vec<u8>> {
    codec::encode(r)
}

/// What is at `off` of a segment's bytes.
pub(super) enum Parsed<'a> {
    /// A whole, checksummed record: its payload, and where the next one starts.
    Record(&'a [u8], u64),
    /// Zero fill: the end of the written part.
    End,
    /// Something that is neither.
    Bad(String),
}

pub(super) fn parse_at(buf: &[u8], off: u64) -> Parsed<'_> {
    let len_total = buf.len() as u64;
    if off + FRAME > len_total {
        // A record's padding may run past the end of a file cut to any length (NoPanicOnDisk).
        let rest = buf.get(off as usize..).unwrap_or_default();
        if rest.iter().all(|&b| b == 0) {
            return Parsed::End;
        }
        return Parsed::Bad("a record frame runs past the end of the file".into());
    }
    let o = off as usize;
    let len = u32::from_le_bytes(buf[o..o + 4].try_into().expect("4 bytes")) as u64;
    let crc = u32::from_le_bytes(buf[o + 4..o + 8].try_into().expect("4 bytes"));
    if len == 0 {
        if crc == 0 {
            return Parsed::End;
        }
        return Parsed::Bad("a record of length 0".into());
    }
    if len > MAX_RECORD || off + FRAME + len > len_total {
        return Parsed::Bad(format!("a record length of {len} bytes runs past the end"));
    }
    let payload = &buf[o + 8..o + 8 + len as usize];
    if crc32c::crc32c(payload) != crc {
        return Parsed::Bad("CRC32C mismatch".into());
    }
    Parsed::Record(payload, off + padded(FRAME + len))
}

/// What follows a bad record of segment `seq` (see [`scan_after`]).
#[derive(Debug, Default, PartialEq, Eq)]
pub(super) struct After {
    /// Where the first valid record after it starts (`None`: there is none).
    pub first_valid: Option<u64>,
    /// The furthest a sync had covered segment `seq`, by the [`Record::Synced`] marks among
    /// the valid records after it (0: none).
    pub synced: u64,
}

/// Looks for valid records in `buf` (a segment `seq`'s bytes) from `from` on (aligned),
/// stepping over each one found, and reads the sync marks among them. `None` when the scan
/// ran out of budget (then the caller must assume the worst: records follow, and a sync
/// covered them).
pub(super) fn scan_after(buf: &[u8], from: u64, seq: u64) -> Option<After> {
    let mut budget = SCAN_BUDGET;
    let mut after = After::default();
    let mut off = padded(from);
    while off + FRAME <= buf.len() as u64 {
        let o = off as usize;
        let len = u32::from_le_bytes(buf[o..o + 4].try_into().expect("4 bytes")) as u64;
        if len != 0 && len <= MAX_RECORD && off + FRAME + len <= buf.len() as u64 {
            if budget < len {
                return None;
            }
            budget -= len;
            if let Parsed::Record(payload, next) = parse_at(buf, off) {
                after.first_valid.get_or_insert(off);
                if payload.len() <= SYNCED_MAX_PAYLOAD {
                    if let Ok(Record::Synced { seq: s, off: o }) = codec::decode(payload) {
                        if s == seq {
                            after.synced = after.synced.max(o);
                        }
                    }
                }
                off = next;
                continue;
            }
        }
        off += ALIGN;
    }
    Some(after)
}

/// A sync mark's payload is at most this long (version, variant and two varints).
pub(super) const SYNCED_MAX_PAYLOAD: usize = 24;

/// The size of the blocks a disk writes whole or not at all (a sector).
pub(super) const SECTOR: u64 = 512;

/// Whether `buf[from..to]` reads as a write that never reached the disk: the part of a
/// sector from `from` to the sector's end, or a whole sector (aligned), all zeros. A lost
/// write leaves a sector as it was at the last sync, and past the synced records a segment is
/// zeros (SpareAhead, WrittenAhead), so the lost part of the log starts with such zeros or
/// holds a whole sector of them. (A bad record's own frame is not zero, so for one that is
/// not mere zero fill only a whole sector can show it.) Damage that reads back as other bytes
/// is not taken for a lost write.
pub(super) fn lost_sector_within(buf: &[u8], from: u64, to: u64) -> bool {
    let to = to.min(buf.len() as u64);
    let zeros = |a: u64, b: u64| a < b && buf[a as usize..b as usize].iter().all(|&x| x == 0);
    let first_end = (from / SECTOR + 1) * SECTOR;
    if first_end <= to && zeros(from, first_end) {
        return true;
    }
    let mut s = first_end;
    while s + SECTOR <= to {
        if zeros(s, s + SECTOR) {
            return true;
        }
        s += SECTOR;
    }
    false
}

pub(super) fn data_error(msg: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, msg)
}
