//! Finding a command's keys in its arguments from its key specs (`COMMAND GETKEYS`), as Redis's
//! `getKeysUsingKeySpecs` does.

use bytes::Bytes;

use super::{CommandSpec, KeySpec};

impl CommandSpec {
    /// The positions in `argv` (the command's name at 0) of the keys its key specs find, in
    /// spec order, each with its spec's flags: Redis's `getKeysUsingKeySpecs` for `index` and
    /// `keyword` begin searches with `range` find-keys (the only kinds in this table). A spec
    /// whose keyword is missing finds nothing; positions past the end are not keys (Redis
    /// leaves those to the command's own arity check).
    pub fn key_positions(&self, argv: &[Bytes]) -> Vec<(usize, &'static [&'static str])> {
        let argc = argv.len() as i64;
        let mut keys = Vec::new();
        for spec in self.key_specs {
            let first = if spec.begin_keyword.is_empty() {
                spec.begin_index
            } else {
                let from = spec.begin_startfrom;
                let start = if from > 0 { from } else { argc + from };
                let found = if from > 0 {
                    (start.max(1)..argc).find(|&i| is_keyword(&argv[i as usize], spec))
                } else {
                    (1..=start.min(argc - 1))
                        .rev()
                        .find(|&i| is_keyword(&argv[i as usize], spec))
                };
                match found {
                    Some(i) => i + 1,
                    None => continue,
                }
            };
            if let Some(k) = &spec.keynum {
                // Redis's keynum: the count at first + keynumidx; a count that is not a
                // non-negative integer, or keys past the end, find nothing.
                let at = first + k.keynumidx;
                let Some(count) = argv
                    .get(at as usize)
                    .and_then(|a| std::str::from_utf8(a).ok())
                    .and_then(|a| a.parse::<i64>().ok())
                    .filter(|&n| n >= 0)
                else {
                    continue;
                };
                let start = at + k.firstkey;
                let step = k.keystep.max(1);
                let last = start + (count - 1) * step;
                if last >= argc {
                    continue;
                }
                let mut i = start;
                while i <= last {
                    keys.push((i as usize, spec.flags));
                    i += step;
                }
                continue;
            }
            let last = if spec.lastkey >= 0 {
                first + spec.lastkey
            } else if spec.limit == 0 {
                argc + spec.lastkey
            } else {
                first + ((argc - first) / spec.limit + spec.lastkey)
            };
            let step = spec.keystep.max(1);
            let mut i = first;
            while i <= last && i < argc && i >= 1 {
                keys.push((i as usize, spec.flags));
                i += step;
            }
        }
        keys
    }
}

fn is_keyword(arg: &[u8], spec: &KeySpec) -> bool {
    arg.eq_ignore_ascii_case(spec.begin_keyword.as_bytes())
}
