//! Large buffers on transparent huge pages.
//!
//! A fresh 16 MiB buffer costs 4096 page faults the first time it is written, ~12 ms on this project's test
//! machine, which is as long as moving those bytes through the socket. Where the kernel lets a program ask
//! for huge pages (`/sys/kernel/mm/transparent_hugepage/enabled` set to `madvise`, the default of many
//! distributions), the same 16 MiB fault in as 8 pages of 2 MiB: ~3.5 ms. So every buffer of several MiB
//! that this addon fills (a large frame being received, the send queue once it grows that large) and the
//! encoder's large buffers (`adviseHugePages`) are advised before their first write. Where huge pages are
//! off or always on, the advice changes nothing.

use std::cell::RefCell;
use std::ffi::c_void;
use std::rc::{Rc, Weak};

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

/// A received batch that JS holds as an external Buffer, freed once the Buffer and every external string made
/// over its bytes are gone.
///
/// Such a string used to keep the Buffer alive through a reference to it. Node 20 runs a string's finalizer
/// (which deleted that reference) after the garbage collection that found the string dead, so the Buffer
/// could only die in a later collection: 64 strings of 8 MiB, each let go, grew a parent by up to 147-163 MiB
/// (59-67 now). Sharing the owner of the bytes instead lets the memory go at the first collection that finds
/// both dead. (The strings report the bytes to V8 once more, as the Buffer did: see `external_string`.)
pub(crate) struct FrameMemory {
  ptr: *mut u8,
  len: usize,
  backing: Backing,
}

/// Where a `FrameMemory`'s bytes come from.
enum Backing {
  /// A Vec taken apart (its capacity, to put it back together).
  Heap { capacity: usize },
  /// A private mapping of a sealed memfd the peer passed (see `shared.rs`): `ptr..ptr + len` maps the file
  /// from `file_offset`. `fd` is kept (or -1) so that bytes of it can be passed on as the same file.
  Mapped { file_offset: u64, fd: i32 },
}

impl FrameMemory {
  /// Takes over `bytes`; the pointer it gives stays valid as long as this lives.
  pub(crate) fn new(bytes: Vec<u8>) -> Rc<Self> {
    let mut bytes = std::mem::ManuallyDrop::new(bytes);
    Self::register(Self {
      ptr: bytes.as_mut_ptr(),
      len: bytes.len(),
      backing: Backing::Heap {
        capacity: bytes.capacity(),
      },
    })
  }

  /// Takes over a mapping made by `mmap` (`len` bytes at `ptr`, of the file `fd` from `file_offset`), which
  /// it unmaps when dropped, closing `fd` (unless -1).
  pub(crate) fn mapped(ptr: *mut u8, len: usize, file_offset: u64, fd: i32) -> Rc<Self> {
    Self::register(Self {
      ptr,
      len,
      backing: Backing::Mapped { file_offset, fd },
    })
  }

  fn register(memory: Self) -> Rc<Self> {
    let owner = Rc::new(memory);
    LENT.with(|lent| {
      let mut lent = lent.borrow_mut();
      lent.retain(|entry| entry.strong_count() != 0);
      lent.push(Rc::downgrade(&owner));
    });
    owner
  }

  pub(crate) fn ptr(&self) -> *mut u8 {
    self.ptr
  }

  pub(crate) fn len(&self) -> usize {
    self.len
  }

  /// For bytes `ptr..` inside a mapped file whose descriptor was kept: that descriptor and the file offset
  /// of `ptr`.
  pub(crate) fn file_of(&self, ptr: *const u8) -> Option<(i32, u64)> {
    match self.backing {
      Backing::Mapped { file_offset, fd } if fd >= 0 => {
        Some((fd, file_offset + (ptr as usize - self.ptr as usize) as u64))
      }
      _ => None,
    }
  }

  /// The owner of the batch that holds `ptr..ptr + len`, if it is one this thread lent to JS and it still lives.
  pub(crate) fn holding(ptr: *const u8, len: usize) -> Option<Rc<Self>> {
    let (start, end) = (ptr as usize, ptr as usize + len);
    LENT
      .try_with(|lent| {
        lent.borrow().iter().find_map(|entry| {
          let owner = entry.upgrade()?;
          let base = owner.ptr as usize;
          (base <= start && end <= base + owner.len).then_some(owner)
        })
      })
      .ok()
      .flatten()
  }
}

impl Drop for FrameMemory {
  fn drop(&mut self) {
    match self.backing {
      // SAFETY: the parts of the Vec taken over in `new`, reassembled once.
      Backing::Heap { capacity } => {
        drop(unsafe { Vec::from_raw_parts(self.ptr, self.len, capacity) })
      }
      Backing::Mapped { fd, .. } => crate::shared::unmap(self.ptr, self.len, fd),
    }
  }
}

thread_local! {
  /// The batches lent to JS on this thread (a few at most: only large ones are lent), to find the owner of the
  /// bytes an external string is made over.
  static LENT: RefCell<Vec<Weak<FrameMemory>>> = const { RefCell::new(Vec::new()) };
}

#[cfg(test)]
mod tests {
  use super::*;

  #[test]
  fn the_owner_of_a_lent_batch_is_found_for_bytes_inside_it_while_it_lives() {
    let owner = FrameMemory::new(vec![7u8; 4096]);
    let base = owner.ptr();
    // SAFETY: offsets inside the 4096 bytes just allocated.
    let inside = unsafe { base.add(100) };
    let found = FrameMemory::holding(inside, 200).expect("found");
    assert!(Rc::ptr_eq(&found, &owner));
    assert!(
      FrameMemory::holding(inside, 4000).is_none(),
      "runs past the end"
    );
    drop(found);
    drop(owner);
    assert!(
      FrameMemory::holding(base, 1).is_none(),
      "gone with its last share"
    );
  }
}
