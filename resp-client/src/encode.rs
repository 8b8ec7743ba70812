//! Commands as RESP arrays of bulk strings, the only request form the clients send (inline
//! commands are a test input, written as raw bytes).

/// Appends the encoding of `args` as a RESP array of bulk strings to `out`.
pub fn encode_into(out: &mut Vec<u8>, args: &[&[u8]]) {
    out.push(b'*');
    out.extend_from_slice(args.len().to_string().as_bytes());
    out.extend_from_slice(b"\r\n");
    for a in args {
        push_bulk(out, a);
    }
}

/// Returns the encoding of `args` as a RESP array of bulk strings.
pub fn encode(args: &[&[u8]]) -> Vec<u8> {
    let mut out = Vec::new();
    encode_into(&mut out, args);
    out
}

/// Returns the encoding of `args` (anything byte-like) as one RESP multibulk command.
pub fn multibulk<A: AsRef<[u8]>>(args: &[A]) -> Vec<u8> {
    let mut out = format!("*{}\r\n", args.len()).into_bytes();
    for a in args {
        push_bulk(&mut out, a.as_ref());
    }
    out
}

fn push_bulk(out: &mut Vec<u8>, a: &[u8]) {
    out.push(b'$');
    out.extend_from_slice(a.len().to_string().as_bytes());
    out.extend_from_slice(b"\r\n");
    out.extend_from_slice(a);
    out.extend_from_slice(b"\r\n");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encodes_bulk_arrays() {
        // From the jepsen harness's client.
        assert_eq!(
            encode(&[b"SET", b"k", b""]),
            b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$0\r\n\r\n"
        );
        // From the load generator's client.
        assert_eq!(
            encode(&[b"SET", b"k", b"hello"]),
            b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$5\r\nhello\r\n".to_vec()
        );
        assert_eq!(
            encode(&[b"GET", b""]),
            b"*2\r\n$3\r\nGET\r\n$0\r\n\r\n".to_vec()
        );
        assert_eq!(multibulk(&["GET", "k"]), encode(&[b"GET", b"k"]));
    }
}
