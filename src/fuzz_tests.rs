//! Property tests of the frame decoder over thousands of random inputs (ipc-reliability.md §5 A10–A11, D26–D30).
//!
//! The stream is driven the way `channel.rs` drives it: bytes accumulate, `Splitter::scan` runs on the
//! unscanned part, the handshake is dropped from the front, and whole frames are taken. Inputs come from a
//! seeded xorshift generator (no extra dependency); a failure names its seed and case so it can be replayed.

use std::panic::{catch_unwind, AssertUnwindSafe};

use crate::framing::{
  hello_frame, FrameError, Kind, Serialization, Splitter, ACK_LEN, HEADER_LEN, PROTOCOL_VERSION,
  STRICT_PREFIX_LEN, TAKEN_LEN,
};
use crate::transport;

struct Rng(u64);

impl Rng {
  fn new(seed: u64) -> Rng {
    Rng(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1)
  }

  fn next(&mut self) -> u64 {
    self.0 ^= self.0 << 13;
    self.0 ^= self.0 >> 7;
    self.0 ^= self.0 << 17;
    self.0
  }

  fn below(&mut self, n: usize) -> usize {
    (self.next() % n as u64) as usize
  }

  fn bytes(&mut self, n: usize) -> Vec<u8> {
    (0..n).map(|_| self.next() as u8).collect()
  }
}

/// One frame as the receiving side sees it: kind byte and payload.
type Frame = (u8, Vec<u8>);

/// The receiving side of `channel.rs`, reduced to its buffer handling.
struct Receiver {
  splitter: Splitter,
  buf: Vec<u8>,
  scanned: usize,
  frames: Vec<Frame>,
}

impl Receiver {
  fn new(mode: Serialization, max: u64) -> Receiver {
    Receiver {
      splitter: Splitter::new(mode, max),
      buf: Vec::new(),
      scanned: 0,
      frames: Vec::new(),
    }
  }

  /// Feeds one read's worth of bytes; whole frames move to `frames`.
  fn feed(&mut self, chunk: &[u8]) -> Result<(), FrameError> {
    self.buf.extend_from_slice(chunk);
    let scan = self.splitter.scan(&self.buf[self.scanned..])?;
    let unscanned = self.buf.len() - self.scanned;
    assert!(scan.handshake_len <= scan.complete && scan.complete <= unscanned);
    if let Some(total) = scan.pending_frame_len {
      assert!(total > unscanned - scan.complete && total >= HEADER_LEN);
    }
    if scan.handshake_len > 0 {
      assert_eq!(self.scanned, 0, "the handshake is always at the front");
      self.buf.drain(..scan.handshake_len);
      self.scanned += scan.complete - scan.handshake_len;
    } else {
      self.scanned += scan.complete;
    }
    let mut pos = 0;
    while pos < self.scanned {
      let len = u32::from_le_bytes(self.buf[pos..pos + 4].try_into().unwrap()) as usize;
      let start = pos + HEADER_LEN;
      self
        .frames
        .push((self.buf[pos + 4], self.buf[start..start + len].to_vec()));
      pos = start + len;
    }
    assert_eq!(
      pos, self.scanned,
      "whole frames end exactly where the scan said"
    );
    self.buf.drain(..self.scanned);
    self.scanned = 0;
    Ok(())
  }
}

fn encode(kind: u8, payload: &[u8]) -> Vec<u8> {
  let mut out = (payload.len() as u32).to_le_bytes().to_vec();
  out.push(kind);
  out.extend_from_slice(payload);
  out
}

/// A random valid stream after the handshake: frames of every kind, with the lengths their kind allows.
fn random_frames(rng: &mut Rng, count: usize, max_payload: usize) -> Vec<Frame> {
  (0..count)
    .map(|_| {
      let kind = [
        Kind::Message,
        Kind::StrictMessage,
        Kind::Ack,
        Kind::Cancel,
        Kind::HandleMessage,
        Kind::Taken,
      ][rng.below(6)];
      let len = match kind {
        Kind::Ack => ACK_LEN as usize,
        Kind::Taken => TAKEN_LEN as usize,
        Kind::StrictMessage => STRICT_PREFIX_LEN as usize + rng.below(max_payload),
        Kind::HandleMessage => 1 + rng.below(max_payload),
        _ => rng.below(max_payload + 1),
      };
      (kind as u8, rng.bytes(len))
    })
    .collect()
}

fn stream_of(mode: Serialization, frames: &[Frame]) -> Vec<u8> {
  let mut stream = hello_frame(mode);
  for (kind, payload) in frames {
    stream.extend(encode(*kind, payload));
  }
  stream
}

fn mode_of(rng: &mut Rng) -> Serialization {
  if rng.below(2) == 0 {
    Serialization::Advanced
  } else {
    Serialization::Json
  }
}

#[test]
fn random_bytes_never_panic_whatever_the_limit_and_the_reads() {
  let limits = [0, 1, 5, 1 << 10, 1 << 20, u32::MAX as u64, u64::MAX];
  for case in 0..20_000u64 {
    let mut rng = Rng::new(case);
    let mode = mode_of(&mut rng);
    let mut stream = if case % 3 == 0 {
      Vec::new()
    } else {
      hello_frame(mode)
    };
    let noise = rng.below(if case % 50 == 0 { 4096 } else { 96 });
    stream.extend(rng.bytes(noise));
    let limit = limits[rng.below(limits.len())];
    let outcome = catch_unwind(AssertUnwindSafe(|| {
      let mut receiver = Receiver::new(mode, limit);
      let mut rest = &stream[..];
      while !rest.is_empty() {
        let n = 1 + rng.below(rest.len().min(64));
        if receiver.feed(&rest[..n]).is_err() {
          break;
        }
        rest = &rest[n..];
      }
    }));
    assert!(outcome.is_ok(), "case {case} panicked");
  }
}

#[test]
fn how_the_stream_is_cut_into_reads_never_changes_the_frames() {
  for case in 0..2_000u64 {
    let mut rng = Rng::new(case + 1_000_000);
    let mode = mode_of(&mut rng);
    let count = 1 + rng.below(12);
    let frames = random_frames(&mut rng, count, 40);
    let stream = stream_of(mode, &frames);

    let mut whole = Receiver::new(mode, 1 << 20);
    whole.feed(&stream).unwrap();
    assert_eq!(whole.frames, frames, "case {case}, whole");

    // Every cut position of the first 150 bytes (inside the handshake, a length prefix, a kind byte, a payload).
    for cut in 0..stream.len().min(150) {
      let mut receiver = Receiver::new(mode, 1 << 20);
      receiver.feed(&stream[..cut]).unwrap();
      receiver.feed(&stream[cut..]).unwrap();
      assert_eq!(receiver.frames, frames, "case {case}, cut at {cut}");
    }

    // Random read sizes, one byte at a time included.
    let mut receiver = Receiver::new(mode, 1 << 20);
    let mut rest = &stream[..];
    while !rest.is_empty() {
      let n = 1 + rng.below(rest.len().min(if case % 2 == 0 { 1 } else { 32 }));
      receiver.feed(&rest[..n]).unwrap();
      rest = &rest[n..];
    }
    assert_eq!(receiver.frames, frames, "case {case}, random reads");
  }
}

#[test]
fn a_length_over_the_limit_is_refused_from_the_header_alone() {
  let mut rng = Rng::new(7);
  for case in 0..10_000 {
    let mode = mode_of(&mut rng);
    let max = rng.next() % (u32::MAX as u64);
    let len = max + 1 + rng.next() % (u32::MAX as u64 - max);
    let mut header = hello_frame(mode);
    header.extend_from_slice(&(len as u32).to_le_bytes());
    header.push(Kind::Message as u8);
    // Only the header is there: the claim is judged before a single payload byte (or allocation) exists.
    let mut receiver = Receiver::new(mode, max);
    assert_eq!(
      receiver.feed(&header),
      Err(FrameError::TooLong { len, max }),
      "case {case}"
    );
  }
  // A claim within the limit waits for its bytes: nothing is refused, nothing is delivered.
  let mut splitter = Splitter::new(Serialization::Advanced, u32::MAX as u64);
  let mut stream = hello_frame(Serialization::Advanced);
  stream.extend_from_slice(&(u32::MAX - 4).to_le_bytes());
  stream.push(Kind::Message as u8);
  let scan = splitter.scan(&stream).unwrap();
  assert_eq!(scan.complete, scan.handshake_len);
  assert_eq!(
    scan.pending_frame_len,
    Some(HEADER_LEN + (u32::MAX - 4) as usize)
  );
}

#[test]
fn unknown_kinds_and_impossible_control_lengths_are_refused() {
  for kind in 0..=255u8 {
    let mut stream = hello_frame(Serialization::Json);
    stream.extend(encode(kind, &[0; 5]));
    let result = Receiver::new(Serialization::Json, 1 << 20).feed(&stream);
    match kind {
      2..=6 => assert_eq!(result, Ok(()), "kind {kind}"),
      1 => assert_eq!(result, Err(FrameError::RepeatedHandshake)),
      7 => assert_eq!(result, Err(FrameError::BadLength { kind, len: 5 })),
      _ => assert_eq!(result, Err(FrameError::UnknownKind(kind))),
    }
  }
  // Control frames of a fixed length are refused at any other.
  for (kind, fixed) in [(Kind::Ack, ACK_LEN), (Kind::Taken, TAKEN_LEN)] {
    for len in 0..12usize {
      let mut stream = hello_frame(Serialization::Json);
      stream.extend(encode(kind as u8, &vec![0; len]));
      let result = Receiver::new(Serialization::Json, 1 << 20).feed(&stream);
      assert_eq!(
        result.is_ok(),
        len == fixed as usize,
        "{kind:?} of {len} bytes"
      );
    }
  }
}

/// A MessagePack map of the given (key, already encoded value) pairs.
fn map(entries: &[(&str, Vec<u8>)]) -> Vec<u8> {
  let mut out = vec![0x80 | entries.len() as u8];
  for (key, value) in entries {
    out.push(0xa0 | key.len() as u8);
    out.extend_from_slice(key.as_bytes());
    out.extend_from_slice(value);
  }
  out
}

fn fixstr(text: &str) -> Vec<u8> {
  let mut out = vec![0xa0 | text.len() as u8];
  out.extend_from_slice(text.as_bytes());
  out
}

#[test]
fn random_handshakes_never_panic_and_only_the_right_one_passes() {
  let mut rng = Rng::new(99);
  for case in 0..10_000 {
    let mode = mode_of(&mut rng);
    let payload = match rng.below(3) {
      0 => {
        let len = rng.below(40);
        rng.bytes(len)
      }
      1 => {
        let version = [0u8, 1, 2, 0x7f, 0xcc][rng.below(5)];
        let name = ["advanced", "json", "", "v8", "advancedx"][rng.below(5)];
        map(&[("v", vec![version]), ("s", fixstr(name))])
      }
      _ => {
        let mut bytes = map(&[
          ("v", vec![PROTOCOL_VERSION as u8]),
          ("s", fixstr(mode.name())),
        ]);
        let at = rng.below(bytes.len());
        bytes[at] = rng.next() as u8;
        bytes
      }
    };
    let result =
      catch_unwind(|| Splitter::new(mode, 1 << 20).scan(&encode(Kind::Hello as u8, &payload)));
    let result = result.unwrap_or_else(|_| panic!("case {case} panicked"));
    let exact = map(&[
      ("v", vec![PROTOCOL_VERSION as u8]),
      ("s", fixstr(mode.name())),
    ]);
    if payload == exact {
      assert!(result.is_ok(), "case {case}");
    } else if let Ok(scan) = result {
      // Anything else that passes must still say version 1 and this mode (say, with its fields reordered).
      assert_eq!(
        scan.handshake_len,
        HEADER_LEN + payload.len(),
        "case {case}"
      );
      let text = String::from_utf8_lossy(&payload);
      assert!(text.contains(mode.name()), "case {case}: {payload:02x?}");
    }
  }
}

#[test]
fn a_handshake_nested_100k_deep_is_refused_with_bounded_recursion() {
  // {"v": 1, "s": "advanced", "x": [[[[…]]]]}: serde walks an unknown field to skip it, so its depth matters.
  // rmp_serde stops at 1024 levels; unbounded recursion over 100k levels would overflow even the 8 MiB of a
  // main thread (an unoptimised build needs about 3 MiB for the 1024 levels, a release build under 128 KiB).
  let checked = std::thread::Builder::new()
    .stack_size(8 << 20)
    .spawn(|| {
      let mut deep = vec![0x91u8; 100_000];
      deep.push(0xc0);
      let payload = map(&[
        ("v", vec![1]),
        ("s", fixstr("advanced")),
        ("x", deep.clone()),
      ]);
      let mut splitter = Splitter::new(Serialization::Advanced, 1 << 20);
      assert_eq!(
        splitter.scan(&encode(Kind::Hello as u8, &payload)),
        Err(FrameError::BadHandshake)
      );
      let mut splitter = Splitter::new(Serialization::Advanced, 1 << 20);
      assert_eq!(
        splitter.scan(&encode(Kind::Hello as u8, &deep)),
        Err(FrameError::BadHandshake)
      );
    })
    .unwrap()
    .join();
  assert!(checked.is_ok());
}

#[test]
fn frames_through_a_real_socketpair_come_out_whole_in_order() {
  for case in 0..200u64 {
    let mut rng = Rng::new(case + 5_000_000);
    let mode = mode_of(&mut rng);
    let count = 1 + rng.below(200);
    let frames = random_frames(&mut rng, count, 3000);
    let stream = stream_of(mode, &frames);
    let (a, b) = transport::socketpair().unwrap();
    transport::adopt(b).unwrap();
    let mut receiver = Receiver::new(mode, 1 << 20);
    let mut sent = 0;
    let mut buf = vec![std::mem::MaybeUninit::new(0u8); 1 + rng.below(8192)];
    let mut fds = Vec::new();
    while receiver.frames.len() < frames.len() {
      if sent < stream.len() {
        let n = (1 + rng.below(5000)).min(stream.len() - sent);
        sent += transport::write(a, &[&stream[sent..sent + n]], None).unwrap();
      }
      if let transport::Read::Data(n) = transport::read(b, &mut buf, &mut fds).unwrap() {
        // SAFETY: the kernel initialised the first `n` bytes.
        let chunk: Vec<u8> = buf[..n]
          .iter()
          .map(|b| unsafe { b.assume_init() })
          .collect();
        receiver.feed(&chunk).unwrap();
      }
    }
    assert_eq!(receiver.frames, frames, "case {case}");
    assert!(fds.is_empty());
    transport::close(a);
    transport::close(b);
  }
}
