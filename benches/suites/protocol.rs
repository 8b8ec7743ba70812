//! RESP suite: decoding client input with the resumable `Framer`, encoding replies with
//! `protocol::encode`, and command parsing (table lookup, arity, the write planner) through
//! `commands::plan_write`.

use bytes::{Bytes, BytesMut};
use criterion::{black_box, BatchSize, Criterion, Throughput};
use redraft::commands::plan_write;
use redraft::protocol::{encode, Frame, Framer, Limits, Protocol};

/// The RESP2 encoding of one client command, as a client library sends it.
pub fn command(args: &[&[u8]]) -> Vec<u8> {
    let mut out = format!("*{}\r\n", args.len()).into_bytes();
    for a in args {
        out.extend_from_slice(format!("${}\r\n", a.len()).as_bytes());
        out.extend_from_slice(a);
        out.extend_from_slice(b"\r\n");
    }
    out
}

pub fn benches(c: &mut Criterion) {
    let limits = Limits::default();
    let small = vec![b'v'; 16];
    let kb = vec![b'v'; 1024];

    // Decode: one SET with a small or 1 KB value, and a pipeline of 64 SETs read in one buffer.
    let mut g = c.benchmark_group("Framer::parse");
    for (name, value) in [("set_16B", &small), ("set_1KB", &kb)] {
        let input = command(&[b"SET", b"key:000123", value]);
        g.throughput(Throughput::Bytes(input.len() as u64));
        g.bench_function(name, |b| {
            b.iter_batched_ref(
                || BytesMut::from(&input[..]),
                |buf| {
                    let mut framer = Framer::new();
                    black_box(framer.parse(buf, &limits).unwrap().unwrap())
                },
                BatchSize::SmallInput,
            )
        });
    }
    for (name, value) in [
        ("pipeline_64x_set_16B", &small),
        ("pipeline_64x_set_1KB", &kb),
    ] {
        let one = command(&[b"SET", b"key:000123", value]);
        let input: Vec<u8> = one.iter().copied().cycle().take(one.len() * 64).collect();
        g.throughput(Throughput::Elements(64));
        g.bench_function(name, |b| {
            b.iter_batched_ref(
                || BytesMut::from(&input[..]),
                |buf| {
                    let mut framer = Framer::new();
                    let mut n = 0;
                    while let Some(argv) = framer.parse(buf, &limits).unwrap() {
                        black_box(argv);
                        n += 1;
                    }
                    assert_eq!(n, 64);
                },
                BatchSize::SmallInput,
            )
        });
    }
    g.finish();

    // Encode: the replies of GET (bulk, small and 1 KB), SET (+OK), and a pipeline of 64 GET
    // replies into one output buffer, as the session flushes a batch.
    let mut g = c.benchmark_group("protocol::encode");
    let replies = [
        ("ok", Frame::ok()),
        ("bulk_16B", Frame::bulk(Bytes::from(small.clone()))),
        ("bulk_1KB", Frame::bulk(Bytes::from(kb.clone()))),
    ];
    for (name, frame) in &replies {
        g.bench_function(*name, |b| {
            let mut out = BytesMut::with_capacity(4096);
            b.iter(|| {
                out.clear();
                encode(black_box(frame), Protocol::Resp2, &mut out);
                black_box(out.len())
            })
        });
    }
    let bulk = Frame::bulk(Bytes::from(kb.clone()));
    g.throughput(Throughput::Elements(64));
    g.bench_function("pipeline_64x_bulk_1KB", |b| {
        let mut out = BytesMut::with_capacity(128 * 1024);
        b.iter(|| {
            out.clear();
            for _ in 0..64 {
                encode(&bulk, Protocol::Resp2, &mut out);
            }
            black_box(out.len())
        })
    });
    g.finish();

    // Command parsing: argv to the store operation a write proposes.
    let mut g = c.benchmark_group("commands::plan_write");
    let cases: [(&str, Vec<&[u8]>); 4] = [
        ("set", vec![b"SET", b"key:000123", &small]),
        (
            "set_nx_get",
            vec![b"SET", b"key:000123", &small, b"NX", b"GET"],
        ),
        ("incr", vec![b"INCR", b"counter"]),
        ("get_not_a_write", vec![b"GET", b"key:000123"]),
    ];
    for (name, args) in &cases {
        let argv: Vec<Bytes> = args.iter().map(|a| Bytes::copy_from_slice(a)).collect();
        g.bench_function(*name, |b| {
            b.iter_batched(
                || argv.clone(),
                |argv| black_box(plan_write(argv).unwrap()),
                BatchSize::SmallInput,
            )
        });
    }
    g.finish();
}
