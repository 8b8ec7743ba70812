//! How requests and ops show in logs (`Display`): names, keys, sizes, never whole values.

use std::fmt;

use super::request::{Op, Request};

impl fmt::Display for Request {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // A wrapped op shows as its wrapper, then the op itself (never its whole value).
        let inner = |op: &Op| Request {
            client: self.client,
            op: op.clone(),
            at_ms: self.at_ms,
        };
        match &self.op {
            Op::Authored { author, op } => {
                write!(f, "{}: ", String::from_utf8_lossy(author))?;
                return fmt::Display::fmt(&inner(op), f);
            }
            Op::AsUser { user, op } => {
                write!(f, "AsUser({:?}) ", String::from_utf8_lossy(user))?;
                return fmt::Display::fmt(&inner(op), f);
            }
            _ => {}
        }
        match &self.op {
            Op::Put { key, value } => {
                write!(
                    f,
                    "Put({:?}, {} bytes)",
                    String::from_utf8_lossy(key),
                    value.len()
                )
            }
            Op::Delete { keys } => write!(f, "Delete({} keys)", keys.len()),
            Op::Compact { revision } => write!(f, "Compact({revision})"),
            Op::Set {
                key,
                value,
                when,
                get,
            } => write!(
                f,
                "Set({:?}, {} bytes, {when:?}, get={get})",
                String::from_utf8_lossy(key),
                value.len()
            ),
            Op::GetDel { key } => write!(f, "GetDel({:?})", String::from_utf8_lossy(key)),
            Op::IncrBy { key, delta } => {
                write!(f, "IncrBy({:?}, {delta})", String::from_utf8_lossy(key))
            }
            Op::IncrByFloat { key, increment } => write!(
                f,
                "IncrByFloat({:?}, {:?})",
                String::from_utf8_lossy(key),
                String::from_utf8_lossy(increment)
            ),
            Op::Append { key, value } => write!(
                f,
                "Append({:?}, {} bytes)",
                String::from_utf8_lossy(key),
                value.len()
            ),
            Op::SetRange { key, offset, value } => write!(
                f,
                "SetRange({:?}, {offset}, {} bytes)",
                String::from_utf8_lossy(key),
                value.len()
            ),
            Op::MSet {
                pairs,
                if_none_exist,
            } => write!(f, "MSet({} pairs, nx={if_none_exist})", pairs.len()),
            Op::Rename {
                src,
                dst,
                if_absent,
            } => write!(
                f,
                "Rename({:?} -> {:?}, nx={if_absent})",
                String::from_utf8_lossy(src),
                String::from_utf8_lossy(dst)
            ),
            Op::Flush => write!(f, "Flush"),
            Op::Cas {
                key,
                expected_mod_revision,
                value,
            } => write!(
                f,
                "Cas({:?}, expect {expected_mod_revision}, {} bytes)",
                String::from_utf8_lossy(key),
                value.len()
            ),
            Op::Txn { compares, ops, .. } => {
                write!(f, "Txn({} compares, {} ops)", compares.len(), ops.len())
            }
            Op::Read(read) => write!(f, "Read({read:?})"),
            Op::SetEx {
                key,
                value,
                when,
                get,
                ttl,
                ..
            } => write!(
                f,
                "SetEx({:?}, {} bytes, {when:?}, get={get}, {ttl:?})",
                String::from_utf8_lossy(key),
                value.len()
            ),
            Op::Expire {
                key, expiry, cond, ..
            } => write!(
                f,
                "Expire({:?}, {expiry:?}, {cond:?})",
                String::from_utf8_lossy(key)
            ),
            Op::Persist { key } => write!(f, "Persist({:?})", String::from_utf8_lossy(key)),
            Op::GetEx { key, action, .. } => {
                write!(f, "GetEx({:?}, {action:?})", String::from_utf8_lossy(key))
            }
            Op::CasEx {
                key,
                expected_mod_revision,
                value,
                expiry,
                ..
            } => write!(
                f,
                "CasEx({:?}, expect {expected_mod_revision}, {} bytes, {expiry:?})",
                String::from_utf8_lossy(key),
                value.len()
            ),
            Op::ExpireDue { keys, now_ms } => {
                write!(f, "ExpireDue({} keys, now {now_ms})", keys.len())
            }
            Op::Batch(reqs) => write!(f, "Batch({} requests)", reqs.len()),
            Op::Script { body, keys, .. } => {
                write!(f, "Script({} bytes, {} keys)", body.len(), keys.len())
            }
            Op::ScriptLoad { body } => write!(f, "ScriptLoad({} bytes)", body.len()),
            Op::ScriptFlush => write!(f, "ScriptFlush"),
            Op::AclSetUser { name, rules, .. } => write!(
                f,
                "AclSetUser({:?}, {} rules)",
                String::from_utf8_lossy(name),
                rules.len()
            ),
            Op::AclDelUser { names } => write!(f, "AclDelUser({} users)", names.len()),
            Op::AsUser { .. } | Op::Authored { .. } => Ok(()),
            Op::HSet { key, pairs, .. } => write!(
                f,
                "HSet({:?}, {} fields)",
                String::from_utf8_lossy(key),
                pairs.len()
            ),
            Op::HDel { key, fields } => write!(
                f,
                "HDel({:?}, {} fields)",
                String::from_utf8_lossy(key),
                fields.len()
            ),
            Op::HIncrBy { key, .. } | Op::HIncrByFloat { key, .. } => {
                write!(f, "HIncr({:?})", String::from_utf8_lossy(key))
            }
            Op::Rollback { key, revision } => write!(
                f,
                "Rollback({:?} to {revision})",
                String::from_utf8_lossy(key)
            ),
        }
    }
}
