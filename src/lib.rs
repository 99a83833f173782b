//! native-ipc: the Rust end of a fast IPC channel for Node.js subprocesses.
//!
//! `transport` (socketpair and syscalls) and `framing` (frame layout, handshake, limits) are plain Rust;
//! `channel` drives them from Node's event loop through N-API; `strings` makes V8 external strings for the
//! JS decoder; `value` is a reference implementation of the message value format (PROTOCOL.md §5.2) for
//! peers written in Rust, tested against the same vectors as the JS codec.

#![deny(clippy::all)]
// napi-derive registers the exported functions only outside `cfg(test)`, so unit-test builds see them unused.
#![cfg_attr(test, allow(dead_code))]

mod channel;
mod code_cache;
mod error;
pub mod framing;
mod memory;
mod shared;
mod spin;
mod strings;
mod transport;
mod uv;
pub mod value;

#[cfg(test)]
mod fuzz_tests;
