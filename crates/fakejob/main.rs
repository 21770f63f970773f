//! fakejob: a scriptable stand-in for a real job, for jobctl's tests and
//! benchmarks. Not shipped.
//!
//! Its arguments are a list of steps run in order:
//!
//! ```text
//! out TEXT            print TEXT and a newline on stdout (flushed)
//! err TEXT            the same on stderr
//! prompt TEXT         print TEXT on stdout with no newline (flushed)
//! read-line           read one line from stdin, print "got: LINE" on stdout
//! bytes SIZE [err]    write SIZE bytes (e.g. 2G, 512K) of a fixed pattern on stdout (or stderr)
//! alternate N         write "o1\n" on stdout, "e1\n" on stderr, "o2\n", "e2\n" … up to N,
//!                     each line one write(2), without waiting in between
//! await-file PATH TEXT
//!                     wait until the file PATH contains TEXT (to order writes
//!                     across the two streams without sleeping and hoping)
//! sleep MS            sleep MS milliseconds
//! pidfile PATH        write this process's pid to PATH
//! touch PATH          create PATH
//! ignore-term         ignore SIGTERM from now on
//! trap-term CODE      on SIGTERM, exit with CODE
//! spawn-orphan MS PATH
//!                     start a child that keeps stdout/stderr open for MS ms (its pid in PATH)
//! fail-until PATH N   count this attempt in PATH; exit 1 while fewer than N attempts
//! cwd                 print the working directory
//! env NAME            print $NAME (or "<unset>")
//! burn-cpu MS         spin until this process has used MS ms of CPU time in all
//!                     (user and system, its earlier steps included)
//! alloc SIZE          allocate SIZE bytes (e.g. 200M) and touch every page; kept until exit
//! write-file PATH SIZE
//!                     write SIZE bytes to PATH and fsync it
//! kill SIGNAL         kill itself with SIGNAL (name like TERM or number)
//! exit CODE           exit with CODE
//! measure-rss CMD...  run CMD (the rest of the arguments) with stdout and
//!                     stderr to /dev/null, print its peak RSS in KiB
//!                     ("peak_rss_kib N"), exit with its status
//! ```
//!
//! `measure-rss` exists because a peak RSS from wait4(2) includes the
//! memory of the process that spawned the child (the kernel carries the
//! parent's high-water mark across fork and exec): measured from a big parent
//! (a test harness, Python) the figure is the parent's. fakejob is small, so
//! the figure it reports is the child's own.
//! Without an `exit` step it exits 0 after the last step.

use std::io::{BufRead, Write};
use std::process::ExitCode;
use std::sync::atomic::{AtomicI32, Ordering};
use std::time::Duration;

use nix::sys::signal::{SigHandler, Signal, signal};

static TRAP_CODE: AtomicI32 = AtomicI32::new(0);

extern "C" fn on_term(_: i32) {
    // Only async-signal-safe calls here.
    unsafe extern "C" {
        fn _exit(code: i32) -> !;
    }
    // SAFETY: _exit is async-signal-safe and never returns.
    unsafe { _exit(TRAP_CODE.load(Ordering::Relaxed)) }
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match run(&args) {
        Ok(code) => ExitCode::from(code),
        Err(message) => {
            eprintln!("fakejob: {message}");
            ExitCode::from(2)
        }
    }
}

fn run(args: &[String]) -> Result<u8, String> {
    let mut it = args.iter();
    fn take(it: &mut std::slice::Iter<'_, String>, what: &str) -> Result<String, String> {
        it.next().cloned().ok_or_else(|| format!("missing {what}"))
    }
    loop {
        let Some(step) = it.next().cloned() else {
            return Ok(0);
        };
        if step == "measure-rss" {
            let rest: Vec<String> = it.cloned().collect();
            return measure_rss(&rest);
        }
        let mut next = |what: &str| take(&mut it, what);
        match step.as_str() {
            "out" => {
                let text = next("text")?;
                write_all(&mut std::io::stdout(), format!("{text}\n").as_bytes())?;
            }
            "err" => {
                let text = next("text")?;
                write_all(&mut std::io::stderr(), format!("{text}\n").as_bytes())?;
            }
            "prompt" => {
                let text = next("text")?;
                write_all(&mut std::io::stdout(), text.as_bytes())?;
            }
            "read-line" => {
                let mut line = String::new();
                std::io::stdin()
                    .lock()
                    .read_line(&mut line)
                    .map_err(|e| e.to_string())?;
                write_all(
                    &mut std::io::stdout(),
                    format!("got: {}\n", line.trim_end()).as_bytes(),
                )?;
            }
            "bytes" => {
                let size = parse_size(&next("size")?)?;
                let to_err = args_peek_is(&mut it, "err");
                write_bytes(size, to_err)?;
            }
            "alternate" => {
                let n: u32 = next("count")?.parse().map_err(|_| "bad count")?;
                for i in 1..=n {
                    write_fd(1, format!("o{i}\n").as_bytes())?;
                    write_fd(2, format!("e{i}\n").as_bytes())?;
                }
            }
            "await-file" => {
                let path = next("path")?;
                let text = next("text")?;
                let deadline = std::time::Instant::now() + Duration::from_secs(30);
                loop {
                    let content = std::fs::read_to_string(&path).unwrap_or_default();
                    if content.contains(&text) {
                        break;
                    }
                    if std::time::Instant::now() > deadline {
                        return Err(format!("{path} never contained {text:?}"));
                    }
                    std::thread::sleep(Duration::from_millis(1));
                }
            }
            "sleep" => {
                let ms: u64 = next("milliseconds")?.parse().map_err(|_| "bad sleep")?;
                std::thread::sleep(Duration::from_millis(ms));
            }
            "pidfile" => {
                // Written aside and renamed into place: a test that waits for
                // the file to exist must never read it empty.
                let path = next("path")?;
                let partial = format!("{path}.partial");
                std::fs::write(&partial, std::process::id().to_string())
                    .and_then(|()| std::fs::rename(&partial, &path))
                    .map_err(|e| e.to_string())?;
            }
            "touch" => {
                let path = next("path")?;
                std::fs::write(&path, b"").map_err(|e| e.to_string())?;
            }
            "ignore-term" => {
                // SAFETY: SIG_IGN runs no code.
                unsafe { signal(Signal::SIGTERM, SigHandler::SigIgn) }
                    .map_err(|e| e.to_string())?;
            }
            "trap-term" => {
                let code: i32 = next("code")?.parse().map_err(|_| "bad code")?;
                TRAP_CODE.store(code, Ordering::Relaxed);
                // SAFETY: the handler only calls _exit.
                unsafe { signal(Signal::SIGTERM, SigHandler::Handler(on_term)) }
                    .map_err(|e| e.to_string())?;
            }
            "spawn-orphan" => {
                let ms: u64 = next("milliseconds")?.parse().map_err(|_| "bad duration")?;
                let pidfile = next("pid file")?;
                let exe = std::env::current_exe().map_err(|e| e.to_string())?;
                std::process::Command::new(exe)
                    .args(["pidfile", &pidfile, "sleep", &ms.to_string()])
                    .spawn()
                    .map_err(|e| e.to_string())?;
            }
            "fail-until" => {
                let path = next("path")?;
                let n: u64 = next("count")?.parse().map_err(|_| "bad count")?;
                let done: u64 = std::fs::read_to_string(&path)
                    .ok()
                    .and_then(|s| s.trim().parse().ok())
                    .unwrap_or(0)
                    + 1;
                std::fs::write(&path, done.to_string()).map_err(|e| e.to_string())?;
                if done < n {
                    eprintln!("attempt {done} fails");
                    return Ok(1);
                }
                println!("attempt {done} succeeds");
            }
            "cwd" => {
                let dir = std::env::current_dir().map_err(|e| e.to_string())?;
                println!("{}", dir.display());
            }
            "env" => {
                let name = next("name")?;
                println!(
                    "{}",
                    std::env::var(&name).unwrap_or_else(|_| "<unset>".into())
                );
            }
            "burn-cpu" => {
                let ms: u64 = next("milliseconds")?.parse().map_err(|_| "bad duration")?;
                burn_cpu(Duration::from_millis(ms));
            }
            "alloc" => {
                let size =
                    usize::try_from(parse_size(&next("size")?)?).map_err(|e| e.to_string())?;
                let block: &'static mut [u8] = Box::leak(vec![0u8; size].into_boxed_slice());
                // Each page written once, so every one is resident.
                for page in block.chunks_mut(4096) {
                    page[0] = 1;
                }
                std::hint::black_box(&block);
            }
            "write-file" => {
                let path = next("path")?;
                let size = parse_size(&next("size")?)?;
                write_file(&path, size)?;
            }
            "kill" => {
                let sig = parse_signal(&next("signal")?)?;
                // The default action, even if inherited as ignored.
                // SAFETY: SIG_DFL runs no code.
                let _ = unsafe { signal(sig, SigHandler::SigDfl) };
                nix::sys::signal::raise(sig).map_err(|e| e.to_string())?;
                std::thread::sleep(Duration::from_secs(5));
                return Err(format!("still alive after {sig}"));
            }
            "exit" => {
                let code: u8 = next("code")?.parse().map_err(|_| "bad exit code")?;
                return Ok(code);
            }
            other => return Err(format!("unknown step {other:?}")),
        }
    }
}

/// This process's CPU time so far (user and system).
fn cpu_time() -> Duration {
    use nix::sys::resource::{UsageWho, getrusage};
    getrusage(UsageWho::RUSAGE_SELF).map_or(Duration::ZERO, |u| {
        let t = |v: nix::sys::time::TimeVal| {
            Duration::from_secs(v.tv_sec().max(0) as u64)
                + Duration::from_micros(v.tv_usec().max(0) as u64)
        };
        t(u.user_time()) + t(u.system_time())
    })
}

/// Spins until this process has used `until` of CPU time in all: a fixed
/// amount of work in CPU time whatever the machine's load (wall time would
/// vary with it).
fn burn_cpu(until: Duration) {
    let mut x = 1u64;
    while cpu_time() < until {
        for _ in 0..100_000 {
            x = std::hint::black_box(x.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1));
        }
    }
}

fn write_file(path: &str, mut size: u64) -> Result<(), String> {
    let mut file = std::fs::File::create(path).map_err(|e| format!("{path}: {e}"))?;
    let block = vec![0x5au8; 1 << 20];
    while size > 0 {
        let n = size.min(block.len() as u64) as usize;
        file.write_all(&block[..n]).map_err(|e| e.to_string())?;
        size -= n as u64;
    }
    file.sync_all().map_err(|e| e.to_string())
}

fn measure_rss(argv: &[String]) -> Result<u8, String> {
    let (program, args) = argv.split_first().ok_or("measure-rss needs a command")?;
    let child = std::process::Command::new(program)
        .args(args)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .map_err(|e| format!("{program}: {e}"))?;
    let pid = child.id() as i32;
    let mut status = 0;
    // SAFETY: a zeroed rusage is valid for wait4 to fill; pid is our child.
    let mut usage: nix::libc::rusage = unsafe { std::mem::zeroed() };
    let rc = unsafe { nix::libc::wait4(pid, &mut status, 0, &mut usage) };
    if rc != pid {
        return Err("wait4 failed".into());
    }
    std::mem::forget(child);
    println!("peak_rss_kib {}", usage.ru_maxrss);
    if nix::libc::WIFEXITED(status) {
        Ok(nix::libc::WEXITSTATUS(status) as u8)
    } else {
        Ok(128 + nix::libc::WTERMSIG(status) as u8)
    }
}

fn args_peek_is(it: &mut std::slice::Iter<'_, String>, word: &str) -> bool {
    if it.as_slice().first().is_some_and(|a| a == word) {
        it.next();
        true
    } else {
        false
    }
}

fn write_all(w: &mut dyn Write, data: &[u8]) -> Result<(), String> {
    w.write_all(data)
        .and_then(|()| w.flush())
        .map_err(|e| e.to_string())
}

fn write_bytes(mut size: u64, to_err: bool) -> Result<(), String> {
    let block: Vec<u8> = (0..65_536u32)
        .map(|i| {
            if i % 64 == 63 {
                b'\n'
            } else {
                b'a' + (i % 26) as u8
            }
        })
        .collect();
    // Unbuffered raw writes, as fast as the pipe takes them.
    let fd = if to_err { 2 } else { 1 };
    // SAFETY: fds 1 and 2 are open for the life of the process.
    let fd = unsafe { std::os::fd::BorrowedFd::borrow_raw(fd) };
    while size > 0 {
        let n = size.min(block.len() as u64) as usize;
        let mut part = &block[..n];
        while !part.is_empty() {
            match nix::unistd::write(fd, part) {
                Ok(w) => part = &part[w..],
                Err(nix::errno::Errno::EINTR) => {}
                Err(e) => return Err(e.to_string()),
            }
        }
        size -= n as u64;
    }
    Ok(())
}

/// One write(2) of `data` to `fd` (1 or 2), no buffering.
fn write_fd(fd: i32, mut data: &[u8]) -> Result<(), String> {
    // SAFETY: fds 1 and 2 are open for the life of the process.
    let fd = unsafe { std::os::fd::BorrowedFd::borrow_raw(fd) };
    while !data.is_empty() {
        match nix::unistd::write(fd, data) {
            Ok(w) => data = &data[w..],
            Err(nix::errno::Errno::EINTR) => {}
            Err(e) => return Err(e.to_string()),
        }
    }
    Ok(())
}

fn parse_size(text: &str) -> Result<u64, String> {
    let (number, shift) = match text.chars().last() {
        Some('K') => (&text[..text.len() - 1], 10),
        Some('M') => (&text[..text.len() - 1], 20),
        Some('G') => (&text[..text.len() - 1], 30),
        _ => (text, 0),
    };
    let n: u64 = number.parse().map_err(|_| format!("bad size {text:?}"))?;
    Ok(n << shift)
}

fn parse_signal(text: &str) -> Result<Signal, String> {
    if let Ok(n) = text.parse::<i32>() {
        return Signal::try_from(n).map_err(|e| e.to_string());
    }
    let name = if text.starts_with("SIG") {
        text.to_string()
    } else {
        format!("SIG{text}")
    };
    name.parse::<Signal>().map_err(|e| e.to_string())
}
