//! AppendEntries with each entry's request as bytes ([`AppendEncoded`], sent as
//! `RpcRequest::AppendEntriesEncoded`): a leader copies what it read from its log into the
//! frame and a follower copies what it took from the frame into its log, neither decoding nor
//! encoding a request (DecodeOnApply, `encoded_request.rs`).
//!
//! It is the same message as openraft's `AppendEntriesRequest` with another encoding of the
//! requests (length-prefixed bytes instead of inline), so it converts both ways without loss.
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
    Normal(Bytes),
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
                    EntryPayload::Normal(req) => EncodedPayload::Normal(req.bytes().clone()),
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

impl From<AppendEncoded> for AppendEntriesRequest<TypeConfig> {
    fn from(rpc: AppendEncoded) -> Self {
        let entries = rpc
            .entries
            .into_iter()
            .map(|e| Entry {
                log_id: e.log_id,
                payload: match e.payload {
                    EncodedPayload::Blank => EntryPayload::Blank,
                    EncodedPayload::Normal(b) => {
                        EntryPayload::Normal(EncodedRequest::from_bytes(b))
                    }
                    EncodedPayload::Membership(m) => EntryPayload::Membership(m),
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
        let got = AppendEntriesRequest::<TypeConfig>::from(back);
        assert_eq!(format!("{got:?}"), format!("{sent:?}"));
        assert_eq!(got.entries, sent.entries);
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
