//! A config-center client for redraft with a stock Redis client (the `redis` crate): load every
//! key under a prefix at one revision, then follow the changes with an XREAD loop on the watch
//! stream `__watch__:<prefix>`, surviving disconnects and node failures without missing or
//! repeating a change (the README's walkthrough).
//!
//! ```text
//! cargo run --example config_center -- <prefix> <changes> <host:port> [<host:port> ...]
//! ```
//!
//! Prints `loaded <n> keys at revision <r>`, then one `change <id> <type> <key> [<value>]` line
//! per change, and once `<changes>` changes were applied, the config as `key=value` lines.

use std::collections::BTreeMap;
use std::time::Duration;

use redis::Value;

fn text(v: &Value) -> String {
    match v {
        Value::BulkString(b) => String::from_utf8_lossy(b).into_owned(),
        Value::SimpleString(s) => s.clone(),
        Value::Int(i) => i.to_string(),
        other => format!("{other:?}"),
    }
}

fn connect(addr: &str) -> redis::RedisResult<redis::Connection> {
    let client = redis::Client::open(format!("redis://{addr}/"))?;
    let con = client.get_connection_with_timeout(Duration::from_secs(1))?;
    con.set_read_timeout(Some(Duration::from_secs(5)))?;
    Ok(con)
}

/// Loads every key under `prefix` as of one revision: REVISION, then SCAN for the keys, then
/// GETAT each at that revision (a key created later reads nil and arrives with the stream; a
/// key deleted later is read as it was, and its delete arrives with the stream).
fn load(
    con: &mut redis::Connection,
    prefix: &str,
) -> redis::RedisResult<(BTreeMap<String, String>, u64)> {
    let rev: Value = redis::cmd("REVISION").query(con)?;
    let fields: Vec<Value> = match rev {
        Value::Array(a) => a,
        Value::Map(m) => m.into_iter().flat_map(|(k, v)| [k, v]).collect(),
        _ => Vec::new(),
    };
    let revision: u64 = fields
        .chunks(2)
        .find(|c| text(&c[0]) == "revision")
        .map(|c| text(&c[1]).parse().unwrap_or(0))
        .unwrap_or(0);
    let keys: Vec<String> = redis::cmd("SCAN")
        .cursor_arg(0)
        .arg("MATCH")
        .arg(format!("{prefix}*"))
        .clone()
        .iter(con)?
        .collect();
    let mut pipe = redis::pipe();
    for k in &keys {
        pipe.cmd("GETAT").arg(k).arg(revision);
    }
    let values: Vec<Option<String>> = pipe.query(con)?;
    let config = keys
        .into_iter()
        .zip(values)
        .filter_map(|(k, v)| v.map(|v| (k, v)))
        .collect();
    Ok((config, revision))
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.len() < 3 {
        eprintln!("usage: config_center <prefix> <changes> <host:port> [<host:port> ...]");
        std::process::exit(2);
    }
    let (prefix, want, addrs) = (&args[0], args[1].parse::<usize>().unwrap_or(0), &args[2..]);
    let stream = format!("__watch__:{prefix}");
    let mut node = 0;
    // Load once, from whichever node answers.
    let (mut config, revision) = loop {
        match connect(&addrs[node % addrs.len()]).and_then(|mut c| load(&mut c, prefix)) {
            Ok(loaded) => break loaded,
            Err(e) => {
                eprintln!(
                    "load failed on {}: {e}; trying the next node",
                    addrs[node % addrs.len()]
                );
                node += 1;
                std::thread::sleep(Duration::from_millis(200));
            }
        }
    };
    println!("loaded {} keys at revision {revision}", config.len());
    // "The last ID I saw" is "the revision I have": a bare revision resumes after all of it.
    let mut last = revision.to_string();
    let mut applied = 0;
    let mut con: Option<redis::Connection> = None;
    while applied < want {
        let c = match con.as_mut() {
            Some(c) => c,
            None => match connect(&addrs[node % addrs.len()]) {
                Ok(c) => con.insert(c),
                Err(_) => {
                    node += 1;
                    std::thread::sleep(Duration::from_millis(100));
                    continue;
                }
            },
        };
        let reply: redis::RedisResult<Value> = redis::cmd("XREAD")
            .arg("BLOCK")
            .arg(2000)
            .arg("STREAMS")
            .arg(&stream)
            .arg(&last)
            .query(c);
        let streams = match reply {
            Ok(Value::Array(streams)) => streams,
            Ok(_) => continue, // nil: BLOCK timed out, nothing new
            Err(e) => {
                // Disconnected, node gone, or COMPACTED (then reload: not handled here).
                eprintln!("watch interrupted at {last}: {e}; resuming on the next node");
                con = None;
                node += 1;
                continue;
            }
        };
        for s in streams {
            let Value::Array(pair) = s else { continue };
            let Value::Array(entries) = &pair[1] else {
                continue;
            };
            for e in entries {
                let Value::Array(entry) = e else { continue };
                let id = text(&entry[0]);
                let Value::Array(kv) = &entry[1] else {
                    continue;
                };
                let f: BTreeMap<String, String> =
                    kv.chunks(2).map(|c| (text(&c[0]), text(&c[1]))).collect();
                let key = f.get("key").cloned().unwrap_or_default();
                match f.get("value") {
                    Some(v) => {
                        println!("change {id} {} {key} {v}", f["type"]);
                        config.insert(key, v.clone());
                    }
                    None => {
                        println!("change {id} {} {key}", f["type"]);
                        config.remove(&key);
                    }
                }
                last = id;
                applied += 1;
            }
        }
    }
    for (k, v) in &config {
        println!("{k}={v}");
    }
}
