//! The channel's errors, converted to JS errors in one place with a stable `code`.

use std::fmt;
use std::io;

use napi::sys;

use crate::framing::FrameError;

/// Everything that can go wrong in the native channel.
#[derive(Debug)]
pub enum ChannelError {
  /// The channel was closed or ended before this call.
  Closed,
  /// An argument from the JS layer is out of range.
  BadArgument(&'static str),
  /// The inherited descriptor cannot be used as a channel.
  Adopt(io::Error),
  /// Writing to the socket failed.
  Write(io::Error),
  /// Reading from the socket failed.
  Read(io::Error),
  /// Any other system call failed.
  Io(io::Error),
  /// libuv refused the handle.
  Uv(String),
  /// An N-API call failed.
  Napi(sys::napi_status),
  /// The peer's bytes are not a valid frame stream.
  Frame(FrameError),
}

impl ChannelError {
  /// The stable code JS matches on.
  pub fn code(&self) -> &'static str {
    match self {
      ChannelError::Closed => "ERR_IPC_CHANNEL_CLOSED",
      ChannelError::BadArgument(_) => "ERR_INVALID_ARG_VALUE",
      ChannelError::Write(e) if is_gone(e) => "EPIPE",
      ChannelError::Frame(_) => "ERR_IPC_BAD_FRAME",
      _ => "ERR_IPC_SYSTEM",
    }
  }

  /// Whether the error only says that the other process closed its end.
  pub fn is_peer_gone(&self) -> bool {
    matches!(self, ChannelError::Write(e) | ChannelError::Read(e) if is_gone(e))
  }
}

fn is_gone(e: &io::Error) -> bool {
  matches!(e.raw_os_error(), Some(libc::EPIPE) | Some(libc::ECONNRESET))
}

impl fmt::Display for ChannelError {
  fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
    match self {
      ChannelError::Closed => write!(f, "the channel is closed"),
      ChannelError::BadArgument(what) => write!(f, "{what}"),
      ChannelError::Adopt(e) => write!(f, "the inherited channel descriptor cannot be used: {e}"),
      ChannelError::Write(e) if is_gone(e) => write!(f, "the other process closed the channel"),
      ChannelError::Write(e) => write!(f, "writing to the channel failed: {e}"),
      ChannelError::Read(e) => write!(f, "reading from the channel failed: {e}"),
      ChannelError::Io(e) => write!(f, "{e}"),
      ChannelError::Uv(e) => write!(f, "libuv refused the channel: {e}"),
      ChannelError::Napi(status) => write!(f, "an N-API call failed with status {status}"),
      ChannelError::Frame(e) => write!(f, "{e}"),
    }
  }
}

impl From<ChannelError> for napi::Error<String> {
  fn from(e: ChannelError) -> Self {
    napi::Error::new(e.code().to_owned(), e.to_string())
  }
}
