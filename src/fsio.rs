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

/// The lock file guarding a file, opened but not yet locked: a write made ready ahead
/// (`awsfile::PreparedUpdate`) opens it early and takes the lock only when it writes.
pub struct LockFile {
    file: fs::File,
    path: PathBuf,
}

impl LockFile {
    /// The lock file guarding `file` (already resolved), created if missing.
    pub fn for_file(file: &Path) -> Result<LockFile> {
        Self::open(Self::path_for(file), true)
    }

    /// The lock file guarding `file`, only if it is there already (a write made ready
    /// ahead creates nothing that a failed login would leave behind).
    pub fn existing_for(file: &Path) -> Result<LockFile> {
        Self::open(Self::path_for(file), false)
    }

    fn path_for(file: &Path) -> PathBuf {
        let name = file
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| "file".into());
        parent_dir(file).join(format!(".{name}.astran-lock"))
    }

    /// `create`: made (0600) when missing; else only opened.
    fn open(path: PathBuf, create: bool) -> Result<LockFile> {
        let file = if create {
            open_private(&path, false)
        } else {
            fs::OpenOptions::new().read(true).write(true).open(&path)
        }
        .map_err(|e| Error::io(format!("cannot open the lock file {}", path.display()), e))?;
        Ok(LockFile { file, path })
    }

    /// The lock file at `path`, created (0600) if missing.
    pub fn at(path: &Path) -> Result<LockFile> {
        Self::open(path.to_path_buf(), true)
    }

    /// The lock if it is free now; else the lock file back, to wait on.
    pub fn try_lock(self) -> Result<std::result::Result<FileLock, LockFile>> {
        match self.file.try_lock() {
            Ok(()) => Ok(Ok(FileLock { file: self.file })),
            Err(fs::TryLockError::WouldBlock) => Ok(Err(self)),
            Err(fs::TryLockError::Error(e)) => {
                Err(Error::io(format!("cannot lock {}", self.path.display()), e))
            }
        }
    }

    /// Take the lock, waiting up to `timeout` for another of our writers to release it.
    pub fn lock(self, timeout: Duration) -> Result<FileLock> {
        let start = Instant::now();
        let mut waiting = self;
        loop {
            match waiting.try_lock()? {
                Ok(held) => return Ok(held),
                Err(busy) if start.elapsed() < timeout => {
                    waiting = busy;
                    std::thread::sleep(Duration::from_millis(10))
                }
                Err(busy) => {
                    return Err(Error::local_io(format!(
                        "another astran process has held {} for {}s; try again",
                        busy.path.display(),
                        timeout.as_secs()
                    )))
                }
            }
        }
    }
}

impl FileLock {
    /// The lock guarding `file` (already resolved).
    pub fn for_file(file: &Path) -> Result<FileLock> {
        LockFile::for_file(file)?.lock(LOCK_TIMEOUT)
    }

    pub fn acquire(lock_path: &Path, timeout: Duration) -> Result<FileLock> {
        LockFile::at(lock_path)?.lock(timeout)
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

/// Create `dir` (0700) where missing and make sure it is this user's and private (a folder
/// for sockets and lock files, possibly in a shared temp folder).
#[cfg(unix)]
pub fn create_own_private_dir(dir: &Path) -> Result<()> {
    use std::os::unix::fs::{MetadataExt, PermissionsExt};
    create_private_dir(dir)?;
    let m = std::fs::metadata(dir)
        .map_err(|e| Error::io(format!("cannot inspect {}", dir.display()), e))?;
    if m.uid() != crate::paths::uid() {
        return Err(Error::local_io(format!(
            "{} belongs to another user; refusing to use it",
            dir.display()
        )));
    }
    if m.mode() & 0o077 != 0 {
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))
            .map_err(|e| Error::io(format!("cannot restrict {}", dir.display()), e))?;
    }
    Ok(())
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
    TempFile::beside(path)?.commit(bytes)
}

/// The temp file of an atomic write, created (0600, empty) in the target's folder before
/// the bytes are known, so that a write made ready ahead (a login's, while STS answers) has
/// only the bytes, the fsyncs and the rename left. Removed on drop unless committed.
pub struct TempFile {
    target: PathBuf,
    path: PathBuf,
    file: Option<fs::File>,
    /// The folder, opened for its fsync after the rename.
    dir: Option<fs::File>,
}

impl TempFile {
    /// A new temp file beside `target` (already resolved).
    pub fn beside(target: &Path) -> Result<TempFile> {
        let dir = parent_dir(target);
        let name = target
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| "file".into());
        let mut n = 0u32;
        loop {
            let path = dir.join(format!(".{name}.astran-tmp-{}-{n}", std::process::id()));
            match open_private(&path, true) {
                Ok(f) => {
                    return Ok(TempFile {
                        target: target.to_path_buf(),
                        path,
                        file: Some(f),
                        // on Windows a folder cannot be opened as a file (nor synced)
                        dir: if cfg!(unix) {
                            fs::File::open(dir).ok()
                        } else {
                            None
                        },
                    });
                }
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists && n < 100 => n += 1,
                Err(e) => {
                    return Err(Error::io(
                        format!("cannot create a temporary file in {}", dir.display()),
                        e,
                    ))
                }
            }
        }
    }

    /// The file the temp file replaces.
    pub fn target(&self) -> &Path {
        &self.target
    }

    /// Write `bytes` with the target's mode as it is now (0600 when new), fsync, rename
    /// over the target, fsync the folder. On failure the target is left as it was.
    pub fn commit(mut self, bytes: &[u8]) -> Result<()> {
        let Some(mut file) = self.file.take() else {
            return Err(Error::local_io("the temporary file was already used"));
        };
        let mode = existing_mode(&self.target);
        let res = (|| -> std::io::Result<()> {
            #[cfg(unix)]
            if let Some(m) = mode {
                use std::os::unix::fs::PermissionsExt;
                file.set_permissions(fs::Permissions::from_mode(m))?;
            }
            #[cfg(not(unix))]
            let _ = mode;
            file.write_all(bytes)?;
            file.sync_all()?;
            drop(file);
            replace(&self.path, &self.target)?;
            Ok(())
        })();
        if let Err(e) = res {
            let _ = fs::remove_file(&self.path);
            return Err(Error::io(
                format!(
                    "cannot write {}; it was left as it was",
                    self.target.display()
                ),
                e,
            ));
        }
        if let Some(d) = self.dir.take() {
            let _ = d.sync_all();
        }
        Ok(())
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        // not committed: nothing replaced, the temp file goes
        if self.file.take().is_some() {
            let _ = fs::remove_file(&self.path);
        }
    }
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
