//! Logging for the programs: `env_logger` with `RUST_LOG`, to stderr, or appended to the file
//! named by `ASTRAN_LOG_FILE` (created 0600; for bug reports and the tests' secrets scan).
//! Panics are logged too. Log lines never carry secrets: they only see `Secret`'s redacted
//! `Debug`, and no request or reply bodies are logged.

use std::io::Write;

/// Set up logging with `default_filter` when `RUST_LOG` is unset.
pub fn init(default_filter: &str) {
    let mut b =
        env_logger::Builder::from_env(env_logger::Env::default().default_filter_or(default_filter));
    b.format_target(false);
    if let Some(path) = std::env::var_os("ASTRAN_LOG_FILE").filter(|v| !v.is_empty()) {
        let mut o = std::fs::OpenOptions::new();
        o.create(true).append(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut o, 0o600);
        match o.open(&path) {
            Ok(f) => {
                b.target(env_logger::Target::Pipe(Box::new(LineWriter(f))));
            }
            Err(e) => eprintln!(
                "cannot open the log file {} ({e}); logging to stderr",
                std::path::Path::new(&path).display()
            ),
        }
    }
    if b.try_init().is_err() {
        return;
    }
    let default_hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        log::error!("{info}");
        default_hook(info);
    }));
}

/// One `write` per record, so processes appending to the same file do not interleave lines.
struct LineWriter(std::fs::File);

impl Write for LineWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.write_all(buf).map(|_| buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        self.0.flush()
    }
}
