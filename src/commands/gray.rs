//! GRAY STAGE|PROMOTE|ABORT|LIST|HELP: gray (canary) releases (`store/gray.rs`). A candidate
//! for `key` and `label` is the key `__gray__/<label>/<key>`: STAGE writes it, ABORT deletes
//! it, PROMOTE renames it onto `key` (one entry, one revision), LIST reads every staged one
//! through the connection's read gate. A client declares its label by its name, `gray:<label>`
//! (`CLIENT SETNAME`, or a client library's `client_name`), and its `GET`/`MGET` read the
//! candidates of that label (`reads.rs`).

use super::reply::{help_reply, WriteReply};
use super::{read_gate, write, CommandError, CommandResult, Plan, Session};
use crate::context::ServerContext;
use crate::protocol::{Frame, Parse, ParseError};
use crate::store::{gray_key, Op};

fn no_more(parse: &Parse) -> Result<(), CommandError> {
    match parse.remaining() {
        0 => Ok(()),
        _ => Err(ParseError::Syntax.into()),
    }
}

pub(super) async fn gray(
    ctx: &ServerContext,
    session: &mut Session,
    parse: &mut Parse,
) -> CommandResult {
    let sub = parse.next_string()?.to_ascii_lowercase();
    match sub.as_str() {
        "stage" | "promote" | "abort" => {
            let label = parse.next_bytes()?;
            if label.is_empty() || label.contains(&b'/') {
                return Err(CommandError::Reply(
                    "ERR a gray label is not empty and has no '/'".into(),
                ));
            }
            let key = parse.next_bytes()?;
            let staged = gray_key(&label, &key);
            let plan = match sub.as_str() {
                "stage" => {
                    let value = parse.next_bytes()?;
                    no_more(parse)?;
                    Plan {
                        op: Op::Put { key: staged, value },
                        reply: WriteReply::Put,
                    }
                }
                "promote" => {
                    no_more(parse)?;
                    Plan {
                        op: Op::Rename {
                            src: staged,
                            dst: key,
                            if_absent: false,
                        },
                        reply: WriteReply::Applied { as_integer: false },
                    }
                }
                _ => {
                    no_more(parse)?;
                    Plan {
                        op: Op::Delete { keys: vec![staged] },
                        reply: WriteReply::Deleted,
                    }
                }
            };
            write(ctx, session, plan).await.map_err(|e| match e {
                CommandError::Reply(text) if text == "ERR no such key" => {
                    CommandError::Reply("ERR nothing is staged for this key and label".into())
                }
                other => other,
            })
        }
        "list" => {
            no_more(parse)?;
            read_gate(ctx, session).await?;
            let staged = ctx.node.read_store(|s| s.staged());
            Ok(Frame::Array(
                staged
                    .into_iter()
                    .map(|(label, key, value)| {
                        Frame::Array(vec![
                            Frame::Bulk(label),
                            Frame::Bulk(key),
                            Frame::Bulk(value),
                        ])
                    })
                    .collect(),
            ))
        }
        "help" => Ok(help_reply(
            "GRAY",
            &[
                "STAGE <label> <key> <value>",
                "    Stage a candidate value of <key> that only clients named gray:<label> read.",
                "PROMOTE <label> <key>",
                "    Make the candidate the value of <key> for everyone (one revision).",
                "ABORT <label> <key>",
                "    Drop the candidate; return how many were dropped.",
                "LIST",
                "    Return every staged candidate as [label, key, value].",
            ],
        )),
        other => Err(CommandError::Reply(format!(
            "ERR unknown subcommand '{other}'. Try GRAY HELP."
        ))),
    }
}
