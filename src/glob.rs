//! Redis's glob matching for KEYS, SCAN MATCH and PSUBSCRIBE: `stringmatchlen` of Redis 7.0
//! (`util.c`), byte for byte, so a pattern selects the same keys (and channels) as in Redis.
//!
//! `*` any run of bytes, `?` one byte, `[abc]` a set, `[^a]` its complement, `[a-z]` a range
//! (ends in either order, compared as C's signed `char`), `\x` the byte `x`. A malformed
//! pattern is not an error: an unclosed `[` ends the set at the pattern's end, a trailing `\`
//! is a literal backslash. Nested `*` beyond 1000 levels match nothing, and a `*` that found
//! no match for the rest of the pattern stops longer attempts of earlier `*`s, which keeps the
//! cost polynomial (Redis's guards against abusive patterns).
//!
//! Pure: no I/O, no allocation. Keys and patterns are bytes. [`matches`] folds no case (keys,
//! channels); [`matches_nocase`] folds ASCII case, as Redis's `nocase` flag does for the names
//! of commands and settings (COMMAND LIST FILTERBY PATTERN, CONFIG GET).

/// How deep `*` may recurse before a pattern is taken to match nothing.
const MAX_NESTING: u32 = 1000;

/// Returns whether `key` matches the glob `pattern`.
pub fn matches(pattern: &[u8], key: &[u8]) -> bool {
    let mut skip_longer = false;
    match_from(pattern, key, false, &mut skip_longer, 0)
}

/// Returns whether `name` matches the glob `pattern`, ASCII case folded (Redis's
/// `stringmatchlen` with `nocase`).
pub fn matches_nocase(pattern: &[u8], name: &[u8]) -> bool {
    let mut skip_longer = false;
    match_from(pattern, name, true, &mut skip_longer, 0)
}

fn match_from(p: &[u8], s: &[u8], nocase: bool, skip_longer: &mut bool, nesting: u32) -> bool {
    if nesting > MAX_NESTING {
        return false;
    }
    // Redis's `tolower` under `nocase`; the identity otherwise.
    let fold = |b: u8| if nocase { b.to_ascii_lowercase() } else { b };
    // C reads the pattern's terminating NUL at its end; so does `at`.
    let at = |i: usize| p.get(i).copied().unwrap_or(0);
    let (mut pi, mut si) = (0usize, 0usize);
    while pi < p.len() && si < s.len() {
        match p[pi] {
            b'*' => {
                while at(pi + 1) == b'*' {
                    pi += 1;
                }
                if pi + 1 == p.len() {
                    return true;
                }
                while si < s.len() {
                    if match_from(&p[pi + 1..], &s[si..], nocase, skip_longer, nesting + 1) {
                        return true;
                    }
                    if *skip_longer {
                        return false;
                    }
                    si += 1;
                }
                // Nothing matched the rest of the pattern from any later position: no earlier
                // `*` can do better by consuming more.
                *skip_longer = true;
                return false;
            }
            b'?' => si += 1,
            b'[' => {
                pi += 1;
                let negate = at(pi) == b'^';
                if negate {
                    pi += 1;
                }
                let mut hit = false;
                loop {
                    if at(pi) == b'\\' && p.len() - pi >= 2 {
                        pi += 1;
                        hit |= p[pi] == s[si];
                    } else if at(pi) == b']' {
                        break;
                    } else if pi >= p.len() {
                        // Unclosed set: stop on the last byte, which the step below passes.
                        pi -= 1;
                        break;
                    } else if p.len() - pi >= 3 && p[pi + 1] == b'-' {
                        let (mut lo, mut hi) = (p[pi] as i8, p[pi + 2] as i8);
                        if lo > hi {
                            std::mem::swap(&mut lo, &mut hi);
                        }
                        let (lo, hi) = (fold(lo as u8) as i8, fold(hi as u8) as i8);
                        let c = fold(s[si]) as i8;
                        hit |= lo <= c && c <= hi;
                        pi += 2;
                    } else {
                        hit |= fold(p[pi]) == fold(s[si]);
                    }
                    pi += 1;
                }
                if hit == negate {
                    return false;
                }
                si += 1;
            }
            c => {
                let c = if c == b'\\' && p.len() - pi >= 2 {
                    pi += 1;
                    p[pi]
                } else {
                    c
                };
                if fold(c) != fold(s[si]) {
                    return false;
                }
                si += 1;
            }
        }
        pi += 1;
        if si == s.len() {
            while at(pi) == b'*' {
                pi += 1;
            }
            break;
        }
    }
    pi >= p.len() && si == s.len()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_like_redis_stringmatchlen() {
        struct Case {
            pattern: &'static [u8],
            key: &'static [u8],
            want: bool,
        }
        let cases = [
            Case {
                pattern: b"*",
                key: b"anything",
                want: true,
            },
            Case {
                pattern: b"*",
                key: b"",
                want: false,
            }, // KEYS * special-cases this
            Case {
                pattern: b"",
                key: b"",
                want: true,
            },
            Case {
                pattern: b"",
                key: b"a",
                want: false,
            },
            Case {
                pattern: b"h?llo",
                key: b"hello",
                want: true,
            },
            Case {
                pattern: b"h?llo",
                key: b"hllo",
                want: false,
            },
            Case {
                pattern: b"h*llo",
                key: b"heeeello",
                want: true,
            },
            Case {
                pattern: b"h*llo",
                key: b"hllo",
                want: true,
            },
            Case {
                pattern: b"h[ae]llo",
                key: b"hallo",
                want: true,
            },
            Case {
                pattern: b"h[ae]llo",
                key: b"hillo",
                want: false,
            },
            Case {
                pattern: b"h[^e]llo",
                key: b"hallo",
                want: true,
            },
            Case {
                pattern: b"h[^e]llo",
                key: b"hello",
                want: false,
            },
            Case {
                pattern: b"h[a-b]llo",
                key: b"hbllo",
                want: true,
            },
            Case {
                pattern: b"h[b-a]llo",
                key: b"hallo",
                want: true,
            }, // reversed range
            Case {
                pattern: b"h[a-b]llo",
                key: b"hcllo",
                want: false,
            },
            Case {
                pattern: b"\\*",
                key: b"*",
                want: true,
            },
            Case {
                pattern: b"\\*",
                key: b"a",
                want: false,
            },
            Case {
                pattern: b"a\\",
                key: b"a\\",
                want: true,
            }, // trailing backslash is literal
            Case {
                pattern: b"[\\]]",
                key: b"]",
                want: true,
            },
            Case {
                pattern: b"[a",
                key: b"a",
                want: true,
            }, // unclosed set
            Case {
                pattern: b"[",
                key: b"[",
                want: false,
            },
            Case {
                pattern: b"a*",
                key: b"a",
                want: true,
            },
            Case {
                pattern: b"a**",
                key: b"a",
                want: true,
            },
            Case {
                pattern: b"*a*b",
                key: b"xaxxb",
                want: true,
            },
            Case {
                pattern: b"*a*b",
                key: b"xaxxc",
                want: false,
            },
            Case {
                pattern: b"\x00*",
                key: b"\x00\x01",
                want: true,
            },
            Case {
                pattern: b"[\x80-\xff]",
                key: b"\x90",
                want: true,
            },
            Case {
                pattern: b"[a-\xff]",
                key: b"b",
                want: false,
            }, // signed chars: 0xff is -1
        ];
        for c in cases {
            assert_eq!(
                matches(c.pattern, c.key),
                c.want,
                "{:?} ~ {:?}",
                String::from_utf8_lossy(c.pattern),
                String::from_utf8_lossy(c.key)
            );
        }
    }

    /// The cases of the case-folding matcher CONFIG GET and COMMAND LIST FILTERBY PATTERN
    /// used before they shared this one.
    #[test]
    fn nocase_matches_like_stringmatchlen() {
        let cases: &[(&str, &str, bool, bool)] = &[
            // Redis's stringmatchlen: `*` does not match the empty string (no command or
            // setting name is empty).
            ("*", "", false, false),
            ("*", "anything", false, true),
            ("max*", "maxclients", false, true),
            ("*max*", "proto-max-bulk-len", false, true),
            ("MAX*", "maxclients", true, true),
            ("MAX*", "maxclients", false, false),
            ("h?llo", "hello", false, true),
            ("h?llo", "hllo", false, false),
            ("h[ae]llo", "hallo", false, true),
            ("h[^e]llo", "hello", false, false),
            ("h[a-c]llo", "hbllo", false, true),
            ("h\\*llo", "h*llo", false, true),
            ("h\\*llo", "hello", false, false),
            ("a*b*c", "axxbyyc", false, true),
            ("a*b*c", "axxbyy", false, false),
            ("get*", "getrange", false, true),
            ("client|*", "client|list", false, true),
            ("H[A-C]LLO", "hbllo", true, true),
            ("h[AE]llo", "hallo", true, true),
        ];
        for &(p, s, nocase, want) in cases {
            let got = if nocase {
                matches_nocase(p.as_bytes(), s.as_bytes())
            } else {
                matches(p.as_bytes(), s.as_bytes())
            };
            assert_eq!(got, want, "{p:?} {s:?} nocase={nocase}");
        }
        let evil = "*a".repeat(50);
        assert!(!matches_nocase(evil.as_bytes(), &[b'b'; 200]));
    }

    #[test]
    fn abusive_patterns_are_cheap_and_bounded() {
        // Exponential without the skip-longer guard; answers at once with it.
        let pattern = b"a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*b";
        assert!(!matches(pattern, &[b'a'; 64]));
        // Deeper than 1000 nested stars: no match, no stack overflow.
        let deep: Vec<u8> = b"a*".repeat(1100);
        assert!(!matches(&deep, &[b'a'; 1200]));
        assert!(matches(&b"a*".repeat(900), &[b'a'; 1000]));
    }
}
