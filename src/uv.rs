//! The few libuv entry points the channel uses. The node binary exports libuv, so these resolve when the
//! addon is loaded, like the N-API functions themselves.

use std::os::raw::{c_int, c_void};

/// `UV_IDLE` and `UV_POLL` in libuv's `uv_handle_type`.
const UV_IDLE: c_int = 6;
const UV_POLL: c_int = 8;
/// Poll events.
pub const READABLE: c_int = 1;
pub const WRITABLE: c_int = 2;

/// The start of every libuv handle: its user `data` pointer is the first field.
#[repr(C)]
pub struct HandleHead {
  pub data: *mut c_void,
}

/// Signature of a `uv_poll_cb`.
pub type PollCb = unsafe extern "C" fn(handle: *mut c_void, status: c_int, events: c_int);
/// Signature of a `uv_close_cb`.
pub type CloseCb = unsafe extern "C" fn(handle: *mut c_void);
/// Signature of a `uv_idle_cb`.
pub type IdleCb = unsafe extern "C" fn(handle: *mut c_void);

extern "C" {
  fn uv_handle_size(kind: c_int) -> usize;
  pub fn uv_poll_init(event_loop: *mut c_void, handle: *mut c_void, fd: c_int) -> c_int;
  pub fn uv_poll_start(handle: *mut c_void, events: c_int, cb: PollCb) -> c_int;
  pub fn uv_poll_stop(handle: *mut c_void) -> c_int;
  pub fn uv_idle_init(event_loop: *mut c_void, handle: *mut c_void) -> c_int;
  pub fn uv_idle_start(handle: *mut c_void, cb: IdleCb) -> c_int;
  pub fn uv_idle_stop(handle: *mut c_void) -> c_int;
  pub fn uv_close(handle: *mut c_void, cb: Option<CloseCb>);
  pub fn uv_ref(handle: *mut c_void);
  pub fn uv_unref(handle: *mut c_void);
  fn uv_strerror(err: c_int) -> *const std::os::raw::c_char;
}

/// Allocates zeroed memory for one handle of libuv type `kind`; freed with `libc::free` in the close callback.
fn alloc_handle(kind: c_int) -> *mut c_void {
  // SAFETY: uv_handle_size is a pure lookup; calloc returns zeroed memory or null.
  unsafe { libc::calloc(1, uv_handle_size(kind)) }
}

/// Zeroed memory for one `uv_poll_t`.
pub fn alloc_poll() -> *mut c_void {
  alloc_handle(UV_POLL)
}

/// Zeroed memory for one `uv_idle_t`.
pub fn alloc_idle() -> *mut c_void {
  alloc_handle(UV_IDLE)
}

/// libuv's text for an error number.
pub fn strerror(err: c_int) -> String {
  // SAFETY: uv_strerror returns a static NUL-terminated string for any input.
  unsafe { std::ffi::CStr::from_ptr(uv_strerror(err)) }
    .to_string_lossy()
    .into_owned()
}
