//! SCHEMA SET|GET|DEL|LIST|HELP: the JSON Schemas of key prefixes (`store/schema.rs`). The
//! schema of prefix `p` is the key `__schema__/p`: SET and DEL are ordinary writes of it (Raft
//! entries, revisions in its history), GET and LIST read it through the connection's read
//! gate. The check itself runs at apply, on every node (SchemaAtApply); SET also compiles the
//! schema here first, so a bad one is refused before it is proposed.

use bytes::Bytes;

use super::reply::{help_reply, WriteReply};
use super::{read_gate, write, CommandError, CommandResult, Plan, Session};
use crate::context::ServerContext;
use crate::protocol::{Frame, Parse, ParseError};
use crate::store::{compile_schema, Op, SCHEMA_PREFIX};

/// The key that holds the schema of `prefix`.
fn schema_key(prefix: &[u8]) -> Bytes {
    let mut key = Vec::with_capacity(SCHEMA_PREFIX.len() + prefix.len());
    key.extend_from_slice(SCHEMA_PREFIX);
    key.extend_from_slice(prefix);
    Bytes::from(key)
}

fn no_more(parse: &Parse) -> Result<(), CommandError> {
    match parse.remaining() {
        0 => Ok(()),
        _ => Err(ParseError::Syntax.into()),
    }
}

pub(super) async fn schema(
    ctx: &ServerContext,
    session: &mut Session,
    parse: &mut Parse,
) -> CommandResult {
    let sub = parse.next_string()?.to_ascii_lowercase();
    match sub.as_str() {
        "set" => {
            let prefix = parse.next_bytes()?;
            let schema = parse.next_bytes()?;
            no_more(parse)?;
            if let Err(why) = compile_schema(&schema) {
                return Err(CommandError::Reply(format!(
                    "SCHEMA the schema of '{}' is not a valid JSON Schema: {why}",
                    String::from_utf8_lossy(&prefix)
                )));
            }
            let op = Op::Put {
                key: schema_key(&prefix),
                value: schema,
            };
            let reply = WriteReply::Put;
            write(ctx, session, Plan { op, reply }).await
        }
        "del" => {
            let mut keys = Vec::with_capacity(parse.remaining());
            while parse.remaining() > 0 {
                keys.push(schema_key(&parse.next_bytes()?));
            }
            let op = Op::Delete { keys };
            let reply = WriteReply::Deleted;
            write(ctx, session, Plan { op, reply }).await
        }
        "get" => {
            let key = schema_key(&parse.next_bytes()?);
            no_more(parse)?;
            read_gate(ctx, session).await?;
            let kv = ctx.node.read_store(|s| s.get(&key));
            Ok(kv.map_or(Frame::Null, |kv| Frame::Bulk(kv.value)))
        }
        "list" => {
            no_more(parse)?;
            read_gate(ctx, session).await?;
            let schemas = ctx.node.read_store(|s| s.live_schemas());
            Ok(Frame::Map(
                schemas
                    .into_iter()
                    .map(|(prefix, schema)| (Frame::Bulk(prefix), Frame::Bulk(schema)))
                    .collect(),
            ))
        }
        "help" => Ok(help_reply(
            "SCHEMA",
            &[
                "SET <prefix> <json-schema>",
                "    Check every later write of a key under <prefix> against the JSON Schema.",
                "    Kept as the key __schema__/<prefix> (history, ROLLBACK, watch).",
                "GET <prefix>",
                "    Return the schema of <prefix>, or nil.",
                "DEL <prefix> [<prefix> ...]",
                "    Remove schemas; return how many there were.",
                "LIST",
                "    Return every prefix with a schema, and its schema.",
            ],
        )),
        other => Err(CommandError::Reply(format!(
            "ERR unknown subcommand '{other}'. Try SCHEMA HELP."
        ))),
    }
}
