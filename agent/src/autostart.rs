//! "Start at login": an XDG autostart entry on Linux, a LaunchAgent on macOS, the Run key on
//! Windows.

use std::path::PathBuf;

#[cfg(all(unix, not(target_os = "macos")))]
fn entry_path() -> Option<PathBuf> {
    astran_creds::paths::autostart_entry()
}

#[cfg(target_os = "macos")]
fn entry_path() -> Option<PathBuf> {
    astran_creds::paths::home_dir().map(|h| h.join("Library/LaunchAgents/io.astran.tray.plist"))
}

pub fn is_enabled() -> bool {
    #[cfg(unix)]
    return entry_path().is_some_and(|p| p.exists());
    #[cfg(windows)]
    return std::process::Command::new("reg")
        .args([
            "query",
            r"HKCU\Software\Microsoft\Windows\CurrentVersion\Run",
            "/v",
            "astran-tray",
        ])
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false);
}

pub fn set_enabled(on: bool) -> std::io::Result<()> {
    let exe = std::env::current_exe()?;
    #[cfg(unix)]
    {
        let path = entry_path().ok_or_else(|| std::io::Error::other("no home directory"))?;
        if !on {
            return match std::fs::remove_file(&path) {
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e),
                _ => Ok(()),
            };
        }
        if let Some(d) = path.parent() {
            std::fs::create_dir_all(d)?;
        }
        #[cfg(not(target_os = "macos"))]
        let body = format!(
            "[Desktop Entry]\nType=Application\nName=Astran credentials\nComment=Keeps your Astran AWS profile fresh\nExec=\"{}\"\nIcon=astran-tray\nTerminal=false\nX-GNOME-Autostart-enabled=true\nNoDisplay=false\n",
            exe.display()
        );
        #[cfg(target_os = "macos")]
        let body = format!(
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<!DOCTYPE plist PUBLIC \"-//Apple//DTD PLIST 1.0//EN\" \"http://www.apple.com/DTDs/PropertyList-1.0.dtd\">\n<plist version=\"1.0\"><dict><key>Label</key><string>io.astran.tray</string><key>ProgramArguments</key><array><string>{}</string></array><key>RunAtLoad</key><true/></dict></plist>\n",
            exe.display()
        );
        std::fs::write(path, body)
    }
    #[cfg(windows)]
    {
        let key = r"HKCU\Software\Microsoft\Windows\CurrentVersion\Run";
        let status = if on {
            std::process::Command::new("reg")
                .args([
                    "add",
                    key,
                    "/v",
                    "astran-tray",
                    "/t",
                    "REG_SZ",
                    "/d",
                    &format!("\"{}\"", exe.display()),
                    "/f",
                ])
                .status()?
        } else {
            std::process::Command::new("reg")
                .args(["delete", key, "/v", "astran-tray", "/f"])
                .status()?
        };
        if status.success() {
            Ok(())
        } else {
            Err(std::io::Error::other("reg.exe failed"))
        }
    }
}
