//! The login window end to end: WebDriver (tauri-driver + WebKitWebDriver, under Xvfb) on
//! the real Tauri window, talking to a running agent, which talks to the test IdP and moto.

#[path = "../../tests/common/mod.rs"]
mod common;
use common::*;
use std::process::Stdio;
use std::time::Duration;

fn tauri_driver() -> std::path::PathBuf {
    let home = std::env::var("CARGO_HOME")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|_| {
            std::path::PathBuf::from(std::env::var("HOME").unwrap()).join(".cargo")
        });
    let p = home.join("bin/tauri-driver");
    assert!(p.exists(), "tauri-driver is missing: run scripts/setup.sh");
    p
}

#[test]
fn login_window_shows_errors_then_logs_in_and_closes() {
    let env = Env::standard()
        .with_env("DISPLAY", display())
        .with_env("WEBKIT_DISABLE_DMABUF_RENDERER", "1")
        .with_env("NO_AT_BRIDGE", "1");
    // the agent owns the session
    let mut agent = env.command(workspace_bin("astran-tray"));
    agent
        .env("ASTRAN_IDP_URL", &env.idp.token_url)
        .env("ASTRAN_STS_ENDPOINT", &env.sts)
        .env("ASTRAN_HTTP_TIMEOUT_SECS", "3")
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    let _agent = Guard(agent.spawn().unwrap());
    wait_for("the agent's socket", Duration::from_secs(20), || {
        env.control_socket().exists()
    });

    let (port, native) = (free_port(), free_port());
    let mut driver = env.command(tauri_driver());
    let driver_log = env.dir.path().join("tauri-driver.log");
    driver
        .args([
            "--port",
            &port.to_string(),
            "--native-port",
            &native.to_string(),
        ])
        .env(
            "PATH",
            format!("/usr/bin:{}", std::env::var("PATH").unwrap_or_default()),
        )
        .stdout(std::fs::File::create(&driver_log).unwrap())
        .stderr(std::fs::File::create(env.dir.path().join("tauri-driver.err")).unwrap());
    let _driver = Guard(driver.spawn().unwrap());
    wait_for("tauri-driver", Duration::from_secs(20), || {
        std::net::TcpStream::connect(("127.0.0.1", port)).is_ok()
    });

    let shots = env.dir.path().join("shots");
    let o = env
        .command(venv_bin("python"))
        .arg(root().join("tests/support/webdriver_login.py"))
        .args(["--driver", &format!("http://127.0.0.1:{port}")])
        .args([
            "--app",
            workspace_bin("astran-tray-window").to_str().unwrap(),
        ])
        .args(["--email", EMAIL, "--password", PASSWORD])
        .args(["--creds", env.creds.to_str().unwrap()])
        .args(["--shots", shots.to_str().unwrap()])
        .output()
        .unwrap();
    let (out, err) = text(&o);
    assert!(o.status.success(), "webdriver run failed:\n{out}\n{err}");
    let seen: serde_json::Value = serde_json::from_str(out.lines().last().unwrap()).unwrap();
    eprintln!("{seen}");
    assert_eq!(seen["title"], "Log in to Astran");
    assert!(
        seen["wrong_password_error"]
            .as_str()
            .unwrap()
            .starts_with("Wrong email or password"),
        "{seen}"
    );
    // the kind crosses agent -> socket -> window unchanged (it used to arrive as "refused")
    assert_eq!(seen["wrong_password_kind"], "wrong_credentials", "{seen}");
    assert_eq!(seen["file_unchanged"], true);
    assert_eq!(seen["closed"], true);

    let key = env
        .profile_value("astran", "aws_access_key_id")
        .expect("profile written");
    assert!(key.starts_with("ASIA"));
    let b = format!("window-{}", std::process::id());
    let mb = env.s3_mb("astran", &b);
    assert_ok(&mb, "aws s3 mb with the profile written through the window");

    // the README's screenshots are refreshed by this run
    if std::env::var_os("ASTRAN_UPDATE_SCREENSHOTS").is_some() {
        let dest = root().join("docs/screenshots");
        std::fs::create_dir_all(&dest).unwrap();
        for f in ["login.png", "login-wrong-password.png"] {
            std::fs::copy(shots.join(f), dest.join(f)).unwrap();
        }
    }
}
