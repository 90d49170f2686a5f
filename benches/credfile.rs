//! Credentials-file rewrite cost: `credfile::set_profile` (the text edit) and
//! `CredentialsFile::set_profile` (lock, read, edit, atomic write with fsync, rename), on
//! files of 10, 1,000 and 10,000 profiles with ours in the middle. Goal: <= 20 ms at 10,000
//! profiles, cost linear in file size.
//!
//! `cargo bench --bench credfile` measures; `cargo test --benches` runs each once (CI smoke).

use astran_creds::awsfile::{CredentialsFile, MANAGED_KEYS as MANAGED};
use astran_creds::credfile;
use astran_creds::values::ProfileName;
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use std::hint::black_box;

/// A credentials file of `n` profiles, with `astran` (carrying a session token, as we write
/// it) at position n/2 and the others long-term keys with a region, as `aws configure` writes
/// them: about 110 bytes a profile, 1.1 MB at 10,000. `TOKENS=1` in the environment gives
/// every profile a session token of realistic length instead (about 940 bytes a profile).
fn file_with(n: usize) -> String {
    let all_tokens = std::env::var_os("TOKENS").is_some_and(|v| v == "1");
    let token = "FwoGZXIvYXdzE".repeat(60);
    let mut s = String::with_capacity(n * if all_tokens { 1000 } else { 120 });
    s.push_str("# managed by hand and by astran-tray\n");
    for i in 0..n {
        let ours = i == n / 2;
        if ours {
            s.push_str("[astran]\n");
        } else {
            s.push_str(&format!("[profile-{i}]\n"));
        }
        s.push_str(&format!(
            "aws_access_key_id = AKIA{i:016}\naws_secret_access_key = {i:040}\n"
        ));
        if ours || all_tokens {
            s.push_str(&format!("aws_session_token = {token}\n"));
        }
        s.push_str("region = eu-west-3\n\n");
    }
    s
}

fn entries() -> Vec<(&'static str, &'static str)> {
    vec![
        ("aws_access_key_id", "ASIANEWNEWNEWNEWNEW1"),
        (
            "aws_secret_access_key",
            "newsecretnewsecretnewsecretnewsecret0000",
        ),
        ("aws_session_token", "NEWTOKEN"),
        ("x_security_token_expires", "2026-11-29T12:00:00Z"),
    ]
}

const SIZES: &[usize] = &[10, 1_000, 10_000];

fn text_edit(c: &mut Criterion) {
    let mut g = c.benchmark_group("set_profile_text");
    let e = entries();
    for &n in SIZES {
        let text = file_with(n);
        g.throughput(Throughput::Bytes(text.len() as u64));
        g.bench_with_input(BenchmarkId::from_parameter(n), &text, |b, text| {
            b.iter(|| credfile::set_profile(black_box(text), "astran", &e, MANAGED))
        });
    }
    g.finish();
}

fn file_write(c: &mut Criterion) {
    let mut g = c.benchmark_group("set_profile_file");
    // Each iteration fsyncs twice; keep the sample small so the full run stays short.
    g.sample_size(20);
    let e = entries();
    for &n in SIZES {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("credentials");
        let text = file_with(n);
        std::fs::write(&path, &text).expect("write");
        let file = CredentialsFile::new(&path);
        let ours = ProfileName::parse("astran").expect("a valid name");
        g.throughput(Throughput::Bytes(text.len() as u64));
        // Alternate two values so every iteration really writes.
        let mut flip = false;
        g.bench_function(BenchmarkId::from_parameter(n), |b| {
            b.iter(|| {
                flip = !flip;
                let mut e = e.clone();
                e[2].1 = if flip { "TOKEN-A" } else { "TOKEN-B" };
                file.set_profile(&ours, &e, MANAGED).expect("set_profile");
            })
        });
    }
    g.finish();
}

criterion_group!(benches, text_edit, file_write);
criterion_main!(benches);
