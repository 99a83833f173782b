//! Frame layout shared by both ends of the channel, kept free of napi so it is testable with `cargo test`.
//!
//! Every frame is a 5-byte header — payload length as `u32` little-endian, then one kind byte — followed by
//! the payload. The first frame each side sends is a [`Kind::Hello`] carrying the protocol version and the
//! serialization mode; everything after it is checked against the limits before any memory is reserved.

use serde::{Deserialize, Serialize};

/// Bytes in a frame header: `u32` payload length + kind byte.
pub const HEADER_LEN: usize = 5;

/// Bytes before the value in a strict message: `u32` id + one byte telling whether the sender listens.
pub const STRICT_PREFIX_LEN: u64 = 5;
/// Bytes of an acknowledgement: `u32` id + one byte telling whether the message reached a listener.
pub const ACK_LEN: u64 = 5;
/// Payload length of a `Taken` frame: a u32 count.
pub const TAKEN_LEN: u64 = 4;

/// Version of the wire protocol this build speaks; a peer announcing another one is refused.
pub const PROTOCOL_VERSION: u32 = 1;

/// What a frame carries. The numbers are part of the wire protocol (PROTOCOL.md).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum Kind {
  /// First frame of each side: MessagePack map `{v: version, s: serialization}`.
  Hello = 1,
  /// A user message.
  Message = 2,
  /// A user message whose sender waits for an [`Kind::Ack`]: `u32` id, a byte telling whether the sender
  /// itself listens (1) or not (0), then the value.
  StrictMessage = 3,
  /// Answer to a strict message: `u32` id, then one byte (1 = it reached a listener, 0 = nobody listened).
  Ack = 4,
  /// Graceful cancellation from the parent: the value is the abort reason.
  Cancel = 5,
  /// A user message with a handle: one byte for the handle's type, then the value. The handle's
  /// descriptor travels (SCM_RIGHTS) with the frame's first byte.
  HandleMessage = 6,
  /// `u32` count of shared-memory values (PROTOCOL.md §4.6) the sender of this frame has taken since its
  /// previous `Taken`: until then, their sender counts their bytes as waiting for this side.
  Taken = 7,
}

impl Kind {
  /// Maps a kind byte from the wire, `None` when this build does not know it.
  pub fn from_byte(byte: u8) -> Option<Kind> {
    Some(match byte {
      1 => Kind::Hello,
      2 => Kind::Message,
      3 => Kind::StrictMessage,
      4 => Kind::Ack,
      5 => Kind::Cancel,
      6 => Kind::HandleMessage,
      7 => Kind::Taken,
      _ => return None,
    })
  }
}

/// The serialization mode both sides must agree on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Serialization {
  /// MessagePack with extension types for the structured-clone set.
  Advanced,
  /// UTF-8 JSON text with `JSON.stringify` / `JSON.parse` semantics.
  Json,
}

impl Serialization {
  /// The name used in options, the handshake and error messages.
  pub fn name(self) -> &'static str {
    match self {
      Serialization::Advanced => "advanced",
      Serialization::Json => "json",
    }
  }

  /// Parses the option / handshake name.
  pub fn from_name(name: &str) -> Option<Serialization> {
    match name {
      "advanced" => Some(Serialization::Advanced),
      "json" => Some(Serialization::Json),
      _ => None,
    }
  }
}

#[derive(Serialize, Deserialize)]
struct Hello {
  v: u32,
  s: String,
  /// Whether the sender takes shared-memory values (PROTOCOL.md §4.6): absent means no.
  #[serde(default)]
  m: bool,
  /// Whether the sender takes one-byte strings (ext `LATIN1`, PROTOCOL.md §5.2.5): absent means no.
  #[serde(default)]
  l: bool,
}

/// What the peer's handshake said it takes.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PeerTakes {
  /// Shared-memory values (PROTOCOL.md §4.6).
  pub shared: bool,
  /// One-byte strings, ext `LATIN1`.
  pub latin1: bool,
}

/// Why the incoming byte stream was refused. Each one closes the channel.
#[derive(Debug, PartialEq, Eq)]
pub enum FrameError {
  /// The first frame was not a handshake.
  NoHandshake,
  /// The handshake payload did not parse.
  BadHandshake,
  /// The peer speaks another protocol version.
  Version(u32),
  /// The peer uses another serialization mode.
  Mode(String),
  /// A frame kind this build does not know.
  UnknownKind(u8),
  /// A second handshake after the first.
  RepeatedHandshake,
  /// A frame longer than the limit; nothing of that size was reserved.
  TooLong { len: u64, max: u64 },
  /// A control frame whose length does not fit its kind.
  BadLength { kind: u8, len: u64 },
  /// The stream ended inside a frame: `got` bytes of a frame of `total` bytes (unknown while its header
  /// was incomplete).
  Truncated { got: u64, total: Option<u64> },
}

impl std::fmt::Display for FrameError {
  fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
    match self {
      FrameError::NoHandshake => write!(f, "the peer did not start with a native-ipc handshake"),
      FrameError::BadHandshake => write!(f, "the peer's handshake frame is malformed"),
      FrameError::Version(v) => write!(
        f,
        "the peer speaks native-ipc protocol version {v}, this side speaks version {PROTOCOL_VERSION}"
      ),
      FrameError::Mode(s) => write!(f, "the peer uses serialization '{s}', this side another one"),
      FrameError::UnknownKind(k) => write!(f, "the peer sent a frame of unknown kind {k}"),
      FrameError::RepeatedHandshake => write!(f, "the peer sent a second handshake"),
      FrameError::Truncated { got, total } => match total {
        Some(total) => write!(
          f,
          "the peer closed the channel in the middle of a frame ({got} of {total} bytes)"
        ),
        None => write!(
          f,
          "the peer closed the channel in the middle of a frame header ({got} bytes)"
        ),
      },
      FrameError::BadLength { kind, len } => {
        write!(f, "the peer sent a frame of kind {kind} with an impossible length of {len} bytes")
      }
      FrameError::TooLong { len, max } => write!(
        f,
        "the peer sent a frame of {len} bytes, above the limit of {max} bytes (maxMessageSize)"
      ),
    }
  }
}

/// Builds this side's handshake frame.
pub fn hello_frame(mode: Serialization) -> Vec<u8> {
  let payload = rmp_serde::to_vec_named(&Hello {
    v: PROTOCOL_VERSION,
    s: mode.name().to_owned(),
    m: crate::shared::SUPPORTED,
    l: true,
  })
  .expect("a four-field struct always encodes");
  let mut frame = Vec::with_capacity(HEADER_LEN + payload.len());
  push_header(&mut frame, payload.len(), Kind::Hello);
  frame.extend_from_slice(&payload);
  frame
}

/// Appends a frame header for a payload of `len` bytes.
pub fn push_header(out: &mut Vec<u8>, len: usize, kind: Kind) {
  out.extend_from_slice(&(len as u32).to_le_bytes());
  out.push(kind as u8);
}

/// Checks the peer's handshake; returns what the peer takes.
fn check_hello(payload: &[u8], mode: Serialization) -> Result<PeerTakes, FrameError> {
  let hello: Hello = rmp_serde::from_slice(payload).map_err(|_| FrameError::BadHandshake)?;
  if hello.v != PROTOCOL_VERSION {
    return Err(FrameError::Version(hello.v));
  }
  if Serialization::from_name(&hello.s) != Some(mode) {
    return Err(FrameError::Mode(hello.s));
  }
  Ok(PeerTakes {
    shared: hello.m,
    latin1: hello.l,
  })
}

/// Incremental validator of the incoming stream: finds where complete frames end, checks every header
/// against the limits as soon as it is readable, and consumes the peer's handshake.
pub struct Splitter {
  mode: Serialization,
  max_payload: u64,
  handshake_done: bool,
  peer: PeerTakes,
}

/// What [`Splitter::scan`] found in a buffer.
#[derive(Debug, PartialEq, Eq)]
pub struct Scan {
  /// Bytes of the peer's handshake at the start of the buffer, to drop before handing frames on.
  pub handshake_len: usize,
  /// End of the last complete frame: `buf[handshake_len..complete]` holds only whole, valid frames.
  pub complete: usize,
  /// Total length of the incomplete frame at `complete`, once its header is readable.
  pub pending_frame_len: Option<usize>,
}

impl Splitter {
  /// A splitter for a channel in `mode` accepting payloads up to `max_payload` bytes.
  pub fn new(mode: Serialization, max_payload: u64) -> Splitter {
    Splitter {
      mode,
      max_payload,
      handshake_done: false,
      peer: PeerTakes::default(),
    }
  }

  /// Whether the peer's handshake, once read, said it takes shared-memory values.
  pub fn peer_shares(&self) -> bool {
    self.peer.shared
  }

  /// Whether the peer's handshake said it takes one-byte strings (ext `LATIN1`); None until it has been read.
  pub fn peer_takes_latin1(&self) -> Option<bool> {
    self.handshake_done.then_some(self.peer.latin1)
  }

  /// Scans `buf`, which starts at a frame boundary.
  pub fn scan(&mut self, buf: &[u8]) -> Result<Scan, FrameError> {
    let mut pos = 0;
    let mut handshake_len = 0;
    loop {
      let rest = &buf[pos..];
      if rest.len() < HEADER_LEN {
        return Ok(Scan {
          handshake_len,
          complete: pos,
          pending_frame_len: None,
        });
      }
      let len = u32::from_le_bytes([rest[0], rest[1], rest[2], rest[3]]) as u64;
      let kind = Kind::from_byte(rest[4]).ok_or(FrameError::UnknownKind(rest[4]))?;
      if len > self.max_payload {
        return Err(FrameError::TooLong {
          len,
          max: self.max_payload,
        });
      }
      let fits = match kind {
        Kind::StrictMessage => len >= STRICT_PREFIX_LEN,
        Kind::Ack => len == ACK_LEN,
        Kind::Taken => len == TAKEN_LEN,
        Kind::HandleMessage => len >= 1,
        _ => true,
      };
      if !fits {
        return Err(FrameError::BadLength {
          kind: kind as u8,
          len,
        });
      }
      match (self.handshake_done, kind) {
        (false, Kind::Hello) => {}
        (false, _) => return Err(FrameError::NoHandshake),
        (true, Kind::Hello) => return Err(FrameError::RepeatedHandshake),
        (true, _) => {}
      }
      let total = HEADER_LEN + len as usize;
      if rest.len() < total {
        return Ok(Scan {
          handshake_len,
          complete: pos,
          pending_frame_len: Some(total),
        });
      }
      if kind == Kind::Hello {
        self.peer = check_hello(&rest[HEADER_LEN..total], self.mode)?;
        self.handshake_done = true;
        handshake_len = total;
      }
      pos += total;
    }
  }
}

#[cfg(test)]
mod tests {
  use super::*;

  fn frame(kind: u8, payload: &[u8]) -> Vec<u8> {
    let mut v = (payload.len() as u32).to_le_bytes().to_vec();
    v.push(kind);
    v.extend_from_slice(payload);
    v
  }

  #[test]
  fn handshake_then_messages_split_at_frame_boundaries() {
    let mut buf = hello_frame(Serialization::Advanced);
    let hello_len = buf.len();
    buf.extend(frame(2, b"abc"));
    buf.extend(frame(2, b""));
    let whole = buf.len();
    buf.extend(&frame(2, b"0123456789")[..7]);
    let mut s = Splitter::new(Serialization::Advanced, 1 << 20);
    let scan = s.scan(&buf).unwrap();
    assert_eq!(scan.handshake_len, hello_len);
    assert_eq!(scan.complete, whole);
    assert_eq!(scan.pending_frame_len, Some(HEADER_LEN + 10));
    // The rest of the stream no longer needs a handshake.
    assert_eq!(s.scan(&frame(2, b"x")).unwrap().complete, 6);
  }

  #[test]
  fn partial_header_waits() {
    let mut s = Splitter::new(Serialization::Json, 100);
    let scan = s.scan(&[1, 0]).unwrap();
    assert_eq!(scan.complete, 0);
    assert_eq!(scan.pending_frame_len, None);
  }

  #[test]
  fn message_before_handshake_is_refused() {
    let mut s = Splitter::new(Serialization::Json, 100);
    assert_eq!(s.scan(&frame(2, b"1")), Err(FrameError::NoHandshake));
  }

  #[test]
  fn oversized_length_is_refused_from_the_header_alone() {
    let mut s = Splitter::new(Serialization::Advanced, 1 << 20);
    let mut buf = hello_frame(Serialization::Advanced);
    buf.extend_from_slice(&u32::MAX.to_le_bytes());
    buf.push(2);
    assert_eq!(
      s.scan(&buf),
      Err(FrameError::TooLong {
        len: u32::MAX as u64,
        max: 1 << 20
      })
    );
  }

  #[test]
  fn unknown_kind_version_and_mode_are_refused() {
    let mut s = Splitter::new(Serialization::Advanced, 100);
    assert_eq!(s.scan(&frame(99, b"")), Err(FrameError::UnknownKind(99)));

    let other_version = rmp_serde::to_vec_named(&Hello {
      v: 7,
      s: "advanced".into(),
      m: false,
      l: false,
    })
    .unwrap();
    let mut s = Splitter::new(Serialization::Advanced, 100);
    assert_eq!(
      s.scan(&frame(1, &other_version)),
      Err(FrameError::Version(7))
    );

    let mut s = Splitter::new(Serialization::Advanced, 100);
    let json_hello = hello_frame(Serialization::Json);
    assert_eq!(s.scan(&json_hello), Err(FrameError::Mode("json".into())));

    let mut s = Splitter::new(Serialization::Advanced, 100);
    assert_eq!(
      s.scan(&frame(1, b"\xc1garbage")),
      Err(FrameError::BadHandshake)
    );
  }

  #[test]
  fn the_handshake_says_what_the_peer_takes() {
    // Ours takes one-byte strings; shared memory where this platform has it.
    let mut s = Splitter::new(Serialization::Advanced, 100);
    assert_eq!(
      s.peer_takes_latin1(),
      None,
      "nothing is known before the handshake"
    );
    s.scan(&hello_frame(Serialization::Advanced)).unwrap();
    assert_eq!(s.peer_takes_latin1(), Some(true));
    assert_eq!(s.peer_shares(), crate::shared::SUPPORTED);
    // A peer that names neither key takes neither, and other keys are ignored.
    #[derive(Serialize)]
    struct Plain {
      v: u32,
      s: &'static str,
      x: &'static str,
    }
    let plain = rmp_serde::to_vec_named(&Plain {
      v: PROTOCOL_VERSION,
      s: "advanced",
      x: "y",
    })
    .unwrap();
    let mut s = Splitter::new(Serialization::Advanced, 100);
    s.scan(&frame(1, &plain)).unwrap();
    assert_eq!(
      (s.peer_shares(), s.peer_takes_latin1()),
      (false, Some(false))
    );
  }

  #[test]
  fn control_frames_must_have_their_exact_length() {
    let mut s = Splitter::new(Serialization::Json, 100);
    let mut buf = hello_frame(Serialization::Json);
    buf.extend(frame(4, b"\x01\0\0"));
    assert_eq!(s.scan(&buf), Err(FrameError::BadLength { kind: 4, len: 3 }));
    let mut s = Splitter::new(Serialization::Json, 100);
    let mut buf = hello_frame(Serialization::Json);
    buf.extend(frame(3, b"\x01\0\0\0"));
    assert_eq!(s.scan(&buf), Err(FrameError::BadLength { kind: 3, len: 4 }));
    let mut s = Splitter::new(Serialization::Json, 100);
    let mut buf = hello_frame(Serialization::Json);
    buf.extend(frame(4, b"\x01\0\0\0\x01"));
    buf.extend(frame(3, b"\x01\0\0\0\x00null"));
    assert_eq!(s.scan(&buf).unwrap().complete, buf.len());
  }

  #[test]
  fn second_handshake_is_refused() {
    let mut s = Splitter::new(Serialization::Json, 100);
    let mut buf = hello_frame(Serialization::Json);
    buf.extend(hello_frame(Serialization::Json));
    assert_eq!(s.scan(&buf), Err(FrameError::RepeatedHandshake));
  }

  #[test]
  fn random_streams_never_panic() {
    // A small xorshift generator keeps the test dependency-free and repeatable.
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    for round in 0..20_000 {
      let mut buf = if round % 2 == 0 {
        hello_frame(Serialization::Advanced)
      } else {
        Vec::new()
      };
      let n = (round % 64) as usize;
      for _ in 0..n {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        buf.push(x as u8);
      }
      let mut s = Splitter::new(Serialization::Advanced, 1 << 16);
      if let Ok(scan) = s.scan(&buf) {
        assert!(scan.complete <= buf.len());
      }
    }
  }
}
