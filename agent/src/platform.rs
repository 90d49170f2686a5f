//! What differs between desktops: local time for the menu's words, opening a folder, the
//! clipboard, ending a child process.

use time::OffsetDateTime;

/// Local wall-clock time as HH:MM.
pub fn hhmm(t: OffsetDateTime) -> String {
    #[cfg(unix)]
    {
        let secs = t.unix_timestamp() as libc::time_t;
        // SAFETY: localtime_r only writes into the struct we own. (The `time` crate refuses
        // the local offset in a multi-threaded process on Linux, so libc it is.)
        let mut tm: libc::tm = unsafe { std::mem::zeroed() };
        if !unsafe { libc::localtime_r(&secs, &mut tm) }.is_null() {
            return format!("{:02}:{:02}", tm.tm_hour, tm.tm_min);
        }
    }
    format!("{:02}:{:02} UTC", t.hour(), t.minute())
}

/// Open `dir` in the desktop's file manager.
pub fn open_folder(dir: &std::path::Path) -> Result<(), String> {
    let _ = std::fs::create_dir_all(dir);
    #[cfg(target_os = "macos")]
    let opener = "open";
    #[cfg(windows)]
    let opener = "explorer";
    #[cfg(all(unix, not(target_os = "macos")))]
    let opener = "xdg-open";
    std::process::Command::new(opener)
        .arg(dir)
        .spawn()
        .map(drop)
        .map_err(|e| format!("{opener}: {e}"))
}

/// The clipboard, opened on first use and kept (on X11 the owner must stay alive for the
/// text to stay pasteable). Used on the tray thread only.
#[derive(Default)]
pub struct Clipboard(Option<arboard::Clipboard>);

impl Clipboard {
    pub fn set(&mut self, text: &str) -> bool {
        if self.0.is_none() {
            self.0 = arboard::Clipboard::new().ok();
        }
        self.0
            .as_mut()
            .is_some_and(|c| c.set_text(text.to_owned()).is_ok())
    }
}

/// Ask a child we started to end (SIGTERM).
pub fn terminate(pid: u32) {
    #[cfg(unix)]
    // SAFETY: signalling a process id we got from spawning it.
    unsafe {
        libc::kill(pid as libc::pid_t, libc::SIGTERM);
    }
    #[cfg(not(unix))]
    let _ = pid;
}
