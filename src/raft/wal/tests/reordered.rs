//! Power cuts that keep some unsynced blocks and lose others, in any order (the disk's write
//! cache and the kernel's writeback do not keep the order of unsynced writes): what a sync
//! covered is all there after the reopen, the log is cut where the first lost block was
//! (UnsyncedTailCut), and a bad record that a later sync covered is still refused.

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use super::*;

/// The sector size the simulated power cuts keep or lose whole.
const SECTOR: usize = 512;

/// Entries 1..=4 acknowledged, 5..=12 written but their sync held; the cut keeps every
/// unsynced sector but one inside entry 5's record. Before UnsyncedTailCut, the valid records
/// of entries 6..=12 after the lost sector made the open refuse the log as corrupt, so the
/// node could not restart after an ordinary power cut.
#[test]
fn a_lost_sector_before_kept_unsynced_ones_is_cut_with_everything_after_it() {
    let disk = SimDisk::new();
    let wal = must_open(&disk, WalOptions::default());
    for i in 1..=4 {
        append(&wal, vec![normal_entry(1, i, 1500)]).unwrap();
    }
    disk.hold_syncs(true);
    let (done, rx) = waiter();
    wal.append(
        (5..=12)
            .map(|i| normal_entry(1, i, 1500))
            .collect::<Vec<_>>(),
        done,
        false,
    )
    .unwrap();
    let (name, at5) = wal.frame_of(5).unwrap();
    let lost = (at5 + 600) / SECTOR as u64;
    let crashed = disk.crashed_copy_keeping(SECTOR, |n, b| !(n == name && b == lost));
    disk.hold_syncs(false);
    wait(rx).unwrap();
    drop(wal);

    let wal =
        reopen(&crashed).expect("a sector lost past the last sync is a torn tail, not corruption");
    assert_eq!(contents(&wal), span(1, 1..=4));
    // The cut is durable and the log goes on from it.
    append(&wal, vec![normal_entry(2, 5, 10)]).unwrap();
    drop(wal);
    crashed.crash();
    let wal = must_open(&crashed, opts());
    let mut want = span(1, 1..=4);
    want.push((5, 2));
    assert_eq!(contents(&wal), want);
}

/// A sector that reads as zeros where a later sync had covered it (the records after it say
/// so: SyncedMarks) is damage to acknowledged records, not a torn write: refused, naming the
/// file and the offset, as any corruption in the middle.
#[test]
fn zeros_where_a_later_sync_covered_the_log_are_refused_as_corruption() {
    let disk = SimDisk::new();
    let wal = must_open(&disk, WalOptions::default());
    for i in 1..=12 {
        append(&wal, vec![normal_entry(1, i, 1500)]).unwrap();
    }
    let (name, at3) = wal.frame_of(3).unwrap();
    drop(wal);
    let mut bytes = disk.read_file(&name);
    let from = ((at3 as usize + 600) / SECTOR) * SECTOR;
    bytes[from..from + SECTOR].fill(0);
    disk.write_file(&name, bytes);
    let msg = reopen(&disk).err().expect("refused").to_string();
    assert!(msg.contains(&name), "{msg}");
    assert!(msg.contains(&format!("byte offset {at3}")), "{msg}");
    assert!(msg.contains("a later sync covered"), "{msg}");
}

/// Random histories: acknowledged appends of random sizes, then appends whose sync never
/// happens, then a power cut keeping each unsynced sector or not at random. The log always
/// opens, holds every acknowledged entry, and holds a contiguous run of the rest.
#[test]
fn a_power_cut_keeping_any_unsynced_sectors_loses_nothing_acknowledged() {
    // Large enough that the held syncs never meet a segment roll (which syncs too).
    let small = WalOptions {
        segment_bytes: 256 << 10,
        ..WalOptions::default()
    };
    let mut holes_before_records = 0;
    for seed in 0..200u64 {
        let mut rng = StdRng::seed_from_u64(seed);
        // Small records for half the seeds: whole records then often survive after a hole.
        let max_value = if seed % 2 == 0 { 3000 } else { 400 };
        let disk = SimDisk::new();
        let wal = must_open(&disk, small.clone());
        let mut next = 1u64;
        for _ in 0..rng.gen_range(0..8) {
            let n = rng.gen_range(1..4);
            let batch: Vec<_> = (next..next + n)
                .map(|i| normal_entry(1, i, rng.gen_range(1..max_value)))
                .collect();
            append(&wal, batch).unwrap();
            next += n;
        }
        let acked = next - 1;
        disk.hold_syncs(true);
        let mut pending = Vec::new();
        for _ in 0..rng.gen_range(1..6) {
            let n = rng.gen_range(1..4);
            let batch: Vec<_> = (next..next + n)
                .map(|i| normal_entry(1, i, rng.gen_range(1..max_value)))
                .collect();
            let (done, rx) = waiter();
            wal.append(batch, done, false).unwrap();
            pending.push(rx);
            next += n;
        }
        let keep_share = rng.gen_range(0.0..1.0);
        let crashed = disk.crashed_copy_keeping(SECTOR, |_, _| rng.gen_bool(keep_share));
        holes_before_records += hole_before_records(&crashed) as u32;
        disk.hold_syncs(false);
        for rx in pending {
            wait(rx).unwrap();
        }
        drop(wal);

        let wal = reopen(&crashed).unwrap_or_else(|e| panic!("seed {seed}: refused to open: {e}"));
        let got = contents(&wal);
        let kept = got.len() as u64;
        assert!(
            kept >= acked,
            "seed {seed}: {kept} entries of {acked} acknowledged"
        );
        assert_eq!(got, span(1, 1..=kept), "seed {seed}: not a contiguous run");
        assert!(kept < next, "seed {seed}: more entries than written");
    }
    // The case this is about (refused before UnsyncedTailCut) came up often enough.
    assert!(holes_before_records >= 20, "{holes_before_records} of 200");
}

/// Opens the log on `disk` as a restarted node would.
fn reopen(disk: &SimDisk) -> io::Result<Wal> {
    Wal::open(
        Arc::new(disk.clone()),
        opts(),
        Arc::new(FlushStats::default()),
    )
}

/// Whether the last segment of `disk` reads as records, a bad record, and a valid one after.
fn hole_before_records(disk: &SimDisk) -> bool {
    let last = disk
        .list()
        .unwrap()
        .into_iter()
        .filter(|n| parse_seg_name(n).is_some())
        .max()
        .unwrap();
    let buf = disk.read_file(&last);
    let mut off = MAGIC.len() as u64;
    while let Parsed::Record(_, next) = parse_at(&buf, off) {
        off = next;
    }
    let seq = parse_seg_name(&last).unwrap();
    scan_after(&buf, off + ALIGN, seq).is_some_and(|a| a.first_valid.is_some())
}

/// The scan after a bad record decodes only records short enough to be a sync mark: the
/// longest mark fits that bound.
#[test]
fn the_longest_sync_mark_is_within_the_scan_bound() {
    let longest = encode_record(&Record::Synced {
        seq: u64::MAX,
        off: u64::MAX,
    })
    .unwrap();
    assert!(longest.len() <= SYNCED_MAX_PAYLOAD, "{}", longest.len());
}

/// What a lost write leaves (zeros from the bad record to its sector's end, or a whole zero
/// sector before the next valid record), and what it cannot (a zero run shorter than that,
/// or zeros only past the next valid record).
#[test]
fn a_lost_write_is_told_by_a_zero_sector_or_zeros_to_the_sector_end() {
    let s = SECTOR;
    let mut buf = vec![7u8; 4 * s];
    // Zeros from 1000 to the end of its sector (1024): what a partly synced sector whose new
    // version was lost reads as.
    buf[1000..1024].fill(0);
    assert!(lost_sector_within(&buf, 1000, 2048));
    // The same zeros, but the bad record starts before them: its own bytes are not zero.
    assert!(!lost_sector_within(&buf, 992, 2048));
    // A whole aligned sector of zeros inside the span.
    let mut buf = vec![7u8; 4 * s];
    buf[1024..1536].fill(0);
    assert!(lost_sector_within(&buf, 1000, 1536));
    // ... but not when the next valid record starts inside that sector.
    assert!(!lost_sector_within(&buf, 1000, 1528));
    // 511 zero bytes across a sector boundary are no whole sector.
    let mut buf = vec![7u8; 4 * s];
    buf[700..1211].fill(0);
    assert!(!lost_sector_within(&buf, 696, 2048));
    // A span that ends before its own sector does: nothing to judge by.
    assert!(!lost_sector_within(&vec![0u8; s], 8, 100));
}

/// The scan after a bad record steps over valid records (never reading marks inside their
/// payloads), takes the furthest mark of this segment and ignores other segments' marks.
#[test]
fn the_scan_after_a_bad_record_reads_this_segments_marks_only() {
    let mut buf = vec![0u8; 64];
    let bad_at = buf.len() as u64;
    buf.extend_from_slice(&[9u8; 24]); // a bad record's bytes
    let first = buf.len() as u64;
    frame_into(
        &mut buf,
        &encode_record(&Record::Synced { seq: 3, off: 40 }).unwrap(),
    );
    frame_into(
        &mut buf,
        &encode_record(&Record::Synced { seq: 2, off: 9_999 }).unwrap(),
    );
    // An entry whose value holds a framed mark of this segment: stepped over, not read.
    let mut inner = Vec::new();
    frame_into(
        &mut inner,
        &encode_record(&Record::Synced { seq: 3, off: 8_888 }).unwrap(),
    );
    let put = crate::store::Op::Put {
        key: bytes::Bytes::from_static(b"k"),
        value: bytes::Bytes::from(inner),
    };
    let entry = Entry::new_normal(log_id(1, 1), crate::store::Request::new(None, put).into());
    frame_into(&mut buf, &encode_record(&Record::Entry(entry)).unwrap());
    frame_into(
        &mut buf,
        &encode_record(&Record::Synced { seq: 3, off: 56 }).unwrap(),
    );
    let after = scan_after(&buf, bad_at + ALIGN, 3).unwrap();
    assert_eq!(after.first_valid, Some(first));
    assert_eq!(after.synced, 56);
    // Nothing valid after the last record.
    let end = buf.len() as u64;
    buf.extend_from_slice(&[0u8; 64]);
    assert_eq!(scan_after(&buf, end, 3).unwrap(), After::default());
}
