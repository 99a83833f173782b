//! Large payloads through shared memory (PROTOCOL.md §4.6, ext type 13): the sender copies the bytes once into a
//! memfd, seals it against any change and passes the descriptor with the frame; the receiver maps it
//! copy-on-write and hands out a Buffer (or string) over the mapping. A payload that crosses the socket is
//! copied into the kernel by the sender and out of it by the receiver, into memory the receiver allocates; here
//! the one copy is the sender's and nothing is allocated for the receiver. And what a process received that way
//! and sends on unchanged (an echo, a relay) goes out as the same file, with no copy at all: both processes
//! then hold one copy of the bytes between them.
//!
//! A receiver only maps a descriptor that is a memfd sealed against writing, shrinking and growing, so that the
//! peer can neither change what was received nor cut the file short under the mapping (a read past a file's
//! end is a SIGBUS).

use std::os::fd::RawFd;

use napi::bindgen_prelude::Unknown;
use napi::{sys, Env};
use napi_derive::napi;

use crate::memory::FrameMemory;

/// Whether this build passes shared-memory values (it needs memfds and their seals: Linux).
pub(crate) const SUPPORTED: bool = cfg!(target_os = "linux");

/// Most received mappings that keep their descriptor, to pass the same file on; later ones close it (and are
/// copied when sent on), so that a process holding many large values does not run out of descriptors.
const MAX_KEPT_FDS: usize = 256;

thread_local! {
  static KEPT_FDS: std::cell::Cell<usize> = const { std::cell::Cell::new(0) };
}

/// Unmaps a mapping made by `map_shared` and closes the descriptor it kept (unless -1).
pub(crate) fn unmap(ptr: *mut u8, len: usize, fd: RawFd) {
  // SAFETY: `ptr..ptr + len` is a mapping this module made and nothing uses any more (its owner is dropped).
  unsafe { libc::munmap(ptr.cast(), len) };
  if fd >= 0 {
    crate::transport::close(fd);
    let _ = KEPT_FDS.try_with(|kept| kept.set(kept.get().saturating_sub(1)));
  }
}

/// A descriptor of a sealed memfd holding `bytes`, and the offset of `bytes` in it: the file they were received
/// in when they lie in one that is still mapped and unchanged, else (when `copy`) a new memfd with a copy. None
/// where this fails (no memfds, out of descriptors or memory) or would copy against `copy`: the caller then
/// sends the bytes inline.
pub(crate) fn share(bytes: &[u8], copy: bool) -> Option<(RawFd, u64)> {
  if let Some(owner) = FrameMemory::holding(bytes.as_ptr(), bytes.len()) {
    if let Some((fd, offset)) = owner.file_of(bytes.as_ptr()) {
      if unwritten(bytes.as_ptr(), bytes.len()) {
        if let Ok(copy) = crate::transport::dup(fd) {
          return Some((copy, offset));
        }
      }
    }
  }
  if !copy {
    return None;
  }
  sealed_copy(bytes).map(|fd| (fd, 0))
}

#[cfg(target_os = "linux")]
fn sealed_copy(bytes: &[u8]) -> Option<RawFd> {
  // SAFETY: plain system calls on a descriptor this function owns, with `bytes` as the source of the writes.
  unsafe {
    let fd = libc::memfd_create(
      c"native-ipc".as_ptr(),
      libc::MFD_CLOEXEC | libc::MFD_ALLOW_SEALING,
    );
    if fd < 0 {
      return None;
    }
    let mut done = 0;
    while done < bytes.len() {
      let n = libc::write(fd, bytes.as_ptr().add(done).cast(), bytes.len() - done);
      if n < 0 && std::io::Error::last_os_error().raw_os_error() == Some(libc::EINTR) {
        continue;
      }
      if n <= 0 {
        libc::close(fd);
        return None;
      }
      done += n as usize;
    }
    let seals = libc::F_SEAL_SEAL | libc::F_SEAL_SHRINK | libc::F_SEAL_GROW | libc::F_SEAL_WRITE;
    if libc::fcntl(fd, libc::F_ADD_SEALS, seals) != 0 {
      libc::close(fd);
      return None;
    }
    Some(fd)
  }
}

#[cfg(not(target_os = "linux"))]
fn sealed_copy(_bytes: &[u8]) -> Option<RawFd> {
  None
}

/// Whether no page of `ptr..ptr + len` (inside a private file mapping) was written since it was mapped: a
/// written page is the process's own copy, which `/proc/self/pagemap` shows as present and not file-backed (or
/// swapped out). False where that cannot be read.
#[cfg(target_os = "linux")]
fn unwritten(ptr: *const u8, len: usize) -> bool {
  const PRESENT: u64 = 1 << 63;
  const SWAPPED: u64 = 1 << 62;
  const FILE: u64 = 1 << 61;
  if len == 0 {
    return true;
  }
  let page = page_size();
  let first = ptr as usize / page;
  let last = (ptr as usize + len - 1) / page;
  // SAFETY: reads into a local array from a descriptor opened and closed here.
  unsafe {
    let fd = libc::open(
      c"/proc/self/pagemap".as_ptr(),
      libc::O_RDONLY | libc::O_CLOEXEC,
    );
    if fd < 0 {
      return false;
    }
    let mut entries = [0u64; 4096];
    let mut next = first;
    let mut clean = true;
    while clean && next <= last {
      let count = (last + 1 - next).min(entries.len());
      let want = count * 8;
      let n = libc::pread(
        fd,
        entries.as_mut_ptr().cast(),
        want,
        (next * 8) as libc::off_t,
      );
      if n != want as isize {
        clean = false;
        break;
      }
      clean = entries[..count]
        .iter()
        .all(|&e| e & SWAPPED == 0 && (e & PRESENT == 0 || e & FILE != 0));
      next += count;
    }
    libc::close(fd);
    clean
  }
}

#[cfg(not(target_os = "linux"))]
fn unwritten(_ptr: *const u8, _len: usize) -> bool {
  false
}

fn page_size() -> usize {
  // SAFETY: sysconf has no preconditions.
  let n = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
  if n > 0 {
    n as usize
  } else {
    4096
  }
}

/// Why a received descriptor was refused.
fn refuse(fd: RawFd, why: String) -> napi::Error {
  crate::transport::close(fd);
  napi::Error::from_reason(format!("the peer sent a shared-memory value {why}"))
}

/// A Buffer (an ArrayBuffer with `array_buffer`) over `length` bytes from `offset` of the sealed memfd `fd`, which
/// the peer passed and this call takes over (it is closed, or kept with the mapping). The mapping is private:
/// writing to the Buffer changes only this process's copy of a page.
#[napi(catch_unwind)]
pub fn map_shared<'env>(
  env: &'env Env,
  fd: i32,
  offset: f64,
  length: f64,
  array_buffer: bool,
) -> napi::Result<Unknown<'env>> {
  let raw_env = env.raw();
  let exact = |v: f64| v >= 0.0 && v.fract() == 0.0 && v <= 9_007_199_254_740_991.0;
  if !exact(offset) || !exact(length) {
    return Err(refuse(
      fd,
      format!("with an impossible range ({offset}, {length} bytes)"),
    ));
  }
  let (offset, length) = (offset as u64, length as u64);
  map_checked(raw_env, fd, offset, length, array_buffer)
    // SAFETY: a value just made on this env.
    .map(|value| unsafe { Unknown::from_raw_unchecked(raw_env, value) })
}

#[cfg(target_os = "linux")]
fn map_checked(
  env: sys::napi_env,
  fd: RawFd,
  offset: u64,
  length: u64,
  array_buffer: bool,
) -> napi::Result<sys::napi_value> {
  // SAFETY: system calls on the descriptor this call owns; the mapping is handed to a `FrameMemory` at once,
  // which unmaps it when the Buffer made over it is finalized (or when no Buffer could be made).
  unsafe {
    let seals = libc::fcntl(fd, libc::F_GET_SEALS);
    if seals < 0 {
      return Err(refuse(fd, "whose descriptor is not a memfd".into()));
    }
    let needed = libc::F_SEAL_WRITE | libc::F_SEAL_SHRINK;
    if seals & needed != needed {
      return Err(refuse(
        fd,
        "in a memfd not sealed against writing and shrinking (F_SEAL_WRITE, F_SEAL_SHRINK)".into(),
      ));
    }
    let mut stat: libc::stat = std::mem::zeroed();
    if libc::fstat(fd, &mut stat) != 0 {
      return Err(refuse(fd, "whose descriptor cannot be read".into()));
    }
    let size = stat.st_size as u64;
    if offset.checked_add(length).is_none_or(|end| end > size) {
      return Err(refuse(
        fd,
        format!("of {length} bytes from offset {offset} in a memfd of {size} bytes"),
      ));
    }
    let mut value = std::ptr::null_mut();
    if length == 0 {
      crate::transport::close(fd);
      let mut data = std::ptr::null_mut();
      let status = if array_buffer {
        sys::napi_create_arraybuffer(env, 0, &mut data, &mut value)
      } else {
        sys::napi_create_buffer(env, 0, &mut data, &mut value)
      };
      if status != sys::Status::napi_ok {
        return Err(napi::Error::from_reason("cannot create an empty Buffer"));
      }
      return Ok(value);
    }
    let page = page_size() as u64;
    let map_offset = offset - offset % page;
    let skip = (offset - map_offset) as usize;
    let map_len = skip + length as usize;
    let base = libc::mmap(
      std::ptr::null_mut(),
      map_len,
      libc::PROT_READ | libc::PROT_WRITE,
      libc::MAP_PRIVATE,
      fd,
      map_offset as libc::off_t,
    );
    if base == libc::MAP_FAILED {
      let error = std::io::Error::last_os_error();
      return Err(refuse(
        fd,
        format!("of {length} bytes that cannot be mapped: {error}"),
      ));
    }
    let kept = KEPT_FDS.with(|kept| {
      let n = kept.get();
      if n < MAX_KEPT_FDS {
        kept.set(n + 1);
        true
      } else {
        false
      }
    });
    let kept_fd = if kept {
      fd
    } else {
      crate::transport::close(fd);
      -1
    };
    let owner = FrameMemory::mapped(base.cast(), map_len, map_offset, kept_fd);
    let data = owner.ptr().add(skip);
    crate::channel::external_buffer(env, owner, data, length as usize, array_buffer)
      .ok_or_else(|| napi::Error::from_reason("cannot create a Buffer over shared memory"))
  }
}

#[cfg(not(target_os = "linux"))]
fn map_checked(
  _env: sys::napi_env,
  fd: RawFd,
  _offset: u64,
  _length: u64,
  _array_buffer: bool,
) -> napi::Result<sys::napi_value> {
  Err(refuse(
    fd,
    "but this platform does not take shared memory".into(),
  ))
}

#[cfg(all(test, target_os = "linux"))]
mod tests {
  use super::*;

  #[test]
  fn a_sealed_copy_holds_the_bytes_and_refuses_changes() {
    let bytes: Vec<u8> = (0..10_000u32).map(|i| (i * 7) as u8).collect();
    let fd = sealed_copy(&bytes).expect("memfd");
    unsafe {
      let mut back = vec![0u8; bytes.len()];
      assert_eq!(
        libc::pread(fd, back.as_mut_ptr().cast(), back.len(), 0),
        bytes.len() as isize
      );
      assert_eq!(back, bytes);
      assert_eq!(
        libc::pwrite(fd, b"x".as_ptr().cast(), 1, 0),
        -1,
        "sealed against writing"
      );
      assert_ne!(libc::ftruncate(fd, 10), 0, "sealed against shrinking");
      libc::close(fd);
    }
  }

  #[test]
  fn pagemap_tells_a_written_page_from_read_and_untouched_ones() {
    let bytes = vec![5u8; 4 * 4096];
    let fd = sealed_copy(&bytes).expect("memfd");
    unsafe {
      let len = bytes.len();
      let p = libc::mmap(
        std::ptr::null_mut(),
        len,
        libc::PROT_READ | libc::PROT_WRITE,
        libc::MAP_PRIVATE,
        fd,
        0,
      ) as *mut u8;
      assert_ne!(p as *mut libc::c_void, libc::MAP_FAILED);
      assert!(unwritten(p, len), "untouched");
      assert_eq!(std::ptr::read_volatile(p.add(4096)), 5);
      assert!(unwritten(p, len), "read only");
      std::ptr::write_volatile(p.add(2 * 4096 + 10), 9);
      assert!(!unwritten(p, len), "one page written");
      assert!(unwritten(p, 2 * 4096), "the pages before it");
      libc::munmap(p.cast(), len);
      libc::close(fd);
    }
  }
}
