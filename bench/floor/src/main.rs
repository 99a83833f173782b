//! Raw floor for the native-ipc benchmark.
//!
//! Two Rust processes (this program forks itself) talk over an AF_UNIX
//! SOCK_STREAM socketpair with the simplest framing a native channel could
//! use: a little-endian u32 length followed by MessagePack bytes. No event
//! loop, no JS, no wake-up machinery beyond the kernel's blocking reads, so
//! the numbers are an upper bound for what any Node addon built on the same
//! socket could reach on this machine.
//!
//! Measured (each rep in a freshly forked child):
//!   s1  one-way small messages, parent -> child, buffered writes; the child
//!       decodes every message and replies once with the count (msgs/s)
//!   s3  ping-pong with one small message in flight, blocking reads (µs/RT)
//!   s3spin  the same, but both processes busy-poll the socket instead of
//!       sleeping in read() (a core each, all the time): the floor for a
//!       channel that waits awake for answers, as native-ipc does
//!   s4b a 16 MiB binary payload echoed child-ward and back (MiB/s, counting
//!       the bytes of both directions)
//!
//! Results are printed as one JSON object on stdout.

use serde::{Deserialize, Serialize};
use std::io::{BufReader, BufWriter, Read, Write};
use std::os::unix::io::{AsRawFd, FromRawFd, RawFd};
use std::os::unix::net::UnixStream;
use std::time::Instant;

const IO_BUFFER: usize = 64 * 1024;

/// The benchmark's small message: `{k: 't', i, payload: 'hello world'}`.
/// Strings are borrowed from the frame on decode: the floor does the least
/// work a MessagePack channel can do per message.
#[derive(Serialize, Deserialize)]
struct Small<'a> {
    k: &'a str,
    i: u64,
    payload: &'a str,
}

struct Config {
    reps: usize,
    messages: u64,
    round_trips: u64,
    echo_bytes: usize,
}

fn parse_args() -> Config {
    let mut cfg = Config {
        reps: 3,
        messages: 200_000,
        round_trips: 20_000,
        echo_bytes: 16 * 1024 * 1024,
    };
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mut i = 0;
    while i < args.len() {
        let value = args.get(i + 1).and_then(|v| v.parse::<u64>().ok());
        match (args[i].as_str(), value) {
            ("--reps", Some(v)) => cfg.reps = v.max(1) as usize,
            ("--messages", Some(v)) => cfg.messages = v.max(1),
            ("--round-trips", Some(v)) => cfg.round_trips = v.max(1),
            ("--echo-mib", Some(v)) => cfg.echo_bytes = (v.max(1) as usize) * 1024 * 1024,
            _ => {
                eprintln!("floor: unknown or incomplete argument {:?}", args[i]);
                std::process::exit(2);
            }
        }
        i += 2;
    }
    cfg
}

/// Forks a child connected to the parent by a socketpair. The child runs
/// `child_main` on its end and exits; the parent gets its end and the pid.
fn spawn_child(child_main: impl FnOnce(UnixStream)) -> (UnixStream, libc::pid_t) {
    let mut fds = [0 as libc::c_int; 2];
    let rc = unsafe {
        libc::socketpair(
            libc::AF_UNIX,
            libc::SOCK_STREAM | libc::SOCK_CLOEXEC,
            0,
            fds.as_mut_ptr(),
        )
    };
    if rc != 0 {
        panic!("socketpair: {}", std::io::Error::last_os_error());
    }
    let pid = unsafe { libc::fork() };
    if pid < 0 {
        panic!("fork: {}", std::io::Error::last_os_error());
    }
    if pid == 0 {
        unsafe { libc::close(fds[0]) };
        let stream = unsafe { UnixStream::from_raw_fd(fds[1]) };
        child_main(stream);
        unsafe { libc::_exit(0) };
    }
    unsafe { libc::close(fds[1]) };
    (unsafe { UnixStream::from_raw_fd(fds[0]) }, pid)
}

fn reap(stream: UnixStream, pid: libc::pid_t) {
    drop(stream); // EOF tells the child to stop
    let mut status = 0;
    unsafe { libc::waitpid(pid, &mut status, 0) };
    if !(libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0) {
        panic!("floor child failed, wait status {status}");
    }
}

/// Reads one frame into `body` (reusing its allocation). Returns false on a
/// clean end of stream.
fn read_frame(reader: &mut impl Read, body: &mut Vec<u8>) -> bool {
    let mut len = [0u8; 4];
    match reader.read_exact(&mut len) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => return false,
        Err(e) => panic!("read: {e}"),
    }
    let len = u32::from_le_bytes(len) as usize;
    body.clear();
    body.resize(len, 0);
    reader.read_exact(body).expect("read frame body");
    true
}

/// Encodes `msg` as a frame (length prefix + MessagePack map) into `frame`.
fn encode_frame<T: Serialize>(msg: &T, frame: &mut Vec<u8>) {
    frame.clear();
    frame.extend_from_slice(&[0; 4]);
    rmp_serde::encode::write_named(frame, msg).expect("encode");
    let len = (frame.len() - 4) as u32;
    frame[..4].copy_from_slice(&len.to_le_bytes());
}

// ---------------------------------------------------------------- s1 -------

fn one_way(cfg: &Config) -> f64 {
    let n = cfg.messages;
    let (stream, pid) = spawn_child(move |stream| {
        let mut writer = stream.try_clone().expect("clone");
        let mut reader = BufReader::with_capacity(IO_BUFFER, stream);
        let mut body = Vec::new();
        let mut count: u64 = 0;
        while count < n {
            if !read_frame(&mut reader, &mut body) {
                panic!("parent closed early");
            }
            let msg: Small = rmp_serde::from_slice(&body).expect("decode");
            if msg.k == "t" {
                count += 1;
            }
        }
        let mut frame = Vec::new();
        encode_frame(&count, &mut frame);
        writer.write_all(&frame).expect("reply");
        // wait for the parent to hang up
        while read_frame(&mut reader, &mut body) {}
    });

    let mut reader = stream.try_clone().expect("clone");
    let start = Instant::now();
    {
        let mut writer = BufWriter::with_capacity(IO_BUFFER, &stream);
        let mut frame = Vec::with_capacity(64);
        for i in 0..n {
            let msg = Small {
                k: "t",
                i,
                payload: "hello world",
            };
            encode_frame(&msg, &mut frame);
            writer.write_all(&frame).expect("write");
        }
        writer.flush().expect("flush");
    }
    let mut body = Vec::new();
    assert!(read_frame(&mut reader, &mut body), "child closed early");
    let elapsed = start.elapsed().as_secs_f64();
    let count: u64 = rmp_serde::from_slice(&body).expect("decode count");
    assert_eq!(count, n, "child counted a different number of messages");
    drop(reader);
    reap(stream, pid);
    n as f64 / elapsed
}

// ---------------------------------------------------------------- s3 -------

/// Waits until `fd` is readable (or closed) without sleeping: polls with a zero timeout until it is.
fn spin_until_readable(fd: RawFd) {
    let mut pfd = libc::pollfd {
        fd,
        events: libc::POLLIN,
        revents: 0,
    };
    // SAFETY: one valid pollfd, a zero timeout.
    while unsafe { libc::poll(&mut pfd, 1, 0) } == 0 {
        std::hint::spin_loop();
    }
}

/// Before a read that would sleep: with `spin`, wait awake instead.
fn before_read<R: Read>(spin: bool, reader: &BufReader<R>, fd: RawFd) {
    if spin && reader.buffer().is_empty() {
        spin_until_readable(fd);
    }
}

fn ping_pong(cfg: &Config, spin: bool) -> f64 {
    let n = cfg.round_trips;
    let (stream, pid) = spawn_child(move |stream| {
        let fd = stream.as_raw_fd();
        let mut writer = stream.try_clone().expect("clone");
        let mut reader = BufReader::with_capacity(IO_BUFFER, stream);
        let mut body = Vec::new();
        let mut frame = Vec::new();
        while {
            before_read(spin, &reader, fd);
            read_frame(&mut reader, &mut body)
        } {
            let msg: Small = rmp_serde::from_slice(&body).expect("decode");
            encode_frame(&msg, &mut frame);
            writer.write_all(&frame).expect("echo");
        }
    });

    let fd = stream.as_raw_fd();
    let mut writer = stream.try_clone().expect("clone");
    let mut reader = BufReader::with_capacity(IO_BUFFER, stream.try_clone().expect("clone"));
    let mut frame = Vec::new();
    let mut body = Vec::new();
    let start = Instant::now();
    for i in 0..n {
        let msg = Small {
            k: "t",
            i,
            payload: "hello world",
        };
        encode_frame(&msg, &mut frame);
        writer.write_all(&frame).expect("write");
        before_read(spin, &reader, fd);
        assert!(read_frame(&mut reader, &mut body), "child closed early");
        let back: Small = rmp_serde::from_slice(&body).expect("decode");
        assert_eq!(back.i, i);
    }
    let elapsed = start.elapsed().as_secs_f64();
    drop(writer);
    drop(reader);
    reap(stream, pid);
    elapsed * 1e6 / n as f64
}

// ---------------------------------------------------------------- s4b ------

/// Writes a frame holding a MessagePack bin32 value without copying the
/// payload: [u32 LE frame length][0xc6][u32 BE byte count][bytes].
fn write_bin_frame(w: &mut impl Write, bytes: &[u8]) {
    let mut head = [0u8; 9];
    head[..4].copy_from_slice(&((bytes.len() + 5) as u32).to_le_bytes());
    head[4] = 0xc6;
    head[5..].copy_from_slice(&(bytes.len() as u32).to_be_bytes());
    w.write_all(&head).expect("write head");
    w.write_all(bytes).expect("write payload");
}

/// Reads a bin32 frame into a freshly allocated Vec (as a receiver that
/// hands the payload to its user must).
fn read_bin_frame(r: &mut impl Read) -> Option<Vec<u8>> {
    let mut head = [0u8; 9];
    match r.read_exact(&mut head) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => return None,
        Err(e) => panic!("read: {e}"),
    }
    assert_eq!(head[4], 0xc6, "not a bin32 value");
    let n = u32::from_be_bytes(head[5..9].try_into().unwrap()) as usize;
    let mut bytes = vec![0u8; n];
    r.read_exact(&mut bytes).expect("read payload");
    Some(bytes)
}

fn echo(cfg: &Config) -> f64 {
    let (stream, pid) = spawn_child(|mut stream| {
        while let Some(bytes) = read_bin_frame(&mut stream) {
            write_bin_frame(&mut stream, &bytes);
        }
    });
    let payload: Vec<u8> = (0..cfg.echo_bytes).map(|i| (i * 31) as u8).collect();
    let mut s = &stream;
    let start = Instant::now();
    write_bin_frame(&mut s, &payload);
    let back = read_bin_frame(&mut s).expect("child closed early");
    let elapsed = start.elapsed().as_secs_f64();
    assert!(back == payload, "echo corrupted the payload");
    reap(stream, pid);
    2.0 * cfg.echo_bytes as f64 / (1024.0 * 1024.0) / elapsed
}

// ---------------------------------------------------------------- main -----

fn median(samples: &[f64]) -> f64 {
    let mut v = samples.to_vec();
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    let mid = v.len() / 2;
    if v.len() % 2 == 1 {
        v[mid]
    } else {
        (v[mid - 1] + v[mid]) / 2.0
    }
}

fn json_entry(id: &str, unit: &str, samples: &[f64]) -> String {
    let list: Vec<String> = samples.iter().map(|s| format!("{s:.3}")).collect();
    format!(
        "\"{id}\":{{\"unit\":\"{unit}\",\"median\":{:.3},\"samples\":[{}]}}",
        median(samples),
        list.join(",")
    )
}

fn main() {
    let cfg = parse_args();
    let s1: Vec<f64> = (0..cfg.reps).map(|_| one_way(&cfg)).collect();
    let s3: Vec<f64> = (0..cfg.reps).map(|_| ping_pong(&cfg, false)).collect();
    let s3spin: Vec<f64> = (0..cfg.reps).map(|_| ping_pong(&cfg, true)).collect();
    let s4b: Vec<f64> = (0..cfg.reps).map(|_| echo(&cfg)).collect();
    println!(
        "{{\"messages\":{},\"roundTrips\":{},\"echoBytes\":{},\"reps\":{},{},{},{},{}}}",
        cfg.messages,
        cfg.round_trips,
        cfg.echo_bytes,
        cfg.reps,
        json_entry("s1", "msgs/s", &s1),
        json_entry("s3", "µs/round trip", &s3),
        json_entry("s3spin", "µs/round trip", &s3spin),
        json_entry("s4b", "MiB/s", &s4b),
    );
}
