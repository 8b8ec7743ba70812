//! Owns the argument cursor a command uses to read its argv, in the style of mini-redis
//! `src/parse.rs`. It only converts bytes into typed values with Redis's error texts; which
//! arguments a command takes is the command's business, not this module's.

use bytes::Bytes;

use super::framer::{parse_u64_digits, string2ll};

/// A cursor over one command's arguments.
///
/// The first element of the argv is the command name: it is taken at construction, so the first
/// `next_*` call returns the first argument after the name.
#[derive(Debug)]
pub struct Parse {
    args: std::vec::IntoIter<Bytes>,
    /// Lowercased command name, kept for the arity error text.
    name: String,
}

/// An argument error. The command replies with the Display text and the connection lives on.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum ParseError {
    /// Too few arguments, or extra ones where the command takes a fixed number.
    #[error("ERR wrong number of arguments for '{0}' command")]
    WrongArity(String),
    /// An argument that must be an integer is not one, or does not fit.
    #[error("ERR value is not an integer or out of range")]
    NotInteger,
    /// An option or keyword the command does not understand.
    #[error("ERR syntax error")]
    Syntax,
}

impl Parse {
    /// Returns a cursor positioned after the command name.
    pub fn new(argv: Vec<Bytes>) -> Self {
        let mut args = argv.into_iter();
        let name = args
            .next()
            .map(|name| String::from_utf8_lossy(&name).to_ascii_lowercase())
            .unwrap_or_default();
        Parse { args, name }
    }

    /// Returns the command name, lowercased (invalid UTF-8 replaced).
    pub fn command_name(&self) -> String {
        self.name.clone()
    }

    /// Returns how many arguments are left.
    pub fn remaining(&self) -> usize {
        self.args.len()
    }

    /// Returns the next argument as raw bytes.
    pub fn next_bytes(&mut self) -> Result<Bytes, ParseError> {
        self.args
            .next()
            .ok_or_else(|| ParseError::WrongArity(self.name.clone()))
    }

    /// Returns the next argument as a string (invalid UTF-8 replaced).
    pub fn next_string(&mut self) -> Result<String, ParseError> {
        let bytes = self.next_bytes()?;
        Ok(String::from_utf8_lossy(&bytes).into_owned())
    }

    /// Returns the next argument as an `i64`, parsed strictly as Redis's `string2ll` does.
    pub fn next_i64(&mut self) -> Result<i64, ParseError> {
        let bytes = self.next_bytes()?;
        string2ll(&bytes).ok_or(ParseError::NotInteger)
    }

    /// Returns the next argument as a `u64`: decimal digits only, no sign, no leading zeros.
    pub fn next_u64(&mut self) -> Result<u64, ParseError> {
        let bytes = self.next_bytes()?;
        parse_u64_digits(&bytes).ok_or(ParseError::NotInteger)
    }

    /// Returns the next argument uppercased, without consuming it, for option keywords.
    pub fn peek_upper(&self) -> Option<String> {
        self.args
            .as_slice()
            .first()
            .map(|arg| String::from_utf8_lossy(arg).to_uppercase())
    }

    /// Checks that every argument was consumed; extra ones are an arity error, as Redis reports
    /// for `GET a b`. Commands with optional keywords report [`ParseError::Syntax`] themselves.
    pub fn finish(&self) -> Result<(), ParseError> {
        if self.args.as_slice().is_empty() {
            Ok(())
        } else {
            Err(ParseError::WrongArity(self.name.clone()))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn must_parse(args: &[&str]) -> Parse {
        Parse::new(
            args.iter()
                .map(|a| Bytes::copy_from_slice(a.as_bytes()))
                .collect(),
        )
    }

    #[test]
    fn reads_typed_arguments_after_the_name() {
        let mut p = must_parse(&["SeT", "k", "v", "ex", "10", "18446744073709551615"]);
        assert_eq!(p.command_name(), "set");
        assert_eq!(p.remaining(), 5);
        assert_eq!(p.next_bytes().unwrap(), Bytes::from_static(b"k"));
        assert_eq!(p.next_string().unwrap(), "v");
        assert_eq!(p.peek_upper().as_deref(), Some("EX"));
        assert_eq!(p.next_string().unwrap(), "ex");
        assert_eq!(p.next_i64().unwrap(), 10);
        assert_eq!(p.next_u64().unwrap(), u64::MAX);
        assert_eq!(p.peek_upper(), None);
        assert_eq!(p.finish(), Ok(()));
    }

    #[test]
    fn errors_carry_redis_texts() {
        let mut p = must_parse(&["GET"]);
        let err = p.next_bytes().unwrap_err();
        assert_eq!(
            err.to_string(),
            "ERR wrong number of arguments for 'get' command"
        );

        let p = must_parse(&["GET", "a", "b"]);
        assert_eq!(p.finish(), Err(ParseError::WrongArity("get".into())));

        assert_eq!(
            ParseError::NotInteger.to_string(),
            "ERR value is not an integer or out of range"
        );
        assert_eq!(ParseError::Syntax.to_string(), "ERR syntax error");
    }

    #[test]
    fn integers_are_strict_like_string2ll() {
        let cases: &[(&str, Option<i64>)] = &[
            ("0", Some(0)),
            ("-1", Some(-1)),
            ("9223372036854775807", Some(i64::MAX)),
            ("-9223372036854775808", Some(i64::MIN)),
            ("9223372036854775808", None),
            ("01", None),
            ("+1", None),
            ("-0", None),
            (" 1", None),
            ("1 ", None),
            ("", None),
            ("-", None),
            ("1.5", None),
        ];
        for (input, want) in cases {
            let mut p = must_parse(&["incrby", input]);
            let got = p.next_i64();
            match want {
                Some(n) => assert_eq!(got, Ok(*n), "input {input:?}"),
                None => assert_eq!(got, Err(ParseError::NotInteger), "input {input:?}"),
            }
        }
        let mut p = must_parse(&["x", "-1", "18446744073709551616", "007"]);
        assert_eq!(p.next_u64(), Err(ParseError::NotInteger));
        assert_eq!(p.next_u64(), Err(ParseError::NotInteger));
        assert_eq!(p.next_u64(), Err(ParseError::NotInteger));
    }

    #[test]
    fn empty_argv_does_not_panic() {
        let mut p = Parse::new(Vec::new());
        assert_eq!(p.command_name(), "");
        assert_eq!(p.remaining(), 0);
        assert_eq!(p.next_bytes(), Err(ParseError::WrongArity(String::new())));
    }

    #[test]
    fn names_and_keywords_are_lossy() {
        let mut p = Parse::new(vec![
            Bytes::from_static(b"G\xffT"),
            Bytes::from_static(b"e\xff"),
        ]);
        assert_eq!(p.command_name(), "g\u{fffd}t");
        assert_eq!(p.peek_upper().as_deref(), Some("E\u{fffd}"));
        assert_eq!(p.next_string().unwrap(), "e\u{fffd}");
    }
}
