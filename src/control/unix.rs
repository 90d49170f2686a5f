//! The control channel on Unix: a socket in a 0700 folder of ours, mode 0600, each peer's
//! uid checked (SO_PEERCRED) against ours.

use crate::error::{Error, Result};
use std::path::{Path, PathBuf};

/// A client's connection.
pub(super) type ClientConn = tokio::net::UnixStream;
/// A connection the owner accepted.
pub(super) type ServerConn = tokio::net::UnixStream;

pub(super) async fn connect(path: &Path) -> std::io::Result<ClientConn> {
    tokio::net::UnixStream::connect(path).await
}

pub(super) struct Listener {
    inner: tokio::net::UnixListener,
    path: PathBuf,
}

impl Listener {
    /// Bind at `path` (no other owner answers there: the caller asked). `Ok(None)` is never
    /// returned here: a stale socket is replaced.
    pub(super) fn bind(path: &Path) -> Result<Option<Listener>> {
        crate::fsio::create_own_private_dir(crate::fsio::parent_dir(path))?;
        if path.exists() {
            let _ = std::fs::remove_file(path);
        }
        let inner = tokio::net::UnixListener::bind(path).map_err(|e| {
            Error::io(
                format!("cannot create the control socket {}", path.display()),
                e,
            )
        })?;
        {
            use std::os::unix::fs::PermissionsExt;
            let _ = std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600));
        }
        Ok(Some(Listener {
            inner,
            path: path.to_path_buf(),
        }))
    }

    /// The next connection, and whether its peer may talk to us (`Err`: why not).
    pub(super) async fn accept(
        &mut self,
    ) -> std::io::Result<(ServerConn, std::result::Result<(), String>)> {
        let (stream, _) = self.inner.accept().await?;
        let cred = stream.peer_cred()?;
        let ok = if cred.uid() == crate::paths::uid() {
            Ok(())
        } else {
            Err(format!("a connection from uid {}", cred.uid()))
        };
        Ok((stream, ok))
    }
}

impl Drop for Listener {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}
