//! The file of V8 code that lib/load.js serves native-ipc's own modules from (scripts/code-cache.js writes it
//! at build time). It is read here rather than with Node's `fs`: a child that starts then runs none of `fs`'s
//! JavaScript, which Node compiles on first use (~2M instructions of every child's start-up).
//!
//! Layout, all integers u32 little-endian: the 8 bytes `NIPCCOD3`; the number of modules; per module the
//! byte lengths of its name, its wrapped source and its code, then the name; then per module, in the same
//! order, its source inside Node's CommonJS wrapper (`WRAP_START`, the file, `WRAP_END`: V8 compiles it from
//! these very bytes, see `load_module_code`), zero bytes up to the next multiple of 8 from the file's start, and
//! its code. A file that does not follow it exactly is not used. (The code is aligned because V8 copies cached code that does not start
//! at a multiple of 8 before reading it, and the file is mapped, see `map`: aligned, V8 reads it in place.)

use std::fs;
use std::io::Read;
use std::ops::Range;
use std::os::fd::AsRawFd;
use std::ptr;
use std::sync::Mutex;

use napi::bindgen_prelude::{Buffer, Object, ToNapiValue, Unknown};
use napi::{sys, Env};
use napi_derive::napi;

use crate::strings::{owned_latin1_string, static_latin1_string};

const MAGIC: &[u8; 8] = b"NIPCCOD3";
/// Where each module's code starts: at a multiple of this from the start of the file.
const CODE_ALIGN: usize = 8;

/// The zero bytes that follow a source ending at `at`.
const fn padding(at: usize) -> usize {
  at.next_multiple_of(CODE_ALIGN) - at
}

/// One module's place in a cache file.
#[derive(Debug, PartialEq)]
struct Entry {
  name: String,
  /// The module file's bytes, inside its wrapper.
  source: Range<usize>,
  code: Range<usize>,
}

impl Entry {
  /// The source with its wrapper around it.
  fn wrapped(&self) -> Range<usize> {
    self.source.start - WRAP_START.len()..self.source.end + WRAP_END.len()
  }
}

/// Reads a cache file front to back.
struct Cursor<'a> {
  bytes: &'a [u8],
  at: usize,
}

impl<'a> Cursor<'a> {
  fn take(&mut self, n: usize) -> Option<&'a [u8]> {
    let slice = self.bytes.get(self.at..self.at.checked_add(n)?)?;
    self.at += n;
    Some(slice)
  }

  fn length(&mut self) -> Option<usize> {
    Some(u32::from_le_bytes(self.take(4)?.try_into().ok()?) as usize)
  }
}

/// Where each module lies in `bytes`, or None when they are not a whole cache file.
fn parse(bytes: &[u8]) -> Option<Vec<Entry>> {
  let mut cursor = Cursor { bytes, at: 0 };
  if cursor.take(MAGIC.len())? != MAGIC {
    return None;
  }
  let count = cursor.length()?;
  let mut headers = Vec::new();
  for _ in 0..count {
    let (name, source, code) = (cursor.length()?, cursor.length()?, cursor.length()?);
    let name = std::str::from_utf8(cursor.take(name)?).ok()?.to_owned();
    headers.push((name, source, code));
  }
  let mut entries = Vec::with_capacity(headers.len());
  for (name, wrapped, code) in headers {
    let source_start = cursor.at + WRAP_START.len();
    let wrapped = cursor.take(wrapped)?;
    if !wrapped.starts_with(WRAP_START) || !wrapped[WRAP_START.len()..].ends_with(WRAP_END) {
      return None;
    }
    let source_end = cursor.at - WRAP_END.len();
    cursor.take(padding(cursor.at))?;
    let code_start = cursor.at;
    cursor.take(code)?;
    entries.push(Entry {
      name,
      source: source_start..source_end,
      code: code_start..cursor.at,
    });
  }
  (cursor.at == bytes.len()).then_some(entries)
}

/// A cache file of `(name, source, code)` modules.
fn build<'a>(modules: impl Iterator<Item = (&'a str, &'a [u8], &'a [u8])> + Clone) -> Vec<u8> {
  let mut out = MAGIC.to_vec();
  let push = |out: &mut Vec<u8>, n: usize| out.extend_from_slice(&(n as u32).to_le_bytes());
  push(&mut out, modules.clone().count());
  for (name, source, code) in modules.clone() {
    push(&mut out, name.len());
    push(&mut out, WRAP_START.len() + source.len() + WRAP_END.len());
    push(&mut out, code.len());
    out.extend_from_slice(name.as_bytes());
  }
  for (_, source, code) in modules {
    out.extend_from_slice(WRAP_START);
    out.extend_from_slice(source);
    out.extend_from_slice(WRAP_END);
    out.resize(out.len() + padding(out.len()), 0);
    out.extend_from_slice(code);
  }
  out
}

/// The cache file this process mapped, by path: its bytes and their modules (None when unusable).
type Loaded = (String, Option<(&'static [u8], Vec<Entry>)>);
static LOADED: Mutex<Option<Loaded>> = Mutex::new(None);

/// Maps a file's pages at once (Linux); elsewhere they come as they are read.
#[cfg(target_os = "linux")]
const POPULATE: libc::c_int = libc::MAP_POPULATE;
#[cfg(not(target_os = "linux"))]
const POPULATE: libc::c_int = 0;

/// The bytes of the file `path`, mapped for the rest of the process: the code of each module is handed to V8 as a
/// Buffer over them rather than as a copy. Reading the file instead (~400 KiB with the sources it is checked
/// against) and copying each module's code out of it wrote ~570 KiB of fresh memory in every child: 159 page faults
/// for its 11 modules before its script started, 51 now. The mapping is read-only (writable, `MAP_POPULATE` copied
/// every page at once) and never unmapped, as the Buffers may outlive any use of it; the cache writer replaces a
/// file by renaming a new one over it, which leaves a mapped one whole.
fn map(path: &str) -> Option<&'static [u8]> {
  let file = fs::File::open(path).ok()?;
  let len = usize::try_from(file.metadata().ok()?.len()).ok()?;
  if len == 0 {
    return None;
  }
  // SAFETY: a new private mapping of a whole file this process opened; MAP_POPULATE maps its pages at once,
  // in one call rather than a fault each.
  let at = unsafe {
    libc::mmap(
      ptr::null_mut(),
      len,
      libc::PROT_READ,
      libc::MAP_PRIVATE | POPULATE,
      file.as_raw_fd(),
      0,
    )
  };
  // SAFETY: the mapping holds `len` bytes and stays for the life of the process.
  (at != libc::MAP_FAILED).then(|| unsafe { std::slice::from_raw_parts(at.cast::<u8>(), len) })
}

/// A Buffer over `bytes` of a mapped cache file (see `map`): without a copy where the runtime allows external
/// memory, a copy elsewhere. The memory is read-only: lib/load.js gives the Buffer to `vm.Script` as its cached
/// data, which V8 only reads, and to nothing else.
fn static_buffer<'env>(env: &'env Env, bytes: &'static [u8]) -> napi::Result<Unknown<'env>> {
  let mut value = ptr::null_mut();
  // SAFETY: N-API calls on the current env; the bytes live as long as the process, so no finalizer is needed,
  // and nothing writes them (see above).
  unsafe {
    let mut status = sys::napi_create_external_buffer(
      env.raw(),
      bytes.len(),
      bytes.as_ptr().cast_mut().cast(),
      None,
      ptr::null_mut(),
      &mut value,
    );
    if status != sys::Status::napi_ok {
      let mut copy = ptr::null_mut();
      status = sys::napi_create_buffer_copy(
        env.raw(),
        bytes.len(),
        bytes.as_ptr().cast(),
        &mut copy,
        &mut value,
      );
    }
    if status != sys::Status::napi_ok {
      return Err(napi::Error::from_reason(
        "cannot make a Buffer of cached code",
      ));
    }
    Ok(Unknown::from_raw_unchecked(env.raw(), value))
  }
}

/// Node's CommonJS wrapper (the same parameters) around a module's source. The source starts on the wrapper's
/// line, so that line numbers in stack traces stay right.
const WRAP_START: &[u8] = b"(function (exports, require, module, __filename, __dirname) { ";
const WRAP_END: &[u8] = b"\n});";

/// Looks `sourceFile` (the module `name`) up in `cacheFile`, which is read once per process, under its name or
/// its absolute path (scripts/code-cache.js stores the path where V8 keeps the file name a cached code was
/// compiled under, so that a package moved elsewhere compiles rather than naming files of its old place in
/// stack traces). The code comes only when the file holds byte for byte the cached source: V8 would accept code
/// made for any source of the same length.
///
/// Returns `{source, code}`: the source already inside Node's CommonJS wrapper, and the code (a Buffer) if
/// any. The source is the cache file's own copy when the code comes (the module file is then compared, never
/// copied), the file read into the wrapper otherwise. An ASCII source (native-ipc's own modules are) becomes an
/// external string over those bytes, rather than a string on V8's heap. Joining the wrapper to a heap string in JS made V8 allocate each
/// source twice in the young generation (the string, then the flat copy it compiles), ~290 KB for a child:
/// a child's start-up filled 967 KB of the 1 MB that a fresh V8 collects at, and a script that allocated a
/// little more before its first message paid for a collection of everything the start-up left live.
#[napi(js_name = "loadModuleCode")]
pub fn load_module_code<'env>(
  env: &'env Env,
  cache_file: String,
  source_file: String,
  name: String,
) -> napi::Result<Object<'env>> {
  let mut loaded = LOADED
    .lock()
    .unwrap_or_else(|poisoned| poisoned.into_inner());
  if loaded.as_ref().is_none_or(|(path, _)| *path != cache_file) {
    // A file system that cannot map files gets the file read into memory kept as long.
    let file = map(&cache_file)
      .or_else(|| Some(&*Box::leak(fs::read(&cache_file).ok()?.into_boxed_slice())))
      .and_then(|file| Some((file, parse(file)?)));
    *loaded = Some((cache_file, file));
  }
  let cached: Option<(&'static [u8], &'static [u8])> = loaded.as_ref().and_then(|(_, file)| {
    let (file, entries) = file.as_ref()?;
    let entry = entries
      .iter()
      .find(|entry| entry.name == name || entry.name == source_file)?;
    holds(&source_file, &file[entry.source.clone()])
      .then(|| (&file[entry.wrapped()], &file[entry.code.clone()]))
  });
  drop(loaded);
  let cannot_load = |error: napi::Error| {
    napi::Error::from_reason(format!(
      "native-ipc cannot load its module {source_file}: {}",
      error.reason
    ))
  };
  let mut result = Object::new(env)?;
  match cached {
    Some((wrapped, code)) => {
      let source = if wrapped.is_ascii() {
        static_latin1_string(env, wrapped).map_err(cannot_load)?
      } else {
        utf8_string(env, wrapped)?
      };
      result.set("source", source)?;
      result.set("code", static_buffer(env, code)?)?;
    }
    None => {
      // Read straight into the wrapper, so that the source is copied once, into the string V8 keeps.
      let mut wrapped = WRAP_START.to_vec();
      fs::File::open(&source_file)
        .and_then(|mut file| file.read_to_end(&mut wrapped))
        .map_err(|error| {
          napi::Error::from_reason(format!(
            "native-ipc cannot read its module {source_file}: {error}"
          ))
        })?;
      wrapped.extend_from_slice(WRAP_END);
      let source = if wrapped.is_ascii() {
        owned_latin1_string(env, wrapped).map_err(cannot_load)?
      } else {
        utf8_string(env, &wrapped)?
      };
      result.set("source", source)?;
    }
  }
  Ok(result)
}

/// A string of UTF-8 `bytes` on V8's heap, any invalid sequence replaced.
fn utf8_string<'env>(env: &'env Env, bytes: &[u8]) -> napi::Result<Unknown<'env>> {
  let text = String::from_utf8_lossy(bytes).into_owned();
  // SAFETY: a string made on the current env.
  Ok(unsafe { Unknown::from_raw_unchecked(env.raw(), String::to_napi_value(env.raw(), text)?) })
}

/// Files from this size on are compared mapped (see `holds`).
const MAP_TO_COMPARE: usize = 32 * 1024;

/// Whether the file `path` holds exactly `expected`. A large one is compared where it lies in the page cache,
/// mapped for the comparison: reading it copied it into fresh memory, whose page faults made the check of
/// codec.js (132 KB) cost ~130 us of every child's start. A small one is read, which costs less than a mapping.
fn holds(path: &str, expected: &[u8]) -> bool {
  let Ok(mut file) = fs::File::open(path) else {
    return false;
  };
  if file.metadata().map(|meta| meta.len()).ok() != u64::try_from(expected.len()).ok() {
    return false;
  }
  if expected.len() < MAP_TO_COMPARE {
    let mut bytes = Vec::with_capacity(expected.len());
    return file.read_to_end(&mut bytes).is_ok() && bytes == expected;
  }
  // SAFETY: a new private read-only mapping of the whole file, unmapped below; nothing else sees it.
  let at = unsafe {
    libc::mmap(
      ptr::null_mut(),
      expected.len(),
      libc::PROT_READ,
      libc::MAP_PRIVATE | POPULATE,
      file.as_raw_fd(),
      0,
    )
  };
  if at == libc::MAP_FAILED {
    // A file system that cannot map files: read it.
    return fs::read(path).is_ok_and(|bytes| bytes == expected);
  }
  // SAFETY: the mapping holds `expected.len()` bytes until the munmap. A file cut shorter meanwhile would fault
  // (SIGBUS) as it would for any reader of a mapped file; native-ipc's own modules are not rewritten in place
  // while a process starts.
  let same = unsafe { std::slice::from_raw_parts(at.cast::<u8>(), expected.len()) } == expected;
  // SAFETY: the mapping made above, no longer used.
  unsafe { libc::munmap(at, expected.len()) };
  same
}

/// A text file's contents, or null when it cannot be read: lib/load.js compares the versions in the
/// `package.json` of native-ipc and of its platform package with it, before Node's `fs` has run any JavaScript.
#[napi(js_name = "readTextFile")]
pub fn read_text_file(file: String) -> Option<String> {
  fs::read_to_string(file).ok()
}

/// One module of a cache file.
#[napi(object)]
pub struct CachedModule {
  pub name: String,
  pub source: Buffer,
  pub code: Buffer,
}

/// Every module of a cache file, or null when the file is missing or not a cache file.
#[napi(js_name = "readCodeCache")]
pub fn read_code_cache(file: String) -> Option<Vec<CachedModule>> {
  let bytes = fs::read(file).ok()?;
  let entries = parse(&bytes)?;
  Some(
    entries
      .into_iter()
      .map(|entry| CachedModule {
        source: Buffer::from(bytes[entry.source].to_vec()),
        code: Buffer::from(bytes[entry.code].to_vec()),
        name: entry.name,
      })
      .collect(),
  )
}

/// Writes a cache file of these modules: into a temporary file beside it first, so that a reader never sees
/// half of one.
#[napi(js_name = "writeCodeCache")]
pub fn write_code_cache(file: String, modules: Vec<CachedModule>) -> napi::Result<()> {
  let bytes = build(
    modules
      .iter()
      .map(|m| (m.name.as_str(), &m.source[..], &m.code[..])),
  );
  let temporary = format!("{file}.{}.tmp", std::process::id());
  fs::write(&temporary, bytes)
    .and_then(|()| fs::rename(&temporary, &file))
    .map_err(|error| {
      let _ = fs::remove_file(&temporary);
      napi::Error::from_reason(format!("cannot write the code cache {file}: {error}"))
    })
}

#[cfg(test)]
mod tests {
  use super::*;

  fn sample() -> Vec<u8> {
    let modules = [
      ("a.js", &b"let a;"[..], &b"CODE-A"[..]),
      ("bb.js", b"", b"C"),
    ];
    build(modules.iter().copied())
  }

  #[test]
  fn a_built_file_parses_back() {
    let bytes = sample();
    let entries = parse(&bytes).unwrap();
    assert_eq!(entries.len(), 2);
    assert_eq!(
      (entries[0].name.as_str(), &bytes[entries[0].source.clone()]),
      ("a.js", &b"let a;"[..])
    );
    assert_eq!(&bytes[entries[0].code.clone()], b"CODE-A");
    assert_eq!(
      (entries[1].name.as_str(), &bytes[entries[1].source.clone()]),
      ("bb.js", &b""[..])
    );
    assert_eq!(&bytes[entries[1].code.clone()], b"C");
  }

  #[test]
  fn each_source_lies_inside_its_wrapper() {
    let bytes = sample();
    for entry in parse(&bytes).unwrap() {
      let wrapped = &bytes[entry.wrapped()];
      let source = &bytes[entry.source.clone()];
      assert_eq!(
        wrapped,
        [WRAP_START, source, WRAP_END].concat(),
        "{}",
        entry.name
      );
    }
  }

  #[test]
  fn every_code_starts_at_a_multiple_of_8_after_zero_bytes() {
    let bytes = sample();
    for entry in parse(&bytes).unwrap() {
      let wrapped = entry.wrapped();
      assert_eq!(entry.code.start % CODE_ALIGN, 0, "{}", entry.name);
      assert!(entry.code.start - wrapped.end < CODE_ALIGN);
      assert!(bytes[wrapped.end..entry.code.start].iter().all(|&b| b == 0));
    }
  }

  #[test]
  fn a_source_without_its_wrapper_is_refused() {
    let bytes = sample();
    let entry = &parse(&bytes).unwrap()[0];
    for at in [entry.wrapped().start, entry.wrapped().end - 1] {
      let mut broken = bytes.clone();
      broken[at] ^= 1;
      assert_eq!(parse(&broken), None, "byte {at} changed");
    }
  }

  #[test]
  fn a_module_file_holds_its_cached_source_only_byte_for_byte() {
    let dir = std::env::temp_dir().join(format!("native-ipc-holds-{}", std::process::id()));
    fs::create_dir_all(&dir).unwrap();
    let path = |name: &str| dir.join(name).to_str().unwrap().to_owned();
    fs::write(path("same.js"), "let a = 1;").unwrap();
    fs::write(path("empty.js"), "").unwrap();
    assert!(holds(&path("same.js"), b"let a = 1;"));
    assert!(holds(&path("empty.js"), b""));
    // Same length, one byte else; longer; shorter; no file.
    assert!(!holds(&path("same.js"), b"let a = 2;"));
    assert!(!holds(&path("same.js"), b"let a = 1;\n"));
    assert!(!holds(&path("same.js"), b"let a = 1"));
    assert!(!holds(&path("empty.js"), b"x"));
    assert!(!holds(&path("missing.js"), b""));
    // A large file, compared mapped.
    let mut large = vec![b'x'; MAP_TO_COMPARE * 3 + 5];
    fs::write(path("large.js"), &large).unwrap();
    assert!(holds(&path("large.js"), &large));
    *large.last_mut().unwrap() = b'y';
    assert!(!holds(&path("large.js"), &large));
    large.pop();
    assert!(!holds(&path("large.js"), &large));
    fs::remove_dir_all(&dir).unwrap();
  }

  #[test]
  fn anything_but_a_whole_file_is_refused() {
    let bytes = sample();
    for cut in 0..bytes.len() {
      assert_eq!(parse(&bytes[..cut]), None, "cut at {cut}");
    }
    let mut longer = bytes.clone();
    longer.push(0);
    assert_eq!(parse(&longer), None);
    let mut wrong = bytes.clone();
    wrong[0] = b'X';
    assert_eq!(parse(&wrong), None);
    let mut huge = bytes;
    huge[8..12].copy_from_slice(&u32::MAX.to_le_bytes());
    assert_eq!(parse(&huge), None);
    assert_eq!(parse(b"not a cache"), None);
  }
}
