//! `LongDouble`: the number INCRBYFLOAT computes with, in software, so every node and every
//! platform gets the same bytes (DeterministicApply).
//!
//! Redis computes INCRBYFLOAT in C `long double`, which on x86-64 is the x87 80-bit extended
//! format: a 64-bit significand with an explicit integer bit and a 15-bit exponent. It parses
//! with `strtold` (decimal and hexadecimal, correctly rounded), adds with round-to-nearest-even
//! and prints with `%.17Lf`, trailing zeros trimmed (`ld2string`, `LD_STR_HUMAN`). The printed
//! text is what is stored, so the results differ from `f64` arithmetic: `INCRBYFLOAT k 0.1` on
//! `5000` answers `5000.10000000000000009`. This file reproduces those three steps exactly,
//! with big-integer arithmetic on the exact binary values instead of an FPU, so the answer is
//! the x86-64 Redis answer on every machine (Redis itself differs on aarch64, whose
//! `long double` is 128 bits wide).
//!
//! A finite value is `±mantissa × 2^exp`. Normal values have bit 63 of the mantissa set and
//! `MIN_EXP < exp <= MAX_EXP`, or `exp == MIN_EXP`; subnormals and zero have `exp == MIN_EXP`
//! with a smaller mantissa (x87 pseudo-denormals do not arise from arithmetic and are not made).
//!
//! This file owns the number format only; which command uses it and the error texts are not
//! its business.

use num_bigint::BigUint;

/// Exponent of the mantissa's lowest bit for subnormals (and the smallest normal exponent):
/// the x87 minimum exponent -16382 minus the 63 fraction bits.
const MIN_EXP: i64 = -16445;
/// Exponent of the mantissa's lowest bit for the largest finite values: 16383 - 63.
const MAX_EXP: i64 = 16320;
/// `MAX_LONG_DOUBLE_CHARS` in Redis: inputs this long or longer are refused unparsed.
const MAX_INPUT: usize = 5 * 1024;
/// Decimal places printed by `%.17Lf`.
const PLACES: u32 = 17;

/// A value Redis's `string2ld` accepts: finite, or an infinity written as `inf`/`infinity`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LongDouble {
    Finite {
        negative: bool,
        mantissa: u64,
        exp: i64,
    },
    Infinite {
        negative: bool,
    },
}

/// Why a decimal or hexadecimal number did not round to a finite nonzero value.
enum Rounding {
    /// The magnitude is above the largest finite value (`strtold`'s `ERANGE`, `HUGE_VALL`).
    Overflow,
    /// A nonzero value rounded to zero (`strtold`'s `ERANGE` with a zero result).
    Underflow,
}

impl LongDouble {
    /// Returns zero.
    pub const ZERO: LongDouble = LongDouble::Finite {
        negative: false,
        mantissa: 0,
        exp: MIN_EXP,
    };

    /// Parses `text` as Redis's `string2ld` does: the whole text must be a `strtold` number
    /// (so no NUL byte) with no leading space; NaN, overflow and underflow to zero are refused;
    /// `inf` and `infinity` are accepted. Returns `None` when Redis answers "value
    /// is not a valid float".
    pub fn parse(text: &[u8]) -> Option<LongDouble> {
        if text.is_empty() || text.len() >= MAX_INPUT {
            return None;
        }
        // `strtold` stops at a NUL byte, and Redis wants the whole text consumed.
        if text.contains(&0) {
            return None;
        }
        let first = text[0];
        if matches!(first, b' ' | b'\t' | b'\n' | 0x0b | 0x0c | b'\r') {
            return None;
        }
        let (negative, body) = match first {
            b'-' => (true, &text[1..]),
            b'+' => (false, &text[1..]),
            _ => (false, text),
        };
        if body.eq_ignore_ascii_case(b"inf") || body.eq_ignore_ascii_case(b"infinity") {
            return Some(LongDouble::Infinite { negative });
        }
        let (mantissa, scale) = if body.len() > 2 && body[0] == b'0' && (body[1] | 0x20) == b'x' {
            parse_hex(&body[2..])?
        } else {
            parse_decimal(body)?
        };
        let rounded = match scale {
            Scale::Binary(k) => round(negative, mantissa, k),
            Scale::Decimal(e10) => round_decimal(negative, mantissa, e10),
        };
        rounded.ok()
    }

    /// Returns `self + other` rounded to nearest-even, or `None` if the sum is NaN or an
    /// infinity (Redis: "increment would produce NaN or Infinity").
    pub fn checked_add(self, other: LongDouble) -> Option<LongDouble> {
        let (
            LongDouble::Finite {
                negative: na,
                mantissa: ma,
                exp: ea,
            },
            LongDouble::Finite {
                negative: nb,
                mantissa: mb,
                exp: eb,
            },
        ) = (self, other)
        else {
            return None;
        };
        // Both are multiples of 2^min(ea, eb): the sum is exact before rounding.
        let k = ea.min(eb);
        let a = BigUint::from(ma) << (ea - k) as u64;
        let b = BigUint::from(mb) << (eb - k) as u64;
        let (negative, sum) = if na == nb {
            (na, a + b)
        } else if a >= b {
            (na, a - b)
        } else {
            (nb, b - a)
        };
        if sum.bits() == 0 {
            // x + (-x) is +0 when rounding to nearest.
            return Some(LongDouble::ZERO);
        }
        round(negative, sum, k).ok()
    }

    /// Returns the text Redis stores and replies: `%.17Lf` with trailing zeros (and a trailing
    /// point) removed, and `-0` written `0`. Infinities print as `inf`/`-inf`, as
    /// `ld2string` writes them (INCRBYFLOAT never stores one).
    pub fn to_human(self) -> String {
        let (negative, mantissa, exp) = match self {
            LongDouble::Infinite { negative } => {
                return if negative { "-inf" } else { "inf" }.to_owned()
            }
            LongDouble::Finite {
                negative,
                mantissa,
                exp,
            } => (negative, mantissa, exp),
        };
        let scaled = 10u128.pow(PLACES);
        // The value times 10^17, rounded to an integer, half to even (glibc's printf).
        let digits = if exp >= 0 {
            ((BigUint::from(mantissa) << exp as u64) * scaled).to_string()
        } else {
            let x = u128::from(mantissa) * scaled; // < 2^121
            let s = exp.unsigned_abs();
            let q = if s >= 128 {
                0
            } else {
                let (q, rem, half) = (x >> s, x & ((1u128 << s) - 1), 1u128 << (s - 1));
                if rem > half || (rem == half && q & 1 == 1) {
                    q + 1
                } else {
                    q
                }
            };
            q.to_string()
        };
        let places = PLACES as usize;
        let digits = format!("{digits:0>width$}", width = places + 1);
        let (int_part, frac) = digits.split_at(digits.len() - places);
        let frac = frac.trim_end_matches('0');
        let mut out = String::with_capacity(digits.len() + 2);
        if negative {
            out.push('-');
        }
        out.push_str(int_part);
        if !frac.is_empty() {
            out.push('.');
            out.push_str(frac);
        }
        if out == "-0" {
            out.remove(0);
        }
        out
    }
}

/// How a parsed significand is scaled.
enum Scale {
    /// `× 2^k` (hexadecimal input).
    Binary(i64),
    /// `× 10^e` (decimal input).
    Decimal(i64),
}

/// Parses the digits after `0x`: `h*[.h*]` with at least one digit, then an optional
/// `p[±]d+`. The whole input must match (Redis refuses a partial parse).
fn parse_hex(s: &[u8]) -> Option<(BigUint, Scale)> {
    let mut mantissa = BigUint::default();
    let mut digits = 0usize;
    let mut frac_digits = 0i64;
    let mut i = 0;
    let mut seen_point = false;
    while let Some(&c) = s.get(i) {
        if let Some(d) = (c as char).to_digit(16) {
            mantissa = (mantissa << 4u32) + d;
            digits += 1;
            if seen_point {
                frac_digits += 1;
            }
        } else if c == b'.' && !seen_point {
            seen_point = true;
        } else {
            break;
        }
        i += 1;
    }
    if digits == 0 {
        return None;
    }
    let mut k = -4 * frac_digits;
    if i < s.len() {
        if s[i] | 0x20 != b'p' {
            return None;
        }
        k = k.saturating_add(parse_exponent(&s[i + 1..])?);
    }
    Some((mantissa, Scale::Binary(k)))
}

/// Parses `d*[.d*]` with at least one digit, then an optional `e[±]d+`. The whole input must
/// match.
fn parse_decimal(s: &[u8]) -> Option<(BigUint, Scale)> {
    let mut mantissa = BigUint::default();
    let mut digits = 0usize;
    let mut frac_digits = 0i64;
    let mut i = 0;
    let mut seen_point = false;
    while let Some(&c) = s.get(i) {
        if c.is_ascii_digit() {
            mantissa = mantissa * 10u32 + u32::from(c - b'0');
            digits += 1;
            if seen_point {
                frac_digits += 1;
            }
        } else if c == b'.' && !seen_point {
            seen_point = true;
        } else {
            break;
        }
        i += 1;
    }
    if digits == 0 {
        return None;
    }
    let mut e10 = -frac_digits;
    if i < s.len() {
        if s[i] | 0x20 != b'e' {
            return None;
        }
        e10 = e10.saturating_add(parse_exponent(&s[i + 1..])?);
    }
    Some((mantissa, Scale::Decimal(e10)))
}

/// Parses `[±]d+` (the whole input), saturating far beyond any representable exponent.
fn parse_exponent(s: &[u8]) -> Option<i64> {
    let (negative, digits) = match s.first() {
        Some(b'-') => (true, &s[1..]),
        Some(b'+') => (false, &s[1..]),
        _ => (false, s),
    };
    if digits.is_empty() || !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let magnitude = digits.iter().fold(0i64, |n, &d| {
        n.saturating_mul(10)
            .saturating_add(i64::from(d - b'0'))
            .min(1 << 40)
    });
    Some(if negative { -magnitude } else { magnitude })
}

/// Rounds `±mantissa × 10^e10` to the nearest `LongDouble`, ties to even.
fn round_decimal(negative: bool, mantissa: BigUint, e10: i64) -> Result<LongDouble, Rounding> {
    if mantissa.bits() == 0 {
        return Ok(LongDouble::Finite {
            negative,
            mantissa: 0,
            exp: MIN_EXP,
        });
    }
    // Decimal position of the leading digit: out of range on either side before any big
    // arithmetic (the largest finite value is about 1.19e4932, the smallest subnormal 3.65e-4951).
    let ndigits = mantissa.to_string().len() as i64;
    let lead = e10.saturating_add(ndigits - 1);
    if lead > 4933 {
        return Err(Rounding::Overflow);
    }
    if lead < -4952 {
        return Err(Rounding::Underflow);
    }
    if e10 >= 0 {
        let n = mantissa * BigUint::from(10u32).pow(e10 as u32);
        return round(negative, n, 0);
    }
    // value = mantissa / 10^m. Take a quotient of at least 66 bits and keep the remainder as a
    // sticky bit below it, so rounding sees "above half" and "exactly half" correctly.
    let divisor = BigUint::from(10u32).pow(e10.unsigned_abs() as u32);
    let t = (divisor.bits() + 66).saturating_sub(mantissa.bits());
    let shifted = mantissa << t;
    let q = &shifted / &divisor;
    let sticky = u32::from(q.clone() * &divisor != shifted);
    let n = (q << 1u32) + sticky;
    round(negative, n, -(t as i64) - 1)
}

/// Rounds `±n × 2^k` (`n > 0`) to the nearest `LongDouble`, ties to even, with x87's range:
/// subnormals below `2^-16382`, overflow above the largest finite value.
fn round(negative: bool, n: BigUint, k: i64) -> Result<LongDouble, Rounding> {
    let bits = n.bits() as i64;
    let shift = (bits - 64).max(MIN_EXP.saturating_sub(k));
    // Decide far-out-of-range values before shifting by a huge amount (`0x1p±99999999`).
    if shift > bits {
        return Err(Rounding::Underflow);
    }
    if k.saturating_add(shift) > MAX_EXP {
        return Err(Rounding::Overflow);
    }
    let (mut q, mut exp) = if shift > 0 {
        let s = shift as u64;
        let q = &n >> s;
        let rem = &n - (&q << s);
        let half = BigUint::from(1u32) << (s - 1);
        let up = rem > half || (rem == half && q.bit(0));
        (if up { q + 1u32 } else { q }, k + shift)
    } else {
        (n << shift.unsigned_abs(), k + shift)
    };
    if q.bits() > 64 {
        // Rounding carried into a 65th bit: q is exactly 2^64.
        q >>= 1u32;
        exp += 1;
    }
    if exp > MAX_EXP {
        return Err(Rounding::Overflow);
    }
    let mantissa = u64::try_from(&q).expect("rounded to at most 64 bits");
    if mantissa == 0 {
        return Err(Rounding::Underflow);
    }
    Ok(LongDouble::Finite {
        negative,
        mantissa,
        exp,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn must_parse(text: &str) -> LongDouble {
        LongDouble::parse(text.as_bytes()).unwrap_or_else(|| panic!("{text:?} parses"))
    }

    /// Each case was checked against redis-server 7.0 on x86-64 (`SET k <value>` then
    /// `INCRBYFLOAT k <increment>`).
    #[test]
    fn incrbyfloat_answers_as_x86_redis() {
        struct Case {
            value: &'static str,
            increment: &'static str,
            want: &'static str,
        }
        let cases = [
            Case {
                value: "10",
                increment: "0.5",
                want: "10.5",
            },
            Case {
                value: "0",
                increment: "10.50",
                want: "10.5",
            },
            Case {
                value: "0",
                increment: "5.0e3",
                want: "5000",
            },
            Case {
                value: "5000",
                increment: "0.1",
                want: "5000.10000000000000009",
            },
            Case {
                value: "1",
                increment: "9007199254740993",
                want: "9007199254740994",
            },
            Case {
                value: "9007199254740994",
                increment: "1.1",
                want: "9007199254740995.099609375",
            },
            Case {
                value: "1e3",
                increment: "0",
                want: "1000",
            },
            Case {
                value: "0x10",
                increment: "1",
                want: "17",
            },
            Case {
                value: "2.5",
                increment: "0x1p-2",
                want: "2.75",
            },
            // A tie at the 18th decimal: 2^-18 = 0.000003814697265625, rounded half to even.
            Case {
                value: "0",
                increment: "0.000003814697265625",
                want: "0.00000381469726562",
            },
            Case {
                value: "0",
                increment: "1.5e-10",
                want: "0.00000000015",
            },
            Case {
                value: "0",
                increment: "-0.000000000000000001",
                want: "0",
            },
            Case {
                value: "0",
                increment: "-1e-40",
                want: "0",
            },
            Case {
                value: "1.5",
                increment: "-1.5",
                want: "0",
            },
            Case {
                value: "-3",
                increment: "1.25",
                want: "-1.75",
            },
        ];
        for c in cases {
            let sum = must_parse(c.value).checked_add(must_parse(c.increment));
            let got = sum.map(LongDouble::to_human);
            assert_eq!(
                got.as_deref(),
                Some(c.want),
                "{} + {}",
                c.value,
                c.increment
            );
        }
        // 1e308 is far inside the 80-bit range and prints every integer digit.
        let big = must_parse("0")
            .checked_add(must_parse("1e308"))
            .unwrap()
            .to_human();
        assert_eq!(
            big,
            "9999999999999999999668587965584564566056009984741556720779704799492173486883806187\
             2100126921888539320446747225054013223152134749593960583597420814430196418767959100\
             0196031907786631096045071066679391533957889389145605435630612683649016186302170865\
             89253444881623791300855757318142424510452728255046343928578048"
        );
    }

    #[test]
    fn parse_accepts_what_string2ld_accepts() {
        let accepted = [
            "0", "-0", "1", "+1", ".5", "5.", "1e5", "1E+5", "1e-5", "0x1p3", "0X.8", "0x1.8P1",
            "inf", "-INF", "Infinity", "0e-99999", "1e4932", "4e-4951",
        ];
        for text in accepted {
            assert!(LongDouble::parse(text.as_bytes()).is_some(), "{text:?}");
        }
        let refused = [
            "", " 1", "\t1", "1 ", "abc", "nan", "-nan", "1e", "1e+", ".", "-", "0x", "0xg",
            "0x1p", "1.2.3", "--1", "1e5000", "1e-5000", "infx", "1,5",
        ];
        for text in refused {
            assert!(LongDouble::parse(text.as_bytes()).is_none(), "{text:?}");
        }
        // strtold stops at a NUL byte, short of the whole text.
        assert_eq!(LongDouble::parse(b"2\0junk"), None);
        assert_eq!(LongDouble::parse(b"\0"), None);
        assert_eq!(LongDouble::parse(&vec![b'1'; MAX_INPUT]), None);
    }

    #[test]
    fn overflow_and_infinities_are_not_finite_sums() {
        let max = must_parse("1.18973149535723176502e4932");
        assert!(max.checked_add(LongDouble::ZERO).is_some());
        assert_eq!(max.checked_add(max), None);
        assert_eq!(must_parse("inf").checked_add(must_parse("1")), None);
        assert_eq!(must_parse("inf").checked_add(must_parse("-inf")), None);
    }

    #[test]
    fn rounding_is_to_nearest_even() {
        // 2^64 + 1 is a tie between 2^64 and 2^64 + 2 at 64 bits: even mantissa wins.
        let x = must_parse("18446744073709551617");
        assert_eq!(
            x,
            LongDouble::Finite {
                negative: false,
                mantissa: 1 << 63,
                exp: 1
            }
        );
        // 2^64 + 3 rounds up to 2^64 + 4.
        let y = must_parse("18446744073709551619");
        assert_eq!(
            y,
            LongDouble::Finite {
                negative: false,
                mantissa: (1 << 63) + 2,
                exp: 1
            }
        );
        // The smallest subnormal survives, half of it rounds to zero and is refused.
        let tiny = must_parse("3.6451995318824746025e-4951");
        assert_eq!(
            tiny,
            LongDouble::Finite {
                negative: false,
                mantissa: 1,
                exp: MIN_EXP
            }
        );
        assert_eq!(LongDouble::parse(b"1.8e-4951"), None);
    }
}
