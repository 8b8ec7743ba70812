//! Random damage to the files of a WAL at rest (NoPanicOnDisk): flipped bits, zeroed or
//! overwritten ranges, files cut or grown to any length, segments removed, duplicated or
//! invented. Whatever the bytes, opening the log either refuses with an error or yields
//! entries that were written, contiguous, and a log that goes on taking appends. Never a
//! panic: the bytes come from a disk, and a node must say what is wrong with them.

use std::panic::{catch_unwind, AssertUnwindSafe};

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use super::super::record::{parse_at, parse_seg_name, seg_name, Parsed, FRAME};
use super::*;

/// A log of random shape: entries of random sizes in random batches over small segments, a
/// vote, committed ids, now and then a truncation or a purge. Returns the disk, the options
/// it was written with and every `(index, term)` ever appended (a purged or truncated entry
/// may come back when damage takes the record that removed it: it was written all the same).
fn random_log(rng: &mut StdRng) -> (SimDisk, WalOptions, Vec<(u64, u64)>) {
    let opts = WalOptions {
        segment_bytes: rng.gen_range(96..2048),
        ..WalOptions::default()
    };
    let disk = SimDisk::new();
    let wal = must_open(&disk, opts.clone());
    let mut next = 1u64;
    let mut term = 1u64;
    let mut written = Vec::new();
    let mut purged = 0u64;
    save_vote(&wal, Vote::new(term, 1)).unwrap();
    for _ in 0..rng.gen_range(1..12) {
        let n = rng.gen_range(1..6);
        let batch: Vec<Entry> = (next..next + n)
            .map(|i| match rng.gen_range(0..3) {
                0 => entry(term, i),
                _ => normal_entry(term, i, rng.gen_range(0..300)),
            })
            .collect();
        written.extend(batch.iter().map(|e| (e.index(), term)));
        append(&wal, batch).unwrap();
        next += n;
        match rng.gen_range(0..8) {
            0 | 1 => save_committed(&wal, Some(log_id(term, next - 1))).unwrap(),
            2 if next > purged + 3 => {
                // A new leader overwrites the last entries (only uncommitted ones in Raft;
                // the WAL does not care), never purged ones.
                let keep = rng.gen_range(purged + 1..next - 1);
                wal.truncate_after(Some(keep)).unwrap();
                next = keep + 1;
                term += 1;
                save_vote(&wal, Vote::new(term, 2)).unwrap();
            }
            3 if next > purged + 4 => {
                let upto = rng.gen_range(purged + 1..next - 2);
                purged = upto;
                let t = contents(&wal)
                    .iter()
                    .find(|(i, _)| *i == upto)
                    .map(|(_, t)| *t)
                    .unwrap_or(term);
                purge(&wal, log_id(t, upto)).unwrap();
            }
            _ => {}
        }
    }
    drop(wal);
    (disk, opts, written)
}

/// One random change to the files, described for the failure message.
fn damage(disk: &SimDisk, rng: &mut StdRng) -> String {
    let mut names: Vec<String> = disk.list().unwrap();
    names.sort();
    let segs: Vec<String> = names
        .iter()
        .filter(|n| parse_seg_name(n).is_some())
        .cloned()
        .collect();
    let Some(name) = (if segs.is_empty() || rng.gen_bool(0.1) {
        names.get(rng.gen_range(0..names.len().max(1))).cloned()
    } else {
        Some(segs[rng.gen_range(0..segs.len())].clone())
    }) else {
        return "nothing to damage".into();
    };
    let mut bytes = disk.read_file(&name);
    let len = bytes.len();
    let at = if len == 0 { 0 } else { rng.gen_range(0..len) };
    match rng.gen_range(0..9) {
        0 if len > 0 => {
            let bit = 1u8 << rng.gen_range(0..8);
            bytes[at] ^= bit;
            disk.write_file(&name, bytes);
            format!("{name}: bit {bit:#04x} flipped at {at}")
        }
        1 => {
            let end = (at + rng.gen_range(1..1100)).min(len);
            bytes[at..end].fill(0);
            disk.write_file(&name, bytes);
            format!("{name}: zeros over {at}..{end}")
        }
        2 => {
            let end = (at + rng.gen_range(1..64)).min(len);
            rng.fill(&mut bytes[at..end]);
            disk.write_file(&name, bytes);
            format!("{name}: random bytes over {at}..{end}")
        }
        3 => {
            bytes.truncate(at);
            disk.write_file(&name, bytes);
            format!("{name}: cut to {at} bytes")
        }
        4 => {
            let n = rng.gen_range(1..600);
            let start = bytes.len();
            bytes.resize(start + n, 0);
            if rng.gen_bool(0.5) {
                rng.fill(&mut bytes[start..]);
            }
            disk.write_file(&name, bytes);
            format!("{name}: grown by {n} bytes")
        }
        5 => {
            disk.remove(&name).unwrap();
            format!("{name}: removed")
        }
        6 => {
            // A record frame that claims a length and a CRC of its own, anywhere.
            let at = at - at % 8;
            if at + 8 <= len {
                let l: u32 = rng.gen_range(0..64);
                bytes[at..at + 4].copy_from_slice(&l.to_le_bytes());
                rng.fill(&mut bytes[at + 4..at + 8]);
                disk.write_file(&name, bytes);
            }
            format!("{name}: a frame header of length-field 0..64 written at {at}")
        }
        7 => {
            // A copy of a segment under another segment's name (an existing one or a new one).
            let seq = parse_seg_name(&name).unwrap_or(1);
            let to = seg_name(seq + rng.gen_range(0..4));
            if !names.contains(&to) {
                disk.create(&to).unwrap();
            }
            disk.write_file(&to, bytes);
            format!("{name} copied over {to}")
        }
        _ => {
            // A segment file whose content is anything at all, after or among the others.
            let seq = parse_seg_name(segs.last().unwrap_or(&name)).unwrap_or(0) + 1;
            let to = seg_name(seq - rng.gen_range(0..2).min(seq));
            let mut junk = vec![0u8; rng.gen_range(0..400)];
            rng.fill(&mut junk[..]);
            if rng.gen_bool(0.5) && junk.len() >= 8 && len >= 8 {
                // With the segment magic, so the damage reaches the records.
                junk[..8].copy_from_slice(&bytes[..8]);
            }
            if !disk.list().unwrap().contains(&to) {
                disk.create(&to).unwrap();
            }
            disk.write_file(&to, junk);
            format!("{to}: random content")
        }
    }
}

/// NoPanicOnDisk, and what an open that succeeds may give: entries that were written (same
/// index and term), contiguous, and a log that takes the next append and reopens with it.
#[test]
fn random_damage_is_refused_or_yields_written_entries_and_never_panics() {
    let cases = std::env::var("WAL_DAMAGE_CASES")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(400u64);
    let (mut opened, mut refused) = (0, 0);
    for case in 0..cases {
        let mut rng = StdRng::seed_from_u64(case);
        let (disk, opts, written) = random_log(&mut rng);
        let what: Vec<String> = (0..rng.gen_range(1..4))
            .map(|_| damage(&disk, &mut rng))
            .collect();
        let ctx = format!("case {case} (WAL_DAMAGE_CASES), damage: {what:?}");
        let open = catch_unwind(AssertUnwindSafe(|| {
            Wal::open(
                Arc::new(disk.clone()),
                opts.clone(),
                Arc::new(FlushStats::default()),
            )
        }));
        let wal = match open {
            Err(_) => panic!("opening panicked: {ctx}"),
            Ok(Err(e)) => {
                refused += 1;
                assert!(!e.to_string().is_empty(), "{ctx}");
                continue;
            }
            Ok(Ok(wal)) => wal,
        };
        opened += 1;
        let got = catch_unwind(AssertUnwindSafe(|| wal.entries(..)))
            .unwrap_or_else(|_| panic!("reading the entries panicked: {ctx}"));
        let Ok(got) = got else {
            // An entry that cannot be read back is an error to the reader, not a panic.
            continue;
        };
        let got: Vec<(u64, u64)> = got
            .iter()
            .map(|e| (e.index(), e.log_id().committed_leader_id().term))
            .collect();
        for w in got.windows(2) {
            assert_eq!(w[1].0, w[0].0 + 1, "not contiguous: {got:?}; {ctx}");
        }
        for e in &got {
            assert!(
                written.contains(e),
                "{e:?} was never written: {got:?}; {ctx}"
            );
        }
        let (_, last) = wal.log_state();
        let next = last.map_or(1, |l| l.index() + 1);
        let term = last.map_or(1, |l| l.committed_leader_id().term);
        if append(&wal, vec![entry(term, next)]).is_err() {
            continue;
        }
        drop(wal);
        let again = catch_unwind(AssertUnwindSafe(|| {
            Wal::open(
                Arc::new(disk.clone()),
                opts.clone(),
                Arc::new(FlushStats::default()),
            )
        }))
        .unwrap_or_else(|_| panic!("reopening panicked: {ctx}"))
        .unwrap_or_else(|e| {
            panic!("a log that opened and took an append refused to reopen: {e}; {ctx}")
        });
        assert_eq!(
            again.log_state().1.map(|l| l.index()),
            Some(next),
            "the append after the open is gone after a reopen; {ctx}"
        );
    }
    // Both outcomes must occur, or the damage is not reaching what matters.
    assert!(
        opened > cases / 10 && refused > cases / 10,
        "opened {opened}, refused {refused}"
    );
}

/// NoPanicOnDisk, the case the random damage found first: a last segment cut to a length
/// that is not a multiple of 8, inside the padding after a record, made the open panic
/// (slicing past the end of the file) instead of reading the records before the cut.
#[test]
fn a_segment_cut_inside_a_records_padding_opens_with_its_records() {
    let disk = SimDisk::new();
    let wal = must_open(&disk, WalOptions::default());
    // Blank entries of term 1 frame to lengths that leave padding after them.
    append(&wal, (1..=3).map(|i| entry(1, i)).collect()).unwrap();
    let (name, at) = wal.frame_of(3).unwrap();
    let (payload_end, next) = match parse_at(&disk.read_file(&name), at) {
        Parsed::Record(payload, next) => (at + FRAME + payload.len() as u64, next),
        _ => panic!("entry 3 does not parse"),
    };
    drop(wal);
    let mut bytes = disk.read_file(&name);
    assert!(
        payload_end < next,
        "entry 3's record has no padding to cut into"
    );
    bytes.truncate(payload_end as usize);
    disk.write_file(&name, bytes);
    let wal = Wal::open(
        Arc::new(disk.clone()),
        WalOptions::default(),
        Arc::new(FlushStats::default()),
    )
    .expect("a cut inside the padding loses no record");
    assert_eq!(contents(&wal), span(1, 1..=3));
    append(&wal, vec![entry(1, 4)]).unwrap();
    assert_eq!(contents(&wal), span(1, 1..=4));
}
