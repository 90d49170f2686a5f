//! Where things live: our config file, the AWS shared files, the control socket, the
//! autostart folder. Every path the programs use is computed here, from the environment
//! variables that override it or the platform's folders (the `dirs` crate: XDG on Linux,
//! `~/Library/...` on macOS, the known folders on Windows).

use crate::error::{Error, Result};
use std::path::{Path, PathBuf};

fn env_path(var: &str) -> Option<PathBuf> {
    std::env::var_os(var)
        .filter(|v| !v.is_empty())
        .map(|v| expand_tilde(Path::new(&v)))
}

/// The home directory (`$HOME` on Unix).
pub fn home_dir() -> Option<PathBuf> {
    dirs::home_dir()
}

/// `~` and `~/x` relative to the home directory; anything else as it is.
pub fn expand_tilde(p: &Path) -> PathBuf {
    if let Ok(rest) = p.strip_prefix("~") {
        if let Some(h) = home_dir() {
            return h.join(rest);
        }
    }
    p.to_path_buf()
}

/// Our config file: `ASTRAN_CONFIG`, else `<config dir>/astran-tray/config.toml`
/// (`$XDG_CONFIG_HOME` or `~/.config` on Linux).
pub fn config_file() -> Result<PathBuf> {
    if let Some(p) = env_path("ASTRAN_CONFIG") {
        return Ok(p);
    }
    dirs::config_dir()
        .map(|d| d.join("astran-tray").join("config.toml"))
        .ok_or_else(|| Error::config("no home directory for the config file; set ASTRAN_CONFIG"))
}

/// The AWS shared credentials file: `AWS_SHARED_CREDENTIALS_FILE`, else `~/.aws/credentials`.
pub fn credentials_file() -> Result<PathBuf> {
    aws_file("AWS_SHARED_CREDENTIALS_FILE", "credentials")
}

/// The AWS config file: `AWS_CONFIG_FILE`, else `~/.aws/config`.
pub fn aws_config_file() -> Result<PathBuf> {
    aws_file("AWS_CONFIG_FILE", "config")
}

fn aws_file(var: &str, name: &str) -> Result<PathBuf> {
    if let Some(p) = env_path(var) {
        return Ok(p);
    }
    home_dir()
        .map(|h| h.join(".aws").join(name))
        .ok_or_else(|| {
            Error::config(format!(
                "no home directory found for ~/.aws/{name}; set {var}"
            ))
        })
}

/// The control socket: `ASTRAN_CONTROL_SOCKET`, else `$XDG_RUNTIME_DIR/astran-tray/agent.sock`,
/// else `<temp>/astran-tray-<uid>/agent.sock`. On Windows the named pipe
/// `\\.\pipe\astran-tray-<user name>`.
pub fn control_socket() -> PathBuf {
    if let Some(p) = env_path("ASTRAN_CONTROL_SOCKET") {
        return p;
    }
    #[cfg(windows)]
    {
        // one per user (the pipe's access list admits its user alone); a name with only the
        // characters a pipe name may hold
        let user: String = std::env::var("USERNAME")
            .unwrap_or_default()
            .chars()
            .map(|c| {
                if c.is_alphanumeric() || c == '-' || c == '_' {
                    c
                } else {
                    '_'
                }
            })
            .collect();
        PathBuf::from(format!(r"\\.\pipe\astran-tray-{user}"))
    }
    #[cfg(not(windows))]
    {
        let dir = match dirs::runtime_dir() {
            Some(d) => d.join("astran-tray"),
            None => std::env::temp_dir().join(format!("astran-tray-{}", uid())),
        };
        dir.join("agent.sock")
    }
}

/// The XDG autostart entry of the tray (Linux and the other free desktops).
pub fn autostart_entry() -> Option<PathBuf> {
    dirs::config_dir().map(|d| d.join("autostart").join("astran-tray.desktop"))
}

/// The `astran-creds` program, by absolute path where it can be found (for the
/// `credential_process` line): this program if it is it, else the one beside it (the tray's,
/// from the same package), else the first on `PATH`.
pub fn astran_creds_exe() -> PathBuf {
    let name = if cfg!(windows) {
        "astran-creds.exe"
    } else {
        "astran-creds"
    };
    let me = std::env::current_exe().ok();
    if let Some(me) = &me {
        if me.file_name().is_some_and(|n| n == name) {
            return me.clone();
        }
        if let Some(beside) = me.parent().map(|d| d.join(name)).filter(|p| p.is_file()) {
            return beside;
        }
    }
    std::env::var_os("PATH")
        .and_then(|p| {
            std::env::split_paths(&p)
                .map(|d| d.join(name))
                .find(|c| c.is_file())
        })
        .unwrap_or_else(|| PathBuf::from(name))
}

/// This process's user id (0 where the platform has none).
pub fn uid() -> u32 {
    #[cfg(unix)]
    return rustix::process::getuid().as_raw();
    #[cfg(not(unix))]
    0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tilde_is_home() {
        let home = home_dir().unwrap();
        assert_eq!(expand_tilde(Path::new("~/a/b")), home.join("a/b"));
        assert_eq!(expand_tilde(Path::new("/x/~/y")), PathBuf::from("/x/~/y"));
        assert_eq!(expand_tilde(Path::new("rel")), PathBuf::from("rel"));
    }
}
