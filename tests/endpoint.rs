//! The local credentials endpoint (`serve`) and `exec`, end to end: boto3 and the real AWS
//! CLI take their credentials from it with no profile and no flag; every refusal is
//! answered as the container-credentials contract and the issue say.
// Unix only: the scenes use Unix sockets, signals and file modes (tests/common).
#![cfg(unix)]

mod common;
use common::*;
use std::io::{BufRead, BufReader};
use std::net::TcpStream;
use std::process::{Command, Stdio};

/// The scene's S3 is moto, so the endpoint can hand out `AWS_ENDPOINT_URL_S3` too.
fn scene() -> Env {
    Env::standard().with_env("ASTRAN_S3_ENDPOINT", moto_url())
}

/// `serve` running, with the variables it printed.
struct Serving {
    _guard: Guard,
    vars: Vec<(String, String)>,
}

impl Serving {
    fn var(&self, k: &str) -> &str {
        &self.vars.iter().find(|(n, _)| n == k).unwrap().1
    }

    fn port(&self) -> u16 {
        let uri = self.var("AWS_CONTAINER_CREDENTIALS_FULL_URI");
        uri.trim_start_matches("http://127.0.0.1:")
            .split('/')
            .next()
            .unwrap()
            .parse()
            .unwrap()
    }
}

fn serve(env: &Env) -> Serving {
    let mut c = env.cmd(&["serve"]);
    c.stdout(Stdio::piped()).stderr(Stdio::null());
    let mut child = c.spawn().unwrap();
    let mut out = BufReader::new(child.stdout.take().unwrap());
    let guard = Guard(child);
    let mut vars = Vec::new();
    // the endpoints come after the two contract lines; IAM's is the last one known here
    while !vars
        .iter()
        .any(|(k, _): &(String, String)| k == "AWS_ENDPOINT_URL_IAM")
    {
        let mut line = String::new();
        assert!(
            out.read_line(&mut line).unwrap() > 0,
            "serve ended early: {vars:?}"
        );
        let (k, v) = line
            .trim_end()
            .strip_prefix("export ")
            .and_then(|l| l.split_once('='))
            .unwrap_or_else(|| panic!("not an export line: {line:?}"));
        vars.push((k.to_string(), v.to_string()));
    }
    Serving {
        _guard: guard,
        vars,
    }
}

/// One raw request (headers as given), the status and body.
fn raw(port: u16, request: &str) -> (u16, String) {
    raw_http(&format!("127.0.0.1:{port}"), request)
}

fn get(port: u16, host: &str, path: &str, auth: Option<&str>) -> (u16, String) {
    let auth = auth
        .map(|a| format!("Authorization: {a}\r\n"))
        .unwrap_or_default();
    raw(
        port,
        &format!("GET {path} HTTP/1.1\r\nHost: {host}\r\n{auth}Connection: close\r\n\r\n"),
    )
}

#[test]
fn boto3_takes_its_credentials_from_serve() {
    let env = scene();
    assert_ok(&env.login(&[]), "login");
    let s = serve(&env);
    let token = s.var("AWS_CONTAINER_AUTHORIZATION_TOKEN").to_string();
    assert!(token.len() >= 43, "32 bytes of entropy, base64url: {token}");
    assert!(s
        .var("AWS_CONTAINER_CREDENTIALS_FULL_URI")
        .starts_with("http://127.0.0.1:"));
    assert_eq!(s.var("AWS_ENDPOINT_URL_S3"), moto_url());
    // boto3 with only what serve printed: no profile, no keys, no endpoint flag
    let b = format!("serve-{}", std::process::id());
    let py = format!(
        "import boto3; s = boto3.Session(region_name='us-east-1'); c = s.client('s3'); \
         c.create_bucket(Bucket='{b}'); \
         print(s.get_credentials().method, s.get_credentials().access_key, \
         '{b}' in [x['Name'] for x in c.list_buckets()['Buckets']])"
    );
    let mut c = env.command(venv_bin("python"));
    c.args(["-c", &py]).env("AWS_EC2_METADATA_DISABLED", "true");
    for (k, v) in &s.vars {
        c.env(k, v);
    }
    let o = c.output().unwrap();
    assert_ok(&o, "boto3 through the endpoint");
    let key = env.profile_value("astran", "aws_access_key_id").unwrap();
    assert_eq!(
        text(&o).0.trim(),
        format!("container-role {key} True"),
        "{:?}",
        text(&o)
    );

    // the contract's answer
    let port = s.port();
    let host = format!("127.0.0.1:{port}");
    let (status, body) = get(port, &host, "/astran/credentials", Some(&token));
    assert_eq!(status, 200, "{body}");
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["AccessKeyId"], key.as_str());
    assert!(v["SecretAccessKey"].is_string() && v["Token"].is_string());
    assert!(
        astran_creds::clock::parse_rfc3339(v["Expiration"].as_str().unwrap()).is_some(),
        "{v}"
    );
    assert_eq!(
        get(
            port,
            &format!("localhost:{port}"),
            "/astran/credentials",
            Some(&token)
        )
        .0,
        200
    );

    // refusals, each without anything of the server's in the body
    let wrong = format!("{}x", &token[..token.len() - 1]);
    for (what, (status, body), want) in [
        ("no token", get(port, &host, "/astran/credentials", None), 403),
        ("a wrong token", get(port, &host, "/astran/credentials", Some(&wrong)), 403),
        ("a token too short", get(port, &host, "/astran/credentials", Some(&token[..10])), 403),
        ("another Host (DNS rebinding)", get(port, &format!("evil.example:{port}"), "/astran/credentials", Some(&token)), 403),
        ("another port in Host", get(port, "127.0.0.1:1", "/astran/credentials", Some(&token)), 403),
        ("another path", get(port, &host, "/latest/meta-data/", Some(&token)), 404),
        ("POST", raw(port, &format!("POST /astran/credentials HTTP/1.1\r\nHost: {host}\r\nAuthorization: {token}\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{{}}")), 405),
        ("a body", raw(port, &format!("GET /astran/credentials HTTP/1.1\r\nHost: {host}\r\nAuthorization: {token}\r\nContent-Length: 5\r\nConnection: close\r\n\r\nhello")), 413),
        ("a huge header", raw(port, &format!("GET /astran/credentials HTTP/1.1\r\nHost: {host}\r\nAuthorization: {token}\r\nX-Pad: {}\r\nConnection: close\r\n\r\n", "a".repeat(20_000))), 431),
    ] {
        assert_eq!(status, want, "{what}: {body}");
        assert!(!body.contains("ASIA") && !body.contains(&token), "{what}: {body}");
    }

    // logged out, nothing left to hand out: 503 with a code and a message the SDKs show
    assert_ok(&env.run(&["logout", "--remove-profile"], None), "logout");
    let (status, body) = get(port, &host, "/astran/credentials", Some(&token));
    assert_eq!(status, 503, "{body}");
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["code"], "LoginRequired");
    assert!(v["message"].as_str().unwrap().contains("log in"), "{v}");
    // and the token is in no log
    assert!(!env.log_text().contains(&token));
}

#[test]
fn serve_on_a_port_in_use_says_so() {
    let env = scene();
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port().to_string();
    let o = env.run(&["serve", "--port", &port], None);
    assert_eq!(o.status.code(), Some(2), "{:?}", text(&o));
    assert!(text(&o).1.contains(&format!("port {port}")) && text(&o).0.is_empty());
}

#[test]
fn exec_runs_the_aws_cli_with_no_profile_and_passes_status_and_signals() {
    let env = scene();
    assert_ok(&env.login(&[]), "login");
    let aws = venv_bin("aws");
    let b = format!("exec-{}", std::process::id());
    // a stale profile and keys in the parent's environment would win: they are taken out
    let o = env
        .cmd(&["exec", "--"])
        .arg(&aws)
        .args(["s3", "mb", &format!("s3://{b}")])
        .env("AWS_PROFILE", "no-such-profile")
        .env("AWS_ACCESS_KEY_ID", "AKIASTALE")
        .env("AWS_SECRET_ACCESS_KEY", "stale")
        .env("AWS_DEFAULT_REGION", "us-east-1")
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .output()
        .unwrap();
    assert_ok(&o, "exec -- aws s3 mb");
    assert!(
        text(&o).0.contains(&format!("make_bucket: {b}")),
        "{:?}",
        text(&o)
    );
    // what the command sees
    let o = env
        .cmd(&["exec", "--", "sh", "-c", "echo \"$AWS_PROFILE|${AWS_ACCESS_KEY_ID-}|$AWS_CONTAINER_CREDENTIALS_FULL_URI|${#AWS_CONTAINER_AUTHORIZATION_TOKEN}\""])
        .env("AWS_PROFILE", "x")
        .output()
        .unwrap();
    assert_ok(&o, "exec -- sh");
    let seen = text(&o).0;
    let parts: Vec<&str> = seen.trim().split('|').collect();
    assert_eq!(parts[0], "", "AWS_PROFILE removed");
    assert_eq!(parts[1], "", "AWS_ACCESS_KEY_ID removed");
    assert!(parts[2].starts_with("http://127.0.0.1:"), "{seen}");
    assert!(parts[3].parse::<usize>().unwrap() >= 43, "{seen}");
    // the endpoint lives exactly as long as the command
    let port: u16 = parts[2]
        .trim_start_matches("http://127.0.0.1:")
        .split('/')
        .next()
        .unwrap()
        .parse()
        .unwrap();
    assert!(
        TcpStream::connect(("127.0.0.1", port)).is_err(),
        "still listening"
    );
    // exit statuses, as env(1)
    for (cmd, want) in [
        (&["sh", "-c", "exit 3"][..], 3),
        (&["sh", "-c", "kill -TERM $$"], 143),
        (&["/no/such/program"], 127),
        (&["/etc/hostname"], 126),
    ] {
        let o = env.cmd(&["exec", "--"]).args(cmd).output().unwrap();
        assert_eq!(o.status.code(), Some(want), "{cmd:?}: {:?}", text(&o));
    }
    // a signal to exec reaches the command
    let mut c = env.cmd(&[
        "exec",
        "--",
        "sh",
        "-c",
        "trap 'exit 7' TERM; echo ready; while :; do sleep 0.1; done",
    ]);
    c.stdout(Stdio::piped());
    let mut child = c.spawn().unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    assert_eq!(line.trim(), "ready");
    assert!(Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap()
        .success());
    let status = child.wait().unwrap();
    assert_eq!(
        status.code(),
        Some(7),
        "the command's trap ran and its status is ours"
    );
}
