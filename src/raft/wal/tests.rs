//! Unit tests of the WAL (see `tests` in `wal/mod.rs`'s parent for the openraft-level ones).
