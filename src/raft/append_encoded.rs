//! AppendEntries with each entry's request as bytes ([`AppendEncoded`], sent as
//! `RpcRequest::AppendEntriesEncoded`): a leader copies what it read from its log into the
//! frame and a follower copies what it took from the frame into its log, neither decoding nor
//! encoding a request (DecodeOnApply, `encoded_request.rs`).
//!
//! It is the same message as openraft's `AppendEntriesRequest` with another encoding of the
//! requests (length-prefixed bytes with their CRC32C instead of inline), so it converts both
//! ways without loss; the way back checks each request's CRC32C (CheckedInTransit).
//! A node from before it answers `Refused` (AppendedRequestsFallBack, `wire.rs`): the
//! replication stream to it ends, [`AppendFormat`] remembers the peer, and every later
//! AppendEntries to it is sent as `RpcRequest::AppendEntries`.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use bytes::Bytes;
use openraft::raft::AppendEntriesRequest;
use openraft::{EntryPayload, Membership};
use serde::{Deserialize, Serialize};

use super::typ::{Entry, LogId, Vote};
use super::{EncodedRequest, PeerNode, TypeConfig};

/// openraft's `AppendEntriesRequest`, each normal entry's request as its bytes.
#[derive(Debug, Serialize, Deserialize)]
pub struct AppendEncoded {
    pub vote: Vote,
    pub prev_log_id: Option<LogId>,
    pub entries: Vec<EncodedEntry>,
    pub leader_commit: Option<LogId>,
}

/// One entry of an [`AppendEncoded`].
#[derive(Debug, Serialize, Deserialize)]
pub struct EncodedEntry {
    pub log_id: LogId,
    pub payload: EncodedPayload,
}

/// An entry's payload: openraft's `EntryPayload` with the request as bytes.
#[derive(Debug, Serialize, Deserialize)]
pub enum EncodedPayload {
    Blank,
    /// **CheckedInTransit**: the request's bytes with their CRC32C. A follower no longer
    /// decodes them on receipt, so a frame damaged on the way (plain TCP's checksum is weak)
    /// would otherwise reach its log and stop it at apply; a mismatch refuses the frame
    /// instead, and the leader sends it again.
    Normal {
        bytes: Bytes,
        crc: u32,
    },
    Membership(Membership<u64, PeerNode>),
}

impl From<AppendEntriesRequest<TypeConfig>> for AppendEncoded {
    fn from(rpc: AppendEntriesRequest<TypeConfig>) -> Self {
        let entries = rpc
            .entries
            .into_iter()
            .map(|e| EncodedEntry {
                log_id: e.log_id,
                payload: match e.payload {
                    EntryPayload::Blank => EncodedPayload::Blank,
                    EntryPayload::Normal(req) => EncodedPayload::Normal {
                        crc: crc32c::crc32c(req.bytes()),
                        bytes: req.bytes().clone(),
                    },
                    EntryPayload::Membership(m) => EncodedPayload::Membership(m),
                },
            })
            .collect();
        Self {
            vote: rpc.vote,
            prev_log_id: rpc.prev_log_id,
            entries,
            leader_commit: rpc.leader_commit,
        }
    }
}

impl AppendEncoded {
    /// openraft's AppendEntries; an error names the first entry whose bytes do not match their
    /// CRC32C (CheckedInTransit).
    pub fn into_request(self) -> Result<AppendEntriesRequest<TypeConfig>, String> {
        let entries = self
            .entries
            .into_iter()
            .map(|e| {
                let payload = match e.payload {
                    EncodedPayload::Blank => EntryPayload::Blank,
                    EncodedPayload::Normal { bytes, crc } => {
                        if crc32c::crc32c(&bytes) != crc {
                            return Err(format!(
                                "entry {} arrived damaged (CRC32C mismatch)",
                                e.log_id
                            ));
                        }
                        EntryPayload::Normal(EncodedRequest::from_bytes(bytes))
                    }
                    EncodedPayload::Membership(m) => EntryPayload::Membership(m),
                };
                Ok(Entry {
                    log_id: e.log_id,
                    payload,
                })
            })
            .collect::<Result<_, _>>()?;
        Ok(AppendEntriesRequest {
            vote: self.vote,
            prev_log_id: self.prev_log_id,
            entries,
            leader_commit: self.leader_commit,
        })
    }
}

/// How AppendEntries travel to one peer: as [`AppendEncoded`] until the peer refuses one.
#[derive(Clone, Debug)]
pub struct AppendFormat {
    legacy: Arc<AtomicBool>,
}

impl AppendFormat {
    /// A peer not known to refuse [`AppendEncoded`].
    pub fn new() -> Self {
        Self {
            legacy: Arc::new(AtomicBool::new(false)),
        }
    }

    /// Whether this peer takes [`AppendEncoded`] (`pipeline::append_request`).
    pub fn encoded(&self) -> bool {
        !self.legacy.load(Ordering::Relaxed)
    }

    /// The peer refused an AppendEntries (`why`): if it was sent encoded, later ones are not.
    pub fn refused(&self, target: u64, why: &str) {
        if !self.legacy.swap(true, Ordering::Relaxed) {
            tracing::info!(
                peer = target,
                %why,
                "peer does not take encoded appends; sending it the older AppendEntries"
            );
        }
    }
}

impl Default for AppendFormat {
    fn default() -> Self {
        Self::new()
    }
}

#[cfg(test)]
mod tests {
    use openraft::entry::RaftEntry;
    use openraft::vote::RaftLeaderId;

    use super::*;
    use crate::store::{Op, Request};

    fn log_id(index: u64) -> LogId {
        let leader = openraft::impls::leader_id_adv::LeaderId::<u64, u64>::new(3, 1);
        openraft::LogId::new(leader.to_committed(), index)
    }

    fn rpc() -> AppendEntriesRequest<TypeConfig> {
        let req = Request::new(
            None,
            Op::Put {
                key: Bytes::from_static(b"k"),
                value: Bytes::from_static(b"v"),
            },
        );
        let membership = Membership::new_with_defaults(vec![[1u64].into()], [1u64]);
        AppendEntriesRequest {
            vote: Vote::new_committed(3, 1),
            prev_log_id: Some(log_id(4)),
            entries: vec![
                Entry::new_blank(log_id(5)),
                Entry::new_normal(log_id(6), req.into()),
                Entry::new_membership(log_id(7), membership),
            ],
            leader_commit: Some(log_id(5)),
        }
    }

    /// The encoded form carries everything: converted there and back, through the wire, an
    /// AppendEntries is the one sent.
    #[test]
    fn an_encoded_append_converts_back_to_the_same_request() {
        let sent = rpc();
        let encoded = AppendEncoded::from(sent.clone());
        let bytes = postcard::to_allocvec(&encoded).unwrap();
        let back: AppendEncoded = postcard::from_bytes(&bytes).unwrap();
        let got = back.into_request().unwrap();
        assert_eq!(format!("{got:?}"), format!("{sent:?}"));
        assert_eq!(got.entries, sent.entries);
    }

    /// CheckedInTransit: a request's bytes changed on the way refuse the frame, naming the
    /// entry, where they would have reached the follower's log.
    #[test]
    fn a_damaged_request_refuses_the_frame() {
        let mut encoded = AppendEncoded::from(rpc());
        let EncodedPayload::Normal { bytes, .. } = &mut encoded.entries[1].payload else {
            panic!("entry 6 is the normal one")
        };
        let mut damaged = bytes.to_vec();
        damaged[0] ^= 0x01;
        *bytes = Bytes::from(damaged);
        let e = encoded.into_request().unwrap_err();
        assert!(e.contains("CRC32C mismatch"), "{e}");
        assert!(e.contains("6"), "{e}");
    }

    /// AppendedRequestsFallBack: encoded until the peer refuses one, the older request after.
    #[test]
    fn a_refusing_peer_gets_the_older_append() {
        let format = AppendFormat::new();
        assert!(format.encoded());
        let clone = format.clone();
        clone.refused(2, "unknown variant");
        assert!(!format.encoded(), "a clone's refusal holds for every clone");
    }
}
