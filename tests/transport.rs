//! Transport: HTTPS with a private certificate authority (`AWS_CA_BUNDLE` and the config's
//! `ca_bundle`), untrusted certificates refused with a clear message, `HTTPS_PROXY` and
//! `NO_PROXY` honoured. A TLS front (Python's ssl) sits before the test IdP and its STS
//! front; certificates are made with openssl for each run.
// Unix only: the scenes use Unix sockets, signals and file modes (tests/common).
#![cfg(unix)]

mod common;
use common::*;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

fn openssl(dir: &Path, args: &[&str]) {
    let o = Command::new("openssl")
        .current_dir(dir)
        .args(args)
        .output()
        .expect("openssl");
    assert!(
        o.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&o.stderr)
    );
}

/// A certificate authority `NAME-ca.pem` and a server certificate `NAME-server.pem` (key
/// `NAME-server.key`) for localhost and 127.0.0.1, signed by it.
fn make_pki(dir: &Path, name: &str) {
    let ec = [
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:prime256v1",
        "-nodes",
    ];
    let mut ca = vec!["req", "-x509"];
    ca.extend_from_slice(&ec);
    let (ca_key, ca_pem) = (format!("{name}-ca.key"), format!("{name}-ca.pem"));
    let subj = format!("/CN=Astran test CA {name}");
    ca.extend_from_slice(&[
        "-keyout",
        &ca_key,
        "-out",
        &ca_pem,
        "-days",
        "2",
        "-subj",
        &subj,
        "-addext",
        "basicConstraints=critical,CA:TRUE",
        "-addext",
        "keyUsage=critical,keyCertSign,cRLSign",
    ]);
    openssl(dir, &ca);
    let (key, csr, pem) = (
        format!("{name}-server.key"),
        format!("{name}-server.csr"),
        format!("{name}-server.pem"),
    );
    let mut req = vec!["req", "-new"];
    req.extend_from_slice(&ec);
    req.extend_from_slice(&["-keyout", &key, "-out", &csr, "-subj", "/CN=localhost"]);
    openssl(dir, &req);
    let ext = dir.join(format!("{name}.ext"));
    std::fs::write(
        &ext,
        "subjectAltName=DNS:localhost,IP:127.0.0.1\nbasicConstraints=CA:FALSE\nkeyUsage=digitalSignature\nextendedKeyUsage=serverAuth\n",
    )
    .unwrap();
    openssl(
        dir,
        &[
            "x509",
            "-req",
            "-in",
            &csr,
            "-CA",
            &ca_pem,
            "-CAkey",
            &ca_key,
            "-CAcreateserial",
            "-days",
            "2",
            "-out",
            &pem,
            "-extfile",
            ext.to_str().unwrap(),
        ],
    );
}

/// Start a helper of tests/support/tls_front.py and return its port.
fn helper(args: &[&str]) -> (Guard, u16) {
    let (guard, port) = spawn_announcing(
        Command::new(venv_bin("python"))
            .arg(root().join("tests/support/tls_front.py"))
            .args(args),
        "listening ",
    );
    (guard, port.parse().unwrap())
}

struct Tls {
    env: Env,
    pki: tempfile::TempDir,
    front_port: u16,
    rogue_port: u16,
    _front: Guard,
    _rogue: Guard,
}

impl Tls {
    fn start() -> Tls {
        let env = Env::standard();
        let pki = tempfile::tempdir().unwrap();
        make_pki(pki.path(), "good");
        make_pki(pki.path(), "rogue");
        let p = |f: &str| pki.path().join(f).to_str().unwrap().to_string();
        let (front, front_port) = helper(&[
            "front",
            "--cert",
            &p("good-server.pem"),
            "--key",
            &p("good-server.key"),
            "--upstream",
            &env.idp.base,
        ]);
        // the same service behind a certificate from a CA nobody trusts
        let (rogue, rogue_port) = helper(&[
            "front",
            "--cert",
            &p("rogue-server.pem"),
            "--key",
            &p("rogue-server.key"),
            "--upstream",
            &env.idp.base,
        ]);
        Tls {
            env,
            pki,
            front_port,
            rogue_port,
            _front: front,
            _rogue: rogue,
        }
    }

    fn ca(&self) -> PathBuf {
        self.pki.path().join("good-ca.pem")
    }

    /// `login` against https://localhost:PORT for both the IdP and STS, with `vars`.
    fn login(&self, port: u16, vars: &[(&str, &str)]) -> Output {
        let base = format!("https://localhost:{port}");
        let mut c = self
            .env
            .cmd(&["login", "--email", EMAIL, "--password-stdin"]);
        c.env(
            "ASTRAN_IDP_URL",
            format!("{base}/auth/realms/root-accounts/protocol/openid-connect/token"),
        )
        .env("ASTRAN_STS_ENDPOINT", format!("{base}/sts"))
        .env("ASTRAN_HTTP_TIMEOUT_SECS", "10");
        for (k, v) in vars {
            c.env(k, v);
        }
        c.stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut ch = c.spawn().unwrap();
        std::io::Write::write_all(
            &mut ch.stdin.take().unwrap(),
            format!("{PASSWORD}\n").as_bytes(),
        )
        .unwrap();
        ch.wait_with_output().unwrap()
    }
}

#[test]
fn a_private_ca_is_trusted_through_aws_ca_bundle_or_the_config() {
    let t = Tls::start();
    let ca = t.ca();
    // without it: refused, and the message says what to do
    let o = t.login(t.front_port, &[]);
    let err = text(&o).1;
    assert_eq!(o.status.code(), Some(5), "{err}");
    assert!(err.contains("certificate is not trusted"), "{err}");
    assert!(err.contains("AWS_CA_BUNDLE"), "{err}");
    assert!(!t.env.creds.exists(), "nothing written");

    assert_ok(
        &t.login(t.front_port, &[("AWS_CA_BUNDLE", ca.to_str().unwrap())]),
        "login with AWS_CA_BUNDLE",
    );
    let first = t.env.profile_value("astran", "aws_access_key_id").unwrap();
    assert!(
        first.starts_with("ASIA") || first.starts_with("FSIA"),
        "{first}"
    );

    std::fs::create_dir_all(t.env.config.parent().unwrap()).unwrap();
    std::fs::write(
        &t.env.config,
        format!("[accounts.default]\nca_bundle = \"{}\"\n", ca.display()),
    )
    .unwrap();
    assert_ok(
        &t.login(t.front_port, &[]),
        "login with ca_bundle in the config",
    );
    assert_ne!(
        t.env.profile_value("astran", "aws_access_key_id").unwrap(),
        first
    );

    // a server whose certificate comes from another CA stays refused, file untouched
    let before = t.env.creds_text();
    let o = t.login(t.rogue_port, &[]);
    let err = text(&o).1;
    assert_eq!(o.status.code(), Some(5), "{err}");
    assert!(err.contains("certificate is not trusted"), "{err}");
    assert_eq!(t.env.creds_text(), before);

    // a bundle that cannot be read is a configuration error
    let o = t.login(t.front_port, &[("AWS_CA_BUNDLE", "/nonexistent/ca.pem")]);
    let err = text(&o).1;
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(
        err.contains("/nonexistent/ca.pem") && err.contains("cannot be read"),
        "{err}"
    );
    assert_eq!(t.env.creds_text(), before);
}

#[test]
fn https_proxy_is_used_and_no_proxy_bypasses_it() {
    let t = Tls::start();
    let ca = t.ca();
    let ca = ca.to_str().unwrap();
    let log = t.env.dir.path().join("proxy.log");
    let (_proxy, proxy_port) = helper(&["proxy", "--log", log.to_str().unwrap()]);
    let proxy = format!("http://127.0.0.1:{proxy_port}");
    let connects = || std::fs::read_to_string(&log).unwrap_or_default();

    assert_ok(
        &t.login(
            t.front_port,
            &[("AWS_CA_BUNDLE", ca), ("HTTPS_PROXY", &proxy)],
        ),
        "login through the proxy",
    );
    let target = format!("CONNECT localhost:{}", t.front_port);
    assert_eq!(
        connects().matches(&target).count(),
        1,
        "one tunnel for the IdP and STS (connection reused): {}",
        connects()
    );

    assert_ok(
        &t.login(
            t.front_port,
            &[
                ("AWS_CA_BUNDLE", ca),
                ("HTTPS_PROXY", &proxy),
                ("NO_PROXY", "localhost"),
            ],
        ),
        "login with NO_PROXY",
    );
    assert_eq!(
        connects().matches(&target).count(),
        1,
        "NO_PROXY bypassed it"
    );

    // a proxy that is down: the login fails, proving the proxy is in the path
    let before = t.env.creds_text();
    let dead = format!("http://127.0.0.1:{}", free_port());
    let o = t.login(
        t.front_port,
        &[("AWS_CA_BUNDLE", ca), ("HTTPS_PROXY", &dead)],
    );
    assert_eq!(o.status.code(), Some(5), "{:?}", text(&o));
    assert_eq!(t.env.creds_text(), before);
}
