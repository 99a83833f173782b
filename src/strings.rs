//! Long strings decoded without copying their bytes: V8 external strings over the received buffer.
//!
//! A 16 MiB ASCII string costs ~11 ms to copy into a new V8 string (`latin1Slice`), most of it spent
//! allocating and faulting in fresh memory. An external string points at the bytes where they already are and
//! keeps them alive, released by V8's finalizer when the string dies: a share of the received batch's memory
//! (`FrameMemory`), or for any other Buffer a reference to it.
//! `node_api_create_external_string_latin1`/`_utf16` exist from Node 20.4 (experimental there, stable in
//! N-API 10); they are looked up at run time, and JS falls back to copying where they are missing.

use std::ffi::{c_char, c_void, CStr};
use std::ptr;
use std::rc::Rc;
use std::sync::OnceLock;

use napi::bindgen_prelude::Unknown;
use napi::{sys, Env, JsValue};
use napi_derive::napi;

use crate::memory::FrameMemory;

type Finalize = unsafe extern "C" fn(env: sys::napi_env, data: *mut c_void, hint: *mut c_void);
type CreateLatin1 = unsafe extern "C" fn(
  sys::napi_env,
  *const c_char,
  isize,
  Option<Finalize>,
  *mut c_void,
  *mut sys::napi_value,
  *mut bool,
) -> sys::napi_status;
type CreateUtf16 = unsafe extern "C" fn(
  sys::napi_env,
  *const u16,
  isize,
  Option<Finalize>,
  *mut c_void,
  *mut sys::napi_value,
  *mut bool,
) -> sys::napi_status;

struct Creators {
  latin1: Option<CreateLatin1>,
  utf16: Option<CreateUtf16>,
}

fn creators() -> &'static Creators {
  static CREATORS: OnceLock<Creators> = OnceLock::new();
  CREATORS.get_or_init(|| {
    let find = |name: &CStr| {
      // SAFETY: dlsym with RTLD_DEFAULT searches the process (the node binary exports N-API).
      let symbol = unsafe { libc::dlsym(libc::RTLD_DEFAULT, name.as_ptr()) };
      (!symbol.is_null()).then_some(symbol)
    };
    Creators {
      // SAFETY: the exported symbols have exactly these signatures (node_api.h).
      latin1: find(c"node_api_create_external_string_latin1")
        .map(|f| unsafe { std::mem::transmute::<*mut c_void, CreateLatin1>(f) }),
      utf16: find(c"node_api_create_external_string_utf16")
        .map(|f| unsafe { std::mem::transmute::<*mut c_void, CreateUtf16>(f) }),
    }
  })
}

/// Whether this Node can create external strings (JS copies otherwise).
#[napi]
pub fn has_external_strings() -> bool {
  let c = creators();
  c.latin1.is_some() && c.utf16.is_some()
}

/// What keeps an external string's bytes alive: the owner of the received batch they lie in (see
/// `FrameMemory`), or, for any other Buffer, a reference to that Buffer.
enum Keeper {
  /// Held only to be dropped with the string; `reported` is what it told V8 about (see `external_string`).
  Owner {
    _bytes: Rc<FrameMemory>,
    reported: i64,
  },
  Reference(sys::napi_ref),
}

unsafe extern "C" fn release(env: sys::napi_env, _data: *mut c_void, hint: *mut c_void) {
  // SAFETY: `hint` is the box made for this string in `external_string`, given back once.
  let keeper = unsafe { Box::from_raw(hint.cast::<Keeper>()) };
  match *keeper {
    Keeper::Reference(reference) => {
      // SAFETY: the reference was created on this env for this string.
      unsafe { sys::napi_delete_reference(env, reference) };
    }
    Keeper::Owner { reported, .. } => report_external(env, -reported),
  }
}

/// Tells V8 that `bytes` more (fewer when negative) are kept alive by JS values.
fn report_external(env: sys::napi_env, bytes: i64) {
  let mut total = 0;
  // SAFETY: an N-API call on the env's own thread; the new total is not needed.
  unsafe { sys::napi_adjust_external_memory(env, bytes, &mut total) };
}

unsafe extern "C" fn free_owned(_env: sys::napi_env, _data: *mut c_void, hint: *mut c_void) {
  // SAFETY: `hint` is the box made for this string in `owned_latin1_string`, given back once.
  drop(unsafe { Box::from_raw(hint.cast::<Vec<u8>>()) });
}

/// The one-byte string (Latin-1, so ASCII reads the same) of the `length` bytes at `data`: an external string
/// where this Node makes them, which V8 lets go of by calling `finalize` (if any) with `hint`, at once if it
/// copied them after all; a copy on V8's heap where this Node makes no external strings. Also says whether V8
/// took `hint` (its finalizer runs), which it never does when it refuses the string.
///
/// SAFETY: `data` holds `length` bytes that stay unchanged until `finalize` runs (for ever, without one).
unsafe fn latin1_string(
  raw_env: sys::napi_env,
  data: *const u8,
  length: usize,
  finalize: Option<Finalize>,
  hint: *mut c_void,
) -> (napi::Result<sys::napi_value>, bool) {
  let mut result = ptr::null_mut();
  // SAFETY: N-API calls on the current env over bytes the caller vouches for.
  let (status, taken) = unsafe {
    match creators().latin1 {
      Some(create) => {
        let mut copied = false;
        let status = create(
          raw_env,
          data.cast(),
          length as isize,
          finalize,
          hint,
          &mut result,
          &mut copied,
        );
        (status, status == sys::Status::napi_ok)
      }
      None => (
        sys::napi_create_string_latin1(raw_env, data.cast(), length as isize, &mut result),
        false,
      ),
    }
  };
  if status != sys::Status::napi_ok {
    return (
      Err(napi::Error::from_reason(format!(
        "V8 refused a string of {length} bytes"
      ))),
      taken,
    );
  }
  (Ok(result), taken)
}

/// A string of the one-byte characters `bytes`, which live as long as the process (a mapped file), without a
/// copy where this Node allows it.
pub(crate) fn static_latin1_string<'env>(
  env: &'env Env,
  bytes: &'static [u8],
) -> napi::Result<Unknown<'env>> {
  // SAFETY: the bytes outlive the string and nothing writes them, so no finalizer is needed; the value is made on
  // the current env.
  unsafe {
    let (result, _) = latin1_string(
      env.raw(),
      bytes.as_ptr(),
      bytes.len(),
      None,
      ptr::null_mut(),
    );
    Ok(Unknown::from_raw_unchecked(env.raw(), result?))
  }
}

/// A string of the one-byte characters `bytes`, which it keeps, without a copy where this Node allows it.
pub(crate) fn owned_latin1_string(env: &Env, bytes: Vec<u8>) -> napi::Result<Unknown<'_>> {
  let length = bytes.len();
  let owned = Box::into_raw(Box::new(bytes));
  // SAFETY: the bytes live in a box that V8's finalizer frees once V8 took it (when the string dies, or at once
  // when it copied them); a box V8 did not take (a copy made without one, a string refused) is freed here, after
  // the call. The value is made on the current env.
  unsafe {
    let (result, taken) = latin1_string(
      env.raw(),
      (*owned).as_ptr(),
      length,
      Some(free_owned),
      owned.cast(),
    );
    if !taken {
      drop(Box::from_raw(owned));
    }
    Ok(Unknown::from_raw_unchecked(env.raw(), result?))
  }
}

/// A string over bytes `[start, end)` of `buffer`, without copying them: `latin1` for one byte per
/// character (the caller checked they are ASCII), otherwise UTF-16LE code units (2-byte aligned). The
/// Buffer stays alive as long as the string. Nothing here may change those bytes afterwards.
#[napi(catch_unwind)]
pub fn external_string<'env>(
  env: &'env Env,
  buffer: Unknown<'env>,
  start: u32,
  end: u32,
  latin1: bool,
) -> napi::Result<Unknown<'env>> {
  let raw_env = env.raw();
  let fail = |what: &str| napi::Error::from_reason(format!("externalString(): {what}"));
  let (data, length) = crate::channel::buffer_memory(raw_env, &buffer)
    .ok_or_else(|| fail("buffer must be a Buffer"))?;
  // SAFETY: N-API calls on the current env with live values; the pointer arithmetic stays inside the
  // Buffer (checked against its length), and the keeper keeps that memory alive for the string.
  unsafe {
    let (start, end) = (start as usize, end as usize);
    if start > end || end > length {
      return Err(fail("range outside the Buffer"));
    }
    let bytes = (data as *const u8).add(start);
    let keeper = match FrameMemory::holding(bytes, end - start) {
      Some(owner) => {
        // V8 counts the string's bytes; the batch's Buffer, which counted them once more, may be gone before the
        // string. They are reported once more for as long as the string lives, so that V8 collects as often as
        // when the string kept the Buffer: V8 lets ~64 MiB of such memory pile up between collections, and on
        // this project's test machine each large message that lands in memory not touched yet costs 2-3x the
        // time of one that lands in memory freed a moment before (16 MiB string echo: 51-59 ms against 15-20,
        // alternating runs, without this report).
        let reported = (end - start) as i64;
        report_external(raw_env, reported);
        Keeper::Owner {
          _bytes: owner,
          reported,
        }
      }
      None => {
        let mut reference = ptr::null_mut();
        if sys::napi_create_reference(raw_env, buffer.raw(), 1, &mut reference)
          != sys::Status::napi_ok
        {
          return Err(fail("cannot reference the Buffer"));
        }
        Keeper::Reference(reference)
      }
    };
    let keeper = Box::into_raw(Box::new(keeper));
    let mut result = ptr::null_mut();
    let mut copied = false;
    let c = creators();
    let status = match (latin1, c.latin1, c.utf16) {
      (true, Some(create), _) => create(
        raw_env,
        bytes.cast(),
        (end - start) as isize,
        Some(release),
        keeper.cast(),
        &mut result,
        &mut copied,
      ),
      (false, _, Some(create))
        if (bytes as usize).is_multiple_of(2) && (end - start).is_multiple_of(2) =>
      {
        create(
          raw_env,
          bytes.cast(),
          ((end - start) / 2) as isize,
          Some(release),
          keeper.cast(),
          &mut result,
          &mut copied,
        )
      }
      _ => {
        release(raw_env, ptr::null_mut(), keeper.cast());
        return Err(fail("external strings are not available for this input"));
      }
    };
    if status != sys::Status::napi_ok {
      // No string, so no finalizer: the bytes need not be kept. (Where V8 copied the bytes instead, Node has
      // run the finalizer already, which let them go.)
      release(raw_env, ptr::null_mut(), keeper.cast());
      return Err(fail("V8 refused the string"));
    }
    Ok(Unknown::from_raw_unchecked(raw_env, result))
  }
}

/// The length of the longest prefix of `bytes` that a JSON string holds as it is: no control character (below
/// 0x20), `"` or `\`. Whole 32-byte blocks are checked without a branch per byte, which the compiler turns into
/// vector compares (~1 ms for 16 MiB here, against ~10 in a JS loop).
pub(crate) fn json_plain_len(bytes: &[u8]) -> usize {
  const BLOCK: usize = 32;
  let special = |b: u8| (b < 0x20) | (b == b'"') | (b == b'\\');
  let mut at = 0;
  for block in bytes.chunks_exact(BLOCK) {
    if block.iter().fold(false, |hit, &b| hit | special(b)) {
      break;
    }
    at += BLOCK;
  }
  at + bytes[at..]
    .iter()
    .position(|&b| special(b))
    .unwrap_or(bytes.len() - at)
}

/// The bytes `[start, end)` of `buffer`, for the JSON scans below (`call` names the function in errors).
fn buffer_range<'a>(
  env: &Env,
  buffer: &Unknown<'_>,
  start: u32,
  end: u32,
  call: &str,
) -> napi::Result<&'a mut [u8]> {
  let (data, length) = crate::channel::buffer_memory(env.raw(), buffer)
    .ok_or_else(|| napi::Error::from_reason(format!("{call}(): buffer must be a Buffer")))?;
  let (from, to) = (start as usize, end as usize);
  if from > to || to > length {
    return Err(napi::Error::from_reason(format!(
      "{call}(): range outside the Buffer"
    )));
  }
  // SAFETY: [from, to) lies inside the Buffer's memory (checked above), which lives for the napi call that asks;
  // JS runs nothing meanwhile.
  Ok(unsafe { std::slice::from_raw_parts_mut(data.add(from), to - from) })
}

/// The index of the first byte in `[start, end)` of `buffer` that a JSON string cannot hold as it is (see
/// `json_plain_len`), or `end`: what the codec's JSON encoder and decoder ask of long strings.
#[napi(catch_unwind)]
pub fn json_plain_end(env: &Env, buffer: Unknown<'_>, start: u32, end: u32) -> napi::Result<u32> {
  let bytes = buffer_range(env, &buffer, start, end, "jsonPlainEnd")?;
  Ok(start + json_plain_len(bytes) as u32)
}

/// Where the JSON string whose text starts at `bytes[0]` (after its opening quote) ends: the index of its closing
/// quote, skipping the character after each backslash; None at a control character or without a closing quote.
pub(crate) fn json_string_len(bytes: &[u8]) -> Option<usize> {
  let mut at = 0;
  loop {
    at += json_plain_len(&bytes[at..]);
    match bytes.get(at) {
      Some(b'"') => return Some(at),
      Some(b'\\') if at + 1 < bytes.len() => at += 2,
      _ => return None,
    }
  }
}

/// The index of the closing quote of the JSON string that starts at `start` of `buffer` (after its opening
/// quote), or `end` when it has none before `end` or holds a control character. The parser hands a string with
/// escapes from its opening to its closing quote to `JSON.parse`.
#[napi(catch_unwind)]
pub fn json_string_end(env: &Env, buffer: Unknown<'_>, start: u32, end: u32) -> napi::Result<u32> {
  let bytes = buffer_range(env, &buffer, start, end, "jsonStringEnd")?;
  Ok(json_string_len(bytes).map_or(end, |at| start + at as u32))
}

/// The escape of a byte in a JSON string: None for a byte that stays as it is, else the character after the
/// backslash (`u` for `\u00XX`).
fn json_escape_of(b: u8) -> Option<u8> {
  match b {
    b'"' | b'\\' => Some(b),
    0x08 => Some(b'b'),
    0x09 => Some(b't'),
    0x0a => Some(b'n'),
    0x0c => Some(b'f'),
    0x0d => Some(b'r'),
    0..=0x1f => Some(b'u'),
    _ => None,
  }
}

/// How many bytes escaping `[start, end)` of `buffer` adds (a JSON string's UTF-8, as `JSON.stringify` escapes it:
/// `\"`, `\\`, `\b \t \n \f \r`, other control characters as `\u00xx`).
#[napi(catch_unwind)]
pub fn json_escape_count(
  env: &Env,
  buffer: Unknown<'_>,
  start: u32,
  end: u32,
) -> napi::Result<u32> {
  let bytes = buffer_range(env, &buffer, start, end, "jsonEscapeCount")?;
  let extra: usize = bytes
    .iter()
    .map(|&b| match json_escape_of(b) {
      Some(b'u') => 5,
      Some(_) => 1,
      None => 0,
    })
    .sum();
  Ok(extra as u32)
}

/// Escapes `[start, end)` of `buffer` where it is, into `[start, end + extra)`, `extra` being what
/// `json_escape_count` gave for that range (the bytes after `end` are overwritten).
#[napi(catch_unwind)]
pub fn json_escape_in_place(
  env: &Env,
  buffer: Unknown<'_>,
  start: u32,
  end: u32,
  extra: u32,
) -> napi::Result<()> {
  let total = end
    .checked_add(extra)
    .ok_or_else(|| napi::Error::from_reason("jsonEscapeInPlace(): range outside the Buffer"))?;
  let bytes = buffer_range(env, &buffer, start, total, "jsonEscapeInPlace")?;
  let n = end
    .checked_sub(start)
    .ok_or_else(|| napi::Error::from_reason("jsonEscapeInPlace(): range outside the Buffer"))?;
  if escape_backward(bytes, n as usize) {
    Ok(())
  } else {
    Err(napi::Error::from_reason(
      "jsonEscapeInPlace(): `extra` is not what jsonEscapeCount() gave for the range",
    ))
  }
}

/// Escapes the first `n` bytes of `bytes` into the whole of it, from the back, so that nothing is read after it
/// was overwritten; false (the bytes then undefined) when the escapes do not fill exactly that room.
fn escape_backward(bytes: &mut [u8], n: usize) -> bool {
  const HEX: &[u8; 16] = b"0123456789abcdef";
  let mut write = bytes.len();
  for read in (0..n).rev() {
    let b = bytes[read];
    let escape = json_escape_of(b);
    let size = match escape {
      None => 1,
      Some(b'u') => 6,
      Some(_) => 2,
    };
    // Never below what is still to be read.
    if write < read + size {
      return false;
    }
    write -= size;
    match escape {
      None => bytes[write] = b,
      Some(b'u') => bytes[write..write + 6].copy_from_slice(&[
        b'\\',
        b'u',
        b'0',
        b'0',
        HEX[(b >> 4) as usize],
        HEX[(b & 15) as usize],
      ]),
      Some(e) => {
        bytes[write] = b'\\';
        bytes[write + 1] = e;
      }
    }
  }
  write == 0
}

/// The UTF-16 code units of `bytes`, or None where they are not UTF-8.
pub(crate) fn utf8_to_utf16(bytes: &[u8]) -> Option<Vec<u16>> {
  Some(std::str::from_utf8(bytes).ok()?.encode_utf16().collect())
}

/// The string the UTF-8 in `[start, end)` of `buffer` holds, or undefined where those bytes are not UTF-8. V8
/// reads UTF-8 that is not ASCII at 0.1-0.3 GB/s; this transcodes it here (CJK text 3-4 times as fast from ~300
/// bytes) and hands V8 UTF-16 code units, which it copies. (The codec asks only for text that starts with a
/// character of three bytes or more, which a one-byte string could not hold.)
#[napi(catch_unwind)]
pub fn decode_utf8<'env>(
  env: &'env Env,
  buffer: Unknown<'env>,
  start: u32,
  end: u32,
) -> napi::Result<Unknown<'env>> {
  let bytes = buffer_range(env, &buffer, start, end, "decodeUtf8")?;
  let raw_env = env.raw();
  let mut result = ptr::null_mut();
  // SAFETY: N-API calls on the current env; the pointer and length describe a live vector.
  let status = unsafe {
    match utf8_to_utf16(bytes) {
      None => sys::napi_get_undefined(raw_env, &mut result),
      Some(units) => {
        sys::napi_create_string_utf16(raw_env, units.as_ptr(), units.len() as isize, &mut result)
      }
    }
  };
  if status != sys::Status::napi_ok {
    return Err(napi::Error::from_reason(
      "decodeUtf8(): V8 refused the string",
    ));
  }
  // SAFETY: `result` is a value the calls above made on this env.
  Ok(unsafe { Unknown::from_raw_unchecked(raw_env, result) })
}

#[cfg(test)]
mod tests {
  use super::{escape_backward, json_plain_len, json_string_len, utf8_to_utf16};

  #[test]
  fn json_string_len_skips_escapes_and_stops_at_what_ends_a_string() {
    assert_eq!(json_string_len(b"abc\"rest"), Some(3));
    assert_eq!(json_string_len(b"a\\\"b\"rest"), Some(4));
    assert_eq!(json_string_len(b"a\\\\\"rest"), Some(3));
    assert_eq!(json_string_len(b"no end"), None);
    assert_eq!(json_string_len(b"ends in a backslash\\"), None);
    assert_eq!(json_string_len(b"tab\there\""), None);
    let long = [
      vec![b'x'; 100],
      b"\\n".to_vec(),
      vec![b'y'; 100],
      b"\"".to_vec(),
    ]
    .concat();
    assert_eq!(json_string_len(&long), Some(202));
  }

  #[test]
  fn escape_backward_writes_what_json_stringify_writes() {
    let text = "a\"b\\c\u{8}\t\n\u{c}\r\u{0}\u{1f}\u{7f} é";
    let wanted = "a\\\"b\\\\c\\b\\t\\n\\f\\r\\u0000\\u001f\u{7f} é";
    let mut bytes = text.as_bytes().to_vec();
    bytes.resize(wanted.len(), 0);
    assert!(escape_backward(&mut bytes, text.len()));
    assert_eq!(std::str::from_utf8(&bytes).unwrap(), wanted);
    // Room that the escapes do not fill exactly is refused, never written past.
    for room in [wanted.len() - 1, wanted.len() + 1, text.len()] {
      let mut bytes = text.as_bytes().to_vec();
      bytes.resize(room, 0);
      assert!(!escape_backward(&mut bytes, text.len()), "room {room}");
    }
  }

  #[test]
  fn json_plain_len_stops_at_the_first_byte_to_escape() {
    assert_eq!(json_plain_len(b""), 0);
    assert_eq!(json_plain_len(b"abc"), 3);
    for special in [0u8, 0x1f, b'"', b'\\', b'\n'] {
      for at in [0, 1, 31, 32, 33, 63, 64, 100] {
        let mut bytes = vec![b'a'; 130];
        bytes[at] = special;
        bytes[at + 5] = special;
        assert_eq!(json_plain_len(&bytes), at, "byte {special:#x} at {at}");
      }
    }
    // Bytes 0x20 and up other than '"' and '\' are plain, the UTF-8 of non-ASCII characters included.
    let plain: Vec<u8> = (0x20..=0xffu8)
      .filter(|&b| b != b'"' && b != b'\\')
      .cycle()
      .take(1000)
      .collect();
    assert_eq!(json_plain_len(&plain), plain.len());
  }

  #[test]
  fn utf8_to_utf16_transcodes_valid_utf8_and_refuses_the_rest() {
    for text in ["日本 🚀", "café €", "\u{feff}中 ok", ""] {
      assert_eq!(
        utf8_to_utf16(text.as_bytes()),
        Some(text.encode_utf16().collect::<Vec<_>>()),
        "{text}"
      );
    }
    // A cut character, a lone continuation byte, an overlong form, an encoded surrogate.
    for bad in [&b"\xe6\x97"[..], b"a\x80", b"\xc0\xaf", b"\xed\xa0\x80"] {
      assert!(utf8_to_utf16(bad).is_none(), "{bad:?}");
    }
  }
}
