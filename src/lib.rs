//! native-ipc: the Rust end of a fast IPC channel for Node.js subprocesses.
//!
//! `transport` (socketpair and syscalls) and `framing` (frame layout, handshake, limits) are plain Rust;
//! `channel` drives them from Node's event loop and is the only module that talks to N-API.

#![deny(clippy::all)]
// napi-derive registers the exported functions only outside `cfg(test)`, so unit-test builds see them unused.
#![cfg_attr(test, allow(dead_code))]

mod channel;
mod error;
mod strings;
pub mod framing;
mod transport;
mod uv;

#[cfg(test)]
mod fuzz_tests;
