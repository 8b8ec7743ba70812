//! Unit tests of the WAL over the simulated disk (`disk::sim`): group commit, torn tails,
//! corruption, purge and truncate across segments, and a crash at every step of a workload.

use std::collections::BTreeMap;
use std::sync::mpsc as std_mpsc;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use openraft::entry::RaftEntry;
use openraft::vote::RaftLeaderId;
use openraft::EntryPayload;

use super::disk::sim::SimDisk;
use super::*;

mod crash;
mod damage;
mod inline;
mod real_disk;
mod reordered;

fn entry(term: u64, index: u64) -> Entry {
    let leader = openraft::impls::leader_id_adv::LeaderId::<u64, u64>::new(term, 1);
    Entry::new_blank(openraft::LogId::new(leader.to_committed(), index))
}

fn log_id(term: u64, index: u64) -> LogId {
    entry(term, index).log_id()
}

/// Small segments, so a few entries roll to a new one.
fn opts() -> WalOptions {
    WalOptions {
        segment_bytes: 128,
        ..WalOptions::default()
    }
}

fn must_open(disk: &SimDisk, opts: WalOptions) -> Wal {
    Wal::open(
        Arc::new(disk.clone()),
        opts,
        Arc::new(FlushStats::default()),
    )
    .expect("open wal")
}

fn waiter() -> (Done, std_mpsc::Receiver<io::Result<()>>) {
    let (tx, rx) = std_mpsc::channel();
    (
        Box::new(move |r| {
            let _ = tx.send(r);
        }),
        rx,
    )
}

fn wait(rx: std_mpsc::Receiver<io::Result<()>>) -> io::Result<()> {
    rx.recv_timeout(Duration::from_secs(10))
        .map_err(|e| io::Error::other(format!("no acknowledgement: {e}")))?
}

fn append(wal: &Wal, entries: Vec<Entry>) -> io::Result<()> {
    let (done, rx) = waiter();
    wal.append(entries, done, false)?;
    wait(rx)
}

fn save_vote(wal: &Wal, vote: Vote) -> io::Result<()> {
    let (done, rx) = waiter();
    wal.save_vote(&vote, done)?;
    wait(rx)
}

/// Saves the committed id and waits for a sync that covers it (`save_committed` itself does
/// not wait: CommittedRidesNextSync).
fn save_committed(wal: &Wal, c: Option<LogId>) -> io::Result<()> {
    wal.save_committed(c)?;
    sync(wal)
}

/// Purges and waits for the sync that makes the purge point durable (PurgeOffTheCore: the sync
/// worker then hands the purged segments to the housekeeping thread, which deletes them
/// later: callers that need the files gone wait for them).
fn purge(wal: &Wal, upto: LogId) -> io::Result<()> {
    wal.purge(upto)?;
    sync(wal)
}

fn sync(wal: &Wal) -> io::Result<()> {
    let (done, rx) = waiter();
    wal.sync(done)?;
    wait(rx)
}

/// `(index, term)` of every entry the WAL holds.
fn contents(wal: &Wal) -> Vec<(u64, u64)> {
    wal.entries(..)
        .unwrap()
        .iter()
        .map(|e| (e.index(), e.log_id().committed_leader_id().term))
        .collect()
}

fn span(term: u64, r: std::ops::RangeInclusive<u64>) -> Vec<(u64, u64)> {
    r.map(|i| (i, term)).collect()
}

/// Group commit: callbacks complete in submission order, each only once its records are
/// durable (checked in the callback itself: a crash at that instant keeps them). Every other
/// append may sync where it stands (FollowerSyncsInline), so both paths are in the mix.
#[test]
fn group_commit_acknowledges_in_order_and_only_durable_records() {
    let disk = SimDisk::new();
    let wal = Arc::new(must_open(&disk, opts()));
    let order = Arc::new(Mutex::new(Vec::new()));
    let problems = Arc::new(Mutex::new(Vec::new()));
    let mut rxs = Vec::new();
    for i in 0..40u64 {
        let (order, problems, disk) = (order.clone(), problems.clone(), disk.clone());
        let (tx, rx) = std_mpsc::channel();
        wal.append(
            [entry(1, i)],
            Box::new(move |r| {
                r.unwrap();
                order.lock().unwrap().push(i);
                // DurableBeforeAck: what a crash would keep right now holds entry i.
                let after = Wal::open(
                    Arc::new(disk.crashed_copy()),
                    WalOptions {
                        segment_bytes: 128,
                        ..WalOptions::default()
                    },
                    Arc::new(FlushStats::default()),
                );
                match after.map(|w| w.entries(i..=i).map(|v| v.len())) {
                    Ok(Ok(1)) => {}
                    other => problems
                        .lock()
                        .unwrap()
                        .push(format!("entry {i}: {other:?}")),
                }
                tx.send(()).unwrap();
            }),
            i % 2 == 0,
        )
        .unwrap();
        rxs.push(rx);
    }
    for rx in rxs {
        rx.recv_timeout(Duration::from_secs(20)).unwrap();
    }
    assert_eq!(*order.lock().unwrap(), (0..40).collect::<Vec<_>>());
    assert_eq!(*problems.lock().unwrap(), Vec::<String>::new());
    let st = wal.stats();
    assert_eq!(st.entries.load(Ordering::Relaxed), 40);
    assert!(st.flushes.load(Ordering::Relaxed) <= 40);
    assert!(
        wal.segment_names().len() > 3,
        "the workload must roll segments"
    );
}

/// Builds a log of entries 1..=n (term 1) in one big segment and returns the disk.
fn log_of(n: u64) -> (SimDisk, Wal) {
    let disk = SimDisk::new();
    let wal = must_open(&disk, WalOptions::default());
    append(&wal, (1..=n).map(|i| entry(1, i)).collect()).unwrap();
    (disk, wal)
}

/// TornTailOnly: each shape of a torn last record is cut off at open (durably: a second
/// reopen agrees), the entries before it stay, and appending goes on.
#[test]
fn torn_tails_are_cut_and_the_log_goes_on() {
    type Damage = fn(&mut Vec<u8>, usize);
    let shapes: [(&str, Damage); 5] = [
        ("length past the end of the file", |b, at| {
            let n = b.len() as u32;
            b[at..at + 4].copy_from_slice(&n.to_le_bytes());
        }),
        ("crc mismatch", |b, at| b[at + 9] ^= 0x40),
        ("half written, zero fill after", |b, at| {
            for x in &mut b[at + 10..at + 64] {
                *x = 0;
            }
        }),
        ("frame written, payload not", |b, at| {
            for x in &mut b[at + 8..at + 64] {
                *x = 0;
            }
        }),
        ("garbage frame header", |b, at| {
            b[at..at + 8].copy_from_slice(&[7, 0, 0, 0, 1, 2, 3, 4]);
        }),
    ];
    for (what, damage) in shapes {
        let (disk, wal) = log_of(5);
        let (name, at) = wal.frame_of(5).unwrap();
        drop(wal);
        let mut bytes = disk.read_file(&name);
        damage(&mut bytes, at as usize);
        disk.write_file(&name, bytes);
        let wal = Wal::open(
            Arc::new(disk.clone()),
            opts(),
            Arc::new(FlushStats::default()),
        )
        .unwrap_or_else(|e| panic!("{what}: refused to open: {e}"));
        assert_eq!(contents(&wal), span(1, 1..=4), "{what}");
        append(&wal, vec![entry(2, 5), entry(2, 6)]).unwrap();
        drop(wal);
        disk.crash();
        let wal = must_open(&disk, opts());
        let mut want = span(1, 1..=4);
        want.extend(span(2, 5..=6));
        assert_eq!(contents(&wal), want, "{what}: after the cut and a crash");
    }
}

/// Corruption with valid records after it, or in a segment that is not the last, refuses to
/// open, naming the file and the byte offset.
#[test]
fn corrupt_middle_record_is_refused_naming_file_and_offset() {
    let (disk, wal) = log_of(10);
    let (name, at) = wal.frame_of(3).unwrap();
    drop(wal);
    let mut bytes = disk.read_file(&name);
    bytes[at as usize + 12] ^= 0x01;
    disk.write_file(&name, bytes);
    let err = Wal::open(
        Arc::new(disk.clone()),
        opts(),
        Arc::new(FlushStats::default()),
    )
    .err()
    .expect("refused");
    let msg = err.to_string();
    assert!(msg.contains(&name), "{msg}");
    assert!(msg.contains(&format!("byte offset {at}")), "{msg}");

    // In a segment that is not the last, even the final record is corruption.
    let disk = SimDisk::new();
    let wal = must_open(&disk, opts());
    for i in 1..=20 {
        append(&wal, vec![entry(1, i)]).unwrap();
    }
    let segs = wal.segment_names();
    assert!(segs.len() >= 3);
    let victim = (1..=20)
        .rev()
        .find(|&i| wal.frame_of(i).unwrap().0 == segs[0])
        .unwrap();
    let (name, at) = wal.frame_of(victim).unwrap();
    drop(wal);
    let mut bytes = disk.read_file(&name);
    bytes[at as usize + 9] ^= 0x80;
    disk.write_file(&name, bytes);
    let msg = Wal::open(
        Arc::new(disk.clone()),
        opts(),
        Arc::new(FlushStats::default()),
    )
    .err()
    .expect("refused")
    .to_string();
    assert!(
        msg.contains(&name) && msg.contains(&format!("byte offset {at}")),
        "{msg}"
    );
}

/// A missing segment in the middle is refused, not skipped.
#[test]
fn missing_middle_segment_is_refused() {
    let disk = SimDisk::new();
    let wal = must_open(&disk, opts());
    for i in 1..=20 {
        append(&wal, vec![entry(1, i)]).unwrap();
    }
    let segs = wal.segment_names();
    drop(wal);
    disk.remove(&segs[1]).unwrap();
    let msg = Wal::open(
        Arc::new(disk.clone()),
        opts(),
        Arc::new(FlushStats::default()),
    )
    .err()
    .expect("refused")
    .to_string();
    assert!(msg.contains("not contiguous"), "{msg}");
}

/// PurgeWholeSegments, truncation across segments, truncate-then-append, each checked again
/// after a reopen.
#[test]
fn purge_and_truncate_across_segments_survive_reopen() {
    let disk = SimDisk::new();
    let wal = must_open(&disk, opts());
    for i in 1..=50 {
        append(&wal, vec![entry(1, i)]).unwrap();
    }
    let before = wal.segment_names();
    purge(&wal, log_id(1, 20)).unwrap();
    let after = wal.segment_names();
    assert!(after.len() < before.len(), "{before:?} -> {after:?}");
    // The housekeeping thread deletes the files (SpareOffTheWritePath).
    let seg_files = || {
        disk.list()
            .unwrap()
            .iter()
            .filter(|n| n.ends_with(".seg"))
            .count()
    };
    let deadline = Instant::now() + Duration::from_secs(10);
    while seg_files() != after.len() {
        assert!(Instant::now() < deadline, "purged segment files stay");
        std::thread::sleep(Duration::from_millis(5));
    }
    assert_eq!(contents(&wal), span(1, 21..=50));
    // The first live entry's segment stays.
    assert_eq!(wal.frame_of(21).unwrap().0, after[0]);

    let reopen = |wal: Wal| {
        drop(wal);
        disk.crash();
        must_open(&disk, opts())
    };
    let wal = reopen(wal);
    assert_eq!(contents(&wal), span(1, 21..=50));
    assert_eq!(wal.log_state(), (Some(log_id(1, 20)), Some(log_id(1, 50))));

    // Across segment boundaries: entry 35's segment is older than the last.
    assert_ne!(
        wal.frame_of(35).unwrap().0,
        *wal.segment_names().last().unwrap()
    );
    wal.truncate_after(Some(35)).unwrap();
    assert_eq!(contents(&wal), span(1, 21..=35));
    let wal = reopen(wal);
    assert_eq!(contents(&wal), span(1, 21..=35));
    assert_eq!(wal.log_state().1, Some(log_id(1, 35)));

    append(&wal, (36..=45).map(|i| entry(2, i)).collect()).unwrap();
    let mut want = span(1, 21..=35);
    want.extend(span(2, 36..=45));
    assert_eq!(contents(&wal), want);
    let wal = reopen(wal);
    assert_eq!(contents(&wal), want);

    // Purge past the end (a snapshot installed ahead of the log): empty log, last = purged.
    purge(&wal, log_id(3, 100)).unwrap();
    assert!(contents(&wal).is_empty());
    let wal = reopen(wal);
    assert_eq!(
        wal.log_state(),
        (Some(log_id(3, 100)), Some(log_id(3, 100)))
    );
    append(&wal, vec![entry(3, 101)]).unwrap();
    let wal = reopen(wal);
    assert_eq!(contents(&wal), vec![(101, 3)]);

    // Truncating everything.
    wal.truncate_after(None).unwrap();
    let wal = reopen(wal);
    assert!(contents(&wal).is_empty());
    assert_eq!(wal.log_state().1, Some(log_id(3, 100)));
}

/// HeadRepeatsState: the vote and committed id survive purging the segments they were first
/// written in.
#[test]
fn vote_and_committed_survive_purging_their_segments() {
    let disk = SimDisk::new();
    let wal = must_open(&disk, opts());
    save_vote(&wal, Vote::new(4, 2)).unwrap();
    save_committed(&wal, Some(log_id(1, 3))).unwrap();
    let first = wal.segment_names()[0].clone();
    for i in 1..=40 {
        append(&wal, vec![entry(1, i)]).unwrap();
    }
    purge(&wal, log_id(1, 39)).unwrap();
    assert!(!wal.segment_names().contains(&first));
    drop(wal);
    disk.crash();
    let wal = must_open(&disk, opts());
    assert_eq!(wal.vote(), Some(Vote::new(4, 2)));
    assert_eq!(wal.committed(), Some(log_id(1, 3)));
    assert_eq!(contents(&wal), vec![(40, 1)]);
}

/// ReplicationReadBound: `locate` takes entries from the first while they fit the budget, and
/// always the first; `cut` says the budget left some out.
#[test]
fn locate_stops_at_the_budget_but_never_before_the_first_entry() {
    let (_disk, wal) = log_of(10);
    let all = wal.locate(1..=10, u64::MAX);
    assert!(!all.cut());
    assert_eq!(all.len(), 10);
    let each = all.bytes() / 10;
    assert_eq!(all.bytes(), each * 10, "equal entries, equal records");
    let three = wal.locate(1..=10, each * 3 + each / 2);
    assert!(three.cut());
    assert_eq!(three.bytes(), each * 3);
    let got = three.read().unwrap();
    assert_eq!(
        got.iter().map(|e| e.log_id().index()).collect::<Vec<_>>(),
        vec![1, 2, 3]
    );
    let one = wal.locate(4..=10, 1);
    assert!(one.cut());
    assert_eq!(one.len(), 1, "the first entry even over the budget");
    assert_eq!(one.read().unwrap()[0].log_id().index(), 4);
    let rest = wal.locate(8.., each * 100);
    assert!(!rest.cut());
    assert_eq!(rest.len(), 3);
}

/// WriteBufferReused: a record framed in place in the reused buffer is byte for byte what
/// framing its separate encoding gives (what replay parses), also after earlier records in
/// the same buffer, and every record starts aligned.
#[test]
fn records_framed_in_place_are_the_bytes_of_their_framed_encoding() {
    let leader = openraft::impls::leader_id_adv::LeaderId::<u64, u64>::new(7, 2);
    let records = [
        Record::Vote(Vote::new(7, 2)),
        Record::Committed(None),
        Record::Committed(Some(log_id(3, 1 << 40))),
        Record::Entry(entry(1, 1)),
        Record::Entry(Entry::new_blank(openraft::LogId::new(
            leader.to_committed(),
            u64::MAX,
        ))),
        Record::Entry(normal_entry(4, 5, 0)),
        Record::Entry(normal_entry(4, 6, 300)),
        Record::Entry(Entry::new_membership(
            log_id(4, 7),
            openraft::Membership::new_with_defaults(vec![[1u64, 2].into()], [3u64]),
        )),
        Record::Purged(log_id(2, 300)),
        Record::Truncated(Some(12)),
        Record::Truncated(None),
    ];
    let (mut in_place, mut separate) = (Vec::new(), Vec::new());
    for r in &records {
        let at = in_place.len();
        let len = frame_onto(&mut in_place, r).unwrap();
        let payload = encode_record(r).unwrap();
        assert_eq!(len, payload.len() as u64);
        frame_into(&mut separate, &payload);
        assert_eq!(in_place, separate, "after {} records", records.len());
        assert_eq!(at as u64 % ALIGN, 0);
        match parse_at(&in_place, at as u64) {
            Parsed::Record(p, next) => {
                assert_eq!(p, &payload[..]);
                assert_eq!(next, in_place.len() as u64);
            }
            _ => panic!("the record framed in place does not parse"),
        }
        // Read back as an entry (DecodeOnApply): the same entry, its request's bytes as
        // encoded.
        let read = decode_entry(bytes::Bytes::from(payload));
        match r {
            Record::Entry(e) => assert_eq!(&read.unwrap(), e),
            _ => assert!(read.is_err(), "a non-entry record read as an entry"),
        }
    }
}

/// An entry carrying a put of a `value_len`-byte value.
fn normal_entry(term: u64, index: u64, value_len: usize) -> Entry {
    let req = crate::store::Request::new(
        None,
        crate::store::Op::Put {
            key: bytes::Bytes::from_static(b"key"),
            value: bytes::Bytes::from(vec![b'v'; value_len]),
        },
    );
    Entry::new_normal(log_id(term, index), req.into())
}

/// A normal entry's request is read back as the bytes written, without a decode, and a
/// record whose request part is damaged (past the CRC's protection: a bug, or a disk that
/// returned other bytes) reads as an entry whose request then fails to decode: an error at
/// apply (FailStop), never a panic or another request.
#[test]
fn an_entry_read_back_keeps_its_request_encoded() {
    let e = normal_entry(2, 9, 40);
    let EntryPayload::Normal(sent) = &e.payload else {
        unreachable!()
    };
    let mut payload = encode_record(&Record::Entry(e.clone())).unwrap();
    let read = decode_entry(bytes::Bytes::from(payload.clone())).unwrap();
    let EntryPayload::Normal(got) = &read.payload else {
        panic!("not a normal entry: {read:?}")
    };
    assert_eq!(got.bytes(), sent.bytes());
    assert_eq!(got.decode().unwrap(), sent.decode().unwrap());
    // The request's last bytes are missing: its value claims more bytes than there are.
    payload.truncate(payload.len() - 10);
    let read = decode_entry(bytes::Bytes::from(payload)).unwrap();
    let EntryPayload::Normal(got) = &read.payload else {
        panic!("not a normal entry: {read:?}")
    };
    assert!(got.decode().is_err());
}

/// WriteBufferReused: one append whose records span several segments (the buffer is cut at
/// each roll) is read back whole, the committed id written ahead of it included, before and
/// after a power cut; the buffer keeps its pages between writes, but not a large batch's.
#[test]
fn a_batch_across_segment_rolls_is_written_whole_and_the_buffer_is_kept_small() {
    let disk = SimDisk::new();
    let wal = must_open(&disk, opts());
    append(&wal, vec![entry(1, 1)]).unwrap();
    save_committed(&wal, Some(log_id(1, 1))).unwrap();
    let before = wal.segment_names().len();
    append(&wal, (2..=40).map(|i| entry(1, i)).collect()).unwrap();
    assert!(
        wal.segment_names().len() > before + 3,
        "the batch spans several segments"
    );
    assert_eq!(contents(&wal), span(1, 1..=40));
    let kept = wal.shared.state.lock().unwrap().wbuf.capacity();
    assert!(kept > 0, "the write buffer is kept between writes");
    drop(wal);
    disk.crash();
    let wal = must_open(&disk, opts());
    assert_eq!(contents(&wal), span(1, 1..=40));
    assert_eq!(wal.log_state().1, Some(log_id(1, 40)));
    assert_eq!(
        wal.shared.state.lock().unwrap().committed,
        Some(log_id(1, 1))
    );

    // A batch larger than WRITE_BUFFER_KEEP: written, then its buffer freed.
    let wal = must_open(&SimDisk::new(), WalOptions::default());
    let n = 300_000;
    append(&wal, (1..=n).map(|i| entry(1, i)).collect()).unwrap();
    assert_eq!(wal.log_state().1, Some(log_id(1, n)));
    assert_eq!(wal.shared.state.lock().unwrap().wbuf.capacity(), 0);
}

/// DurableLastKnown: `durable` rises to the last entry a sync covered, only after that sync,
/// falls with a truncation below it, and a sync that began before a truncation does not raise
/// it back to entries the truncation removed.
#[test]
fn durable_is_the_last_synced_entry_still_in_the_log() {
    let disk = SimDisk::new();
    let wal = Arc::new(must_open(&disk, opts()));
    assert_eq!(wal.durable(), None);
    append(&wal, (1..=3).map(|i| entry(1, i)).collect()).unwrap();
    assert_eq!(wal.durable(), Some(log_id(1, 3)));

    // Written, not yet synced: not durable.
    disk.hold_syncs(true);
    let (done, rx) = waiter();
    wal.append((4..=6).map(|i| entry(1, i)), done, false)
        .unwrap();
    std::thread::sleep(Duration::from_millis(50));
    assert_eq!(wal.durable(), Some(log_id(1, 3)));
    // A truncation while that sync is held: it takes the state lock and waits for its own
    // sync; the held group commit ends after it and must not raise `durable` to entry 6.
    let w = wal.clone();
    let truncate = std::thread::spawn(move || w.truncate_after(Some(4)));
    std::thread::sleep(Duration::from_millis(50));
    disk.hold_syncs(false);
    truncate.join().unwrap().unwrap();
    wait(rx).unwrap();
    sync(&wal).unwrap();
    assert_eq!(wal.durable(), Some(log_id(1, 4)));

    // A truncation below `durable` lowers it to the new last entry.
    append(&wal, vec![entry(2, 5), entry(2, 6)]).unwrap();
    assert_eq!(wal.durable(), Some(log_id(2, 6)));
    wal.truncate_after(Some(2)).unwrap();
    assert_eq!(wal.durable(), Some(log_id(1, 2)));
    drop(wal);
    // After a restart what replay found is durable (ReplayedIsDurable).
    let wal = must_open(&disk, opts());
    assert_eq!(wal.durable(), Some(log_id(1, 2)));
}

impl Wal {
    /// Where entry `index`'s record starts: the segment file name and the frame's offset.
    fn frame_of(&self, index: u64) -> Option<(String, u64)> {
        let st = self.shared.state.lock().expect("lock");
        let i = index.checked_sub(st.first)?;
        let loc = st.locs.get(i as usize)?;
        Some((seg_name(loc.seq), loc.off - FRAME))
    }

    /// The segment files, oldest first.
    fn segment_names(&self) -> Vec<String> {
        let st = self.shared.state.lock().expect("lock");
        st.segments.iter().map(|s| seg_name(s.seq)).collect()
    }
}
