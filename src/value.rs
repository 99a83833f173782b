//! A reference implementation, in plain Rust, of the `'advanced'` value format of PROTOCOL.md §5.2:
//! MessagePack plus the extension types 0–12, 14 and 16–27 and the MessagePack timestamp (−1) (13, `SHARED`,
//! needs the descriptors passed with a frame, so it is left to the channel).
//!
//! The production codec is `lib/codec.js`; this module exists to pin the format down independently of it.
//! [`decode`] applies every rule of §5.2.1–§5.2.8 and [`encode`] writes the canonical (smallest) forms of
//! §5.2.2, so that `encode(&decode(p)?) == p` for every payload the JavaScript encoder can produce.
//!
//! Differences from a JavaScript decoder, by design:
//! - back-references stay [`Value::Ref`] nodes; no object graph is built (the index is still validated);
//! - a `REGEXP` is checked for its layout and its flags only: the pattern itself is not compiled, since
//!   only a JavaScript `RegExp` constructor can say what it accepts (full validation is left to the JS side).
//!
//! The MessagePack reader and writer are written out by hand (they are small) so that every size variant and
//! every length check is visible here.
//!
//! Decoding (and encoding, comparing, dropping) recurses once per nesting level. At the depth limit of 10000
//! that takes between 4 and 8 MiB of stack in a release build and well over 32 MiB in a debug build: decode
//! untrusted input on a thread with a generous stack (the tests use 256 MiB for their deep cases).

use std::fmt;

/// The deepest an object may be nested (§5.2.7); the top-level value is at depth 1.
pub const MAX_DEPTH: usize = 10_000;

/// The largest and smallest time value a `Date` may hold, in milliseconds (±8.64·10¹⁵).
const MAX_TIME: f64 = 8.64e15;

/// The largest integer a JavaScript Number represents exactly (2⁵³ − 1).
const MAX_SAFE_INTEGER: u64 = (1 << 53) - 1;

/// Extension type numbers (§5.2.5).
mod ext {
  pub const UNDEFINED: i8 = 0;
  pub const REF: i8 = 1;
  pub const BIGINT: i8 = 2;
  pub const STRING16: i8 = 3;
  pub const DATE: i8 = 4;
  pub const REGEXP: i8 = 5;
  pub const MAP: i8 = 6;
  pub const SET: i8 = 7;
  pub const ERROR: i8 = 8;
  pub const ARRAY: i8 = 9;
  pub const BOXED: i8 = 10;
  pub const ARRAYBUFFER: i8 = 11;
  pub const DATAVIEW: i8 = 12;
  pub const LATIN1: i8 = 14;
  pub const TYPED_FIRST: i8 = 16;
  pub const TYPED_LAST: i8 = 27;
  pub const TIMESTAMP: i8 = -1;
}

/// One decoded message value. Strings are kept as UTF-16 code units, as JavaScript holds them, so that a
/// lone surrogate survives.
#[derive(Clone, Debug)]
pub enum Value {
  Undefined,
  Null,
  Bool(bool),
  /// Every number, integer formats included. Compared bit for bit (so `-0 != 0` and `NaN == NaN`).
  Number(f64),
  /// Sign and magnitude (unsigned big-endian). Canonical form: no leading zero byte; zero is an empty
  /// magnitude with `negative: false`. [`encode`] canonicalises any other form.
  BigInt {
    negative: bool,
    magnitude: Vec<u8>,
  },
  String(Vec<u16>),
  /// A plain object: its properties in payload order.
  Object(Vec<(Vec<u16>, Value)>),
  /// A dense array.
  Array(Vec<Value>),
  /// An array with holes or named properties (ext 9): its length and its own properties in payload order.
  SparseArray {
    length: u32,
    entries: Vec<(ArrayKey, Value)>,
  },
  /// A Node.js `Buffer` (MessagePack bin).
  Buffer(Vec<u8>),
  /// A `Date`: its time value in milliseconds, or NaN for an invalid date.
  Date(f64),
  RegExp {
    source: Vec<u16>,
    flags: Vec<u16>,
  },
  Map(Vec<(Value, Value)>),
  Set(Vec<Value>),
  Error {
    name: ErrorName,
    message: Option<Vec<u16>>,
    stack: Option<Vec<u16>>,
    cause: Option<Box<Value>>,
  },
  /// `Object(v)` for a number, string, boolean or bigint `v`.
  Boxed(Box<Value>),
  ArrayBuffer(Vec<u8>),
  /// The viewed bytes of a `DataView`.
  DataView(Vec<u8>),
  /// A typed array: its element bytes, little-endian.
  Typed {
    kind: TypedKind,
    bytes: Vec<u8>,
  },
  /// A back-reference to the object with this number (§5.2.6).
  Ref(u32),
}

/// A key of a [`Value::SparseArray`]: an index below its length, or the name of another own property.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ArrayKey {
  Index(u32),
  Name(Vec<u16>),
}

/// The seven standard error constructors an `ERROR` may name.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ErrorName {
  Error,
  EvalError,
  RangeError,
  ReferenceError,
  SyntaxError,
  TypeError,
  UriError,
}

impl ErrorName {
  pub const ALL: [ErrorName; 7] = [
    ErrorName::Error,
    ErrorName::EvalError,
    ErrorName::RangeError,
    ErrorName::ReferenceError,
    ErrorName::SyntaxError,
    ErrorName::TypeError,
    ErrorName::UriError,
  ];

  /// The constructor's name as it travels.
  pub fn as_str(self) -> &'static str {
    match self {
      ErrorName::Error => "Error",
      ErrorName::EvalError => "EvalError",
      ErrorName::RangeError => "RangeError",
      ErrorName::ReferenceError => "ReferenceError",
      ErrorName::SyntaxError => "SyntaxError",
      ErrorName::TypeError => "TypeError",
      ErrorName::UriError => "URIError",
    }
  }

  fn from_units(units: &[u16]) -> Option<ErrorName> {
    ErrorName::ALL
      .into_iter()
      .find(|name| name.as_str().encode_utf16().eq(units.iter().copied()))
  }
}

/// The typed-array kinds, ext types 16–27 in order.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TypedKind {
  Int8,
  Uint8,
  Uint8Clamped,
  Int16,
  Uint16,
  Int32,
  Uint32,
  Float32,
  Float64,
  BigInt64,
  BigUint64,
  Float16,
}

impl TypedKind {
  pub const ALL: [TypedKind; 12] = [
    TypedKind::Int8,
    TypedKind::Uint8,
    TypedKind::Uint8Clamped,
    TypedKind::Int16,
    TypedKind::Uint16,
    TypedKind::Int32,
    TypedKind::Uint32,
    TypedKind::Float32,
    TypedKind::Float64,
    TypedKind::BigInt64,
    TypedKind::BigUint64,
    TypedKind::Float16,
  ];

  /// The extension type carrying this kind.
  pub fn ext_type(self) -> i8 {
    ext::TYPED_FIRST + self as i8
  }

  /// Bytes per element.
  pub fn element_size(self) -> usize {
    match self {
      TypedKind::Int8 | TypedKind::Uint8 | TypedKind::Uint8Clamped => 1,
      TypedKind::Int16 | TypedKind::Uint16 | TypedKind::Float16 => 2,
      TypedKind::Int32 | TypedKind::Uint32 | TypedKind::Float32 => 4,
      TypedKind::Float64 | TypedKind::BigInt64 | TypedKind::BigUint64 => 8,
    }
  }

  /// The JavaScript constructor's name.
  pub fn js_name(self) -> &'static str {
    match self {
      TypedKind::Int8 => "Int8Array",
      TypedKind::Uint8 => "Uint8Array",
      TypedKind::Uint8Clamped => "Uint8ClampedArray",
      TypedKind::Int16 => "Int16Array",
      TypedKind::Uint16 => "Uint16Array",
      TypedKind::Int32 => "Int32Array",
      TypedKind::Uint32 => "Uint32Array",
      TypedKind::Float32 => "Float32Array",
      TypedKind::Float64 => "Float64Array",
      TypedKind::BigInt64 => "BigInt64Array",
      TypedKind::BigUint64 => "BigUint64Array",
      TypedKind::Float16 => "Float16Array",
    }
  }

  fn from_ext(t: i8) -> Option<TypedKind> {
    if (ext::TYPED_FIRST..=ext::TYPED_LAST).contains(&t) {
      Some(TypedKind::ALL[(t - ext::TYPED_FIRST) as usize])
    } else {
      None
    }
  }
}

impl Value {
  /// A string value from Rust text.
  pub fn string(text: &str) -> Value {
    Value::String(utf16(text))
  }

  /// A plain object from `(key, value)` pairs.
  pub fn object<'a>(entries: impl IntoIterator<Item = (&'a str, Value)>) -> Value {
    Value::Object(entries.into_iter().map(|(k, v)| (utf16(k), v)).collect())
  }

  /// A bigint from an `i128`, in canonical form.
  pub fn bigint(n: i128) -> Value {
    let magnitude = n.unsigned_abs().to_be_bytes();
    let first = magnitude
      .iter()
      .position(|&b| b != 0)
      .unwrap_or(magnitude.len());
    Value::BigInt {
      negative: n < 0,
      magnitude: magnitude[first..].to_vec(),
    }
  }
}

/// The UTF-16 code units of Rust text.
pub fn utf16(text: &str) -> Vec<u16> {
  text.encode_utf16().collect()
}

fn same_f64(a: f64, b: f64) -> bool {
  a.to_bits() == b.to_bits()
}

impl PartialEq for Value {
  fn eq(&self, other: &Value) -> bool {
    use Value as V;
    match (self, other) {
      (V::Undefined, V::Undefined) | (V::Null, V::Null) => true,
      (V::Bool(a), V::Bool(b)) => a == b,
      (V::Number(a), V::Number(b)) | (V::Date(a), V::Date(b)) => same_f64(*a, *b),
      (
        V::BigInt {
          negative: na,
          magnitude: ma,
        },
        V::BigInt {
          negative: nb,
          magnitude: mb,
        },
      ) => na == nb && ma == mb,
      (V::String(a), V::String(b)) => a == b,
      (V::Object(a), V::Object(b)) => a == b,
      (V::Array(a), V::Array(b)) | (V::Set(a), V::Set(b)) => a == b,
      (
        V::SparseArray {
          length: la,
          entries: ea,
        },
        V::SparseArray {
          length: lb,
          entries: eb,
        },
      ) => la == lb && ea == eb,
      (V::Buffer(a), V::Buffer(b))
      | (V::ArrayBuffer(a), V::ArrayBuffer(b))
      | (V::DataView(a), V::DataView(b)) => a == b,
      (
        V::RegExp {
          source: sa,
          flags: fa,
        },
        V::RegExp {
          source: sb,
          flags: fb,
        },
      ) => sa == sb && fa == fb,
      (V::Map(a), V::Map(b)) => a == b,
      (
        V::Error {
          name: na,
          message: ma,
          stack: sa,
          cause: ca,
        },
        V::Error {
          name: nb,
          message: mb,
          stack: sb,
          cause: cb,
        },
      ) => na == nb && ma == mb && sa == sb && ca == cb,
      (V::Boxed(a), V::Boxed(b)) => a == b,
      (
        V::Typed {
          kind: ka,
          bytes: ba,
        },
        V::Typed {
          kind: kb,
          bytes: bb,
        },
      ) => ka == kb && ba == bb,
      (V::Ref(a), V::Ref(b)) => a == b,
      _ => false,
    }
  }
}

// ---------------------------------------------------------------------------------------------------------
// Decoding

/// Why a payload was refused, and where.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DecodeError {
  /// Byte offset in the payload where the offending item starts (or where more bytes were needed).
  pub offset: usize,
  /// What was wrong.
  pub reason: String,
}

impl fmt::Display for DecodeError {
  fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
    write!(
      f,
      "invalid 'advanced' payload at byte {}: {}",
      self.offset, self.reason
    )
  }
}

impl std::error::Error for DecodeError {}

type Result<T> = std::result::Result<T, DecodeError>;

/// Decodes one payload: exactly one value, nothing after it.
pub fn decode(bytes: &[u8]) -> Result<Value> {
  let mut d = Decoder {
    buf: bytes,
    pos: 0,
    end: bytes.len(),
    objects: 0,
    open_boxed: Vec::new(),
  };
  let value = d.value(1)?;
  if d.pos != bytes.len() {
    return Err(d.error_at(
      d.pos,
      format!("{} trailing bytes after the value", bytes.len() - d.pos),
    ));
  }
  Ok(value)
}

struct Decoder<'a> {
  buf: &'a [u8],
  pos: usize,
  /// Where the innermost enclosing payload (an ext payload, or the whole input) ends.
  end: usize,
  /// Objects started so far: the next object's number.
  objects: u64,
  /// Numbers of the `BOXED` objects being decoded (they cannot be referenced yet).
  open_boxed: Vec<u64>,
}

/// What a MessagePack header announced.
enum Head {
  Int(i128),
  Float(f64),
  Nil,
  Bool(bool),
  Str(usize),
  Bin(usize),
  Array(usize),
  Map(usize),
  Ext(usize, i8),
}

impl<'a> Decoder<'a> {
  fn error_at(&self, offset: usize, reason: impl Into<String>) -> DecodeError {
    DecodeError {
      offset,
      reason: reason.into(),
    }
  }

  fn remaining(&self) -> usize {
    self.end - self.pos
  }

  /// Takes `n` bytes of the current payload.
  fn take(&mut self, n: usize, what: &str) -> Result<&'a [u8]> {
    if n > self.remaining() {
      let left = self.remaining();
      return Err(self.error_at(
        self.pos,
        format!("truncated {what}: needs {n} bytes, {left} left"),
      ));
    }
    let bytes = &self.buf[self.pos..self.pos + n];
    self.pos += n;
    Ok(bytes)
  }

  fn u8(&mut self, what: &str) -> Result<u8> {
    Ok(self.take(1, what)?[0])
  }

  fn be(&mut self, n: usize, what: &str) -> Result<u64> {
    Ok(
      self
        .take(n, what)?
        .iter()
        .fold(0u64, |acc, &b| (acc << 8) | u64::from(b)),
    )
  }

  /// Checks a length field against the bytes left; `per_item` is the fewest bytes each item takes.
  fn check_len(&self, at: usize, n: usize, per_item: usize, what: &str) -> Result<usize> {
    if (n as u64) * (per_item as u64) > self.remaining() as u64 {
      let unit = match what {
        "array" => "items",
        "map" => "entries",
        _ => "bytes",
      };
      return Err(self.error_at(
        at,
        format!(
          "{what} claims {n} {unit}, more than the {} bytes left",
          self.remaining()
        ),
      ));
    }
    Ok(n)
  }

  /// Reads a header byte and its length/value fields. Lengths are checked against the bytes left.
  fn head(&mut self) -> Result<Head> {
    let at = self.pos;
    let b = self.u8("value")?;
    let head = match b {
      0x00..=0x7f => Head::Int(i128::from(b)),
      0x80..=0x8f => Head::Map(self.check_len(at, usize::from(b & 0x0f), 2, "map")?),
      0x90..=0x9f => Head::Array(self.check_len(at, usize::from(b & 0x0f), 1, "array")?),
      0xa0..=0xbf => Head::Str(self.check_len(at, usize::from(b & 0x1f), 1, "str")?),
      0xc0 => Head::Nil,
      0xc1 => return Err(self.error_at(at, "the reserved byte 0xc1")),
      0xc2 => Head::Bool(false),
      0xc3 => Head::Bool(true),
      0xc4..=0xc6 => {
        let n = self.be(1 << (b - 0xc4), "bin length")? as usize;
        Head::Bin(self.check_len(at, n, 1, "bin")?)
      }
      0xc7..=0xc9 => {
        let n = self.be(1 << (b - 0xc7), "ext length")? as usize;
        let t = self.u8("ext type")? as i8;
        Head::Ext(self.check_len(at, n, 1, "ext")?, t)
      }
      0xca => Head::Float(f64::from(f32::from_bits(self.be(4, "float 32")? as u32))),
      0xcb => Head::Float(f64::from_bits(self.be(8, "float 64")?)),
      0xcc..=0xcf => Head::Int(i128::from(self.be(1 << (b - 0xcc), "uint")?)),
      0xd0 => Head::Int(i128::from(self.be(1, "int 8")? as u8 as i8)),
      0xd1 => Head::Int(i128::from(self.be(2, "int 16")? as u16 as i16)),
      0xd2 => Head::Int(i128::from(self.be(4, "int 32")? as u32 as i32)),
      0xd3 => Head::Int(i128::from(self.be(8, "int 64")? as i64)),
      0xd4..=0xd8 => {
        let n = 1usize << (b - 0xd4);
        let t = self.u8("ext type")? as i8;
        Head::Ext(self.check_len(at, n, 1, "fixext")?, t)
      }
      0xd9..=0xdb => {
        let n = self.be(1 << (b - 0xd9), "str length")? as usize;
        Head::Str(self.check_len(at, n, 1, "str")?)
      }
      0xdc | 0xdd => {
        let n = self.be(if b == 0xdc { 2 } else { 4 }, "array length")? as usize;
        Head::Array(self.check_len(at, n, 1, "array")?)
      }
      0xde | 0xdf => {
        let n = self.be(if b == 0xde { 2 } else { 4 }, "map length")? as usize;
        Head::Map(self.check_len(at, n, 2, "map")?)
      }
      0xe0..=0xff => Head::Int(i128::from(b as i8)),
    };
    Ok(head)
  }

  /// Numbers the next object, after checking its depth.
  fn start_object(&mut self, at: usize, depth: usize) -> Result<u64> {
    if depth > MAX_DEPTH {
      return Err(self.error_at(
        at,
        format!("objects nested more than {MAX_DEPTH} levels deep"),
      ));
    }
    let number = self.objects;
    self.objects += 1;
    Ok(number)
  }

  /// One value; `depth` is the depth it has if it is an object.
  fn value(&mut self, depth: usize) -> Result<Value> {
    let at = self.pos;
    match self.head()? {
      Head::Int(n) => Ok(integer(n)),
      Head::Float(f) => Ok(Value::Number(f)),
      Head::Nil => Ok(Value::Null),
      Head::Bool(b) => Ok(Value::Bool(b)),
      Head::Str(n) => self.str_body(at, n).map(Value::String),
      Head::Bin(n) => {
        self.start_object(at, depth)?;
        Ok(Value::Buffer(self.take(n, "bin")?.to_vec()))
      }
      Head::Array(n) => {
        self.start_object(at, depth)?;
        let mut items = Vec::with_capacity(n);
        for _ in 0..n {
          items.push(self.value(depth + 1)?);
        }
        Ok(Value::Array(items))
      }
      Head::Map(n) => {
        self.start_object(at, depth)?;
        let mut entries = Vec::with_capacity(n);
        for _ in 0..n {
          let key_at = self.pos;
          let key = match self.value(depth + 1)? {
            Value::String(units) => units,
            _ => return Err(self.error_at(key_at, "an object key that is not a string")),
          };
          entries.push((key, self.value(depth + 1)?));
        }
        Ok(Value::Object(entries))
      }
      Head::Ext(n, t) => self.ext(at, n, t, depth),
    }
  }

  fn str_body(&mut self, at: usize, n: usize) -> Result<Vec<u16>> {
    let bytes = self.take(n, "str")?;
    match std::str::from_utf8(bytes) {
      Ok(text) => Ok(utf16(text)),
      Err(e) => Err(self.error_at(
        at,
        format!("invalid UTF-8 in a str, at its byte {}", e.valid_up_to()),
      )),
    }
  }

  #[inline(never)]
  fn ext(&mut self, at: usize, len: usize, t: i8, depth: usize) -> Result<Value> {
    let start = self.pos;
    let payload = &self.buf[start..start + len];
    let bad = |reason: String| Err(DecodeError { offset: at, reason });
    match t {
      ext::UNDEFINED => {
        if payload != [0] {
          return bad(format!(
            "UNDEFINED payload must be the single byte 00, got {len} bytes"
          ));
        }
        self.pos += len;
        Ok(Value::Undefined)
      }
      ext::REF => {
        if !matches!(len, 1 | 2 | 4) {
          return bad(format!("REF payload must be 1, 2 or 4 bytes, got {len}"));
        }
        let index = payload
          .iter()
          .fold(0u64, |acc, &b| (acc << 8) | u64::from(b));
        if index >= self.objects {
          return bad(format!(
            "REF to object #{index}, but only {} objects started so far",
            self.objects
          ));
        }
        if self.open_boxed.contains(&index) {
          return bad(format!(
            "REF to object #{index}, a BOXED still being decoded"
          ));
        }
        self.pos += len;
        Ok(Value::Ref(index as u32))
      }
      ext::BIGINT => {
        let Some((&sign, magnitude)) = payload.split_first() else {
          return bad("BIGINT with an empty payload".into());
        };
        if sign > 1 {
          return bad(format!("BIGINT sign byte {sign:#04x}, not 00 or 01"));
        }
        if magnitude.first() == Some(&0) {
          return bad("BIGINT magnitude with a leading 00 byte".into());
        }
        if magnitude.is_empty() && sign == 1 {
          return bad("BIGINT negative zero".into());
        }
        self.pos += len;
        Ok(Value::BigInt {
          negative: sign == 1,
          magnitude: magnitude.to_vec(),
        })
      }
      ext::STRING16 => {
        if !len.is_multiple_of(2) {
          return bad(format!("STRING16 payload of odd length {len}"));
        }
        self.pos += len;
        Ok(Value::String(
          payload
            .chunks_exact(2)
            .map(|c| u16::from_le_bytes([c[0], c[1]]))
            .collect(),
        ))
      }
      ext::LATIN1 => {
        // Any byte is a character: U+0000 to U+00FF.
        self.pos += len;
        Ok(Value::String(
          payload.iter().map(|&b| u16::from(b)).collect(),
        ))
      }
      ext::DATE => {
        self.start_object(at, depth)?;
        if len != 8 {
          return bad(format!("DATE payload must be 8 bytes, got {len}"));
        }
        let t = f64::from_bits(u64::from_be_bytes(payload.try_into().unwrap()));
        if !(t.is_nan() || (t.fract() == 0.0 && t.abs() <= MAX_TIME)) {
          return bad(format!(
            "DATE time value {t} is neither NaN nor an integer within ±8.64e15"
          ));
        }
        self.pos += len;
        Ok(Value::Date(time_value(t)))
      }
      ext::TIMESTAMP => {
        self.start_object(at, depth)?;
        let ms = timestamp_ms(payload).map_err(|reason| DecodeError { offset: at, reason })?;
        self.pos += len;
        Ok(Value::Date(ms))
      }
      ext::ARRAYBUFFER | ext::DATAVIEW => {
        self.start_object(at, depth)?;
        self.pos += len;
        let bytes = payload.to_vec();
        Ok(if t == ext::ARRAYBUFFER {
          Value::ArrayBuffer(bytes)
        } else {
          Value::DataView(bytes)
        })
      }
      _ if TypedKind::from_ext(t).is_some() => {
        let kind = TypedKind::from_ext(t).unwrap();
        self.start_object(at, depth)?;
        if !len.is_multiple_of(kind.element_size()) {
          return bad(format!(
            "{} payload of {len} bytes, not a multiple of {}",
            kind.js_name(),
            kind.element_size()
          ));
        }
        self.pos += len;
        Ok(Value::Typed {
          kind,
          bytes: payload.to_vec(),
        })
      }
      ext::REGEXP | ext::MAP | ext::SET | ext::ERROR | ext::ARRAY | ext::BOXED => {
        let number = self.start_object(at, depth)?;
        // The payload becomes the readable range; it must be filled exactly.
        let outer_end = self.end;
        self.end = start + len;
        let value = self.structured(at, t, number, depth)?;
        if self.pos != self.end {
          return Err(self.error_at(
            self.pos,
            format!(
              "{} trailing bytes inside an ext {t} payload",
              self.end - self.pos
            ),
          ));
        }
        self.end = outer_end;
        Ok(value)
      }
      _ => Err(DecodeError {
        offset: at,
        reason: format!("unknown ext type {t}"),
      }),
    }
  }

  /// The header of a structural array (inside an ext payload): its item count.
  fn structural_array(&mut self, what: &str) -> Result<usize> {
    let at = self.pos;
    match self.head()? {
      Head::Array(n) => Ok(n),
      _ => Err(self.error_at(at, format!("{what} payload is not a MessagePack array"))),
    }
  }

  /// A string, `str`, `STRING16` or `LATIN1`.
  fn string(&mut self, depth: usize, what: &str) -> Result<Vec<u16>> {
    let at = self.pos;
    match self.value(depth)? {
      Value::String(units) => Ok(units),
      _ => Err(self.error_at(at, format!("{what} is not a string"))),
    }
  }

  /// An integer written in an int format (not float, not bigint) within `[0, limit)`.
  fn index(&mut self, limit: u64, what: &str) -> Result<Option<u32>> {
    let at = self.pos;
    let save = self.pos;
    match self.head()? {
      Head::Int(n) if n >= 0 && (n as u64) < limit => Ok(Some(n as u32)),
      Head::Int(n) => Err(self.error_at(at, format!("{what} {n} out of range"))),
      _ => {
        self.pos = save;
        Ok(None)
      }
    }
  }

  /// Payloads made of values: REGEXP, MAP, SET, ERROR, ARRAY, BOXED. `number` is this object's number.
  fn structured(&mut self, at: usize, t: i8, number: u64, depth: usize) -> Result<Value> {
    let inner = depth + 1;
    match t {
      ext::REGEXP => {
        if self.structural_array("REGEXP")? != 2 {
          return Err(self.error_at(at, "REGEXP payload must hold 2 items"));
        }
        let source = self.string(inner, "REGEXP source")?;
        let flags_at = self.pos;
        let flags = self.string(inner, "REGEXP flags")?;
        // Only the flags are checked; whether the pattern compiles is for a JavaScript RegExp to say.
        check_regexp_flags(&flags).map_err(|reason| self.error_at(flags_at, reason))?;
        Ok(Value::RegExp { source, flags })
      }
      ext::MAP => {
        let n = self.structural_array("MAP")?;
        if n % 2 != 0 {
          return Err(self.error_at(at, format!("MAP payload holds {n} items, an odd count")));
        }
        let mut entries = Vec::with_capacity(n / 2);
        for _ in 0..n / 2 {
          let k = self.value(inner)?;
          entries.push((k, self.value(inner)?));
        }
        Ok(Value::Map(entries))
      }
      ext::SET => {
        let n = self.structural_array("SET")?;
        let mut items = Vec::with_capacity(n);
        for _ in 0..n {
          items.push(self.value(inner)?);
        }
        Ok(Value::Set(items))
      }
      ext::ERROR => self.error(at, inner),
      ext::ARRAY => {
        let n = self.structural_array("ARRAY")?;
        if n % 2 == 0 {
          return Err(self.error_at(
            at,
            format!("ARRAY payload holds {n} items, it must be an odd count"),
          ));
        }
        let length_at = self.pos;
        let length = match self.value(inner)? {
          Value::Number(l) if l.fract() == 0.0 && (0.0..=4_294_967_295.0).contains(&l) => l as u32,
          _ => {
            return Err(self.error_at(length_at, "ARRAY length is not an integer in [0, 2^32-1]"))
          }
        };
        let mut entries = Vec::with_capacity(n / 2);
        for _ in 0..n / 2 {
          let key_at = self.pos;
          let key = match self.index(u64::from(length), "ARRAY index")? {
            Some(i) => ArrayKey::Index(i),
            None => match self.value(inner)? {
              Value::String(name) => {
                if name == utf16("length") {
                  return Err(self.error_at(key_at, "ARRAY property key \"length\""));
                }
                if canonical_index(&name) {
                  return Err(self.error_at(key_at, "ARRAY index written as a string"));
                }
                ArrayKey::Name(name)
              }
              _ => {
                return Err(
                  self.error_at(key_at, "ARRAY key is neither an integer index nor a string"),
                )
              }
            },
          };
          entries.push((key, self.value(inner)?));
        }
        Ok(Value::SparseArray { length, entries })
      }
      ext::BOXED => {
        if self.structural_array("BOXED")? != 1 {
          return Err(self.error_at(at, "BOXED payload must hold 1 item"));
        }
        self.open_boxed.push(number);
        let inner_at = self.pos;
        let v = self.value(inner)?;
        self.open_boxed.pop();
        match v {
          Value::Number(_) | Value::String(_) | Value::Bool(_) | Value::BigInt { .. } => {
            Ok(Value::Boxed(Box::new(v)))
          }
          _ => Err(self.error_at(
            inner_at,
            "BOXED value is not a number, string, boolean or bigint",
          )),
        }
      }
      _ => unreachable!("not a structured ext type: {t}"),
    }
  }

  fn error(&mut self, at: usize, inner: usize) -> Result<Value> {
    let header_at = self.pos;
    let n = match self.head()? {
      Head::Map(n) => n,
      _ => return Err(self.error_at(header_at, "ERROR payload is not a MessagePack map")),
    };
    if !(1..=4).contains(&n) {
      return Err(self.error_at(at, format!("ERROR payload has {n} entries, not 1 to 4")));
    }
    let key_at = self.pos;
    if self.string(inner, "ERROR key")? != utf16("name") {
      return Err(self.error_at(key_at, "ERROR payload does not start with \"name\""));
    }
    let name_at = self.pos;
    let name_units = self.string(inner, "ERROR name")?;
    let Some(name) = ErrorName::from_units(&name_units) else {
      return Err(self.error_at(
        name_at,
        format!(
          "unknown ERROR name {:?}",
          String::from_utf16_lossy(&name_units)
        ),
      ));
    };
    let (mut message, mut stack, mut cause) = (None, None, None);
    let mut last = 0;
    for _ in 1..n {
      let key_at = self.pos;
      let key = self.string(inner, "ERROR key")?;
      let field = ["message", "stack", "cause"]
        .iter()
        .position(|f| utf16(f) == key)
        .map(|i| i + 1);
      match field {
        Some(f) if f > last => last = f,
        _ => {
          return Err(self.error_at(
            key_at,
            format!("unexpected ERROR field {:?} (allowed: message, stack, cause, in that order, once each)", String::from_utf16_lossy(&key)),
          ))
        }
      }
      match last {
        1 => message = Some(self.string(inner, "ERROR message")?),
        2 => stack = Some(self.string(inner, "ERROR stack")?),
        _ => cause = Some(Box::new(self.value(inner)?)),
      }
    }
    Ok(Value::Error {
      name,
      message,
      stack,
      cause,
    })
  }
}

/// A MessagePack integer as a JavaScript value: a Number if it is safe, else a BigInt (§5.2.3).
fn integer(n: i128) -> Value {
  if n.unsigned_abs() <= u128::from(MAX_SAFE_INTEGER) {
    Value::Number(n as f64)
  } else {
    Value::bigint(n)
  }
}

/// The time value a `Date` holds for `t`: NaN is one NaN, and −0 is +0 (TimeClip).
fn time_value(t: f64) -> f64 {
  if t.is_nan() {
    f64::NAN
  } else {
    t + 0.0
  }
}

/// A MessagePack timestamp (32, 64 or 96) as milliseconds, sub-millisecond nanoseconds truncated.
fn timestamp_ms(payload: &[u8]) -> std::result::Result<f64, String> {
  let be = |bytes: &[u8]| bytes.iter().fold(0u64, |acc, &b| (acc << 8) | u64::from(b));
  let (seconds, nanos): (i128, u64) = match payload.len() {
    4 => (i128::from(be(payload)), 0),
    8 => {
      let all = be(payload);
      (i128::from(all & 0x3_ffff_ffff), all >> 34)
    }
    12 => (i128::from(be(&payload[4..]) as i64), be(&payload[..4])),
    n => {
      return Err(format!(
        "timestamp payload must be 4, 8 or 12 bytes, got {n}"
      ))
    }
  };
  if nanos >= 1_000_000_000 {
    return Err(format!("timestamp nanoseconds {nanos} not below 10^9"));
  }
  let ms = seconds * 1000 + i128::from(nanos / 1_000_000);
  if ms.unsigned_abs() > 8_640_000_000_000_000 {
    return Err("timestamp outside the Date range".into());
  }
  Ok(ms as f64)
}

/// Regular-expression flags: each of `dgimsuyv` at most once, and not both `u` and `v`.
fn check_regexp_flags(flags: &[u16]) -> std::result::Result<(), String> {
  let mut seen = 0u32;
  for &unit in flags {
    let Some(bit) = "dgimsuyv".encode_utf16().position(|f| f == unit) else {
      return Err(format!(
        "REGEXP flags {:?}: unknown flag",
        String::from_utf16_lossy(flags)
      ));
    };
    if seen & (1 << bit) != 0 {
      return Err(format!(
        "REGEXP flags {:?}: repeated flag",
        String::from_utf16_lossy(flags)
      ));
    }
    seen |= 1 << bit;
  }
  let (u, v) = (1 << 5, 1 << 7);
  if seen & u != 0 && seen & v != 0 {
    return Err("REGEXP flags: u and v together".into());
  }
  Ok(())
}

/// Whether a property name is a canonical array index ("0", "17", … below 2³² − 1).
fn canonical_index(name: &[u16]) -> bool {
  let digits = name
    .iter()
    .all(|&c| (u16::from(b'0')..=u16::from(b'9')).contains(&c));
  if name.is_empty() || !digits || (name.len() > 1 && name[0] == u16::from(b'0')) || name.len() > 10
  {
    return false;
  }
  let n = name
    .iter()
    .fold(0u64, |acc, &c| acc * 10 + u64::from(c - u16::from(b'0')));
  n < 4_294_967_295
}

// ---------------------------------------------------------------------------------------------------------
// Encoding

/// Encodes a value in the canonical form of §5.2.2: the smallest variant of every header.
pub fn encode(value: &Value) -> Vec<u8> {
  let mut out = Vec::new();
  write_value(&mut out, value);
  out
}

fn write_value(out: &mut Vec<u8>, value: &Value) {
  match value {
    Value::Undefined => out.extend_from_slice(&[0xd4, 0x00, 0x00]),
    Value::Null => out.push(0xc0),
    Value::Bool(b) => out.push(if *b { 0xc3 } else { 0xc2 }),
    Value::Number(n) => write_number(out, *n),
    Value::BigInt {
      negative,
      magnitude,
    } => write_bigint(out, *negative, magnitude),
    Value::String(units) => write_string(out, units),
    Value::Object(entries) => {
      write_container_header(out, entries.len(), 0x80, 0xde);
      for (k, v) in entries {
        write_string(out, k);
        write_value(out, v);
      }
    }
    Value::Array(items) => {
      write_container_header(out, items.len(), 0x90, 0xdc);
      for item in items {
        write_value(out, item);
      }
    }
    Value::SparseArray { length, entries } => write_structured(out, ext::ARRAY, |p| {
      write_container_header(p, 1 + 2 * entries.len(), 0x90, 0xdc);
      write_number(p, f64::from(*length));
      for (k, v) in entries {
        match k {
          ArrayKey::Index(i) => write_number(p, f64::from(*i)),
          ArrayKey::Name(name) => write_string(p, name),
        }
        write_value(p, v);
      }
    }),
    Value::Buffer(bytes) => {
      write_sized(out, bytes.len(), [0xc4, 0xc5, 0xc6]);
      out.extend_from_slice(bytes);
    }
    Value::Date(t) => {
      write_ext_header(out, ext::DATE, 8);
      out.extend_from_slice(&time_value(*t).to_bits().to_be_bytes());
    }
    Value::RegExp { source, flags } => write_structured(out, ext::REGEXP, |p| {
      p.push(0x92);
      write_string(p, source);
      write_string(p, flags);
    }),
    Value::Map(entries) => write_structured(out, ext::MAP, |p| {
      write_container_header(p, 2 * entries.len(), 0x90, 0xdc);
      for (k, v) in entries {
        write_value(p, k);
        write_value(p, v);
      }
    }),
    Value::Set(items) => write_structured(out, ext::SET, |p| {
      write_container_header(p, items.len(), 0x90, 0xdc);
      for item in items {
        write_value(p, item);
      }
    }),
    Value::Error {
      name,
      message,
      stack,
      cause,
    } => write_structured(out, ext::ERROR, |p| {
      let n = 1
        + usize::from(message.is_some())
        + usize::from(stack.is_some())
        + usize::from(cause.is_some());
      write_container_header(p, n, 0x80, 0xde);
      write_string(p, &utf16("name"));
      write_string(p, &utf16(name.as_str()));
      if let Some(message) = message {
        write_string(p, &utf16("message"));
        write_string(p, message);
      }
      if let Some(stack) = stack {
        write_string(p, &utf16("stack"));
        write_string(p, stack);
      }
      if let Some(cause) = cause {
        write_string(p, &utf16("cause"));
        write_value(p, cause);
      }
    }),
    Value::Boxed(inner) => write_structured(out, ext::BOXED, |p| {
      p.push(0x91);
      write_value(p, inner);
    }),
    Value::ArrayBuffer(bytes) => write_ext(out, ext::ARRAYBUFFER, bytes),
    Value::DataView(bytes) => write_ext(out, ext::DATAVIEW, bytes),
    Value::Typed { kind, bytes } => write_ext(out, kind.ext_type(), bytes),
    Value::Ref(i) => {
      let bytes = i.to_be_bytes();
      let skip = if *i < 0x100 {
        3
      } else if *i < 0x1_0000 {
        2
      } else {
        0
      };
      write_ext(out, ext::REF, &bytes[skip..]);
    }
  }
}

/// A number: the smallest int format if it is an integer in [−2³¹, 2³²) other than −0, else float 64.
fn write_number(out: &mut Vec<u8>, n: f64) {
  let is_int = n.fract() == 0.0 && (-2_147_483_648.0..4_294_967_296.0).contains(&n);
  if !is_int || (n == 0.0 && n.is_sign_negative()) {
    out.push(0xcb);
    out.extend_from_slice(&n.to_bits().to_be_bytes());
    return;
  }
  let i = n as i64;
  match i {
    0..=0x7f => out.push(i as u8),
    -32..=-1 => out.push(i as i8 as u8),
    0x80..=0xff => out.extend_from_slice(&[0xcc, i as u8]),
    0x100..=0xffff => {
      out.push(0xcd);
      out.extend_from_slice(&(i as u16).to_be_bytes());
    }
    0x1_0000.. => {
      out.push(0xce);
      out.extend_from_slice(&(i as u32).to_be_bytes());
    }
    -0x80..=-33 => out.extend_from_slice(&[0xd0, i as i8 as u8]),
    -0x8000..=-0x81 => {
      out.push(0xd1);
      out.extend_from_slice(&(i as i16).to_be_bytes());
    }
    _ => {
      out.push(0xd2);
      out.extend_from_slice(&(i as i32).to_be_bytes());
    }
  }
}

fn write_bigint(out: &mut Vec<u8>, negative: bool, magnitude: &[u8]) {
  let first = magnitude
    .iter()
    .position(|&b| b != 0)
    .unwrap_or(magnitude.len());
  let magnitude = &magnitude[first..];
  let mut payload = Vec::with_capacity(1 + magnitude.len());
  payload.push(u8::from(negative && !magnitude.is_empty()));
  payload.extend_from_slice(magnitude);
  write_ext(out, ext::BIGINT, &payload);
}

/// A string, as native-ipc writes it to a peer that takes `LATIN1` (§3): UTF-8 `str` when it is well-formed
/// and either ASCII, shorter than 32 units, or shorter than 64 with fewer UTF-8 bytes than two per unit; else
/// `LATIN1` when no unit is above U+00FF (below 4096 units only when at least one UTF-8 byte in 128 is beyond
/// one per unit), and `STRING16` when it is not well-formed, has 4096 units or more, or at least one UTF-8 byte in
/// 8 beyond one per unit; else `str`.
fn write_string(out: &mut Vec<u8>, units: &[u16]) {
  let len = units.len();
  let text = String::from_utf16(units).ok();
  let ascii = units.iter().all(|&u| u < 0x80);
  // UTF-8 bytes beyond one per unit (a surrogate pair: 4 bytes for 2 units); any for a string that is not
  // well-formed.
  let extra = text.as_ref().map_or(usize::MAX, |t| t.len() - len);
  if !ascii && (len >= 64 || (len >= 32 && extra >= len)) {
    let one_byte = units.iter().all(|&u| u <= 0xff);
    if one_byte && (len >= 4096 || extra.saturating_mul(128) >= len) {
      let bytes: Vec<u8> = units.iter().map(|&u| u as u8).collect();
      write_ext(out, ext::LATIN1, &bytes);
      return;
    }
    if len >= 4096 || extra.saturating_mul(8) >= len {
      let payload: Vec<u8> = units.iter().flat_map(|u| u.to_le_bytes()).collect();
      write_ext(out, ext::STRING16, &payload);
      return;
    }
  }
  match text {
    Some(text) => {
      if text.len() < 32 {
        out.push(0xa0 | text.len() as u8);
      } else {
        write_sized(out, text.len(), [0xd9, 0xda, 0xdb]);
      }
      out.extend_from_slice(text.as_bytes());
    }
    None => {
      let payload: Vec<u8> = units.iter().flat_map(|u| u.to_le_bytes()).collect();
      write_ext(out, ext::STRING16, &payload);
    }
  }
}

/// An array or map header: fix form below 16, else the 16- or 32-bit form (`c16 + 1`).
fn write_container_header(out: &mut Vec<u8>, n: usize, fix: u8, c16: u8) {
  if n < 16 {
    out.push(fix | n as u8);
  } else if n < 0x1_0000 {
    out.push(c16);
    out.extend_from_slice(&(n as u16).to_be_bytes());
  } else {
    out.push(c16 + 1);
    out.extend_from_slice(&(n as u32).to_be_bytes());
  }
}

/// A header with an 8-, 16- or 32-bit length (str8/16/32, bin8/16/32).
fn write_sized(out: &mut Vec<u8>, n: usize, codes: [u8; 3]) {
  if n < 0x100 {
    out.extend_from_slice(&[codes[0], n as u8]);
  } else if n < 0x1_0000 {
    out.push(codes[1]);
    out.extend_from_slice(&(n as u16).to_be_bytes());
  } else {
    out.push(codes[2]);
    out.extend_from_slice(&(n as u32).to_be_bytes());
  }
}

/// The smallest ext header: fixext for 1, 2, 4, 8 and 16 bytes, else ext8/16/32.
fn write_ext_header(out: &mut Vec<u8>, t: i8, len: usize) {
  match len {
    1 => out.push(0xd4),
    2 => out.push(0xd5),
    4 => out.push(0xd6),
    8 => out.push(0xd7),
    16 => out.push(0xd8),
    _ => write_sized(out, len, [0xc7, 0xc8, 0xc9]),
  }
  out.push(t as u8);
}

fn write_ext(out: &mut Vec<u8>, t: i8, payload: &[u8]) {
  write_ext_header(out, t, payload.len());
  out.extend_from_slice(payload);
}

/// An ext whose payload is made of values, written first to learn its length.
fn write_structured(out: &mut Vec<u8>, t: i8, body: impl FnOnce(&mut Vec<u8>)) {
  let mut payload = Vec::new();
  body(&mut payload);
  write_ext(out, t, &payload);
}

#[cfg(test)]
mod tests {
  use super::*;

  /// Bytes from hex, ignoring whitespace.
  fn hex(text: &str) -> Vec<u8> {
    let digits: Vec<u8> = text.bytes().filter(|b| !b.is_ascii_whitespace()).collect();
    assert!(digits.len().is_multiple_of(2), "odd hex: {text}");
    digits
      .chunks(2)
      .map(|pair| {
        u8::from_str_radix(std::str::from_utf8(pair).unwrap(), 16)
          .unwrap_or_else(|_| panic!("bad hex: {text}"))
      })
      .collect()
  }

  fn to_hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
  }

  fn s(text: &str) -> Value {
    Value::string(text)
  }

  fn n(x: f64) -> Value {
    Value::Number(x)
  }

  /// Runs `f` on a thread with a large stack: deep values recurse once per level when decoded, encoded,
  /// compared and dropped.
  fn with_big_stack(f: impl FnOnce() + Send + 'static) {
    std::thread::Builder::new()
      .stack_size(256 << 20)
      .spawn(f)
      .unwrap()
      .join()
      .unwrap();
  }

  fn assert_rejects(bytes: &[u8], wanted: &str) {
    match decode(bytes) {
      Ok(v) => panic!(
        "{} decoded to {v:?}, expected an error about {wanted:?}",
        to_hex(bytes)
      ),
      Err(e) => assert!(
        e.reason.contains(wanted),
        "{}: error {e} does not mention {wanted:?}",
        to_hex(bytes)
      ),
    }
  }

  fn both_ways(value: &Value, bytes: &str) {
    let bytes = hex(bytes);
    assert_eq!(to_hex(&encode(value)), to_hex(&bytes), "encoding {value:?}");
    assert_eq!(
      &decode(&bytes).unwrap_or_else(|e| panic!("{}: {e}", to_hex(&bytes))),
      value
    );
  }

  #[test]
  fn spec_examples() {
    both_ways(
      &Value::object([
        ("k", s("t")),
        ("i", n(123.0)),
        ("payload", s("hello world")),
      ]),
      "83 a1 6b a1 74 a1 69 7b a7 70 61 79 6c 6f 61 64 ab 68 65 6c 6c 6f 20 77 6f 72 6c 64",
    );
    both_ways(&Value::Undefined, "d4 00 00");
    both_ways(&n(-0.0), "cb 80 00 00 00 00 00 00 00");
    both_ways(&n(300.0), "cd 01 2c");
    both_ways(&n(-200.0), "d1 ff 38");
    both_ways(&n(4294967296.0), "cb 41 f0 00 00 00 00 00 00");
    both_ways(&Value::bigint(-256), "c7 03 02 01 01 00");
    both_ways(&Value::bigint(0), "d4 02 00");
    both_ways(&Value::String(vec![0x61, 0xd800]), "d6 03 61 00 00 d8");
    both_ways(&Value::Date(0.0), "d7 04 00 00 00 00 00 00 00 00");
    both_ways(
      &Value::RegExp {
        source: utf16("a+"),
        flags: utf16("g"),
      },
      "c7 06 05 92 a2 61 2b a1 67",
    );
    both_ways(&Value::Map(vec![(n(1.0), s("x"))]), "d6 06 92 01 a1 78");
    both_ways(&Value::Set(vec![s("a")]), "c7 03 07 91 a1 61");
    both_ways(
      &Value::object([("self", Value::Ref(0))]),
      "81 a4 73 65 6c 66 d4 01 00",
    );
    both_ways(
      &Value::Array(vec![Value::object([("n", n(1.0))]), Value::Ref(1)]),
      "92 81 a1 6e 01 d4 01 01",
    );
    both_ways(
      &Value::SparseArray {
        length: 3,
        entries: vec![(ArrayKey::Index(0), n(1.0)), (ArrayKey::Index(2), n(3.0))],
      },
      "c7 06 09 95 03 00 01 02 03",
    );
    both_ways(&Value::Buffer(vec![1, 2]), "c4 02 01 02");
    both_ways(
      &Value::Typed {
        kind: TypedKind::Uint16,
        bytes: vec![1, 0, 2, 1],
      },
      "d6 14 01 00 02 01",
    );
    both_ways(&Value::Boxed(Box::new(n(5.0))), "d5 0a 91 05");
    both_ways(
      &Value::Error {
        name: ErrorName::TypeError,
        message: Some(utf16("bad")),
        stack: Some(utf16("TypeError: bad")),
        cause: None,
      },
      "c7 31 08 83 a4 6e61 6d65 a9 5479 7065 4572 726f 72 a7 6d65 7373 6167 65 a3 6261 64 a5 7374 6163 6b ae 5479 7065 4572 726f 723a 2062 6164",
    );
  }

  /// One line of `__test__/vectors/advanced.txt`.
  struct Vector {
    kind: &'static str,
    name: &'static str,
    bytes: Vec<u8>,
    canonical: Vec<u8>,
  }

  fn vectors() -> Vec<Vector> {
    let text = include_str!("../__test__/vectors/advanced.txt");
    let mut out = Vec::new();
    for line in text
      .lines()
      .filter(|l| !l.trim().is_empty() && !l.starts_with('#'))
    {
      let fields: Vec<&'static str> = line.split('\t').collect();
      let (kind, name, payload) = (
        fields[0],
        fields[1],
        hex(fields.get(2).copied().unwrap_or("")),
      );
      let canonical = match kind {
        "valid" => {
          assert_eq!(fields.len(), 4, "{line}");
          payload.clone()
        }
        "accept" => {
          assert_eq!(fields.len(), 5, "{line}");
          hex(fields[3])
        }
        "reject" | "reject-js" => {
          assert!(fields.len() <= 3, "{line}");
          Vec::new()
        }
        _ => panic!("unknown vector kind in {line:?}"),
      };
      out.push(Vector {
        kind,
        name,
        bytes: payload,
        canonical,
      });
    }
    out
  }

  #[test]
  fn shared_vectors() {
    let all = vectors();
    assert!(all.len() > 200, "only {} vectors", all.len());
    for v in &all {
      let decoded = decode(&v.bytes);
      match v.kind {
        "valid" | "accept" => {
          let value = decoded.unwrap_or_else(|e| panic!("vector {:?}: {e}", v.name));
          assert_eq!(
            to_hex(&encode(&value)),
            to_hex(&v.canonical),
            "vector {:?} re-encoded",
            v.name
          );
          // The canonical form decodes to the same value.
          assert_eq!(decode(&v.canonical).unwrap(), value, "vector {:?}", v.name);
        }
        "reject" => {
          if let Ok(value) = decoded {
            panic!("vector {:?} decoded to {value:?}", v.name);
          }
        }
        // Only a JavaScript RegExp can refuse these patterns; the layout is right.
        _ => assert!(
          matches!(decoded, Ok(Value::RegExp { .. })),
          "vector {:?}: {decoded:?}",
          v.name
        ),
      }
    }
  }

  /// Prints why each reject vector is refused (`cargo test -- --nocapture reject_reasons`), to review that
  /// each fails for the rule it was written for.
  #[test]
  fn reject_reasons() {
    for v in vectors().iter().filter(|v| v.kind == "reject") {
      println!("{:<55} {}", v.name, decode(&v.bytes).unwrap_err());
    }
  }

  #[test]
  fn rejects_every_rule_of_5_2_8() {
    // truncated input, bytes after the value
    assert_rejects(&[], "truncated value");
    assert_rejects(&hex("81 a1 61"), "truncated value");
    assert_rejects(&hex("92 01"), "array claims 2");
    assert_rejects(&hex("cb 00 00"), "truncated float 64");
    assert_rejects(&hex("c0 c0"), "trailing bytes");
    // 0xc1, unknown ext types
    assert_rejects(&hex("c1"), "0xc1");
    assert_rejects(&hex("d4 0d 00"), "unknown ext type 13");
    assert_rejects(&hex("d4 1c 00"), "unknown ext type 28");
    assert_rejects(&hex("d4 fe 00"), "unknown ext type -2");
    // ext payloads without exactly their layout
    assert_rejects(&hex("d4 00 01"), "UNDEFINED payload");
    assert_rejects(&hex("c7 03 01 00 00 00"), "REF payload");
    assert_rejects(&hex("c7 03 03 61 00 62"), "odd length");
    assert_rejects(&hex("d6 04 00 00 00 00"), "DATE payload must be 8 bytes");
    assert_rejects(
      &hex("c7 03 05 91 a1 61"),
      "REGEXP payload must hold 2 items",
    );
    assert_rejects(&hex("d5 06 91 01"), "odd count");
    assert_rejects(&hex("d5 07 90 c0"), "trailing bytes inside");
    assert_rejects(&hex("d4 07 c0"), "not a MessagePack array");
    assert_rejects(&hex("d4 08 80"), "not 1 to 4");
    assert_rejects(
      &hex("c7 0a 08 81 a7 6d657373616765 a0"),
      "does not start with \"name\"",
    );
    assert_rejects(
      &hex("c7 0f 08 81 a4 6e616d65 a8 4661696c75726521"),
      "unknown ERROR name",
    );
    assert_rejects(
      &hex("c7 1c 08 83 a46e616d65 a54572726f72 a5737461636b a0 a76d657373616765 a0"),
      "unexpected ERROR field",
    );
    assert_rejects(&hex("c7 03 09 92 01 00"), "odd count");
    assert_rejects(&hex("c7 04 09 93 01 01 c0"), "ARRAY index 1 out of range");
    assert_rejects(
      &hex("c7 05 09 93 01 a1 30 c0"),
      "ARRAY index written as a string",
    );
    assert_rejects(&hex("d5 0a 91 c0"), "BOXED value is not");
    assert_rejects(&hex("c7 03 14 01 02 03"), "not a multiple of 2");
    assert_rejects(&hex("d5 ff 00 00"), "timestamp payload");
    // lengths above the remaining bytes
    assert_rejects(&hex("a5 61"), "str claims 5");
    assert_rejects(&hex("c4 05 00"), "bin claims 5");
    assert_rejects(&hex("dc 00 05 01"), "array claims 5");
    assert_rejects(&hex("de 00 02 a1 61 01"), "map claims 2 entries");
    assert_rejects(&hex("c7 05 06 92"), "ext claims 5");
    assert_rejects(&hex("c7 05 07 dd 00 00 00 05"), "array claims 5");
    // invalid UTF-8
    for bad in [
      "a1 80",
      "a2 c0 80",
      "a3 ed a0 80",
      "a4 f4 90 80 80",
      "a1 c3",
      "a3 e0 80 80",
    ] {
      assert_rejects(&hex(bad), "invalid UTF-8");
    }
    // map keys that are not strings
    for key in [
      "01",
      "c0",
      "90",
      "d4 00 00",
      "d4 02 00",
      "c4 00",
      "cb 0000000000000000",
    ] {
      assert_rejects(&hex(&format!("81 {key} 01")), "key that is not a string");
    }
    // back-references
    assert_rejects(&hex("d4 01 00"), "only 0 objects started");
    assert_rejects(&hex("92 d4 01 01 90"), "only 1 objects started");
    assert_rejects(&hex("d6 0a 91 d4 01 00"), "a BOXED still being decoded");
    assert_rejects(&hex("92 90 d6 0a 91 d4 01 00"), "BOXED value is not");
    // BIGINT
    assert_rejects(&hex("c7 00 02"), "empty payload");
    assert_rejects(&hex("d5 02 02 01"), "sign byte");
    assert_rejects(&hex("c7 03 02 00 00 01"), "leading 00");
    assert_rejects(&hex("d4 02 01"), "negative zero");
    // DATE
    assert_rejects(&hex("d7 04 3fe0000000000000"), "neither NaN nor an integer");
    assert_rejects(&hex("d7 04 433eb208c2dc0002"), "neither NaN nor an integer");
    assert_rejects(&hex("d7 04 7ff0000000000000"), "neither NaN nor an integer");
    assert_rejects(&hex("c7 0c ff 3b9aca00 0000000000000000"), "nanoseconds");
    assert_rejects(
      &hex("c7 0c ff 00000000 000007dba8218001"),
      "outside the Date range",
    );
    // REGEXP (flags only: the pattern is left to a JavaScript RegExp)
    assert_rejects(&hex("c7 05 05 92 a1 61 a1 78"), "unknown flag");
    assert_rejects(&hex("c7 06 05 92 a1 61 a2 67 67"), "repeated flag");
    assert_rejects(&hex("c7 06 05 92 a1 61 a2 75 76"), "u and v");
    // nesting deeper than the limit: see deep_nesting
  }

  #[test]
  fn error_display_names_the_problem_and_offset() {
    let e = decode(&hex("92 01 c1")).unwrap_err();
    assert_eq!(e.offset, 2);
    assert_eq!(
      e.to_string(),
      "invalid 'advanced' payload at byte 2: the reserved byte 0xc1"
    );
    let e = decode(&hex("91 a1 ff")).unwrap_err();
    assert_eq!(e.offset, 1);
    assert!(e.to_string().contains("invalid UTF-8"), "{e}");
  }

  #[test]
  fn accepts_every_size_variant() {
    let a = s("abc");
    for bytes in [
      "a3 616263",
      "d9 03 616263",
      "da 0003 616263",
      "db 00000003 616263",
      "d6 03 6100 6200 6300 ff",
    ] {
      let bytes = hex(bytes);
      let cut = if bytes[0] == 0xd6 {
        bytes.len() - 1
      } else {
        bytes.len()
      };
      // The STRING16 form of "abc" is 6 bytes: take it through ext8 instead of a fixext.
      let bytes = if bytes[0] == 0xd6 {
        hex("c7 06 03 6100 6200 6300")
      } else {
        bytes[..cut].to_vec()
      };
      assert_eq!(decode(&bytes).unwrap(), a, "{}", to_hex(&bytes));
    }
    for bytes in [
      "d4 0b 07",
      "c7 01 0b 07",
      "c8 0001 0b 07",
      "c9 00000001 0b 07",
    ] {
      assert_eq!(
        decode(&hex(bytes)).unwrap(),
        Value::ArrayBuffer(vec![7]),
        "{bytes}"
      );
    }
    for bytes in ["c4 01 07", "c5 0001 07", "c6 00000001 07"] {
      assert_eq!(
        decode(&hex(bytes)).unwrap(),
        Value::Buffer(vec![7]),
        "{bytes}"
      );
    }
    for bytes in ["91 c0", "dc 0001 c0", "dd 00000001 c0"] {
      assert_eq!(
        decode(&hex(bytes)).unwrap(),
        Value::Array(vec![Value::Null]),
        "{bytes}"
      );
    }
    for bytes in ["81 a1 61 c0", "de 0001 a1 61 c0", "df 00000001 a1 61 c0"] {
      assert_eq!(
        decode(&hex(bytes)).unwrap(),
        Value::object([("a", Value::Null)]),
        "{bytes}"
      );
    }
    for bytes in [
      "07",
      "cc 07",
      "cd 0007",
      "ce 00000007",
      "cf 0000000000000007",
      "d0 07",
      "d1 0007",
      "d2 00000007",
      "d3 0000000000000007",
      "ca 40e00000",
      "cb 401c000000000000",
    ] {
      assert_eq!(decode(&hex(bytes)).unwrap(), n(7.0), "{bytes}");
    }
    // Integers beyond ±(2^53 − 1) become bigints, never rounded numbers.
    assert_eq!(
      decode(&hex("cf ffffffffffffffff")).unwrap(),
      Value::bigint(u64::MAX.into())
    );
    assert_eq!(
      decode(&hex("d3 ffe0000000000000")).unwrap(),
      Value::bigint(-(1i128 << 53))
    );
    assert_eq!(
      decode(&hex("d3 ffe0000000000001")).unwrap(),
      n(-9007199254740991.0)
    );
  }

  #[test]
  fn four_billion_element_headers_fail_fast() {
    let start = std::time::Instant::now();
    for bytes in [
      "dd ffffffff",
      "df ffffffff",
      "db ffffffff",
      "c6 ffffffff",
      "c9 ffffffff 06",
      "c7 05 07 dd ffffffff",
      "c7 05 06 dd fffffffe",
      "91 dd ffffffff 00 00 00",
      "c7 05 08 df ffffffff",
    ] {
      let e = decode(&hex(bytes)).unwrap_err();
      assert!(e.reason.contains("claims"), "{bytes}: {e}");
    }
    assert!(
      start.elapsed() < std::time::Duration::from_secs(1),
      "took {:?}",
      start.elapsed()
    );
  }

  #[test]
  fn canonical_numbers() {
    let cases: &[(f64, &str)] = &[
      (0.0, "00"),
      (127.0, "7f"),
      (128.0, "cc 80"),
      (255.0, "cc ff"),
      (256.0, "cd 0100"),
      (65535.0, "cd ffff"),
      (65536.0, "ce 00010000"),
      (4294967295.0, "ce ffffffff"),
      (-1.0, "ff"),
      (-32.0, "e0"),
      (-33.0, "d0 df"),
      (-128.0, "d0 80"),
      (-129.0, "d1 ff7f"),
      (-32768.0, "d1 8000"),
      (-32769.0, "d2 ffff7fff"),
      (-2147483648.0, "d2 80000000"),
      (-2147483649.0, "cb c1e0000000200000"),
      (0.5, "cb 3fe0000000000000"),
      (f64::INFINITY, "cb 7ff0000000000000"),
      (f64::NEG_INFINITY, "cb fff0000000000000"),
      (f64::NAN, "cb 7ff8000000000000"),
    ];
    for &(x, bytes) in cases {
      both_ways(&n(x), bytes);
    }
  }

  #[test]
  fn canonical_strings_and_headers() {
    // Lengths at the edges of fixstr/str8/str16/str32.
    for (len, header) in [
      (31, "bf"),
      (32, "d9 20"),
      (255, "d9 ff"),
      (256, "da 0100"),
      (65535, "da ffff"),
      (65536, "db 00010000"),
    ] {
      let text = "a".repeat(len);
      let bytes = encode(&s(&text));
      assert_eq!(
        to_hex(&bytes[..bytes.len() - len]),
        to_hex(&hex(header)),
        "{len}"
      );
      assert_eq!(decode(&bytes).unwrap(), s(&text));
    }
    // Long non-ASCII text travels as LATIN1 from 4096 code units when none is above U+00FF, else as STRING16;
    // ASCII stays UTF-8 at any length.
    let long = "é".repeat(4096);
    let bytes = encode(&s(&long));
    assert_eq!(to_hex(&bytes[..5]), "c810000ee9");
    assert_eq!(bytes.len(), 4 + 4096);
    assert_eq!(decode(&bytes).unwrap(), s(&long));
    let beyond = format!("€{}", "é".repeat(4095));
    let bytes = encode(&s(&beyond));
    assert_eq!(to_hex(&bytes[..6]), "c8200003ac20");
    assert_eq!(decode(&bytes).unwrap(), s(&beyond));
    // From 64 code units (32 with two UTF-8 bytes or more per unit), shorter non-ASCII text: LATIN1 where one
    // UTF-8 byte in 128 or more is beyond one per unit, STRING16 where one in 8 is, else UTF-8.
    for (text, header) in [
      ("é".repeat(4095), "c8 0fff 0e"),
      ("é".repeat(63), "c7 3f 0e"),
      ("é".repeat(64), "c7 40 0e"),
      (format!("{}é", "a".repeat(127)), "c7 80 0e"),
      (format!("{}é", "a".repeat(128)), "d9 82"),
      (format!("{}€", "a".repeat(63)), "d9 42"),
      ("€".repeat(64), "c7 80 03"),
      (format!("{}€", "a".repeat(47)), "d9 32"),
      (format!("{}€€", "a".repeat(62)), "d9 44"),
      // From 32 code units, text with two UTF-8 bytes or more per unit.
      ("€".repeat(32), "c7 40 03"),
      ("€".repeat(31), "d9 5d"),
      (format!("{}{}", "a".repeat(16), "€".repeat(16)), "c7 40 03"),
      (format!("{}{}", "a".repeat(17), "€".repeat(15)), "d9 3e"),
      ("é".repeat(32), "c7 20 0e"),
      ("é".repeat(31), "d9 3e"),
      (format!("{}€€€€", "a".repeat(60)), "c7 80 03"),
    ] {
      let bytes = encode(&s(&text));
      assert_eq!(
        to_hex(&bytes[..hex(header).len()]),
        to_hex(&hex(header)),
        "{text}"
      );
      assert_eq!(decode(&bytes).unwrap(), s(&text));
    }
    let ascii = "a".repeat(5000);
    assert_eq!(encode(&s(&ascii))[0], 0xda);
    // A well-formed surrogate pair is UTF-8; a lone or reversed one is STRING16.
    both_ways(&Value::String(vec![0xd83d, 0xde00]), "a4 f09f9880");
    both_ways(&Value::String(vec![0xde00, 0xd83d]), "d6 03 00de 3dd8");
    // Ext headers: fixext for 1, 2, 4, 8, 16 bytes, else the smallest ext8/16/32.
    for (len, header) in [
      (0, "c7 00 0b"),
      (1, "d4 0b"),
      (2, "d5 0b"),
      (3, "c7 03 0b"),
      (4, "d6 0b"),
      (8, "d7 0b"),
      (16, "d8 0b"),
      (17, "c7 11 0b"),
      (255, "c7 ff 0b"),
      (256, "c8 0100 0b"),
      (65536, "c9 00010000 0b"),
    ] {
      let bytes = encode(&Value::ArrayBuffer(vec![0; len]));
      assert_eq!(
        to_hex(&bytes[..bytes.len() - len]),
        to_hex(&hex(header)),
        "{len}"
      );
    }
    for (len, header) in [
      (0, "c4 00"),
      (255, "c4 ff"),
      (256, "c5 0100"),
      (65536, "c6 00010000"),
    ] {
      let bytes = encode(&Value::Buffer(vec![0; len]));
      assert_eq!(
        to_hex(&bytes[..bytes.len() - len]),
        to_hex(&hex(header)),
        "{len}"
      );
    }
    for (len, header) in [
      (15, "9f"),
      (16, "dc 0010"),
      (65535, "dc ffff"),
      (65536, "dd 00010000"),
    ] {
      let bytes = encode(&Value::Array(vec![Value::Null; len]));
      assert_eq!(
        to_hex(&bytes[..bytes.len() - len]),
        to_hex(&hex(header)),
        "{len}"
      );
    }
    // Back-references in 1, 2 or 4 bytes.
    assert_eq!(to_hex(&encode(&Value::Ref(255))), "d401ff");
    assert_eq!(to_hex(&encode(&Value::Ref(256))), "d5010100");
    assert_eq!(to_hex(&encode(&Value::Ref(65536))), "d60100010000");
    let mut items = vec![Value::Array(vec![]); 65537];
    items.push(Value::Ref(65536));
    let value = Value::Array(items);
    assert_eq!(decode(&encode(&value)).unwrap(), value);
    // A BigInt in non-canonical form is written canonically.
    assert_eq!(
      to_hex(&encode(&Value::BigInt {
        negative: true,
        magnitude: vec![]
      })),
      "d40200"
    );
    assert_eq!(
      to_hex(&encode(&Value::BigInt {
        negative: false,
        magnitude: vec![0, 0, 5]
      })),
      "d5020005"
    );
  }

  #[test]
  fn ref_numbering_follows_encoding_order() {
    // [ {a: Buffer}, Date, Set[ Map ], ref to each ]: numbers 0 (array), 1 (object), 2 (Buffer), 3 (Date),
    // 4 (Set), 5 (Map).
    let value = Value::Array(vec![
      Value::object([("a", Value::Buffer(vec![1]))]),
      Value::Date(5.0),
      Value::Set(vec![Value::Map(vec![])]),
      Value::Ref(5),
      Value::Ref(0),
    ]);
    let bytes = encode(&value);
    assert_eq!(decode(&bytes).unwrap(), value);
    let mut one_too_far = bytes.clone();
    let at = one_too_far.len() - 6;
    assert_eq!(one_too_far[at..at + 3], [0xd4, 0x01, 0x05]);
    one_too_far[at + 2] = 6;
    assert_rejects(&one_too_far, "only 6 objects started");
    // Non-objects take no number: undefined, bigint, STRING16, strings, numbers.
    let value = Value::Array(vec![
      Value::Undefined,
      Value::bigint(1),
      Value::String(vec![0xd800]),
      s("x"),
      n(1.0),
      Value::Ref(0),
    ]);
    assert_eq!(decode(&encode(&value)).unwrap(), value);
    assert_rejects(
      &encode(&Value::Array(vec![Value::Undefined, Value::Ref(1)])),
      "only 1 objects started",
    );
    // A timestamp is an object.
    assert_eq!(
      decode(&hex("92 d6 ff 00000001 d4 01 01")).unwrap(),
      Value::Array(vec![Value::Date(1000.0), Value::Ref(1)])
    );
  }

  #[test]
  fn deep_nesting() {
    with_big_stack(|| {
      // Arrays: the top level is depth 1, so 10000 nested arrays are fine and 10001 are not.
      let nested = |levels: usize, open: &[u8], close: &[u8]| {
        let mut bytes = Vec::new();
        for _ in 0..levels {
          bytes.extend_from_slice(open);
        }
        for _ in 0..levels {
          bytes.extend_from_slice(close);
        }
        bytes
      };
      let ok = nested(MAX_DEPTH - 1, &[0x91], &[]);
      let ok = [ok, vec![0x90]].concat();
      let value = decode(&ok).unwrap();
      assert_eq!(encode(&value), ok);
      let too_deep = [nested(MAX_DEPTH, &[0x91], &[]), vec![0x90]].concat();
      assert_rejects(&too_deep, "nested more than 10000");
      // Maps, and an object leaf (a Buffer) at the limit.
      let maps = [
        nested(MAX_DEPTH - 1, &[0x81, 0xa1, 0x61], &[]),
        vec![0xc4, 0x00],
      ]
      .concat();
      assert!(decode(&maps).is_ok());
      let maps = [
        nested(MAX_DEPTH, &[0x81, 0xa1, 0x61], &[]),
        vec![0xc4, 0x00],
      ]
      .concat();
      assert_rejects(&maps, "nested more than 10000");
      // A primitive below the deepest object adds no depth, nor does a REF.
      let leaf = [nested(MAX_DEPTH, &[0x91], &[]), vec![0x05]].concat();
      assert!(decode(&leaf).is_ok());
      let refs = [nested(MAX_DEPTH, &[0x91], &[]), vec![0xd4, 0x01, 0x00]].concat();
      assert!(decode(&refs).is_ok());
      // Values inside ext payloads count as inside that object: nested Sets built by the encoder.
      let mut set = Value::Set(vec![]);
      for _ in 1..MAX_DEPTH {
        set = Value::Set(vec![set]);
      }
      let bytes = encode(&set);
      assert_eq!(decode(&bytes).unwrap(), set);
      assert_rejects(&encode(&Value::Set(vec![set])), "nested more than 10000");
      // An error's cause, and a date at the limit.
      let mut error = Value::Date(0.0);
      for _ in 1..MAX_DEPTH {
        error = Value::Error {
          name: ErrorName::Error,
          message: None,
          stack: None,
          cause: Some(Box::new(error)),
        };
      }
      assert!(decode(&encode(&error)).is_ok());
      assert_rejects(
        &encode(&Value::Array(vec![error])),
        "nested more than 10000",
      );
    });
  }

  #[test]
  fn array_keys_must_use_an_int_format() {
    // §5.2.5: an ARRAY index is "an integer index in [0, length) (any int format)". A float 64 holding an
    // integer is not an int format, so it is refused (by lib/codec.js too; shared vectors in advanced.txt).
    assert_rejects(
      &hex("c7 0c 09 93 02 cb 3ff0000000000000 c3"),
      "neither an integer index nor a string",
    );
    assert_rejects(
      &hex("c7 0c 09 93 02 cb 8000000000000000 c3"),
      "neither an integer index nor a string",
    );
    assert_rejects(
      &hex("c7 08 09 93 02 ca 3f800000 c3"),
      "neither an integer index nor a string",
    );
    // Every int format is fine, uint64 included.
    let one = Value::SparseArray {
      length: 2,
      entries: vec![(ArrayKey::Index(1), Value::Bool(true))],
    };
    for key in [
      "01",
      "cc 01",
      "cd 0001",
      "ce 00000001",
      "cf 0000000000000001",
      "d0 01",
      "d3 0000000000000001",
    ] {
      let payload = hex(&format!("93 02 {key} c3"));
      let bytes = [vec![0xc7, payload.len() as u8, 0x09], payload].concat();
      assert_eq!(decode(&bytes).unwrap(), one, "{key}");
    }
    // The length is "an integer": any number format holding one is accepted (as by lib/codec.js).
    assert_eq!(
      decode(&hex("c7 0a 09 91 cb 4000000000000000")).unwrap(),
      Value::SparseArray {
        length: 2,
        entries: vec![]
      }
    );
  }

  #[test]
  fn timestamps() {
    assert_eq!(decode(&hex("d6 ff 00000000")).unwrap(), Value::Date(0.0));
    assert_eq!(
      decode(&hex("d7 ff 0098968000000001")).unwrap(),
      Value::Date(1002.0)
    );
    // 96-bit: negative seconds with nanoseconds (−1 s + 0.5 s = −500 ms).
    assert_eq!(
      decode(&hex("c7 0c ff 1dcd6500 ffffffffffffffff")).unwrap(),
      Value::Date(-500.0)
    );
    assert_eq!(
      decode(&hex("c7 0c ff 00000000 fffff82457de8000")).unwrap(),
      Value::Date(-8.64e15)
    );
    assert_rejects(
      &hex("c7 0c ff 00000000 fffff82457de7fff"),
      "outside the Date range",
    );
    assert_rejects(&hex("d7 ff ee6b280000000000"), "nanoseconds");
    assert_rejects(&hex("c7 0c ff ffffffff 0000000000000000"), "nanoseconds");
  }

  // --- round-trip property test -------------------------------------------------------------------------

  /// xorshift64*: small, deterministic, good enough to vary test inputs.
  struct Rng(u64);

  impl Rng {
    fn next(&mut self) -> u64 {
      self.0 ^= self.0 >> 12;
      self.0 ^= self.0 << 25;
      self.0 ^= self.0 >> 27;
      self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: u64) -> u64 {
      self.next() % n
    }

    fn chance(&mut self, one_in: u64) -> bool {
      self.below(one_in) == 0
    }
  }

  struct Gen {
    rng: Rng,
    /// Objects started so far, in encoding order: what a `Ref` may point to.
    objects: u32,
  }

  impl Gen {
    fn number(&mut self) -> f64 {
      match self.rng.below(8) {
        0 => [
          0.0,
          -0.0,
          f64::NAN,
          f64::INFINITY,
          f64::NEG_INFINITY,
          4294967296.0,
          -2147483649.0,
          0.1,
        ][self.rng.below(8) as usize],
        1 => f64::from_bits(self.rng.next()),
        2 => (self.rng.next() as i64 >> self.rng.below(64)) as f64,
        3 => self.rng.below(1 << 32) as f64,
        4 => -(self.rng.below(1 << 31) as f64),
        5 => self.rng.below(300) as f64 - 150.0,
        _ => (self.rng.next() as i64 >> 11) as f64 / 1024.0,
      }
    }

    fn units(&mut self) -> Vec<u16> {
      let len = if self.rng.chance(50) {
        4090 + self.rng.below(20)
      } else {
        self.rng.below(40)
      };
      let flavour = self.rng.below(4);
      let mut units = Vec::with_capacity(len as usize);
      while (units.len() as u64) < len {
        match (flavour, self.rng.below(10)) {
          (0, _) | (_, 0..=5) => units.push(0x20 + self.rng.below(0x5f) as u16),
          (1, _) | (_, 6) => units.push(0x80 + self.rng.below(0xd780) as u16),
          (2, _) | (_, 7) => {
            let c = 0x10000 + self.rng.below(0x100000) as u32;
            let mut pair = [0u16; 2];
            units.extend_from_slice(char::from_u32(c).unwrap().encode_utf16(&mut pair));
          }
          _ => units.push(0xd800 + self.rng.below(0x800) as u16),
        }
      }
      units
    }

    fn bytes(&mut self, multiple: usize) -> Vec<u8> {
      let len = if self.rng.chance(40) {
        300
      } else {
        self.rng.below(20) as usize
      };
      (0..len * multiple).map(|_| self.rng.next() as u8).collect()
    }

    fn bigint(&mut self) -> Value {
      let mut magnitude: Vec<u8> = (0..self.rng.below(20))
        .map(|_| self.rng.next() as u8)
        .collect();
      let first = magnitude
        .iter()
        .position(|&b| b != 0)
        .unwrap_or(magnitude.len());
      magnitude.drain(..first);
      Value::BigInt {
        negative: !magnitude.is_empty() && self.rng.chance(2),
        magnitude,
      }
    }

    fn primitive(&mut self) -> Value {
      match self.rng.below(7) {
        0 => Value::Undefined,
        1 => Value::Null,
        2 => Value::Bool(self.rng.chance(2)),
        3 => self.bigint(),
        4 => Value::String(self.units()),
        _ => Value::Number(self.number()),
      }
    }

    fn count(&mut self, depth: usize) -> usize {
      if depth > 6 {
        0
      } else if self.rng.chance(30) {
        17 + self.rng.below(5) as usize
      } else {
        self.rng.below(5) as usize
      }
    }

    fn started(&mut self) {
      self.objects += 1;
    }

    fn value(&mut self, depth: usize) -> Value {
      if depth > 8 || self.rng.chance(3) {
        return self.primitive();
      }
      if self.objects > 0 && self.rng.chance(10) {
        return Value::Ref(self.rng.below(u64::from(self.objects)) as u32);
      }
      match self.rng.below(16) {
        0 => {
          self.started();
          let n = self.count(depth);
          Value::Object(
            (0..n)
              .map(|_| (self.units(), self.value(depth + 1)))
              .collect(),
          )
        }
        1 => {
          self.started();
          let n = self.count(depth);
          Value::Array((0..n).map(|_| self.value(depth + 1)).collect())
        }
        2 => {
          self.started();
          let length = if self.rng.chance(4) {
            u32::MAX
          } else {
            self.rng.below(50) as u32
          };
          let n = if length == 0 { 0 } else { self.count(depth) };
          let entries = (0..n)
            .map(|_| {
              let key = if self.rng.chance(2) {
                ArrayKey::Index(self.rng.below(u64::from(length)) as u32)
              } else {
                let mut name = self.units();
                if name == utf16("length") || canonical_index(&name) {
                  name.push(u16::from(b'x'));
                }
                ArrayKey::Name(name)
              };
              (key, self.value(depth + 1))
            })
            .collect();
          Value::SparseArray { length, entries }
        }
        3 => {
          self.started();
          Value::Buffer(self.bytes(1))
        }
        4 => {
          self.started();
          let t = if self.rng.chance(5) {
            f64::NAN
          } else {
            (self.rng.next() % 8_640_000_000_000_001) as f64
              * if self.rng.chance(2) { -1.0 } else { 1.0 }
          };
          Value::Date(t + 0.0)
        }
        5 => {
          self.started();
          let flags: Vec<u16> = "dgimsuy"
            .encode_utf16()
            .filter(|_| self.rng.chance(2))
            .collect();
          Value::RegExp {
            source: self.units(),
            flags,
          }
        }
        6 => {
          self.started();
          let n = self.count(depth);
          Value::Map(
            (0..n)
              .map(|_| (self.value(depth + 1), self.value(depth + 1)))
              .collect(),
          )
        }
        7 => {
          self.started();
          let n = self.count(depth);
          Value::Set((0..n).map(|_| self.value(depth + 1)).collect())
        }
        8 => {
          self.started();
          let name = ErrorName::ALL[self.rng.below(7) as usize];
          let message = self.rng.chance(2).then(|| self.units());
          let stack = self.rng.chance(2).then(|| self.units());
          let cause = self.rng.chance(2).then(|| Box::new(self.value(depth + 1)));
          Value::Error {
            name,
            message,
            stack,
            cause,
          }
        }
        9 => {
          self.started();
          let inner = match self.rng.below(4) {
            0 => Value::Number(self.number()),
            1 => Value::String(self.units()),
            2 => Value::Bool(self.rng.chance(2)),
            _ => self.bigint(),
          };
          Value::Boxed(Box::new(inner))
        }
        10 => {
          self.started();
          Value::ArrayBuffer(self.bytes(1))
        }
        11 => {
          self.started();
          Value::DataView(self.bytes(1))
        }
        _ => {
          self.started();
          let kind = TypedKind::ALL[self.rng.below(12) as usize];
          Value::Typed {
            kind,
            bytes: self.bytes(kind.element_size()),
          }
        }
      }
    }
  }

  #[test]
  fn round_trip_random_values() {
    let mut gen = Gen {
      rng: Rng(0x9e37_79b9_7f4a_7c15),
      objects: 0,
    };
    for i in 0..3000 {
      gen.objects = 0;
      let value = gen.value(1);
      let bytes = encode(&value);
      match decode(&bytes) {
        Ok(decoded) => assert_eq!(decoded, value, "case {i}: {}", to_hex(&bytes)),
        Err(e) => panic!(
          "case {i}: {value:?} encoded as {} does not decode: {e}",
          to_hex(&bytes)
        ),
      }
      // Every strict prefix is refused (truncated), never a panic.
      if bytes.len() < 200 {
        for cut in 0..bytes.len() {
          assert!(
            decode(&bytes[..cut]).is_err(),
            "case {i}: prefix of {cut} bytes decoded"
          );
        }
      }
    }
  }

  #[test]
  fn random_bytes_never_panic() {
    let mut rng = Rng(12345);
    for _ in 0..20000 {
      let len = rng.below(24) as usize;
      let bytes: Vec<u8> = (0..len).map(|_| rng.next() as u8).collect();
      if let Ok(value) = decode(&bytes) {
        // Whatever decodes re-encodes to something that decodes to the same value.
        assert_eq!(
          decode(&encode(&value)).unwrap(),
          value,
          "{}",
          to_hex(&bytes)
        );
      }
    }
  }
}
