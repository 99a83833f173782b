//! The Unix socketpair and the raw, non-blocking syscalls on it. Nothing here knows about napi.

use std::io;
use std::os::fd::RawFd;

/// Creates the channel's socketpair: `(parent_end, child_end)`, both close-on-exec so no other spawned
/// program inherits them; the parent's end is non-blocking. The spawn code passes `child_end` to exactly one
/// child, where it is duplicated onto a fixed descriptor (which clears close-on-exec for that copy only).
pub fn socketpair() -> io::Result<(RawFd, RawFd)> {
  let mut fds = [0 as RawFd; 2];
  // SAFETY: `fds` is a valid out-array of two ints.
  let rc = unsafe {
    libc::socketpair(
      libc::AF_UNIX,
      libc::SOCK_STREAM | libc::SOCK_CLOEXEC,
      0,
      fds.as_mut_ptr(),
    )
  };
  if rc != 0 {
    return Err(io::Error::last_os_error());
  }
  for fd in fds {
    grow_send_buffer(fd);
  }
  if let Err(e) = set_nonblocking(fds[0]) {
    close(fds[0]);
    close(fds[1]);
    return Err(e);
  }
  Ok((fds[0], fds[1]))
}

/// Bytes a sender may have in flight before the socket reports full. Linux's default (~208 KiB) makes a
/// fast sender sleep and wake many times per megabyte; the kernel caps this at `net.core.wmem_max`.
const SEND_BUFFER: libc::c_int = 2 * 1024 * 1024;

fn grow_send_buffer(fd: RawFd) {
  // SAFETY: setsockopt with a valid int option value; failure only leaves the default size.
  unsafe {
    libc::setsockopt(
      fd,
      libc::SOL_SOCKET,
      libc::SO_SNDBUF,
      (&SEND_BUFFER as *const libc::c_int).cast(),
      std::mem::size_of::<libc::c_int>() as libc::socklen_t,
    );
  }
}

/// Makes `fd` non-blocking and close-on-exec: what the side that adopts an inherited end needs, so that a
/// grandchild never inherits the channel.
pub fn adopt(fd: RawFd) -> io::Result<()> {
  // SAFETY: fcntl on an arbitrary integer is safe; errors are reported through the return value.
  let rc = unsafe { libc::fcntl(fd, libc::F_SETFD, libc::FD_CLOEXEC) };
  if rc != 0 {
    return Err(io::Error::last_os_error());
  }
  let mut stat = std::mem::MaybeUninit::<libc::stat>::uninit();
  // SAFETY: `stat` is a valid out-pointer.
  if unsafe { libc::fstat(fd, stat.as_mut_ptr()) } != 0 {
    return Err(io::Error::last_os_error());
  }
  // SAFETY: fstat succeeded, so the struct is initialised.
  let mode = unsafe { stat.assume_init() }.st_mode;
  if mode & libc::S_IFMT != libc::S_IFSOCK {
    return Err(io::Error::new(
      io::ErrorKind::InvalidInput,
      format!("file descriptor {fd} is not a socket"),
    ));
  }
  set_nonblocking(fd)
}

fn set_nonblocking(fd: RawFd) -> io::Result<()> {
  // SAFETY: see `adopt`.
  let flags = unsafe { libc::fcntl(fd, libc::F_GETFL) };
  if flags < 0 || unsafe { libc::fcntl(fd, libc::F_SETFL, flags | libc::O_NONBLOCK) } != 0 {
    return Err(io::Error::last_os_error());
  }
  Ok(())
}

/// Closes `fd`, ignoring errors (there is nothing useful to do about them).
pub fn close(fd: RawFd) {
  // SAFETY: closing an fd we own.
  unsafe {
    libc::close(fd);
  }
}

/// Outcome of one non-blocking read.
pub enum Read {
  /// This many bytes arrived.
  Data(usize),
  /// Nothing to read right now.
  WouldBlock,
  /// The peer closed its end.
  Eof,
}

/// Most descriptors accepted with one read; a peer that sends more in one go has the rest closed by the
/// kernel (`MSG_CTRUNC`).
const MAX_FDS_PER_READ: usize = 16;

/// Reads into `buf` without blocking, retrying on EINTR. Descriptors passed by the peer (SCM_RIGHTS) are
/// appended to `fds`, already close-on-exec.
pub fn read(
  fd: RawFd,
  buf: &mut [std::mem::MaybeUninit<u8>],
  fds: &mut Vec<RawFd>,
) -> io::Result<Read> {
  // u64 keeps the control buffer aligned for cmsghdr.
  let mut control = [0u64; (MAX_FDS_PER_READ * 4 + 64) / 8];
  loop {
    let mut iov = libc::iovec {
      iov_base: buf.as_mut_ptr().cast(),
      iov_len: buf.len(),
    };
    // SAFETY: a zeroed msghdr is valid; every pointer set below outlives the call.
    let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
    msg.msg_iov = &mut iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control.as_mut_ptr().cast();
    msg.msg_controllen = std::mem::size_of_val(&control);
    // SAFETY: `msg` describes writable memory of the stated sizes.
    let n = unsafe { libc::recvmsg(fd, &mut msg, libc::MSG_CMSG_CLOEXEC) };
    if n >= 0 {
      collect_fds(&msg, fds);
    }
    if n > 0 {
      return Ok(Read::Data(n as usize));
    }
    if n == 0 {
      return Ok(Read::Eof);
    }
    let err = io::Error::last_os_error();
    match err.raw_os_error() {
      Some(libc::EINTR) => continue,
      Some(libc::EAGAIN) => return Ok(Read::WouldBlock),
      // A peer that died with unread data in its buffer resets the connection: that is its end too.
      Some(libc::ECONNRESET) => return Ok(Read::Eof),
      _ => return Err(err),
    }
  }
}

fn collect_fds(msg: &libc::msghdr, fds: &mut Vec<RawFd>) {
  // SAFETY: walking the control messages the kernel just wrote, with libc's own macros.
  unsafe {
    let mut cmsg = libc::CMSG_FIRSTHDR(msg);
    while !cmsg.is_null() {
      if (*cmsg).cmsg_level == libc::SOL_SOCKET && (*cmsg).cmsg_type == libc::SCM_RIGHTS {
        let data = libc::CMSG_DATA(cmsg) as *const RawFd;
        let count =
          ((*cmsg).cmsg_len as usize - libc::CMSG_LEN(0) as usize) / std::mem::size_of::<RawFd>();
        for i in 0..count {
          fds.push(std::ptr::read_unaligned(data.add(i)));
        }
      }
      cmsg = libc::CMSG_NXTHDR(msg, cmsg);
    }
  }
}

/// Writes as much of `parts` as the kernel takes now, with MSG_NOSIGNAL so a closed peer is an EPIPE
/// error rather than a SIGPIPE that kills the process. With `handle`, that descriptor travels with the
/// first byte (SCM_RIGHTS). Returns the bytes written (0 when it would block).
pub fn write(fd: RawFd, parts: &[&[u8]], handle: Option<RawFd>) -> io::Result<usize> {
  // One call hands the kernel at most MAX_IOV parts (a prefix of `parts`); the caller queues what was not
  // written, so parts beyond the first MAX_IOV simply wait for the next call.
  const MAX_IOV: usize = 64;
  let mut iov: [libc::iovec; MAX_IOV] = [libc::iovec {
    iov_base: std::ptr::null_mut(),
    iov_len: 0,
  }; MAX_IOV];
  let mut count = 0;
  for part in parts.iter().filter(|p| !p.is_empty()).take(MAX_IOV) {
    iov[count] = libc::iovec {
      iov_base: part.as_ptr() as *mut _,
      iov_len: part.len(),
    };
    count += 1;
  }
  if count == 0 {
    return Ok(0);
  }
  let mut control = [0u64; 4];
  // SAFETY: a zeroed msghdr is valid; iov points at `count` live slices.
  let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
  msg.msg_iov = iov.as_mut_ptr();
  msg.msg_iovlen = count;
  if let Some(handle) = handle {
    // SAFETY: the control buffer is large enough for one descriptor (CMSG_SPACE(4) <= 32 bytes).
    unsafe {
      msg.msg_control = control.as_mut_ptr().cast();
      msg.msg_controllen = libc::CMSG_SPACE(std::mem::size_of::<RawFd>() as u32) as usize;
      let cmsg = libc::CMSG_FIRSTHDR(&msg);
      (*cmsg).cmsg_level = libc::SOL_SOCKET;
      (*cmsg).cmsg_type = libc::SCM_RIGHTS;
      (*cmsg).cmsg_len = libc::CMSG_LEN(std::mem::size_of::<RawFd>() as u32) as usize;
      std::ptr::write_unaligned(libc::CMSG_DATA(cmsg) as *mut RawFd, handle);
    }
  }
  loop {
    // SAFETY: `msg` is fully initialised above.
    let n = unsafe { libc::sendmsg(fd, &msg, libc::MSG_NOSIGNAL) };
    if n >= 0 {
      return Ok(n as usize);
    }
    let err = io::Error::last_os_error();
    match err.raw_os_error() {
      Some(libc::EINTR) => continue,
      Some(libc::EAGAIN) => return Ok(0),
      _ => return Err(err),
    }
  }
}

/// Duplicates `fd` (close-on-exec), so that a handle queued for sending survives its owner closing it.
pub fn dup(fd: RawFd) -> io::Result<RawFd> {
  // SAFETY: fcntl on an arbitrary integer reports errors through its return value.
  let copy = unsafe { libc::fcntl(fd, libc::F_DUPFD_CLOEXEC, 0) };
  if copy < 0 {
    Err(io::Error::last_os_error())
  } else {
    Ok(copy)
  }
}

/// Waits up to `timeout_ms` for `fd` to become writable; false on timeout or error.
pub fn wait_writable(fd: RawFd, timeout_ms: i32) -> bool {
  let mut pfd = libc::pollfd {
    fd,
    events: libc::POLLOUT,
    revents: 0,
  };
  // SAFETY: one valid pollfd.
  let rc = unsafe { libc::poll(&mut pfd, 1, timeout_ms) };
  rc == 1 && pfd.revents & libc::POLLOUT != 0
}

#[cfg(test)]
mod tests {
  use super::*;

  #[test]
  fn pair_carries_bytes_and_reports_eof() {
    let (a, b) = socketpair().unwrap();
    adopt(b).unwrap();
    assert_eq!(write(a, &[b"he", b"llo"], None).unwrap(), 5);
    let mut buf = vec![std::mem::MaybeUninit::new(0u8); 16];
    let mut fds = Vec::new();
    match read(b, &mut buf, &mut fds).unwrap() {
      Read::Data(n) => assert_eq!(n, 5),
      _ => panic!("expected data"),
    }
    assert!(matches!(
      read(b, &mut buf, &mut fds).unwrap(),
      Read::WouldBlock
    ));
    close(a);
    assert!(matches!(read(b, &mut buf, &mut fds).unwrap(), Read::Eof));
    assert!(fds.is_empty());
    close(b);
  }

  #[test]
  fn writing_to_a_closed_peer_is_an_error_not_a_signal() {
    let (a, b) = socketpair().unwrap();
    close(b);
    let err = write(a, &[b"x"], None).unwrap_err();
    assert_eq!(err.raw_os_error(), Some(libc::EPIPE));
    close(a);
  }

  #[test]
  fn a_descriptor_travels_with_its_byte_and_arrives_close_on_exec() {
    let (a, b) = socketpair().unwrap();
    adopt(b).unwrap();
    let mut pipe = [0; 2];
    assert_eq!(unsafe { libc::pipe(pipe.as_mut_ptr()) }, 0);
    assert_eq!(write(a, &[b"h"], Some(pipe[1])).unwrap(), 1);
    let mut buf = vec![std::mem::MaybeUninit::new(0u8); 16];
    let mut fds = Vec::new();
    assert!(matches!(
      read(b, &mut buf, &mut fds).unwrap(),
      Read::Data(1)
    ));
    assert_eq!(fds.len(), 1);
    let flags = unsafe { libc::fcntl(fds[0], libc::F_GETFD) };
    assert_eq!(flags & libc::FD_CLOEXEC, libc::FD_CLOEXEC);
    // The received descriptor is the same pipe: what is written to it comes out of the other end.
    assert_eq!(unsafe { libc::write(fds[0], b"z".as_ptr().cast(), 1) }, 1);
    let mut out = [0u8; 1];
    assert_eq!(
      unsafe { libc::read(pipe[0], out.as_mut_ptr().cast(), 1) },
      1
    );
    assert_eq!(&out, b"z");
    for fd in [a, b, pipe[0], pipe[1], fds[0]] {
      close(fd);
    }
  }

  #[test]
  fn adopting_a_non_socket_is_refused() {
    let mut fds = [0; 2];
    assert_eq!(unsafe { libc::pipe(fds.as_mut_ptr()) }, 0);
    assert!(adopt(fds[0]).is_err());
    close(fds[0]);
    close(fds[1]);
  }
}
