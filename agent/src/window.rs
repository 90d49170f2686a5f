//! The login, settings, status and permanent-key windows: separate processes (so no WebKit
//! stays in memory once they close), one of each kind at a time (the status window's "Log
//! in…" opens the login window beside it), reaped when they exit, their failures told in
//! words.

use crate::UiMsg;
use std::collections::HashMap;
use std::process::Child;
use std::sync::mpsc::Sender;
use std::sync::{Arc, Mutex};

/// The open windows' process ids by kind (`--login`, `--status`, …), while they run (a
/// thread reaps each when it exits).
type Open = Arc<Mutex<HashMap<String, u32>>>;

/// Starts and watches the window processes.
pub struct Windows {
    open: Open,
    ui: Sender<UiMsg>,
}

impl Windows {
    pub fn new(ui: Sender<UiMsg>) -> Self {
        Windows {
            open: Arc::new(Mutex::new(HashMap::new())),
            ui,
        }
    }

    fn bin() -> std::path::PathBuf {
        if let Some(p) = std::env::var_os("ASTRAN_WINDOW_BIN").filter(|p| !p.is_empty()) {
            return p.into();
        }
        let name = if cfg!(windows) {
            "astran-tray-window.exe"
        } else {
            "astran-tray-window"
        };
        std::env::current_exe()
            .ok()
            .and_then(|e| e.parent().map(|d| d.join(name)))
            .filter(|p| p.exists())
            .unwrap_or_else(|| name.into())
    }

    /// Open the window in `mode` (`--login`, `--settings`, `--status`) unless one is open.
    pub fn open(&self, mode: &str, acct: Option<String>) {
        let mut args = vec![mode.to_owned()];
        if let Some(a) = acct {
            args.extend(["--account".to_owned(), a]);
        }
        self.open_with(args);
    }

    /// Open the window with these arguments (`--keys rotate --account A --profile P`);
    /// the first is its kind.
    pub fn open_with(&self, args: Vec<String>) {
        let kind = args.first().cloned().unwrap_or_default();
        if self.open.lock().unwrap().contains_key(&kind) {
            log::info!("a {kind} window is already open");
            return;
        }
        let mut cmd = std::process::Command::new(Self::bin());
        cmd.args(&args).env(
            "ASTRAN_CONTROL_SOCKET",
            astran_creds::paths::control_socket(),
        );
        // its stderr comes through us (copied to ours as it comes), so that a window that
        // cannot start says why in a notification instead of nothing happening on the click
        cmd.stderr(std::process::Stdio::piped());
        match cmd.spawn() {
            Ok(mut c) => {
                self.open.lock().unwrap().insert(kind.clone(), c.id());
                let open = self.open.clone();
                let ui = self.ui.clone();
                let tail = c.stderr.take().map(StderrTail::start);
                std::thread::spawn(move || reap(c, tail, (open, kind), ui));
            }
            Err(e) => {
                let _ = self.ui.send(UiMsg::Info(
                    "Cannot open the window".into(),
                    format!("{} could not be started: {e}", Self::bin().display()),
                ));
            }
        }
    }
}

impl Drop for Windows {
    fn drop(&mut self) {
        for pid in self.open.lock().unwrap().values() {
            crate::platform::terminate(*pid);
        }
    }
}

/// What a window wrote on stderr that says why it failed: a panic's message (the line after
/// "panicked at", even when a backtrace follows), else the last lines. Every line is also
/// copied to our stderr as it comes.
struct StderrTail {
    seen: Arc<std::sync::Mutex<Seen>>,
    done: std::sync::mpsc::Receiver<()>,
}

#[derive(Default)]
struct Seen {
    last: std::collections::VecDeque<String>,
    panic: Option<String>,
    after_panic: bool,
}

impl Seen {
    const KEEP: usize = 4;

    fn line(&mut self, text: &str) {
        let text = text.trim();
        if text.is_empty() {
            return;
        }
        if self.after_panic && self.panic.is_none() {
            self.panic = Some(text.to_owned());
        }
        self.after_panic = text.contains("panicked at");
        if self.last.len() == Self::KEEP {
            self.last.pop_front();
        }
        self.last.push_back(text.to_owned());
    }

    /// The one line that says most.
    fn cause(&self) -> Option<String> {
        self.panic.clone().or_else(|| {
            self.last
                .iter()
                .rev()
                .find(|l| !l.starts_with("note: "))
                .cloned()
        })
    }
}

impl StderrTail {
    fn start(pipe: std::process::ChildStderr) -> StderrTail {
        use std::io::{BufRead, Write};
        let seen = Arc::new(std::sync::Mutex::new(Seen::default()));
        let (tx, done) = std::sync::mpsc::channel();
        let keep = seen.clone();
        std::thread::spawn(move || {
            for line in std::io::BufReader::new(pipe).split(b'\n') {
                let Ok(line) = line else { break };
                let _ = std::io::stderr().write_all(&[&line[..], b"\n"].concat());
                keep.lock().unwrap().line(&String::from_utf8_lossy(&line));
            }
            let _ = tx.send(());
        });
        StderrTail { seen, done }
    }

    /// The cause once the pipe ends; a grandchild (WebKit's helpers) may hold it a little
    /// longer, so this waits at most `within`.
    fn finish(self, within: std::time::Duration) -> Option<String> {
        let _ = self.done.recv_timeout(within);
        let seen = self.seen.lock().unwrap();
        seen.cause()
    }
}

/// What to tell the user when the window ended badly: `None` when it was closed (exit 0) or
/// told to stop (SIGTERM, SIGINT, SIGHUP, SIGKILL: a logout, a shutdown, the agent quitting).
fn window_failure(status: &std::process::ExitStatus, cause: Option<&str>) -> Option<String> {
    if status.success() {
        return None;
    }
    #[cfg(unix)]
    let how = {
        use std::os::unix::process::ExitStatusExt;
        match (status.code(), status.signal()) {
            (_, Some(libc::SIGTERM | libc::SIGINT | libc::SIGHUP | libc::SIGKILL)) => return None,
            (_, Some(sig)) => format!("it crashed (signal {sig})"),
            (Some(code), _) => format!("it exited with status {code}"),
            (None, None) => "it stopped".to_owned(),
        }
    };
    #[cfg(not(unix))]
    let how = format!("it exited with status {}", status.code().unwrap_or(-1));
    let cause = cause
        .map(|l| format!(": {}", l.chars().take(300).collect::<String>()))
        .unwrap_or_default();
    Some(format!(
        "The window could not be shown; {how}{cause}. Check that the desktop session \
         (DISPLAY or WAYLAND_DISPLAY) is reachable, then try again; the details are in the \
         agent's log."
    ))
}

/// Wait for the window process so it never lingers as a zombie; then wake the tray (the
/// window may have changed the session or the settings), and say so if the window failed.
fn reap(
    mut child: Child,
    tail: Option<StderrTail>,
    (open, kind): (Open, String),
    ui: Sender<UiMsg>,
) {
    let status = child.wait();
    open.lock().unwrap().remove(&kind);
    let cause = tail.and_then(|t| t.finish(std::time::Duration::from_millis(300)));
    match &status {
        Ok(s) => match window_failure(s, cause.as_deref()) {
            Some(msg) => {
                log::warn!("window failed ({s}): {}", cause.as_deref().unwrap_or("-"));
                let _ = ui.send(UiMsg::Info("Cannot open the window".into(), msg));
            }
            None => log::info!("window closed ({s})"),
        },
        Err(e) => log::warn!("window: cannot wait for it: {e}"),
    }
    let _ = ui.send(UiMsg::WindowClosed);
}

#[cfg(all(test, unix))]
mod tests {
    use super::*;

    #[test]
    fn a_window_that_fails_is_reported_and_one_closed_or_stopped_is_not() {
        use std::os::unix::process::ExitStatusExt;
        use std::process::ExitStatus;
        let said = |raw: i32, err: &[&str]| {
            let mut seen = Seen::default();
            for l in err {
                seen.line(l);
            }
            window_failure(&ExitStatus::from_raw(raw), seen.cause().as_deref())
        };
        assert_eq!(said(0, &["some warning"]), None);
        for sig in [libc::SIGTERM, libc::SIGINT, libc::SIGHUP, libc::SIGKILL] {
            assert_eq!(said(sig, &["bye"]), None, "signal {sig}");
        }
        // tao's panic when GTK cannot start, with and without a backtrace after it
        let panic = [
            "",
            "thread 'main' (1123) panicked at tao-0.37.2/src/platform_impl/linux/event_loop.rs:219:53:",
            "Failed to initialize gtk backend!: BoolError",
        ];
        let backtrace = [
            "stack backtrace:",
            "   0: __rustc::rust_begin_unwind",
            "   1: core::panicking::panic_fmt",
            "             at /rustc/library/core/src/panicking.rs:75:14",
            "note: Some details are omitted, run with `RUST_BACKTRACE=full` for a verbose backtrace.",
        ];
        let hint =
            ["note: run with `RUST_BACKTRACE=1` environment variable to display a backtrace"];
        for tail in [&hint[..], &backtrace[..]] {
            let lines: Vec<&str> = panic.iter().chain(tail).copied().collect();
            let m = said(101 << 8, &lines).unwrap();
            assert!(m.contains("exited with status 101"), "{m}");
            assert!(
                m.contains(": Failed to initialize gtk backend!: BoolError."),
                "{m}"
            );
            assert!(m.contains("DISPLAY"), "{m}");
        }
        // no panic: the last line that is not a note
        let m = said(1 << 8, &["Gtk-WARNING: cannot open display: :9", "note: x"]).unwrap();
        assert!(
            m.contains("status 1: Gtk-WARNING: cannot open display: :9."),
            "{m}"
        );
        let m = said(libc::SIGSEGV, &[]).unwrap();
        assert!(m.contains("crashed (signal 11)."), "{m}");
        // a long line is cut
        let long = "x".repeat(5000);
        assert!(said(1 << 8, &[&long]).unwrap().len() < 600);
    }
}
