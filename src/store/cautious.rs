//! Decoding persistent maps without trusting the length the input claims (**CautiousPrealloc**).
//!
//! imbl 7's serde support collects a map's entries into a `Vec` made with the capacity the
//! deserializer hints (`imbl/src/ser.rs`, `MapVisitor`), and postcard hints the length written
//! in the input. So one damaged length in a snapshot file, or in snapshot bytes from a peer,
//! asked for as much memory as it claimed at once, and past what the allocator could map the
//! process aborted ("memory allocation of 72057594037927936 bytes failed", SIGABRT) where it
//! must refuse the bytes (found by the damaged-snapshot property test, `snapshot_delta_test.rs`;
//! a real node in `tests/durability/wal_durability.rs`). serde's own collections cap such a hint
//! (`serde::de::size_hint::cautious`); this does the same for [`OrdMap`] fields, which name it
//! with `#[serde(deserialize_with = "cautious::ord_map")]`. The map decoded is the same: the
//! entries in input order, a later duplicate key replacing an earlier one, as imbl's
//! `From<Vec<_>>` builds it.

use std::fmt;
use std::marker::PhantomData;

use imbl::OrdMap;
use serde::de::{MapAccess, Visitor};
use serde::{Deserialize, Deserializer};

/// The most entries preallocated whatever the input claims; more grow the `Vec` as they come.
const MAX_PREALLOC: usize = 4096;

/// Deserializes an [`OrdMap`] written as a serde map (as imbl writes it), preallocating at
/// most [`MAX_PREALLOC`] entries.
pub(super) fn ord_map<'de, D, K, V>(d: D) -> Result<OrdMap<K, V>, D::Error>
where
    D: Deserializer<'de>,
    K: Deserialize<'de> + Ord + Clone,
    V: Deserialize<'de> + Clone,
{
    struct MapVisitor<K, V>(PhantomData<(K, V)>);
    impl<'de, K, V> Visitor<'de> for MapVisitor<K, V>
    where
        K: Deserialize<'de> + Ord + Clone,
        V: Deserialize<'de> + Clone,
    {
        type Value = OrdMap<K, V>;
        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("a map")
        }
        fn visit_map<A: MapAccess<'de>>(self, mut access: A) -> Result<Self::Value, A::Error> {
            let hint = access.size_hint().unwrap_or(0).min(MAX_PREALLOC);
            let mut entries: Vec<(K, V)> = Vec::with_capacity(hint);
            while let Some(entry) = access.next_entry()? {
                entries.push(entry);
            }
            Ok(OrdMap::from(entries))
        }
    }
    d.deserialize_map(MapVisitor(PhantomData))
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;
    use serde::Serialize;

    use super::*;

    #[derive(Debug, PartialEq, Serialize, Deserialize)]
    struct Holder {
        #[serde(deserialize_with = "ord_map")]
        map: OrdMap<u64, Bytes>,
    }

    /// The same map as imbl's own decoding, from the same bytes; a length past the input is
    /// refused as the end of the input, not allocated.
    #[test]
    fn decodes_as_imbl_does_and_refuses_a_length_past_the_input() {
        let map: OrdMap<u64, Bytes> = (0..100u64)
            .map(|i| (i * 7 % 100, Bytes::from(vec![i as u8; (i % 5) as usize])))
            .collect();
        let bytes = postcard::to_allocvec(&map).unwrap();
        let ours: Holder = postcard::from_bytes(&bytes).unwrap();
        let imbls: OrdMap<u64, Bytes> = postcard::from_bytes(&bytes).unwrap();
        assert_eq!(ours.map, imbls);
        assert_eq!(ours.map, map);

        // A varint length of 2^40 entries, then one entry.
        let mut huge = Vec::new();
        let mut n: u64 = 1 << 40;
        while n >= 0x80 {
            huge.push((n as u8) | 0x80);
            n >>= 7;
        }
        huge.push(n as u8);
        huge.extend_from_slice(&[1, 1, b'x']);
        let err = postcard::from_bytes::<Holder>(&huge).unwrap_err();
        assert_eq!(err, postcard::Error::DeserializeUnexpectedEnd);
    }

    /// Every map the store decodes from a snapshot or a delta claims 2^40 entries: each is
    /// refused. With imbl's own decoding each of these aborted the test process instead.
    #[test]
    fn every_store_map_refuses_a_huge_claimed_length() {
        fn huge(prefix: &[u8]) -> Vec<u8> {
            let mut b = prefix.to_vec();
            let mut n: u64 = 1 << 40;
            while n >= 0x80 {
                b.push((n as u8) | 0x80);
                n >>= 7;
            }
            b.push(n as u8);
            b.extend_from_slice(&[1, 2, 3, 4]);
            b
        }
        let at_start = huge(&[]);
        assert!(postcard::from_bytes::<super::super::dedup::DedupTable>(&at_start).is_err());
        assert!(postcard::from_bytes::<super::super::acl::Users>(&at_start).is_err());
        assert!(postcard::from_bytes::<super::super::script::Scripts>(&at_start).is_err());
        assert!(postcard::from_bytes::<super::super::deadlines::Deadlines>(&at_start).is_err());
        assert!(postcard::from_bytes::<super::super::kv::Keyspace>(&at_start).is_err());
        // `Stored::Hash` is the second variant.
        assert!(postcard::from_bytes::<super::super::Stored>(&huge(&[1])).is_err());
    }
}
