//! Large buffers on transparent huge pages.
//!
//! A fresh 16 MiB buffer costs 4096 page faults the first time it is written, ~12 ms on this project's test
//! machine, which is as long as moving those bytes through the socket. Where the kernel lets a program ask
//! for huge pages (`/sys/kernel/mm/transparent_hugepage/enabled` set to `madvise`, the default of many
//! distributions), the same 16 MiB fault in as 8 pages of 2 MiB: ~3.5 ms. So every buffer of several MiB
//! that this addon fills (a large frame being received, the send queue once it grows that large) and the
//! encoder's large buffers (`adviseHugePages`) are advised before their first write. Where huge pages are
//! off or always on, the advice changes nothing.

use std::ffi::c_void;

use napi::bindgen_prelude::Unknown;
use napi::Env;
use napi_derive::napi;

use crate::channel::buffer_memory;

const HUGE_PAGE: usize = 2 * 1024 * 1024;

/// Below this, a buffer holds too few whole huge pages to be worth a system call.
const ADVISE_MIN: usize = 4 * 1024 * 1024;

/// Advises the whole 2 MiB pages inside `ptr..ptr + len` to be backed by huge pages. Pages already in
/// memory stay as they are; the advice is a hint, so a failure is ignored.
pub(crate) fn advise_huge_pages(ptr: *const u8, len: usize) {
  if len < ADVISE_MIN {
    return;
  }
  let start = (ptr as usize).next_multiple_of(HUGE_PAGE);
  let end = (ptr as usize + len) & !(HUGE_PAGE - 1);
  if end > start {
    // SAFETY: the range lies inside memory this process owns (the caller's buffer); MADV_HUGEPAGE changes
    // how it is backed, never its contents.
    unsafe { libc::madvise(start as *mut c_void, end - start, libc::MADV_HUGEPAGE) };
  }
}

/// Reserves room for `additional` more bytes in `vec` (exactly that much with `exact`). When that takes a new
/// allocation, its unwritten part is advised for huge pages (if it is large enough to matter): once, before
/// the first write, and not again on later calls that find the room already there.
pub(crate) fn reserve_advised(vec: &mut Vec<u8>, additional: usize, exact: bool) {
  let before = vec.capacity();
  if exact {
    vec.reserve_exact(additional);
  } else {
    vec.reserve(additional);
  }
  if vec.capacity() != before {
    let spare = vec.spare_capacity_mut();
    advise_huge_pages(spare.as_ptr().cast(), spare.len());
  }
}

/// Advises a large Buffer that has not been written yet to be backed by huge pages (see the module
/// comment); smaller ones and other values are left alone.
#[napi(js_name = "adviseHugePages")]
pub fn advise_huge_pages_js(env: Env, buffer: Unknown<'_>) {
  if let Some((data, len)) = buffer_memory(env.raw(), &buffer) {
    advise_huge_pages(data, len);
  }
}
