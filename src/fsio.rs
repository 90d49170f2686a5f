//! Writing the user's files safely: atomic replacement (temp file in the same folder, fsync,
//! rename, fsync of the folder) keeping the file's mode (0600 for a new file), symlinks
//! followed to the file that holds the bytes, private folders, and an advisory lock against
//! our own concurrent writers (CLI, daemon, tray). Blocking: call it off the async workers.

use crate::error::{Error, Result};
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// How long a writer waits for another of ours to finish.
pub const LOCK_TIMEOUT: Duration = Duration::from_secs(10);

/// Follow a symlinked file (a chain too) to the path that really holds the bytes. A missing
/// final target is fine: we create it.
pub fn resolve(path: &Path) -> Result<PathBuf> {
    let mut p = path.to_path_buf();
    for _ in 0..40 {
        match fs::symlink_metadata(&p) {
            Ok(m) if m.file_type().is_symlink() => {
                let target = fs::read_link(&p)
                    .map_err(|e| Error::io(format!("cannot read the link {}", p.display()), e))?;
                p = if target.is_absolute() {
                    target
                } else {
                    p.parent().unwrap_or(Path::new(".")).join(target)
                };
            }
            _ => return Ok(p),
        }
    }
    Err(Error::local_io(format!(
        "{} is a symlink loop; fix the link",
        path.display()
    )))
}

/// The folder a file lives in (`.` for a bare name).
pub fn parent_dir(path: &Path) -> &Path {
    path.parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."))
}

/// An exclusive advisory lock on a lock file (`.<name>.astran-lock` beside the file it
/// guards), released on drop.
pub struct FileLock {
    file: fs::File,
}

impl FileLock {
    /// The lock guarding `file` (already resolved).
    pub fn for_file(file: &Path) -> Result<FileLock> {
        let name = file
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| "file".into());
        Self::acquire(
            &parent_dir(file).join(format!(".{name}.astran-lock")),
            LOCK_TIMEOUT,
        )
    }

    pub fn acquire(lock_path: &Path, timeout: Duration) -> Result<FileLock> {
        let file = open_private(lock_path, false).map_err(|e| {
            Error::io(
                format!("cannot open the lock file {}", lock_path.display()),
                e,
            )
        })?;
        let start = Instant::now();
        loop {
            match file.try_lock() {
                Ok(()) => return Ok(FileLock { file }),
                Err(fs::TryLockError::WouldBlock) if start.elapsed() < timeout => {
                    std::thread::sleep(Duration::from_millis(10))
                }
                Err(fs::TryLockError::WouldBlock) => {
                    return Err(Error::local_io(format!(
                        "another astran process has held {} for {}s; try again",
                        lock_path.display(),
                        timeout.as_secs()
                    )))
                }
                Err(fs::TryLockError::Error(e)) => {
                    return Err(Error::io(format!("cannot lock {}", lock_path.display()), e))
                }
            }
        }
    }
}

impl Drop for FileLock {
    fn drop(&mut self) {
        let _ = self.file.unlock();
    }
}

fn open_private(p: &Path, excl: bool) -> std::io::Result<fs::File> {
    let mut o = fs::OpenOptions::new();
    o.read(true).write(true);
    if excl {
        o.create_new(true);
    } else {
        o.create(true).truncate(false);
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        o.mode(0o600);
    }
    o.open(p)
}

/// Create `dir` (and its parents) with mode 0700 where missing.
pub fn create_private_dir(dir: &Path) -> Result<()> {
    if dir.is_dir() {
        return Ok(());
    }
    let mut b = fs::DirBuilder::new();
    b.recursive(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt;
        b.mode(0o700);
    }
    b.create(dir)
        .map_err(|e| Error::io(format!("cannot create {}", dir.display()), e))
}

/// Write `bytes` to `path` atomically: a temp file in the same directory with the target's
/// mode (0600 when new), fsync, rename over the target, fsync the directory.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    let dir = parent_dir(path);
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "file".into());
    let mode = existing_mode(path);
    let mut tmp_path;
    let mut n = 0u32;
    let mut file = loop {
        tmp_path = dir.join(format!(".{name}.astran-tmp-{}-{n}", std::process::id()));
        match open_private(&tmp_path, true) {
            Ok(f) => break f,
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists && n < 100 => n += 1,
            Err(e) => {
                return Err(Error::io(
                    format!("cannot create a temporary file in {}", dir.display()),
                    e,
                ))
            }
        }
    };
    let res = (|| -> std::io::Result<()> {
        #[cfg(unix)]
        if let Some(m) = mode {
            use std::os::unix::fs::PermissionsExt;
            file.set_permissions(fs::Permissions::from_mode(m))?;
        }
        file.write_all(bytes)?;
        file.sync_all()?;
        drop(file);
        replace(&tmp_path, path)?;
        #[cfg(unix)]
        if let Ok(d) = fs::File::open(dir) {
            let _ = d.sync_all();
        }
        Ok(())
    })();
    if let Err(e) = res {
        let _ = fs::remove_file(&tmp_path);
        return Err(Error::io(
            format!("cannot write {}; it was left as it was", path.display()),
            e,
        ));
    }
    Ok(())
}

/// Move the temp file over the target: rename(2) on Unix; on Windows `fs::rename` is
/// MoveFileExW with MOVEFILE_REPLACE_EXISTING, which fails while another program has the
/// target open without FILE_SHARE_DELETE (an editor, a scanner): retried for up to a second.
fn replace(tmp: &Path, path: &Path) -> std::io::Result<()> {
    #[cfg(windows)]
    for _ in 0..20 {
        match fs::rename(tmp, path) {
            Err(e) if e.kind() == std::io::ErrorKind::PermissionDenied => {
                std::thread::sleep(Duration::from_millis(50))
            }
            r => return r,
        }
    }
    fs::rename(tmp, path)
}

#[cfg(unix)]
fn existing_mode(path: &Path) -> Option<u32> {
    use std::os::unix::fs::PermissionsExt;
    fs::metadata(path)
        .ok()
        .map(|m| m.permissions().mode() & 0o7777)
}

#[cfg(not(unix))]
fn existing_mode(_: &Path) -> Option<u32> {
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_held_lock_times_out_and_is_free_after_drop() {
        let d = tempfile::tempdir().unwrap();
        let file = d.path().join("credentials");
        let held = FileLock::for_file(&file).unwrap();
        let lock = d.path().join(".credentials.astran-lock");
        let e = FileLock::acquire(&lock, Duration::from_millis(50))
            .err()
            .expect("the second lock must wait");
        assert_eq!(e.kind(), crate::ErrorKind::LocalIo);
        assert!(e.to_string().contains("try again"), "{e}");
        drop(held);
        FileLock::acquire(&lock, Duration::from_millis(50)).unwrap();
    }
}
