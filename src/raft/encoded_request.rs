//! The application data of a Raft entry (openraft's `D`): one [`Request`], held as its postcard
//! encoding, as etcd's entries hold their request as bytes (`raftpb.Entry.Data`).
//!
//! **DecodeOnApply.** A node decodes an entry's request once, when it applies it. The bytes are
//! made once, where the request is proposed (`batcher.rs`), and from then on only copied: into
//! the leader's WAL record, out of it again for replication (`wal/record.rs`'s `decode_entry`
//! keeps the record's tail as the payload), into an AppendEntries frame
//! ([`super::append_encoded::AppendEncoded`]) and into the follower's WAL. Before, every read of an entry decoded it (the leader's apply and one
//! read per follower's replication stream) and every write encoded it again.
//!
//! **InlineFormat.** On disk and in the older `AppendEntries` frame a request is written inline,
//! exactly as postcard writes a `Request` (what a WAL record held before this type): the serde
//! impls below decode or encode to keep that format, for the paths that still go through serde;
//! the hot paths (`wal/record.rs`'s entry framing and parsing, `AppendEncoded`) copy the bytes.
//! A request's bytes end where its record ends, which is what lets a record's tail be the
//! payload without a length.
//!
//! The bytes are checked where they enter: a WAL record by its CRC32C, a frame by being a
//! well-formed frame. A payload that then does not decode (a bug, or a disk that returned other
//! bytes than it took) fails the apply of its entry, which stops the node (FailStop) rather than
//! apply something else.

use std::fmt;
use std::io;

use bytes::Bytes;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::store::Request;

/// One request, as the postcard bytes it is stored and sent as.
#[derive(Clone, PartialEq, Eq)]
pub struct EncodedRequest(Bytes);

impl EncodedRequest {
    /// Encodes `req`.
    pub fn encode(req: &Request) -> io::Result<Self> {
        Self::encode_with_capacity(req, 64)
    }

    /// Encodes `req` into a buffer made `capacity` bytes large at first (its encoded size, if
    /// known: it then never grows and copies itself).
    pub fn encode_with_capacity(req: &Request, capacity: usize) -> io::Result<Self> {
        postcard::to_extend(req, Vec::with_capacity(capacity))
            .map(|v| Self(Bytes::from(v)))
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))
    }

    /// Bytes that [`EncodedRequest::encode`] made, taken unchecked: [`EncodedRequest::decode`]
    /// checks them.
    pub(crate) fn from_bytes(bytes: Bytes) -> Self {
        Self(bytes)
    }

    /// The request.
    pub fn decode(&self) -> io::Result<Request> {
        postcard::from_bytes(&self.0).map_err(|e| {
            io::Error::new(
                io::ErrorKind::InvalidData,
                format!("corrupt raft entry request ({} bytes): {e}", self.0.len()),
            )
        })
    }

    /// The encoding.
    pub fn bytes(&self) -> &Bytes {
        &self.0
    }

    /// Bytes of the encoding.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether the encoding is empty (no request encodes to nothing).
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl fmt::Debug for EncodedRequest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.decode() {
            Ok(req) => req.fmt(f),
            Err(_) => write!(f, "EncodedRequest({} undecodable bytes)", self.0.len()),
        }
    }
}

impl fmt::Display for EncodedRequest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "request of {} bytes", self.0.len())
    }
}

/// InlineFormat: serialized as the `Request` itself.
impl Serialize for EncodedRequest {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.decode()
            .map_err(serde::ser::Error::custom)?
            .serialize(s)
    }
}

/// InlineFormat: read as a `Request`, then encoded.
impl<'de> Deserialize<'de> for EncodedRequest {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let req = Request::deserialize(d)?;
        Self::encode(&req).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
impl From<Request> for EncodedRequest {
    fn from(req: Request) -> Self {
        Self::encode(&req).expect("a request encodes")
    }
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;

    use super::*;
    use crate::store::{ClientSeq, Op};

    fn sample() -> Request {
        let put = |k: &str, v: &str| {
            Request::new(
                None,
                Op::Put {
                    key: Bytes::from(k.to_owned()),
                    value: Bytes::from(v.to_owned()),
                },
            )
        };
        let mut req = Request::new(
            Some(ClientSeq {
                client_id: 7,
                seq: 9,
                sent_ms: 5,
                retry: false,
            }),
            Op::Batch(vec![put("a", "1"), put("b", "22")]),
        );
        req.at_ms = 1_700_000_000_000;
        req
    }

    /// InlineFormat: through serde an encoded request is the request, byte for byte, so a WAL
    /// record or an older peer's frame reads the same as before.
    #[test]
    fn serde_writes_and_reads_the_request_inline() {
        let req = sample();
        let enc = EncodedRequest::encode(&req).unwrap();
        assert_eq!(
            postcard::to_allocvec(&enc).unwrap(),
            postcard::to_allocvec(&req).unwrap()
        );
        assert_eq!(&enc.bytes()[..], &postcard::to_allocvec(&req).unwrap()[..]);
        let back: EncodedRequest =
            postcard::from_bytes(&postcard::to_allocvec(&req).unwrap()).unwrap();
        assert_eq!(back, enc);
        assert_eq!(back.decode().unwrap(), req);
    }

    /// Bytes that are no request are an error when decoded (or serialized), never a panic.
    #[test]
    fn undecodable_bytes_are_an_error() {
        let bad = EncodedRequest::from_bytes(Bytes::from_static(&[0xff, 0xff, 0xff, 0xff, 0xff]));
        let e = bad.decode().unwrap_err();
        assert!(e.to_string().contains("corrupt raft entry request"), "{e}");
        assert!(postcard::to_allocvec(&bad).is_err());
        assert!(format!("{bad:?}").contains("undecodable"));
    }
}
