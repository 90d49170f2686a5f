//! `astran-creds` links GCC's unwinder statically, as `gcc -static-libgcc` does for C
//! programs: `credential-process` starts at every AWS CLI and SDK call, and loading
//! `libgcc_s.so.1` (its symbols, and its constructor's CPU-model probe, `cpuid`, which traps
//! to the hypervisor on a VM) is a measurable part of a start (bench/changes.md). Rust's
//! standard library asks for `-lgcc_s` by name, so a linker script of that name in a folder
//! searched first points the linker at `libgcc_eh.a` instead. Only for the binaries of this
//! package, on Linux with glibc, and only when the C compiler has `libgcc_eh.a`; otherwise
//! nothing changes.

use std::path::PathBuf;
use std::process::Command;

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-env-changed=CC");
    let var = |k: &str| std::env::var(k).unwrap_or_default();
    if var("CARGO_CFG_TARGET_OS") != "linux" || var("CARGO_CFG_TARGET_ENV") != "gnu" {
        return;
    }
    // rustc links with `cc` unless told otherwise
    let cc = std::env::var("CC").unwrap_or_else(|_| "cc".into());
    let Ok(out) = Command::new(&cc)
        .arg("-print-file-name=libgcc_eh.a")
        .output()
    else {
        return;
    };
    let found = PathBuf::from(String::from_utf8_lossy(&out.stdout).trim());
    if !out.status.success() || !found.is_absolute() || !found.exists() {
        return;
    }
    let dir = PathBuf::from(var("OUT_DIR")).join("static-libgcc");
    if std::fs::create_dir_all(&dir).is_err()
        || std::fs::write(dir.join("libgcc_s.so"), "INPUT ( -lgcc_eh )\n").is_err()
    {
        return;
    }
    println!("cargo:rustc-link-arg-bins=-L{}", dir.display());
}
