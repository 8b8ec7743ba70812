//! Redis replies as the console's JSON (InertOutput): bytes as strings, flagged `binary` when
//! not UTF-8, a value cut at [`MAX_VALUE_SHOWN`] bytes; maps as objects.

use serde_json::{json, Value};

use crate::protocol::Frame;

/// The most bytes of one value the API sends (the page says the rest was cut).
pub const MAX_VALUE_SHOWN: usize = 1024 * 1024;

/// A value for the page: its text (invalid UTF-8 replaced), whether it is binary, its size,
/// and whether the text was cut.
pub fn value_json(b: &[u8]) -> Value {
    let cut = b.len() > MAX_VALUE_SHOWN;
    let shown = &b[..b.len().min(MAX_VALUE_SHOWN)];
    json!({
        "text": String::from_utf8_lossy(shown),
        "binary": std::str::from_utf8(b).is_err(),
        "size": b.len(),
        "truncated": cut,
    })
}

pub fn text(f: &Frame) -> String {
    match f {
        Frame::Bulk(b) => String::from_utf8_lossy(b).into_owned(),
        Frame::Simple(s) => s.clone(),
        Frame::Integer(i) => i.to_string(),
        _ => String::new(),
    }
}

pub fn int(f: &Frame) -> Option<i64> {
    match f {
        Frame::Integer(i) => Some(*i),
        Frame::Bulk(b) => std::str::from_utf8(b).ok()?.parse().ok(),
        _ => None,
    }
}

/// A reply as JSON: bulk strings as [`value_json`], maps as objects.
pub fn to_json(f: &Frame) -> Value {
    match f {
        Frame::Bulk(b) => value_json(b),
        Frame::Simple(s) => json!(s),
        Frame::Integer(i) => json!(i),
        Frame::Double(d) => json!(d),
        Frame::Boolean(b) => json!(b),
        Frame::Null | Frame::NullArray => Value::Null,
        Frame::Array(items) | Frame::Set(items) | Frame::Push(items) => {
            Value::Array(items.iter().map(to_json).collect())
        }
        Frame::Map(pairs) => {
            Value::Object(pairs.iter().map(|(k, v)| (text(k), to_json(v))).collect())
        }
        Frame::Pairs(pairs) => Value::Array(
            pairs
                .iter()
                .map(|(k, v)| json!([to_json(k), to_json(v)]))
                .collect(),
        ),
        Frame::Error(e) => json!({ "error": e }),
        other => json!(format!("{other:?}")),
    }
}

/// A flat `[k1, v1, k2, v2, ...]` reply (RESP2 maps) as pairs.
pub fn flat_pairs(f: &Frame) -> Vec<(&Frame, &Frame)> {
    match f {
        Frame::Array(items) => items
            .chunks(2)
            .filter(|c| c.len() == 2)
            .map(|c| (&c[0], &c[1]))
            .collect(),
        Frame::Map(pairs) => pairs.iter().map(|(k, v)| (k, v)).collect(),
        _ => Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_are_text_flagged_binary_and_cut() {
        let v = value_json(b"<script>alert(1)</script>");
        assert_eq!(v["text"], "<script>alert(1)</script>");
        assert_eq!(v["binary"], false);
        let v = value_json(&[0xff, 0x00, b'a']);
        assert_eq!(v["binary"], true);
        assert_eq!(v["size"], 3);
        let big = vec![b'x'; MAX_VALUE_SHOWN + 10];
        let v = value_json(&big);
        assert_eq!(v["truncated"], true);
        assert_eq!(v["text"].as_str().unwrap().len(), MAX_VALUE_SHOWN);
    }
}
