//! The encoding of every value redraft stores for Raft (WAL records, snapshot metadata): a
//! format-version byte (`store::FORMAT_VERSION`), then postcard. A record of another version is
//! refused with both versions named, never misread. Used by `wal/` and `state_machine/`;
//! changing it changes what is on disk.

use std::io;

use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::store::FORMAT_VERSION;

/// Encodes a stored value: the format-version byte, then postcard.
pub(crate) fn encode<T: Serialize>(v: &T) -> io::Result<Vec<u8>> {
    postcard::to_extend(v, vec![FORMAT_VERSION])
        .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))
}

/// Appends what [`encode`] returns for `v` to `buf` (the caller's buffer, reused). On an
/// error `buf` may hold part of the encoding after its old end.
pub(crate) fn encode_onto<T: Serialize>(v: &T, buf: &mut Vec<u8>) -> io::Result<()> {
    buf.push(FORMAT_VERSION);
    postcard::serialize_with_flavor(v, Onto(buf))
        .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))
}

/// A postcard flavor that appends to a borrowed `Vec` (postcard's own flavors own theirs).
struct Onto<'a>(&'a mut Vec<u8>);

impl postcard::ser_flavors::Flavor for Onto<'_> {
    type Output = ();

    fn try_push(&mut self, data: u8) -> postcard::Result<()> {
        self.0.push(data);
        Ok(())
    }

    fn try_extend(&mut self, data: &[u8]) -> postcard::Result<()> {
        self.0.extend_from_slice(data);
        Ok(())
    }

    fn finalize(self) -> postcard::Result<()> {
        Ok(())
    }
}

/// Decodes a stored value written by [`encode`].
pub(crate) fn decode<T: DeserializeOwned>(bytes: &[u8]) -> io::Result<T> {
    match bytes.split_first() {
        Some((&FORMAT_VERSION, rest)) => postcard::from_bytes(rest).map_err(|e| {
            io::Error::new(
                io::ErrorKind::InvalidData,
                format!("corrupt raft log record: {e}"),
            )
        }),
        Some((v, _)) => Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("raft log record has format version {v}, this build reads {FORMAT_VERSION}"),
        )),
        None => Err(io::Error::new(
            io::ErrorKind::InvalidData,
            "empty raft log record",
        )),
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use openraft::entry::RaftEntry;
    use openraft::vote::RaftLeaderId;

    use super::*;
    use crate::raft::typ::Entry;
    use crate::raft::PeerNode;

    /// Records from another format version or corrupt bytes are errors, not panics.
    #[test]
    fn decode_rejects_foreign_and_corrupt_records() {
        let good = encode(&BTreeMap::<u64, PeerNode>::new()).unwrap();
        assert!(decode::<BTreeMap<u64, PeerNode>>(&good).is_ok());
        assert!(decode::<Entry>(&[]).is_err());
        assert!(decode::<Entry>(&[FORMAT_VERSION + 1, 0, 0]).is_err());
        assert!(decode::<Entry>(&[FORMAT_VERSION, 0xff, 0xff, 0xff]).is_err());
        // A log written before requests carried the leader's clock (version 1) is refused with
        // both versions named, not misread.
        let leader = openraft::impls::leader_id_adv::LeaderId::<u64, u64>::new(1, 1);
        let entry = Entry::new_blank(openraft::LogId::new(leader.to_committed(), 1));
        let mut old = encode(&entry).unwrap();
        old[0] = 1;
        let err = decode::<Entry>(&old).unwrap_err().to_string();
        assert_eq!(
            err,
            format!("raft log record has format version 1, this build reads {FORMAT_VERSION}")
        );
    }
}
