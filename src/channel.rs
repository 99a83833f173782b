//! One end of the channel, driven by a `uv_poll` handle on Node's own event loop.
//!
//! Design (see ../shared/reference/measured-designs.md): reading and writing happen in the libuv poll callback
//! on the JS thread, so there is no extra thread to wake and one JS call delivers every frame that arrived in
//! that turn of the loop. JS hands over already-coalesced bytes; the kernel gets them in as few `sendmsg`
//! calls as it accepts, and only the part it did not take is copied into the queue.

use std::cell::RefCell;
use std::collections::VecDeque;
use std::os::fd::RawFd;
use std::os::raw::{c_int, c_void};
use std::ptr;
use std::rc::Rc;
use std::time::Instant;

use napi::bindgen_prelude::{BufferSlice, Function, Unknown};
use napi::{sys, Env, JsValue};

// Exported functions return `Result<T, String>`: errors carry a stable string `code` (see `error.rs`).
use napi::Result;
use napi_derive::napi;

use crate::error::ChannelError;
use crate::framing::{self, FrameError, Serialization, Splitter};
use crate::memory::{reserve_advised, FrameMemory};
use crate::spin::Spin;
use crate::transport::{self, Read};
use crate::uv;

/// Bytes asked of the kernel per read when no large frame is pending.
const READ_CHUNK: usize = 64 * 1024;
/// Bytes read in one poll callback before handing them to JS, so one fast peer cannot starve the loop. It also
/// bounds how many decoded messages are alive at once before the loop body takes them: with 4 MiB batches
/// (~120k small messages) young-generation GCs had to copy ~12 MB of survivors each and promoted them;
/// with 256 KiB, GC time per message halved and no full GC ran (`--trace-gc`, 400k small messages). With one
/// read's worth (64 KiB, ~1,700 small messages) most batches fit the landing buffer, which costs JS no
/// allocation, and fewer messages wait in the iterator: against 256 KiB, 5-7% faster into a fresh child, 9%
/// faster out of one, 2-5% faster warm (alternating runs of 20 x 200k small messages), the poll woken 4x as
/// often. (A batch that also ends a frame begun in the read before is a little longer and comes as its own
/// Buffer: 33 of 112 batches for 200k small messages. Reading only what tops the buffer up to 64 KiB sent
/// every batch through the landing buffer but was no faster, in alternating runs both ways.)
const READ_BUDGET: usize = READ_CHUNK;
/// Capacity of the write queue kept after it drained.
const KEEP_QUEUE_BYTES: usize = 32 * 1024 * 1024;
/// A batch up to this size is copied into a V8-owned Buffer (cheaper than an external one with a finalizer);
/// larger ones are handed over without copying. (Most batches go to the landing buffer instead.)
const COPY_BATCH_MAX: usize = 64 * 1024;

type Shared = Rc<RefCell<State>>;

struct State {
  env: sys::napi_env,
  fd: RawFd,
  /// The `uv_poll_t`, null once closing started.
  handle: *mut c_void,
  callback: sys::napi_ref,
  async_context: sys::napi_async_context,
  /// The landing buffer (a JS Buffer kept alive by this reference until `finish`) and its memory.
  landing_ref: sys::napi_ref,
  landing: *mut u8,
  landing_len: usize,
  /// JS is running the callback, reading the landing buffer: a nested delivery must not overwrite it.
  delivering: bool,
  splitter: Splitter,
  /// Received bytes; `inbuf[..scanned]` are whole frames not yet handed to JS.
  inbuf: Vec<u8>,
  scanned: usize,
  /// Total length of the incomplete frame at `scanned`, once known.
  pending_frame: Option<usize>,
  /// A large coalescing buffer JS gave up, written from where it is (see `write_owned`); its unwritten
  /// bytes come before `outq` in the stream.
  lent: Option<Lent>,
  /// Bytes the kernel has not taken yet: `outq[out_start..]`.
  outq: Vec<u8>,
  out_start: usize,
  /// Bytes handed to the kernel since the channel opened (handshake included).
  written: u64,
  /// Descriptors to pass along, each with the stream offset of the byte it must travel with.
  fd_marks: VecDeque<(u64, RawFd)>,
  /// Descriptors the peer passed, not yet handed to JS.
  in_fds: Vec<RawFd>,
  hello_len: u64,
  /// Whether JS asked to keep the event loop alive.
  js_ref: bool,
  refed: bool,
  polled: c_int,
  /// Close once the queue is empty.
  closing: bool,
  /// No more I/O: the end was seen or close was called.
  done: bool,
  /// The pointer given to the env cleanup hook (an `Rc` of this state), while registered.
  cleanup_arg: *const RefCell<State>,
  /// Whether to keep the loop awake for the peer's answer after a write (see `spin.rs`), and the `uv_idle_t`
  /// that does it (null when off or closed), started exactly while the policy is waiting: libuv then polls
  /// without sleeping.
  spin: Spin,
  idle: *mut c_void,
  /// `written` when the waiting policy last looked at it.
  spin_seen: u64,
  /// Bytes arrived since `service` last looked.
  read_any: bool,
}

/// What one poll callback hands to JS.
#[derive(Default)]
struct Delivery {
  frames: Option<Frames>,
  fds: Vec<RawFd>,
  written: bool,
  end: Option<End>,
}

/// A JS Buffer kept alive by a reference while its bytes `[pos, len)` wait for the kernel, after
/// `head[head_pos..]` (copied bytes that go before them).
struct Lent {
  reference: sys::napi_ref,
  ptr: *const u8,
  len: usize,
  pos: usize,
  head: Vec<u8>,
  head_pos: usize,
}

impl Lent {
  /// Writes what the kernel takes now of `head`, then of the lent bytes; returns how many it took.
  fn write_to(&mut self, fd: RawFd) -> std::result::Result<usize, ChannelError> {
    // SAFETY: `ptr..ptr + len` is the memory of the Buffer `reference` keeps alive.
    let rest = unsafe { std::slice::from_raw_parts(self.ptr.add(self.pos), self.len - self.pos) };
    let head = &self.head[self.head_pos..];
    let n = if head.is_empty() {
      transport::write(fd, &[rest], None)
    } else {
      transport::write(fd, &[head, rest], None)
    }
    .map_err(ChannelError::Write)?;
    let from_head = n.min(head.len());
    self.head_pos += from_head;
    self.pos += n - from_head;
    Ok(n)
  }

  fn done(&self) -> bool {
    self.head_pos == self.head.len() && self.pos == self.len
  }
}

/// Whole frames for JS: a batch that fits is copied into the landing buffer JS gave at open (no allocation,
/// no new Buffer object per batch); a larger one, or one produced while JS is still reading the landing
/// buffer (a nested read), goes as a Buffer of its own.
enum Frames {
  Landing(usize),
  Owned(Vec<u8>),
}

enum End {
  Eof,
  /// End of file in the middle of a frame: the peer died while sending. Pending calls see the peer's
  /// exit; the message explains what was cut.
  Truncated(String),
  Failed(String),
}

/// The native end of a channel. JS owns one per process pair; it is internal (the public API is in index.js).
#[napi]
pub struct NativeChannel {
  state: Shared,
}

/// Creates the socketpair for a new subprocess: `[parentEnd, childEnd]`, both close-on-exec.
#[napi(catch_unwind)]
pub fn create_socketpair() -> Result<Vec<i32>, String> {
  let (a, b) = transport::socketpair().map_err(ChannelError::Io)?;
  Ok(vec![a, b])
}

/// The CPUs this process may run on, once per process.
fn available_cpus() -> usize {
  static CPUS: std::sync::OnceLock<usize> = std::sync::OnceLock::new();
  *CPUS.get_or_init(|| std::thread::available_parallelism().map_or(1, |n| n.get()))
}

/// A `uv_idle_t` on `event_loop`, or null if it cannot be made (the channel then never waits awake). It never
/// keeps the loop alive by itself.
fn open_idle(event_loop: *mut c_void) -> *mut c_void {
  let idle = uv::alloc_idle();
  if idle.is_null() {
    return idle;
  }
  // SAFETY: `idle` is zeroed memory of uv_idle_t size and `event_loop` is this env's loop.
  unsafe {
    if uv::uv_idle_init(event_loop, idle) != 0 {
      // Never initialised, so libuv holds no reference to it.
      libc::free(idle);
      return ptr::null_mut();
    }
    uv::uv_unref(idle);
  }
  idle
}

/// Closes a descriptor this process owns (the parent's copy of the child's end after spawning).
#[napi]
pub fn close_fd(fd: i32) {
  transport::close(fd);
}

/// Opens the channel on `fd`, sending the handshake at once. `callback(frames, written, end, fds, endCode)` is
/// called from the event loop: `frames` is the byte count of whole frames placed at the start of `landing`
/// (a Buffer JS keeps reading only during the call), a Buffer of whole frames of its own, or undefined;
/// `written` the bytes handed to the kernel so far, `end` undefined while open, `''` on end-of-file, or an
/// error message, and `fds` the descriptors the peer passed (in order), or undefined.
#[napi(catch_unwind)]
pub fn open_channel(
  env: Env,
  fd: i32,
  serialization: String,
  max_payload: f64,
  callback: Function<'_>,
  landing: Unknown<'_>,
  spin_us: u32,
) -> Result<NativeChannel, String> {
  let mode = Serialization::from_name(&serialization).ok_or(ChannelError::BadArgument(
    "serialization must be 'advanced' or 'json'",
  ))?;
  let raw_env = env.raw();
  let (landing_ptr, landing_len) = buffer_memory(raw_env, &landing)
    .ok_or(ChannelError::BadArgument("landing must be a Buffer"))?;
  transport::adopt(fd).map_err(ChannelError::Adopt)?;
  let mut landing_ref = ptr::null_mut();
  let mut callback_ref = ptr::null_mut();
  let mut async_context = ptr::null_mut();
  let mut event_loop = ptr::null_mut();
  // SAFETY: plain N-API calls on the current env with live values.
  unsafe {
    check(sys::napi_create_reference(
      raw_env,
      callback.raw(),
      1,
      &mut callback_ref,
    ))?;
    check(sys::napi_create_reference(
      raw_env,
      landing.raw(),
      1,
      &mut landing_ref,
    ))?;
    let mut name = ptr::null_mut();
    check(sys::napi_create_string_utf8(
      raw_env,
      c"native-ipc".as_ptr(),
      10,
      &mut name,
    ))?;
    check(sys::napi_async_init(
      raw_env,
      ptr::null_mut(),
      name,
      &mut async_context,
    ))?;
    check(sys::napi_get_uv_event_loop(raw_env, &mut event_loop))?;
  }
  let handle = uv::alloc_poll();
  if handle.is_null() {
    return Err(ChannelError::Io(std::io::ErrorKind::OutOfMemory.into()).into());
  }
  // SAFETY: `handle` is zeroed memory of uv_poll_t size and `event_loop` is this env's loop.
  let rc = unsafe { uv::uv_poll_init(event_loop.cast(), handle, fd) };
  if rc != 0 {
    // SAFETY: never initialised, so libuv holds no reference to it.
    unsafe { libc::free(handle) };
    return Err(ChannelError::Uv(uv::strerror(rc)).into());
  }
  let spin = Spin::new(spin_us, available_cpus);
  // Without its idle handle (off, or libuv refused one) the channel never waits awake (see update_spin). On a
  // machine with one CPU it has one that it never starts (see Spin::new).
  let idle = if spin.enabled() {
    open_idle(event_loop.cast())
  } else {
    ptr::null_mut()
  };
  let hello = framing::hello_frame(mode);
  let hello_len = hello.len() as u64;
  let state = Rc::new(RefCell::new(State {
    env: raw_env,
    fd,
    handle,
    callback: callback_ref,
    async_context,
    landing_ref,
    landing: landing_ptr.cast(),
    landing_len,
    delivering: false,
    splitter: Splitter::new(mode, max_payload as u64),
    inbuf: Vec::with_capacity(READ_CHUNK),
    scanned: 0,
    pending_frame: None,
    hello_len,
    lent: None,
    outq: hello,
    out_start: 0,
    written: 0,
    fd_marks: VecDeque::new(),
    in_fds: Vec::new(),
    js_ref: false,
    refed: true,
    polled: 0,
    closing: false,
    done: false,
    cleanup_arg: ptr::null(),
    spin,
    idle,
    // The handshake is no message: nothing answers it soon.
    spin_seen: hello_len,
    read_any: false,
  }));
  // SAFETY: the handle's data owns one Rc, released in `on_closed`; the cleanup hook owns another, and the idle
  // handle (if any) a third.
  unsafe {
    (*(handle as *mut uv::HandleHead)).data = Rc::into_raw(state.clone()) as *mut c_void;
    if !idle.is_null() {
      (*(idle as *mut uv::HandleHead)).data = Rc::into_raw(state.clone()) as *mut c_void;
    }
    let arg = Rc::into_raw(state.clone());
    state.borrow_mut().cleanup_arg = arg;
    check(sys::napi_add_env_cleanup_hook(
      raw_env,
      Some(on_env_cleanup),
      arg as *mut c_void,
    ))?;
  }
  {
    let mut s = state.borrow_mut();
    // The handshake usually fits the empty socket buffer; what does not is written when writable.
    match s.flush() {
      // A peer that already left shows up as end-of-file on the first poll, like any other exit.
      Err(e) if !e.is_peer_gone() => {
        drop(s);
        finish(&state);
        return Err(e.into());
      }
      _ => {}
    }
    s.update_poll();
  }
  Ok(NativeChannel { state })
}

impl NativeChannel {
  fn write_slices(&self, parts: &[&[u8]]) -> Result<f64, String> {
    let mut s = self.state.borrow_mut();
    if s.done || s.closing {
      return Err(ChannelError::Closed.into());
    }
    // Give the kernel what waits first: a sender that produces faster than the loop turns still feeds the
    // socket on every call, so the reader works in parallel instead of waiting for this side to go idle.
    if s.has_output() {
      s.flush()?;
    }
    let mut skip = 0;
    if !s.has_output() {
      // Nothing queued: try the kernel directly and keep only the rest.
      skip = transport::write(s.fd, parts, None).map_err(ChannelError::Write)?;
      s.written += skip as u64;
      s.outq.clear();
      s.out_start = 0;
    }
    for part in parts {
      if skip >= part.len() {
        skip -= part.len();
        continue;
      }
      let rest = &part[skip..];
      reserve_advised(&mut s.outq, rest.len(), false);
      s.outq.extend_from_slice(rest);
      skip = 0;
    }
    s.update_poll();
    Ok(s.written_by_js())
  }
}

#[napi]
impl NativeChannel {
  /// Queues the first `length` bytes of `buffer` (whole frames from the coalescing buffer) and writes what the
  /// kernel takes now. Returns the bytes written so far, for JS to settle the sends they cover. (A length
  /// rather than a subarray: Buffer.prototype.subarray is JavaScript, one more object per flush and one more
  /// function for a child to compile at its first send.)
  #[napi(catch_unwind)]
  pub fn write(&self, env: Env, buffer: Unknown<'_>, length: u32) -> Result<f64, String> {
    let (data, size) = buffer_memory(env.raw(), &buffer)
      .ok_or(ChannelError::BadArgument("write() takes a Buffer"))?;
    let length = length as usize;
    if length > size {
      return Err(ChannelError::BadArgument("write(): length past the end of the Buffer").into());
    }
    // SAFETY: `data..data + size` is the Buffer's memory, alive during this call.
    let frames = unsafe { std::slice::from_raw_parts(data as *const u8, length) };
    self.write_slices(&[frames])
  }

  /// Like `write`, for frames whose large binary payloads were kept out of the coalescing buffer: `parts`
  /// are written in order as one stream (one `sendmsg` with one iovec each). The parts the kernel does not
  /// take now are copied once into the queue, before this call returns, so the caller may reuse or change
  /// its buffers at once.
  #[napi(catch_unwind)]
  pub fn write_parts(&self, parts: Vec<BufferSlice>) -> Result<f64, String> {
    let slices: Vec<&[u8]> = parts.iter().map(|p| &p[..]).collect();
    self.write_slices(&slices)
  }

  /// Like `writeParts`, followed by `buffer`: bytes of a frame this side received, which nothing changes any
  /// more (a long string decoded from it is being sent on). What the kernel does not take of them now is
  /// written later from that Buffer, kept alive by a reference, instead of being copied into the queue; the
  /// untaken rest of `parts`, small, is copied ahead of them.
  #[napi(catch_unwind)]
  pub fn write_parts_lending(
    &self,
    env: Env,
    parts: Vec<BufferSlice>,
    buffer: Unknown<'_>,
  ) -> Result<f64, String> {
    let raw_env = env.raw();
    let (data, size) = buffer_memory(raw_env, &buffer).ok_or(ChannelError::BadArgument(
      "writePartsLending() takes a Buffer",
    ))?;
    // SAFETY: `data..data + size` is the Buffer's memory, alive during this call.
    let tail = unsafe { std::slice::from_raw_parts(data as *const u8, size) };
    let mut slices: Vec<&[u8]> = parts.iter().map(|p| &p[..]).collect();
    slices.push(tail);
    {
      let mut s = self.state.borrow_mut();
      if s.done || s.closing {
        return Err(ChannelError::Closed.into());
      }
      if s.has_output() {
        s.flush()?;
      }
      if !s.has_output() && s.lent.is_none() {
        let n = transport::write(s.fd, &slices, None).map_err(ChannelError::Write)?;
        s.written += n as u64;
        s.outq.clear();
        s.out_start = 0;
        let head_len: usize = slices[..slices.len() - 1].iter().map(|p| p.len()).sum();
        if n < head_len + tail.len() {
          let mut head = Vec::new();
          let mut skip = n;
          for part in &slices[..slices.len() - 1] {
            if skip >= part.len() {
              skip -= part.len();
              continue;
            }
            head.extend_from_slice(&part[skip..]);
            skip = 0;
          }
          let mut reference = ptr::null_mut();
          // SAFETY: the reference keeps the Buffer (and so `tail`) alive until released.
          check(unsafe { sys::napi_create_reference(raw_env, buffer.raw(), 1, &mut reference) })?;
          s.lent = Some(Lent {
            reference,
            ptr: tail.as_ptr(),
            len: tail.len(),
            pos: n.saturating_sub(head_len),
            head,
            head_pos: 0,
          });
        }
        s.update_poll();
        return Ok(s.written_by_js());
      }
    }
    // Behind other queued bytes: copy, as `writeParts` does.
    self.write_slices(&slices)
  }

  /// Like `write` for `buffer[0..length]`, from a large coalescing buffer JS gives up (it never touches
  /// that Buffer again): what the kernel does not take now is written later from the Buffer itself, kept
  /// alive by a reference, instead of being copied into the queue. `lending` tells whether it was kept.
  #[napi(catch_unwind)]
  pub fn write_owned(&self, env: Env, buffer: Unknown<'_>, length: u32) -> Result<f64, String> {
    let raw_env = env.raw();
    let (data, size) = buffer_memory(raw_env, &buffer)
      .ok_or(ChannelError::BadArgument("writeOwned() takes a Buffer"))?;
    let length = length as usize;
    if length > size {
      return Err(
        ChannelError::BadArgument("writeOwned(): length past the end of the Buffer").into(),
      );
    }
    // SAFETY: `data..data + size` is the Buffer's memory, alive during this call.
    let bytes = unsafe { std::slice::from_raw_parts(data as *const u8, length) };
    {
      let mut s = self.state.borrow_mut();
      if s.done || s.closing {
        return Err(ChannelError::Closed.into());
      }
      if s.has_output() {
        s.flush()?;
      }
      if s.has_output() {
        // Behind other queued bytes: queue a copy, as `write` does.
        drop(s);
        return self.write_slices(&[bytes]);
      }
      let n = transport::write(s.fd, &[bytes], None).map_err(ChannelError::Write)?;
      s.written += n as u64;
      s.outq.clear();
      s.out_start = 0;
      if n < length {
        let mut reference = ptr::null_mut();
        // SAFETY: as above; the reference keeps the Buffer (and so `data`) alive until released.
        check(unsafe { sys::napi_create_reference(raw_env, buffer.raw(), 1, &mut reference) })?;
        s.lent = Some(Lent {
          reference,
          ptr: data as *const u8,
          len: length,
          pos: n,
          head: Vec::new(),
          head_pos: 0,
        });
      }
      s.update_poll();
      Ok(s.written_by_js())
    }
  }

  /// Whether the peer's handshake said that it takes one-byte strings (ext `LATIN1`, PROTOCOL.md §5.2.5); null
  /// until it has arrived (the encoder writes such strings as `STRING16` or UTF-8 meanwhile).
  #[napi(getter)]
  pub fn peer_takes_latin1(&self) -> Option<bool> {
    self.state.borrow().splitter.peer_takes_latin1()
  }

  /// Whether a Buffer given to `writeOwned` is still being written from.
  #[napi(getter)]
  pub fn lending(&self) -> bool {
    self.state.borrow().lent.is_some()
  }
  /// Queues one frame that carries a handle: the descriptor `handle` is passed (SCM_RIGHTS) with the
  /// frame's first byte. The descriptor is duplicated, so its owner may close it at once.
  #[napi(catch_unwind)]
  pub fn write_handle(&self, frame: BufferSlice, handle: i32) -> Result<f64, String> {
    let mut s = self.state.borrow_mut();
    if s.done || s.closing {
      return Err(ChannelError::Closed.into());
    }
    let copy = transport::dup(handle).map_err(ChannelError::Io)?;
    let offset = s.written + s.queued_len() as u64;
    s.fd_marks.push_back((offset, copy));
    s.outq.extend_from_slice(&frame);
    s.flush()?;
    s.update_poll();
    Ok(s.written_by_js())
  }

  /// A sealed memfd holding `bytes` for a shared-memory value, and their offset in it: `[fd, offset]`, or `[]`
  /// where the peer does not take such values or one cannot be made (the caller then sends them inline), or
  /// where that would take a copy and `copy` is false (bytes received shared and unchanged need none). The
  /// caller hands the descriptor back to `writeShared` (or to `closeFd`, when the send is abandoned).
  #[napi(catch_unwind)]
  pub fn share(&self, bytes: BufferSlice, copy: bool) -> Vec<f64> {
    let s = self.state.borrow();
    if s.done || s.closing || !s.splitter.peer_shares() {
      return Vec::new();
    }
    match crate::shared::share(&bytes, copy) {
      Some((fd, offset)) => vec![fd as f64, offset as f64],
      None => Vec::new(),
    }
  }

  /// Like `writeParts`, for frames with shared-memory values: `fds[i]` (from `share`, taken over here) travels
  /// with the stream byte `at[i]` bytes after the start of `parts`.
  #[napi(catch_unwind)]
  pub fn write_shared(
    &self,
    parts: Vec<BufferSlice>,
    fds: Vec<i32>,
    at: Vec<f64>,
  ) -> Result<f64, String> {
    let mut s = self.state.borrow_mut();
    if s.done || s.closing || fds.len() != at.len() {
      for fd in fds {
        transport::close(fd);
      }
      return Err(
        if s.done || s.closing {
          ChannelError::Closed
        } else {
          ChannelError::BadArgument("writeShared(): one offset per descriptor")
        }
        .into(),
      );
    }
    let start = s.written + s.queued_len() as u64;
    for (fd, at) in fds.into_iter().zip(at) {
      s.fd_marks.push_back((start + at as u64, fd));
    }
    for part in &parts {
      reserve_advised(&mut s.outq, part.len(), false);
      s.outq.extend_from_slice(part);
    }
    s.flush()?;
    s.update_poll();
    Ok(s.written_by_js())
  }

  /// Reads and delivers, now, whatever the socket holds (through the callback, before returning). The
  /// parent calls it when the child has exited, so that the child's last messages and the channel's end
  /// come before Node's 'exit' event.
  #[napi(catch_unwind)]
  pub fn read_now(&self) {
    if !self.state.borrow().done {
      service_and_deliver(&self.state, 0, uv::READABLE);
    }
  }

  /// The counters of waiting awake for answers: `[armed, hits, misses, skipped]` (see `spin.rs`).
  #[napi]
  pub fn spin_stats(&self) -> Vec<u32> {
    let stats = self.state.borrow().spin.stats();
    vec![stats.armed, stats.hits, stats.misses, stats.skipped]
  }

  /// Bytes given to `write` that the kernel has not taken yet.
  #[napi(getter)]
  pub fn queued(&self) -> f64 {
    self.state.borrow().queued_len() as f64
  }

  /// Whether the channel keeps the event loop alive (queued writes always do).
  #[napi(catch_unwind)]
  pub fn set_ref(&self, keep_alive: bool) {
    let mut s = self.state.borrow_mut();
    s.js_ref = keep_alive;
    s.update_ref();
  }

  /// Closes the channel: at once with `graceful = false`, else once queued bytes were written.
  #[napi(catch_unwind)]
  pub fn close(&self, graceful: bool) {
    let empty = {
      let mut s = self.state.borrow_mut();
      if s.done {
        return;
      }
      s.closing = true;
      s.update_ref();
      !s.has_output()
    };
    if !graceful || empty {
      finish(&self.state);
    }
  }

  /// Writes every queued byte before the process exits, waiting at most `timeout_ms` for a peer that does
  /// not read. Returns the bytes written so far.
  #[napi(catch_unwind)]
  pub fn flush_sync(&self, timeout_ms: u32) -> f64 {
    let mut s = self.state.borrow_mut();
    while !s.done && s.has_output() {
      match s.flush() {
        Ok(_) if s.has_output() => {
          if !transport::wait_writable(s.fd, timeout_ms as i32) {
            break;
          }
        }
        _ => break,
      }
    }
    s.written_by_js()
  }
}

impl State {
  fn written_by_js(&self) -> f64 {
    self.written.saturating_sub(self.hello_len) as f64
  }

  /// Bytes given to write that the kernel has not taken yet.
  fn queued_len(&self) -> usize {
    self
      .lent
      .as_ref()
      .map_or(0, |l| l.head.len() + l.len - l.pos)
      + self.outq.len()
      - self.out_start
  }

  fn has_output(&self) -> bool {
    self.queued_len() > 0
  }

  /// Lets the lent Buffer go (on the JS thread: the reference is deleted).
  fn release_lent(&mut self) {
    if let Some(lent) = self.lent.take() {
      // SAFETY: called on the env's JS thread, outside teardown (the cleanup hook forgets it instead).
      unsafe { sys::napi_delete_reference(self.env, lent.reference) };
    }
  }

  /// Writes queued bytes until the kernel stops taking them. A queued descriptor goes with the first
  /// byte of its frame, so a write never runs past the next descriptor's offset.
  fn flush(&mut self) -> std::result::Result<bool, ChannelError> {
    let mut progressed = false;
    if let Some(lent) = &mut self.lent {
      // Descriptors are always queued after the lent bytes (in `outq`), so none is due inside them.
      let n = lent.write_to(self.fd)?;
      self.written += n as u64;
      progressed = n > 0;
      if !lent.done() {
        return Ok(progressed);
      }
      self.release_lent();
    }
    while self.out_start < self.outq.len() {
      let mut end = self.outq.len();
      let mut handle = None;
      if let Some(&(offset, fd)) = self.fd_marks.front() {
        if offset == self.written {
          handle = Some(fd);
          if let Some(&(next, _)) = self.fd_marks.get(1) {
            end = self.out_start + (next - self.written) as usize;
          }
        } else {
          end = self.out_start + (offset - self.written) as usize;
        }
      }
      let n = transport::write(self.fd, &[&self.outq[self.out_start..end]], handle)
        .map_err(ChannelError::Write)?;
      if n == 0 {
        break;
      }
      if handle.is_some() {
        // The kernel holds its own reference now.
        if let Some((_, fd)) = self.fd_marks.pop_front() {
          transport::close(fd);
        }
      }
      progressed = true;
      self.out_start += n;
      self.written += n as u64;
    }
    if self.out_start == self.outq.len() {
      self.outq.clear();
      self.out_start = 0;
      // Kept for reuse up to KEEP_QUEUE_BYTES: fresh memory costs a page fault per 4 KiB on every
      // large message.
      if self.outq.capacity() > KEEP_QUEUE_BYTES {
        self.outq = Vec::with_capacity(READ_CHUNK);
      }
    } else if self.out_start > self.outq.len() / 2 {
      self.outq.drain(..self.out_start);
      self.out_start = 0;
    }
    Ok(progressed)
  }

  /// Forgets the queued output after the peer went away (its sends are rejected in JS at the end).
  fn drop_output(&mut self) {
    self.release_lent();
    self.outq.clear();
    self.out_start = 0;
    for (_, fd) in self.fd_marks.drain(..) {
      transport::close(fd);
    }
  }

  /// Closes every descriptor still held for sending or for JS.
  fn close_held_fds(&mut self) {
    for (_, fd) in self.fd_marks.drain(..) {
      transport::close(fd);
    }
    for fd in self.in_fds.drain(..) {
      transport::close(fd);
    }
  }

  fn update_ref(&mut self) {
    if self.handle.is_null() {
      return;
    }
    let want = (self.js_ref && !self.closing) || self.has_output();
    if want != self.refed {
      // SAFETY: the handle is open (not null).
      unsafe {
        if want {
          uv::uv_ref(self.handle)
        } else {
          uv::uv_unref(self.handle)
        }
      }
      self.refed = want;
    }
  }

  fn update_poll(&mut self) {
    if self.handle.is_null() {
      return;
    }
    let mut events = uv::READABLE;
    if self.has_output() {
      events |= uv::WRITABLE;
    }
    if events != self.polled {
      // SAFETY: the handle is initialised and open.
      let rc = unsafe { uv::uv_poll_start(self.handle, events, on_poll) };
      if rc == 0 {
        self.polled = events;
      }
    }
    self.update_ref();
    self.update_spin();
  }

  /// Opens a window to wait awake for the answer when this side's bytes all reached the kernel since the last
  /// look (see `spin.rs`).
  fn update_spin(&mut self) {
    if self.idle.is_null() {
      return;
    }
    let wrote = self.written > self.spin_seen;
    self.spin_seen = self.written;
    if wrote && !self.has_output() && !self.closing && self.spin.wrote(Instant::now()) {
      // SAFETY: the idle handle is initialised and open (not null). Starting a started handle does nothing.
      unsafe { uv::uv_idle_start(self.idle, on_idle) };
    }
  }

  /// Closes the idle handle, if any (its close callback releases its reference to this state).
  fn close_idle(&mut self) {
    self.spin.cancel();
    self.stop_idle();
    let idle = std::mem::replace(&mut self.idle, ptr::null_mut());
    if !idle.is_null() {
      // SAFETY: the idle handle is initialised, stopped and not closed yet (the field was not null).
      unsafe { uv::uv_close(idle, Some(on_closed)) };
    }
  }

  fn stop_idle(&mut self) {
    if !self.idle.is_null() {
      // SAFETY: the idle handle is open (it is stopped before it is closed). Stopping a stopped one does nothing.
      unsafe { uv::uv_idle_stop(self.idle) };
    }
  }

  /// Reads what the socket holds, up to `budget` bytes (whole frames are delivered after each call);
  /// `usize::MAX` reads everything, for a channel that ends now.
  fn read_available(
    &mut self,
    mut budget: usize,
  ) -> std::result::Result<Option<End>, ChannelError> {
    let read_all = budget == usize::MAX;
    loop {
      // A large frame is read to its exact end into a buffer of its own size, so that it is never copied.
      let large = matches!(self.pending_frame, Some(total) if total > READ_CHUNK);
      let want = match self.pending_frame {
        Some(total) if large => self.scanned + total - self.inbuf.len(),
        _ => READ_CHUNK,
      };
      reserve_advised(&mut self.inbuf, want, true);
      let spare = &mut self.inbuf.spare_capacity_mut()[..want];
      let fds_before = self.in_fds.len();
      match transport::read(self.fd, spare, &mut self.in_fds).map_err(ChannelError::Read)? {
        Read::Data(n) => {
          // A read stops after bytes that came with descriptors, whatever follows them: short, but not the end.
          let emptied = n < want && self.in_fds.len() == fds_before;
          // SAFETY: the kernel initialised `n` bytes of the spare capacity.
          unsafe { self.inbuf.set_len(self.inbuf.len() + n) };
          self.read_any = true;
          self.scan()?;
          budget = budget.saturating_sub(n);
          // A short read emptied the socket: asking again would only return EAGAIN, one wasted system
          // call per wake-up (the poll is level-triggered, so anything arriving later wakes it again).
          // A large frame that this read completed is delivered before anything more is read: reading on
          // would grow its full buffer, and that realloc copies the whole frame (glibc cannot move memory
          // advised for huge pages with mremap, which then fails, so it copies into fresh, unadvised memory).
          // A channel that ends now reads on regardless: nothing would wake it again.
          if budget == 0 || emptied || (large && !read_all) {
            return Ok(None);
          }
        }
        Read::WouldBlock => return Ok(None),
        Read::Eof if self.inbuf.len() > self.scanned => {
          // The peer left in the middle of a frame: that is a broken frame, not a clean end.
          return Err(ChannelError::Frame(FrameError::Truncated {
            got: (self.inbuf.len() - self.scanned) as u64,
            total: self.pending_frame.map(|t| t as u64),
          }));
        }
        Read::Eof => return Ok(Some(End::Eof)),
      }
    }
  }

  fn scan(&mut self) -> std::result::Result<(), ChannelError> {
    let scan = self
      .splitter
      .scan(&self.inbuf[self.scanned..])
      .map_err(ChannelError::Frame)?;
    if scan.handshake_len > 0 {
      // The handshake is always the first frame of the stream, so it sits at the start of the buffer.
      self.inbuf.drain(..scan.handshake_len);
      self.scanned += scan.complete - scan.handshake_len;
    } else {
      self.scanned += scan.complete;
    }
    self.pending_frame = scan.pending_frame_len;
    Ok(())
  }

  /// Takes the whole frames read so far, leaving the incomplete tail in place.
  fn take_frames(&mut self) -> Option<Frames> {
    if self.scanned == 0 {
      return None;
    }
    let n = self.scanned;
    if n <= self.landing_len && !self.delivering {
      // SAFETY: `landing` points at `landing_len` bytes of a Buffer kept alive by `landing_ref`; JS reads it
      // only inside the callback, and `delivering` says that no callback is running now.
      unsafe { ptr::copy_nonoverlapping(self.inbuf.as_ptr(), self.landing, n) };
      self.inbuf.drain(..n);
      self.scanned = 0;
      return Some(Frames::Landing(n));
    }
    let tail_len = self.inbuf.len() - self.scanned;
    let capacity = READ_CHUNK.max(tail_len);
    let mut rest = Vec::with_capacity(capacity);
    rest.extend_from_slice(&self.inbuf[self.scanned..]);
    let mut frames = std::mem::replace(&mut self.inbuf, rest);
    frames.truncate(self.scanned);
    self.scanned = 0;
    Some(Frames::Owned(frames))
  }

  fn service(&mut self, status: c_int, events: c_int) -> Delivery {
    let mut out = Delivery::default();
    if status < 0 {
      // libuv reports a socket error condition (POLLERR, e.g. the peer closed while writes were pending, or
      // with bytes of ours it had not read: the kernel then sets ECONNRESET) as a failed poll. Whatever the
      // peer sent before that is still read — all of it, not one budget, as the channel ends here.
      out.end = match self.read_available(usize::MAX) {
        Ok(_) => Some(End::Eof),
        Err(e) => Some(end_of(e)),
      };
      out.frames = self.take_frames();
      out.fds = std::mem::take(&mut self.in_fds);
      self.done = true;
      return out;
    }
    let mut write_died = false;
    if events & uv::WRITABLE != 0 {
      match self.flush() {
        Ok(progressed) => out.written = progressed,
        Err(e) if e.is_peer_gone() => {
          // The peer is gone: nothing more can be written, but what it sent before leaving is still
          // in the socket and is read below, up to the end of file.
          self.drop_output();
          write_died = true;
        }
        Err(e) => out.end = Some(End::Failed(e.to_string())),
      }
    }
    if out.end.is_none() && (events & uv::READABLE != 0 || write_died) {
      match self.read_available(READ_BUDGET) {
        Ok(end) => out.end = end,
        Err(e) => out.end = Some(end_of(e)),
      }
    }
    if std::mem::take(&mut self.read_any) && self.spin.waiting() {
      // The answer came while waiting awake.
      self.spin.answered();
      self.stop_idle();
    }
    if out.end.is_none() && self.closing && !self.has_output() {
      // A graceful close waited for the queue; it is empty now.
      out.end = Some(End::Eof);
    }
    if matches!(out.end, Some(End::Failed(_)) | Some(End::Truncated(_))) {
      // Frames after a bad one cannot be trusted, but the whole ones before it were valid and are delivered.
      self.inbuf.truncate(self.scanned);
    }
    out.frames = self.take_frames();
    out.fds = std::mem::take(&mut self.in_fds);
    if out.end.is_some() {
      self.done = true;
    } else {
      self.update_poll();
    }
    out
  }
}

/// How a read error ends the channel.
fn end_of(e: ChannelError) -> End {
  match e {
    ChannelError::Frame(FrameError::Truncated { .. }) => End::Truncated(e.to_string()),
    e if e.is_peer_gone() => End::Eof,
    e => End::Failed(e.to_string()),
  }
}

/// The memory of `value` if it is a Buffer: its data pointer and length.
pub(crate) fn buffer_memory(env: sys::napi_env, value: &Unknown<'_>) -> Option<(*mut u8, usize)> {
  let mut is_buffer = false;
  let mut data = ptr::null_mut();
  let mut length = 0usize;
  // SAFETY: N-API calls on the current env with a live value.
  unsafe {
    if sys::napi_is_buffer(env, value.raw(), &mut is_buffer) != sys::Status::napi_ok || !is_buffer {
      return None;
    }
    if sys::napi_get_buffer_info(env, value.raw(), &mut data, &mut length) != sys::Status::napi_ok {
      return None;
    }
  }
  Some((data.cast(), length))
}

fn check(status: sys::napi_status) -> std::result::Result<(), ChannelError> {
  if status == sys::Status::napi_ok {
    Ok(())
  } else {
    Err(ChannelError::Napi(status))
  }
}

/// Stops polling, closes the descriptor and releases the JS callback. Safe to call more than once.
fn finish(state: &Shared) {
  let mut s = state.borrow_mut();
  s.done = true;
  if s.handle.is_null() {
    return;
  }
  let handle = std::mem::replace(&mut s.handle, ptr::null_mut());
  let cleanup_arg = std::mem::replace(&mut s.cleanup_arg, ptr::null());
  s.close_idle();
  // SAFETY: the handle is open; the env is alive because we are on its JS thread outside teardown.
  unsafe {
    uv::uv_poll_stop(handle);
    uv::uv_close(handle, Some(on_closed));
    if !cleanup_arg.is_null() {
      sys::napi_remove_env_cleanup_hook(s.env, Some(on_env_cleanup), cleanup_arg as *mut c_void);
      drop(Rc::from_raw(cleanup_arg));
    }
    sys::napi_delete_reference(s.env, s.callback);
    sys::napi_delete_reference(s.env, s.landing_ref);
    if let Some(lent) = s.lent.take() {
      sys::napi_delete_reference(s.env, lent.reference);
    }
    sys::napi_async_destroy(s.env, s.async_context);
  }
  s.callback = ptr::null_mut();
  s.landing_ref = ptr::null_mut();
  s.landing = ptr::null_mut();
  s.landing_len = 0;
  s.close_held_fds();
  transport::close(s.fd);
}

unsafe extern "C" fn on_closed(handle: *mut c_void) {
  // SAFETY: `data` holds the Rc created in `open_channel`; the memory came from calloc.
  unsafe {
    let data = (*(handle as *mut uv::HandleHead)).data as *const RefCell<State>;
    drop(Rc::from_raw(data));
    libc::free(handle);
  }
}

/// The env is going away (a worker thread ended): close the handle so libuv does not abort, without N-API
/// calls, which are no longer allowed.
unsafe extern "C" fn on_env_cleanup(arg: *mut c_void) {
  // SAFETY: `arg` is the Rc given to napi_add_env_cleanup_hook.
  let state = unsafe { Rc::from_raw(arg as *const RefCell<State>) };
  let mut s = state.borrow_mut();
  s.done = true;
  s.cleanup_arg = ptr::null();
  // N-API calls are no longer allowed: the reference goes with the env.
  s.lent = None;
  if !s.handle.is_null() {
    let handle = std::mem::replace(&mut s.handle, ptr::null_mut());
    s.close_idle();
    // SAFETY: the handle is open.
    unsafe {
      uv::uv_poll_stop(handle);
      uv::uv_close(handle, Some(on_closed));
    }
    s.close_held_fds();
    transport::close(s.fd);
  }
}

/// A turn of the loop while waiting awake: stops at the end of the window.
unsafe extern "C" fn on_idle(handle: *mut c_void) {
  // SAFETY: `data` holds a live Rc for as long as the handle is open.
  let state = unsafe { &*((*(handle as *mut uv::HandleHead)).data as *const RefCell<State>) };
  if let Ok(mut s) = state.try_borrow_mut() {
    if !s.spin.tick(Instant::now()) {
      s.stop_idle();
    }
  }
}

unsafe extern "C" fn on_poll(handle: *mut c_void, status: c_int, events: c_int) {
  // A panic must never unwind into libuv (undefined behaviour) or abort Node: it ends this call, and the
  // channel is closed as failed.
  let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| unsafe {
    poll_inner(handle, status, events)
  }));
  if outcome.is_err() {
    // SAFETY: as in poll_inner; the state is still alive through the handle's own Rc.
    unsafe {
      let data = (*(handle as *mut uv::HandleHead)).data as *const RefCell<State>;
      Rc::increment_strong_count(data);
      let state = Rc::from_raw(data);
      if let Ok(mut s) = state.try_borrow_mut() {
        s.done = true;
      }
      finish(&state);
    }
  }
}

unsafe fn poll_inner(handle: *mut c_void, status: c_int, events: c_int) {
  // SAFETY: `data` holds a live Rc for as long as the handle is open; take one more for this call, so the
  // state outlives a `close()` made by the JS callback.
  let state: Shared = unsafe {
    let data = (*(handle as *mut uv::HandleHead)).data as *const RefCell<State>;
    Rc::increment_strong_count(data);
    Rc::from_raw(data)
  };
  service_and_deliver(&state, status, events);
}

/// Does the I/O a poll event asks for and hands the outcome to JS in one call.
fn service_and_deliver(state: &Shared, status: c_int, events: c_int) {
  let delivery = state.borrow_mut().service(status, events);
  let ended = delivery.end.is_some();
  if delivery.frames.is_some() || !delivery.fds.is_empty() || delivery.written || ended {
    deliver(state, delivery);
  }
  if ended {
    finish(state);
  }
}

/// Calls the JS callback once with everything this turn produced.
fn deliver(state: &Shared, delivery: Delivery) {
  let (env, callback, async_context, written) = {
    let s = state.borrow();
    if s.callback.is_null() {
      return;
    }
    (s.env, s.callback, s.async_context, s.written_by_js())
  };
  // SAFETY: on the env's JS thread, inside a handle scope opened here; no RefCell borrow is held while JS
  // runs, so the callback may write to or close this channel.
  unsafe {
    let mut scope = ptr::null_mut();
    if sys::napi_open_handle_scope(env, &mut scope) != sys::Status::napi_ok {
      return;
    }
    let mut argv = [ptr::null_mut(); 5];
    let mut undefined = ptr::null_mut();
    sys::napi_get_undefined(env, &mut undefined);
    argv[0] = match delivery.frames {
      Some(Frames::Landing(n)) => {
        let mut value = undefined;
        sys::napi_create_uint32(env, n as u32, &mut value);
        value
      }
      Some(Frames::Owned(frames)) => make_buffer(env, frames).unwrap_or(undefined),
      None => undefined,
    };
    sys::napi_create_double(env, written, &mut argv[1]);
    argv[2] = match &delivery.end {
      None => undefined,
      Some(End::Eof) => js_string(env, ""),
      Some(End::Failed(message)) | Some(End::Truncated(message)) => js_string(env, message),
    };
    argv[4] = match &delivery.end {
      Some(End::Truncated(_)) => js_string(env, "ERR_IPC_TRUNCATED"),
      Some(End::Failed(_)) => js_string(env, "ERR_IPC_BAD_FRAME"),
      _ => undefined,
    };
    argv[3] = if delivery.fds.is_empty() {
      undefined
    } else {
      let mut array = ptr::null_mut();
      sys::napi_create_array_with_length(env, delivery.fds.len(), &mut array);
      for (i, fd) in delivery.fds.iter().enumerate() {
        let mut value = ptr::null_mut();
        sys::napi_create_int32(env, *fd, &mut value);
        sys::napi_set_element(env, array, i as u32, value);
      }
      array
    };
    let mut func = ptr::null_mut();
    sys::napi_get_reference_value(env, callback, &mut func);
    // `napi_make_callback` converts the receiver to an object, so it cannot be undefined.
    let mut global = ptr::null_mut();
    sys::napi_get_global(env, &mut global);
    let mut result = ptr::null_mut();
    let was_delivering = std::mem::replace(&mut state.borrow_mut().delivering, true);
    let status = sys::napi_make_callback(
      env,
      async_context,
      global,
      func,
      argv.len(),
      argv.as_ptr(),
      &mut result,
    );
    state.borrow_mut().delivering = was_delivering;
    if status == sys::Status::napi_pending_exception {
      // A throw in the handler becomes an uncaught exception, as for any other event callback.
      let mut error = ptr::null_mut();
      sys::napi_get_and_clear_last_exception(env, &mut error);
      sys::napi_fatal_exception(env, error);
    }
    sys::napi_close_handle_scope(env, scope);
  }
}

unsafe fn js_string(env: sys::napi_env, text: &str) -> sys::napi_value {
  let mut value = ptr::null_mut();
  // SAFETY: `text` is valid UTF-8 of the given length.
  unsafe {
    sys::napi_create_string_utf8(env, text.as_ptr().cast(), text.len() as isize, &mut value)
  };
  value
}

unsafe fn make_buffer(env: sys::napi_env, frames: Vec<u8>) -> Option<sys::napi_value> {
  let mut value = ptr::null_mut();
  let mut data = ptr::null_mut();
  if frames.len() <= COPY_BATCH_MAX {
    // SAFETY: copies `frames` into a new V8-owned Buffer.
    let status = unsafe {
      sys::napi_create_buffer_copy(
        env,
        frames.len(),
        frames.as_ptr().cast(),
        &mut data,
        &mut value,
      )
    };
    return (status == sys::Status::napi_ok).then_some(value);
  }
  let owner = FrameMemory::new(frames);
  let (ptr, len) = (owner.ptr(), owner.len());
  // SAFETY: `ptr..ptr + len` is the owner's memory.
  unsafe { external_buffer(env, owner, ptr, len, false) }
}

/// A Buffer (an ArrayBuffer with `array_buffer`) over `len` bytes at `data`, inside the memory of `owner`, which
/// it keeps; a copy where the runtime forbids external memory. None when nothing could be made (the owner is
/// then dropped).
///
/// # Safety
/// `data..data + len` must lie inside `owner`'s memory; called on `env`'s thread.
pub(crate) unsafe fn external_buffer(
  env: sys::napi_env,
  owner: Rc<FrameMemory>,
  data: *mut u8,
  len: usize,
  array_buffer: bool,
) -> Option<sys::napi_value> {
  let mut value = ptr::null_mut();
  let hint = Box::into_raw(Box::new(owner));
  // SAFETY: the bytes stay allocated while the value holds the owner, which `drop_frames` releases.
  let mut status = unsafe {
    if array_buffer {
      sys::napi_create_external_arraybuffer(
        env,
        data.cast(),
        len,
        Some(drop_frames),
        hint.cast(),
        &mut value,
      )
    } else {
      sys::napi_create_external_buffer(
        env,
        len,
        data.cast(),
        Some(drop_frames),
        hint.cast(),
        &mut value,
      )
    }
  };
  if status != sys::Status::napi_ok {
    // Runtimes that forbid external memory get a copy.
    // SAFETY: nothing was made, so the box is still ours; the bytes live until it is dropped after the copy.
    unsafe {
      let owner = Box::from_raw(hint);
      let mut copy = ptr::null_mut();
      status = if array_buffer {
        let status = sys::napi_create_arraybuffer(env, len, &mut copy, &mut value);
        if status == sys::Status::napi_ok && len > 0 {
          ptr::copy_nonoverlapping(data, copy.cast::<u8>(), len);
        }
        status
      } else {
        sys::napi_create_buffer_copy(env, len, data.cast(), &mut copy, &mut value)
      };
      drop(owner);
    }
  }
  (status == sys::Status::napi_ok).then_some(value)
}

unsafe extern "C" fn drop_frames(_env: sys::napi_env, _data: *mut c_void, hint: *mut c_void) {
  // SAFETY: `hint` is the box made in `external_buffer`, given back once.
  drop(unsafe { Box::from_raw(hint.cast::<Rc<FrameMemory>>()) });
}

#[cfg(test)]
mod tests {
  use super::*;
  use crate::framing::{hello_frame, push_header, Kind, HEADER_LEN};

  /// A channel state over `fd` with no JS side: enough for the reading half, which touches no N-API.
  fn reading_state(fd: RawFd) -> State {
    State {
      env: ptr::null_mut(),
      fd,
      handle: ptr::null_mut(),
      callback: ptr::null_mut(),
      async_context: ptr::null_mut(),
      landing_ref: ptr::null_mut(),
      landing: ptr::null_mut(),
      landing_len: 0,
      delivering: false,
      splitter: Splitter::new(Serialization::Advanced, 1 << 30),
      inbuf: Vec::with_capacity(READ_CHUNK),
      scanned: 0,
      pending_frame: None,
      hello_len: 0,
      lent: None,
      outq: Vec::new(),
      out_start: 0,
      written: 0,
      fd_marks: VecDeque::new(),
      in_fds: Vec::new(),
      js_ref: false,
      refed: false,
      polled: 0,
      closing: false,
      done: false,
      cleanup_arg: ptr::null(),
      spin: Spin::new(0, || 1),
      idle: ptr::null_mut(),
      spin_seen: 0,
      read_any: false,
    }
  }

  fn send_all(fd: RawFd, bytes: &[u8]) {
    assert_eq!(transport::write(fd, &[bytes], None).unwrap(), bytes.len());
  }

  #[test]
  fn a_read_cut_short_by_passed_descriptors_reads_on_to_the_frames_after_them() {
    let (a, b) = transport::socketpair().unwrap();
    transport::adopt(a).unwrap();
    let mut s = reading_state(a);
    send_all(b, &hello_frame(Serialization::Advanced));
    // Three frames, each sent with a descriptor, as shared-memory values are; then the peer leaves.
    for _ in 0..3 {
      let mut frame = Vec::new();
      push_header(&mut frame, 1, Kind::Message);
      frame.push(0xc0);
      let passed = transport::dup(b).unwrap();
      assert_eq!(
        transport::write(b, &[&frame], Some(passed)).unwrap(),
        frame.len()
      );
      transport::close(passed);
    }
    transport::close(b);
    // One read stops after each frame that came with a descriptor: that must not pass for an empty socket.
    assert!(s.read_available(READ_CHUNK).unwrap().is_none());
    assert_eq!(s.in_fds.len(), 3, "every descriptor read in one go");
    assert_eq!(
      s.scanned,
      3 * (HEADER_LEN + 1),
      "every frame read in one go"
    );
    s.close_held_fds();
    transport::close(a);
  }

  #[test]
  fn lent_bytes_go_out_after_their_copied_head_whatever_the_kernel_takes_each_time() {
    let (a, b) = transport::socketpair().unwrap();
    transport::adopt(a).unwrap();
    transport::adopt(b).unwrap();
    // Fill the socket, so that the first writes take nothing or a few bytes.
    let filler = vec![0u8; 64 * 1024];
    let mut filled = 0;
    loop {
      let n = transport::write(a, &[&filler], None).unwrap();
      if n == 0 {
        break;
      }
      filled += n;
    }
    let lent_bytes: Vec<u8> = (0..512 * 1024).map(|i| (i % 241) as u8).collect();
    let mut lent = Lent {
      reference: ptr::null_mut(),
      ptr: lent_bytes.as_ptr(),
      len: lent_bytes.len(),
      pos: 0,
      head: b"HEADER".to_vec(),
      head_pos: 0,
    };
    assert_eq!(lent.write_to(a).unwrap(), 0);
    let mut received = Vec::new();
    let mut chunk = vec![0u8; 7 * 1024];
    while !lent.done() {
      // SAFETY: reading into a live buffer from a descriptor this test owns.
      let n = unsafe { libc::read(b, chunk.as_mut_ptr().cast(), chunk.len()) };
      if n > 0 {
        received.extend_from_slice(&chunk[..n as usize]);
      }
      lent.write_to(a).unwrap();
    }
    loop {
      // SAFETY: as above.
      let n = unsafe { libc::read(b, chunk.as_mut_ptr().cast(), chunk.len()) };
      if n <= 0 {
        break;
      }
      received.extend_from_slice(&chunk[..n as usize]);
    }
    assert_eq!(received.len(), filled + 6 + lent_bytes.len());
    assert_eq!(&received[filled..filled + 6], b"HEADER");
    assert!(received[filled + 6..] == lent_bytes[..]);
    transport::close(a);
    transport::close(b);
  }

  #[test]
  fn a_large_frame_is_delivered_from_the_buffer_it_was_read_into() {
    let (a, b) = transport::socketpair().unwrap();
    transport::adopt(b).unwrap();
    let mut s = reading_state(b);
    // A 1 MiB message frame, written in 32 KiB pieces (each fits the socket buffer) and read after each.
    let payload: Vec<u8> = (0..1024 * 1024).map(|i| (i % 251) as u8).collect();
    let mut stream = hello_frame(Serialization::Advanced);
    push_header(&mut stream, payload.len(), Kind::Message);
    stream.extend_from_slice(&payload);
    let frame_end = stream.len() - hello_frame(Serialization::Advanced).len();
    let last_piece = stream.len() - 1000;
    let mut sent = 0;
    while sent < last_piece {
      let end = (sent + 32 * 1024).min(last_piece);
      send_all(a, &stream[sent..end]);
      sent = end;
      assert!(s.read_available(READ_BUDGET).unwrap().is_none());
    }
    // The buffer now has room for exactly the whole frame.
    assert_eq!(s.pending_frame, Some(frame_end));
    let (ptr_before, capacity) = (s.inbuf.as_ptr(), s.inbuf.capacity());
    assert_eq!(capacity, frame_end);
    // The frame's last 1000 bytes and a small frame after it arrive together: the read that completes
    // the large frame ends the call with budget left, rather than growing the full buffer for more (a
    // realloc that copies the whole frame).
    let mut after = Vec::new();
    push_header(&mut after, 3, Kind::Message);
    after.extend_from_slice(&[0xa2, b'h', b'i']);
    let mut tail = stream[last_piece..].to_vec();
    tail.extend_from_slice(&after);
    send_all(a, &tail);
    assert!(s.read_available(READ_BUDGET).unwrap().is_none());
    assert_eq!(s.scanned, frame_end);
    assert_eq!(s.inbuf.len(), frame_end);
    assert_eq!(
      (s.inbuf.as_ptr(), s.inbuf.capacity()),
      (ptr_before, capacity)
    );
    match s.take_frames() {
      Some(Frames::Owned(frames)) => {
        assert_eq!(frames.as_ptr(), ptr_before);
        assert_eq!(&frames[HEADER_LEN..], &payload[..]);
      }
      _ => panic!("expected the large frame in a buffer of its own"),
    }
    // The small frame waited in the socket and comes with the next read.
    assert!(s.read_available(READ_BUDGET).unwrap().is_none());
    assert_eq!(&s.inbuf[..s.scanned], &after[..]);
    transport::close(a);
    transport::close(b);
  }
}
