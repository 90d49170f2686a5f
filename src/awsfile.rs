//! The AWS shared files on disk, the credentials file and `~/.aws/config`: our sections read
//! and written through the INI editor (`credfile`, `awsconfig`), under the lock, atomically
//! (`fsio`). Profile names are [`ProfileName`]s, so nothing unchecked reaches a section
//! header. Blocking.

use crate::awsconfig::{self, OurProfile};
use crate::credfile;
use crate::error::{Error, Result};
use crate::fsio::{self, FileLock, LockFile, TempFile};
use crate::secret::Secret;
use crate::sts::Credentials;
use crate::values::{AccountName, ProfileName};
use std::path::{Path, PathBuf};
use time::OffsetDateTime;

pub use crate::credfile::MANAGED_KEYS;

/// A credentials file on disk.
#[derive(Debug, Clone)]
pub struct CredentialsFile {
    /// The path as configured (may be a symlink).
    pub path: PathBuf,
}

impl CredentialsFile {
    pub fn new(path: impl Into<PathBuf>) -> Self {
        CredentialsFile { path: path.into() }
    }

    /// `AWS_SHARED_CREDENTIALS_FILE`, else `~/.aws/credentials`.
    pub fn from_env() -> Result<Self> {
        Ok(CredentialsFile::new(crate::paths::credentials_file()?))
    }

    /// The file's text, empty when it does not exist.
    pub fn read(&self) -> Result<String> {
        read_text(&self.path)
    }

    pub fn read_profile(&self, profile: &ProfileName) -> Result<Option<Vec<(String, String)>>> {
        Ok(credfile::read_profile(&self.read()?, profile))
    }

    /// Read, transform and write back under the lock. Nothing is written when the text
    /// does not change or `edit` fails.
    pub fn update(&self, edit: impl FnOnce(&str) -> Result<String>) -> Result<()> {
        update_text(&self.path, edit)
    }

    /// Set `entries` in `profile`; the `managed` keys not in `entries` are removed, every other
    /// key and byte stays.
    pub fn set_profile(
        &self,
        profile: &ProfileName,
        entries: &[(&str, &str)],
        managed: &[&str],
    ) -> Result<()> {
        self.update(|old| Ok(credfile::set_profile(old, profile, entries, managed)))
    }

    pub fn remove_profile(&self, profile: &ProfileName) -> Result<()> {
        if !self.path.exists() {
            return Ok(());
        }
        self.update(|old| Ok(credfile::remove_profile(old, profile)))
    }

    /// A write of this file made ready before its content is known (a login's, while STS
    /// answers): see [`PreparedUpdate`]. Only where the folder and our lock file are there
    /// already (a file written before): what it makes, its temp file, goes again when it is
    /// dropped, so a login that fails meanwhile leaves nothing behind; otherwise an error,
    /// and the write is made the usual way.
    pub fn prepare_update(&self) -> Result<PreparedUpdate> {
        let real = fsio::resolve(&self.path)?;
        let lock = LockFile::existing_for(&real)?;
        Ok(PreparedUpdate {
            path: self.path.clone(),
            lock,
            tmp: TempFile::beside(&real)?,
        })
    }

    /// Write temporary credentials into `profile` (our keys only).
    pub fn write_credentials(&self, profile: &ProfileName, c: &Credentials) -> Result<()> {
        with_entries(c, |entries| {
            self.set_profile(profile, entries, MANAGED_KEYS)
        })
    }

    /// The credentials held in `profile`, if it has a key pair.
    pub fn read_credentials(&self, profile: &ProfileName) -> Result<Option<Credentials>> {
        let Some(kv) = self.read_profile(profile)? else {
            return Ok(None);
        };
        let get = |k: &str| kv.iter().find(|(x, _)| x == k).map(|(_, v)| v.clone());
        let (Some(id), Some(secret)) = (get("aws_access_key_id"), get("aws_secret_access_key"))
        else {
            return Ok(None);
        };
        Ok(Some(Credentials {
            access_key_id: id,
            secret_access_key: Secret::new(secret),
            session_token: get("aws_session_token").map(Secret::new),
            expiration: get("x_security_token_expires")
                .and_then(|v| crate::clock::parse_rfc3339(&v)),
        }))
    }

    /// When the credentials in `profile` expire (`x_security_token_expires`), if known.
    pub fn credentials_expiry(&self, profile: &ProfileName) -> Result<Option<OffsetDateTime>> {
        Ok(self
            .read_profile(profile)?
            .and_then(|kv| {
                kv.into_iter()
                    .find(|(k, _)| k == "x_security_token_expires")
            })
            .and_then(|(_, v)| crate::clock::parse_rfc3339(&v)))
    }
}

/// A file's text, empty when it does not exist.
fn read_text(path: &Path) -> Result<String> {
    match std::fs::read(path) {
        Ok(b) => String::from_utf8(b).map_err(|_| {
            Error::local_io(format!(
                "{} is not UTF-8 text; fix or move it, it was left untouched",
                path.display()
            ))
        }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(String::new()),
        Err(e) => Err(Error::io(format!("cannot read {}", path.display()), e)),
    }
}

/// A write of a file made ready ahead: the link followed, the folder made, the lock file
/// opened and the temp file created. What is left for [`PreparedUpdate::finish`] is what
/// `update` does under the lock (the file read, edited, written, synced, renamed), so the
/// file is read only once the lock is held, as ever. Dropped unfinished, it removes its
/// temp file.
pub struct PreparedUpdate {
    /// The path as configured, to see that it still leads where it did.
    path: PathBuf,
    lock: LockFile,
    tmp: TempFile,
}

impl PreparedUpdate {
    /// Take the lock, read the file, apply `edit` and write it back (nothing is written when
    /// the text does not change or `edit` fails). A link changed meanwhile to lead
    /// elsewhere makes this a plain update of the new target.
    pub fn finish(self, edit: impl FnOnce(&str) -> Result<String>) -> Result<()> {
        let real = fsio::resolve(&self.path)?;
        if real != self.tmp.target() {
            return update_text(&self.path, edit);
        }
        let _lock = self.lock.lock(fsio::LOCK_TIMEOUT)?;
        rewrite(&real, edit, || Ok(self.tmp))
    }

    /// [`CredentialsFile::write_credentials`], made ready.
    pub fn write_credentials(self, profile: &ProfileName, c: &Credentials) -> Result<()> {
        with_entries(c, |entries| {
            self.finish(|old| Ok(credfile::set_profile(old, profile, entries, MANAGED_KEYS)))
        })
    }
}

/// The keys a profile of temporary credentials holds (ours: [`MANAGED_KEYS`]).
fn with_entries<T>(c: &Credentials, f: impl FnOnce(&[(&str, &str)]) -> T) -> T {
    let exp = c.expiration.map(crate::clock::rfc3339);
    let mut entries: Vec<(&str, &str)> = vec![
        ("aws_access_key_id", &c.access_key_id),
        ("aws_secret_access_key", c.secret_access_key.expose()),
    ];
    if let Some(t) = &c.session_token {
        entries.push(("aws_session_token", t.expose()));
    }
    if let Some(e) = &exp {
        entries.push(("x_security_token_expires", e));
    }
    f(&entries)
}

/// Read, transform and write back under the lock (the symlink followed). Nothing is written
/// when the text does not change or `edit` fails.
fn update_text(path: &Path, edit: impl FnOnce(&str) -> Result<String>) -> Result<()> {
    let real = fsio::resolve(path)?;
    fsio::create_private_dir(fsio::parent_dir(&real))?;
    let _lock = FileLock::for_file(&real)?;
    rewrite(&real, edit, || TempFile::beside(&real))
}

/// Under the lock held by the caller: read `real`, apply `edit`, and write the result through
/// `tmp`'s temp file (atomically); nothing is written when the text does not change or `edit`
/// fails.
fn rewrite(
    real: &Path,
    edit: impl FnOnce(&str) -> Result<String>,
    tmp: impl FnOnce() -> Result<TempFile>,
) -> Result<()> {
    let old = read_text(real)?;
    let new = edit(&old)?;
    if new == old && real.exists() {
        return Ok(());
    }
    tmp()?.commit(new.as_bytes())
}

/// `~/.aws/config` on disk (`AWS_CONFIG_FILE` honoured).
#[derive(Debug, Clone)]
pub struct AwsConfigFile {
    /// The path as configured (may be a symlink).
    pub path: PathBuf,
}

impl AwsConfigFile {
    pub fn new(path: impl Into<PathBuf>) -> Self {
        AwsConfigFile { path: path.into() }
    }

    pub fn from_env() -> Result<Self> {
        Ok(AwsConfigFile::new(crate::paths::aws_config_file()?))
    }

    pub fn read(&self) -> Result<String> {
        read_text(&self.path)
    }

    /// Refuse (naming the line) a profile the user set up for something else.
    pub fn check(&self, p: &ProfileName, account: &AccountName) -> Result<()> {
        awsconfig::check(&self.read()?, p, account, &self.path.display().to_string())
    }

    /// Write our sections; unless `force`, refuse a profile set up for something else
    /// (checked again under the lock).
    pub fn write(&self, ours: &OurProfile, force: bool) -> Result<()> {
        update_text(&self.path, |old| self.written(old, ours, force))
    }

    /// What [`AwsConfigFile::write`] makes of the text `old`.
    fn written(&self, old: &str, ours: &OurProfile, force: bool) -> Result<String> {
        if !force {
            let name = self.path.display().to_string();
            awsconfig::check(old, &ours.profile, &ours.account, &name)?;
        }
        Ok(awsconfig::apply(old, ours))
    }

    /// Whether [`AwsConfigFile::write`] would leave the file as it is now (read without the
    /// lock: a login asks while STS answers, so that after it only a needed write is made).
    pub fn is_current(&self, ours: &OurProfile, force: bool) -> bool {
        let current = || -> Result<bool> {
            let real = fsio::resolve(&self.path)?;
            let old = read_text(&real)?;
            Ok(real.exists() && self.written(&old, ours, force)? == old)
        };
        current().unwrap_or(false)
    }

    /// Take our sections out (the user's keys in our profile stay; `region` is ours when it
    /// is the account's).
    pub fn remove(&self, p: &ProfileName, region: Option<&str>) -> Result<()> {
        if !self.path.exists() {
            return Ok(());
        }
        update_text(&self.path, |old| Ok(awsconfig::remove(old, p, region)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;
    use std::path::Path;

    fn creds(k: &str) -> Credentials {
        Credentials {
            access_key_id: k.into(),
            secret_access_key: Secret::new("S"),
            session_token: Some(Secret::new("TOK")),
            expiration: crate::clock::parse_rfc3339("2026-01-01T00:00:00Z"),
        }
    }

    #[cfg(unix)]
    #[test]
    fn atomic_write_keeps_mode_follows_symlink_and_creates_private_dir() {
        use std::os::unix::fs::PermissionsExt;
        let p = ProfileName::parse("astran").unwrap();
        let d = tempfile::tempdir().unwrap();
        let f = CredentialsFile::new(d.path().join("aws/credentials"));
        f.write_credentials(&p, &creds("A")).unwrap();
        let mode = |p: &Path| fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&d.path().join("aws")), 0o700);
        assert_eq!(mode(&f.path), 0o600);
        fs::set_permissions(&f.path, fs::Permissions::from_mode(0o640)).unwrap();
        f.write_credentials(&p, &creds("B")).unwrap();
        assert_eq!(mode(&f.path), 0o640);

        let link = d.path().join("link");
        std::os::unix::fs::symlink(&f.path, &link).unwrap();
        CredentialsFile::new(&link)
            .write_credentials(&p, &creds("C"))
            .unwrap();
        assert!(fs::symlink_metadata(&link)
            .unwrap()
            .file_type()
            .is_symlink());
        assert!(f.read().unwrap().contains("= C\n"));
        let back = f.read_credentials(&p).unwrap().unwrap();
        assert_eq!(back.access_key_id, "C");
        assert_eq!(back.session_token.unwrap().expose(), "TOK");
        assert_eq!(f.credentials_expiry(&p).unwrap(), creds("C").expiration);
        let leftovers = temp_files(&d.path().join("aws"));
        assert!(leftovers.is_empty(), "{leftovers:?}");
    }

    fn temp_files(dir: &Path) -> Vec<String> {
        fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| n.contains("astran-tmp"))
            .collect()
    }

    #[test]
    fn a_prepared_write_reads_the_file_when_it_writes_and_keeps_every_other_byte() {
        let p = ProfileName::parse("astran").unwrap();
        let d = tempfile::tempdir().unwrap();
        let f = CredentialsFile::new(d.path().join("aws/credentials"));
        // nothing made ready before our first write: no folder, no lock file is made ahead
        assert!(f.prepare_update().is_err());
        assert!(!d.path().join("aws").exists());
        f.write_credentials(&ProfileName::parse("first").unwrap(), &creds("F"))
            .unwrap();
        std::fs::remove_file(&f.path).unwrap();
        let ready = f.prepare_update().unwrap();
        assert_eq!(temp_files(&d.path().join("aws")).len(), 1);
        // another program writes the file meanwhile: its bytes are kept
        let theirs = "# mine\r\n[other]\r\naws_access_key_id = O\r\n";
        fs::write(&f.path, theirs).unwrap();
        ready.write_credentials(&p, &creds("A")).unwrap();
        let text = f.read().unwrap();
        assert!(text.starts_with(theirs), "{text:?}");
        assert_eq!(f.read_credentials(&p).unwrap().unwrap().access_key_id, "A");
        assert!(temp_files(&d.path().join("aws")).is_empty());

        // dropped unfinished (STS refused): nothing written, no temp file left
        let ready = f.prepare_update().unwrap();
        drop(ready);
        assert_eq!(f.read().unwrap(), text);
        assert!(temp_files(&d.path().join("aws")).is_empty());
    }

    #[test]
    fn a_prepared_write_takes_the_lock_when_it_writes() {
        let p = ProfileName::parse("astran").unwrap();
        let d = tempfile::tempdir().unwrap();
        let f = CredentialsFile::new(d.path().join("credentials"));
        f.write_credentials(&p, &creds("A")).unwrap();
        let ready = f.prepare_update().unwrap();
        // another writer of ours holds the lock: the write waits for it, then reads what
        // that writer left
        let held = FileLock::for_file(&f.path).unwrap();
        let other = f.clone();
        let writer = std::thread::spawn(move || ready.write_credentials(&p, &creds("B")));
        std::thread::sleep(std::time::Duration::from_millis(100));
        assert!(
            !writer.is_finished(),
            "the prepared write did not wait for the lock"
        );
        fs::write(&other.path, "[kept]\nx = 1\n").unwrap();
        drop(held);
        writer.join().unwrap().unwrap();
        let text = other.read().unwrap();
        assert!(text.starts_with("[kept]\nx = 1\n"), "{text:?}");
        assert!(text.contains("aws_access_key_id = B"), "{text:?}");
    }

    #[cfg(unix)]
    #[test]
    fn a_prepared_write_follows_a_link_changed_meanwhile() {
        let p = ProfileName::parse("astran").unwrap();
        let d = tempfile::tempdir().unwrap();
        let (one, two) = (d.path().join("one"), d.path().join("two"));
        fs::create_dir(&two).unwrap();
        let link = d.path().join("credentials");
        std::os::unix::fs::symlink(one.join("credentials"), &link).unwrap();
        fs::create_dir(&one).unwrap();
        CredentialsFile::new(&link)
            .write_credentials(&p, &creds("A"))
            .unwrap();
        let ready = CredentialsFile::new(&link).prepare_update().unwrap();
        fs::remove_file(&link).unwrap();
        std::os::unix::fs::symlink(two.join("credentials"), &link).unwrap();
        ready.write_credentials(&p, &creds("C")).unwrap();
        assert!(fs::read_to_string(two.join("credentials"))
            .unwrap()
            .contains("aws_access_key_id = C"));
        assert!(fs::read_to_string(one.join("credentials"))
            .unwrap()
            .contains("aws_access_key_id = A"));
        assert!(temp_files(&one).is_empty() && temp_files(&two).is_empty());
    }
}
