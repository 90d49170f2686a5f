//! The control channel on Windows: a named pipe (`\\.\pipe\astran-tray-<user>`) with the same
//! line protocol. Its DACL admits only the current user (no one else can open it, not even
//! to read), remote clients are rejected, and the first instance flag makes a second owner's
//! `bind` fail: single instance by the pipe's name.

use crate::error::{Error, Result};
use std::ffi::c_void;
use std::path::Path;
use tokio::net::windows::named_pipe::{
    ClientOptions, NamedPipeClient, NamedPipeServer, ServerOptions,
};
use windows_sys::Win32::Foundation::{CloseHandle, LocalFree, ERROR_PIPE_BUSY, HANDLE};
use windows_sys::Win32::Security::Authorization::{
    ConvertSidToStringSidW, ConvertStringSecurityDescriptorToSecurityDescriptorW, SDDL_REVISION_1,
};
use windows_sys::Win32::Security::{
    GetTokenInformation, TokenUser, PSECURITY_DESCRIPTOR, SECURITY_ATTRIBUTES, TOKEN_QUERY,
    TOKEN_USER,
};
use windows_sys::Win32::System::Threading::{GetCurrentProcess, OpenProcessToken};

pub(super) type ClientConn = NamedPipeClient;
pub(super) type ServerConn = NamedPipeServer;

pub(super) async fn connect(path: &Path) -> std::io::Result<ClientConn> {
    // every instance busy: wait a little for the owner to make the next one
    for _ in 0..50 {
        match ClientOptions::new().open(path.as_os_str()) {
            Err(e) if e.raw_os_error() == Some(ERROR_PIPE_BUSY as i32) => {
                tokio::time::sleep(std::time::Duration::from_millis(20)).await
            }
            r => return r,
        }
    }
    ClientOptions::new().open(path.as_os_str())
}

pub(super) struct Listener {
    next: NamedPipeServer,
    name: std::ffi::OsString,
    sd: OwnerOnly,
}

impl Listener {
    /// Create the pipe's first instance; `Ok(None)` when another process has it already.
    pub(super) fn bind(path: &Path) -> Result<Option<Listener>> {
        let sd = OwnerOnly::new()
            .map_err(|e| Error::io("cannot make the control pipe's access list", e))?;
        let name = path.as_os_str().to_owned();
        match sd.create(&name, true) {
            Ok(next) => Ok(Some(Listener { next, name, sd })),
            // ERROR_ACCESS_DENIED: an instance exists (FILE_FLAG_FIRST_PIPE_INSTANCE)
            Err(e) if e.kind() == std::io::ErrorKind::PermissionDenied => Ok(None),
            Err(e) => Err(Error::io(
                format!("cannot create the control pipe {}", path.display()),
                e,
            )),
        }
    }

    /// The next connection; the pipe's DACL already kept other users out.
    pub(super) async fn accept(
        &mut self,
    ) -> std::io::Result<(ServerConn, std::result::Result<(), String>)> {
        self.next.connect().await?;
        let fresh = self.sd.create(&self.name, false)?;
        let conn = std::mem::replace(&mut self.next, fresh);
        Ok((conn, Ok(())))
    }
}

/// A security descriptor whose DACL allows the current user alone (SDDL
/// `D:P(A;;GA;;;<the user's SID>)`: protected, nothing inherited).
struct OwnerOnly(PSECURITY_DESCRIPTOR);

// SAFETY: the descriptor is only read (by CreateNamedPipe) and freed once, in Drop.
unsafe impl Send for OwnerOnly {}
unsafe impl Sync for OwnerOnly {}

impl OwnerOnly {
    fn new() -> std::io::Result<OwnerOnly> {
        let sid = current_user_sid()?;
        let sddl: Vec<u16> = format!("D:P(A;;GA;;;{sid})")
            .encode_utf16()
            .chain([0])
            .collect();
        let mut sd: PSECURITY_DESCRIPTOR = std::ptr::null_mut();
        // SAFETY: a NUL-terminated UTF-16 string; `sd` receives a LocalAlloc'd descriptor.
        let ok = unsafe {
            ConvertStringSecurityDescriptorToSecurityDescriptorW(
                sddl.as_ptr(),
                SDDL_REVISION_1,
                &mut sd,
                std::ptr::null_mut(),
            )
        };
        if ok == 0 {
            return Err(std::io::Error::last_os_error());
        }
        Ok(OwnerOnly(sd))
    }

    fn create(&self, name: &std::ffi::OsStr, first: bool) -> std::io::Result<NamedPipeServer> {
        let mut sa = SECURITY_ATTRIBUTES {
            nLength: std::mem::size_of::<SECURITY_ATTRIBUTES>() as u32,
            lpSecurityDescriptor: self.0,
            bInheritHandle: 0,
        };
        // SAFETY: `sa` is a valid SECURITY_ATTRIBUTES for the duration of the call.
        unsafe {
            ServerOptions::new()
                .first_pipe_instance(first)
                .reject_remote_clients(true)
                .create_with_security_attributes_raw(name, &mut sa as *mut _ as *mut c_void)
        }
    }
}

impl Drop for OwnerOnly {
    fn drop(&mut self) {
        // SAFETY: allocated by ConvertStringSecurityDescriptorToSecurityDescriptorW.
        unsafe { LocalFree(self.0) };
    }
}

/// The current user's SID as a string (`S-1-5-21-…`).
fn current_user_sid() -> std::io::Result<String> {
    let mut token: HANDLE = std::ptr::null_mut();
    // SAFETY: querying our own process token; closed below.
    if unsafe { OpenProcessToken(GetCurrentProcess(), TOKEN_QUERY, &mut token) } == 0 {
        return Err(std::io::Error::last_os_error());
    }
    let result = (|| {
        let mut len = 0u32;
        // SAFETY: the first call asks for the size only.
        unsafe { GetTokenInformation(token, TokenUser, std::ptr::null_mut(), 0, &mut len) };
        // u64s: aligned for the TOKEN_USER (pointers) at its start
        let mut buf = vec![0u64; (len as usize).div_ceil(8)];
        // SAFETY: `buf` holds at least the size the first call asked for.
        if unsafe { GetTokenInformation(token, TokenUser, buf.as_mut_ptr().cast(), len, &mut len) }
            == 0
        {
            return Err(std::io::Error::last_os_error());
        }
        // SAFETY: GetTokenInformation(TokenUser) filled a TOKEN_USER at the start of `buf`.
        let user = unsafe { &*(buf.as_ptr() as *const TOKEN_USER) };
        let mut s: *mut u16 = std::ptr::null_mut();
        // SAFETY: a valid SID from the token; `s` receives a LocalAlloc'd string.
        if unsafe { ConvertSidToStringSidW(user.User.Sid, &mut s) } == 0 {
            return Err(std::io::Error::last_os_error());
        }
        // SAFETY: a NUL-terminated UTF-16 string from the system, freed right after.
        let text = unsafe {
            let n = (0..).take_while(|&i| *s.add(i) != 0).count();
            let t = String::from_utf16_lossy(std::slice::from_raw_parts(s, n));
            LocalFree(s.cast());
            t
        };
        Ok(text)
    })();
    // SAFETY: the handle OpenProcessToken gave us.
    unsafe { CloseHandle(token) };
    result
}
