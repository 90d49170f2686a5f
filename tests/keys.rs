//! Permanent access keys end to end: the real `astran-creds keys …` against moto with every
//! signature checked (`tests/support/moto_astran.py`: Astran's root account, `UserName` from
//! the caller), proved with the real AWS CLI. Each scene has its own moto, so IAM's two keys
//! per user are the scene's.
// Unix only: the scenes use Unix sockets, signals and file modes (tests/common).
#![cfg(unix)]

mod common;

use common::*;
use std::process::Output;

struct Scene {
    env: Env,
    moto: String,
    iam: MotoIam,
}

/// A logged-in account whose IAM, S3 and STS are one moto that checks signatures. The
/// credentials file starts with a profile of the user's, which must stay byte for byte.
const USERS_OWN: &str = "# my keys\r\n[work]\r\naws_access_key_id = AKIAUSERSOWN00000000\r\naws_secret_access_key = users-own-secret\r\n\r\n";

fn scene() -> Scene {
    let iam = MotoIam::start();
    let moto = iam.url.clone();
    let upstream = format!("{moto}/");
    let idp = Idp::start(
        &[&format!("{EMAIL}:{PASSWORD}:{}", role(1))],
        &["--sts-upstream", &upstream],
    );
    let env = Env::new(idp)
        .with_env("ASTRAN_IAM_ENDPOINT", &moto)
        .with_env("ASTRAN_S3_ENDPOINT", &moto);
    std::fs::create_dir_all(env.creds.parent().unwrap()).unwrap();
    std::fs::write(&env.creds, USERS_OWN).unwrap();
    assert_ok(&env.login(&[]), "login");
    Scene { env, moto, iam }
}

impl Scene {
    fn keys(&self, args: &[&str]) -> Output {
        let mut a = vec!["keys"];
        a.extend_from_slice(args);
        self.env.run(&a, None)
    }

    fn list(&self) -> serde_json::Value {
        let o = self.keys(&["list", "--json"]);
        assert_ok(&o, "keys list --json");
        serde_json::from_slice(&o.stdout).unwrap()
    }

    fn list_ids(&self) -> Vec<String> {
        self.list()["keys"]
            .as_array()
            .unwrap()
            .iter()
            .map(|k| k["access_key_id"].as_str().unwrap().to_owned())
            .collect()
    }

    /// `aws s3 mb` with the profile; the endpoint comes from our `[services …]` section.
    fn s3_mb(&self, profile: &str, bucket: &str) -> Output {
        self.env
            .aws(&["--profile", profile, "s3", "mb", &format!("s3://{bucket}")])
    }

    /// `aws s3 mb` with these keys in the environment.
    fn s3_mb_with(&self, id: &str, secret: &str, bucket: &str) -> Output {
        let mut c = std::process::Command::new(venv_bin("aws"));
        c.env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("AWS_CONFIG_FILE", "/dev/null")
            .env("AWS_SHARED_CREDENTIALS_FILE", "/dev/null")
            .env("AWS_DEFAULT_REGION", "us-east-1")
            .env("AWS_EC2_METADATA_DISABLED", "true")
            .env("AWS_ACCESS_KEY_ID", id)
            .env("AWS_SECRET_ACCESS_KEY", secret)
            .args([
                "--endpoint-url",
                &self.moto,
                "s3",
                "mb",
                &format!("s3://{bucket}"),
            ]);
        c.output().unwrap()
    }

    fn permanent(&self) -> (String, String) {
        let id = self
            .env
            .profile_value("astran-permanent", "aws_access_key_id")
            .expect("a key id in astran-permanent");
        let secret = self
            .env
            .profile_value("astran-permanent", "aws_secret_access_key")
            .expect("a secret in astran-permanent");
        self.env.add_secret(&secret);
        (id, secret)
    }
}

fn code(o: &Output) -> Option<i32> {
    o.status.code()
}

/// The section `[name]` of an INI text, up to the next header.
fn section<'a>(text: &'a str, name: &str) -> Option<&'a str> {
    let start = text.find(&format!("[{name}]"))?;
    let rest = &text[start..];
    let end = rest[1..].find("\n[").map(|i| i + 2).unwrap_or(rest.len());
    Some(&rest[..end])
}

#[test]
fn create_then_the_permanent_profile_works_with_the_aws_cli() {
    let s = scene();
    let before = s.env.creds_text();

    // no terminal, no --yes: refused before any call, nothing written
    let o = s.keys(&["create"]);
    let (_, err) = text(&o);
    assert_eq!(code(&o), Some(2), "{err}");
    assert!(err.contains("--yes"), "{err}");
    assert!(
        err.to_lowercase().contains("temporary credentials"),
        "the vendor's warning: {err}"
    );
    assert_eq!(s.env.creds_text(), before);
    assert!(s.list_ids().is_empty(), "no key was made");

    let o = s.keys(&["create", "--yes"]);
    assert_ok(&o, "keys create --yes");
    let (out, err) = text(&o);
    assert!(
        err.to_lowercase().contains("recommend"),
        "the warning: {err}"
    );
    let (id, secret) = s.permanent();
    assert!(id.starts_with("AKIA"), "{id}");
    assert!(
        out.contains(&id) && out.contains("root"),
        "key id and user: {out}"
    );
    let year = time::OffsetDateTime::now_utc().year().to_string();
    assert!(out.contains(&year), "the creation date: {out}");
    assert!(
        !out.contains(&secret) && !err.contains(&secret),
        "the secret is printed"
    );

    // the profile: the two keys only; the user's profile, comments and CRLF as they were
    let text = s.env.creds_text();
    assert!(
        text.starts_with(USERS_OWN),
        "the user's bytes moved:\n{text}"
    );
    let ours = section(&text, "astran-permanent").unwrap();
    let keys: Vec<&str> = ours
        .lines()
        .skip(1)
        .filter_map(|l| l.split('=').next())
        .map(str::trim)
        .filter(|k| !k.is_empty())
        .collect();
    assert_eq!(
        keys,
        ["aws_access_key_id", "aws_secret_access_key"],
        "{ours}"
    );
    // the file's mode is kept (the test wrote it 0644)
    assert_eq!(file_mode(&s.env.creds) & 0o777, 0o644);
    // and ~/.aws/config points the profile at the tenant's endpoints
    let cfg = std::fs::read_to_string(&s.env.aws_config).unwrap();
    assert!(
        cfg.contains("[profile astran-permanent]") && cfg.contains("[services astran-permanent]"),
        "{cfg}"
    );

    // the tutorial's proof, with the permanent key
    assert_ok(
        &s.s3_mb("astran-permanent", "permanent-bucket-1"),
        "aws s3 mb (permanent)",
    );

    // list: the key, its age, and our profile that holds it
    let l = s.list();
    assert_eq!(l["user_name"], "root");
    let k = &l["keys"][0];
    assert_eq!(k["access_key_id"], id.as_str());
    assert_eq!(k["status"], "Active");
    assert_eq!(k["age_days"], 0);
    assert_eq!(k["profile"], "astran-permanent");
    let o = s.keys(&["list"]);
    assert_ok(&o, "keys list");
    let (out, _) = common::text(&o);
    assert!(
        out.contains(&id) && out.contains("astran-permanent"),
        "{out}"
    );

    // a second create into the same profile is refused: rotate is the way
    let o = s.keys(&["create", "--yes"]);
    let (_, err) = common::text(&o);
    assert_eq!(code(&o), Some(2), "{err}");
    assert!(err.contains("rotate"), "{err}");
    assert_eq!(s.list_ids(), vec![id.clone()]);

    // a profile of the user's is never taken over
    let o = s.keys(&["create", "--yes", "--profile", "work"]);
    assert_eq!(code(&o), Some(2), "{:?}", common::text(&o));
    assert!(s.env.creds_text().starts_with(USERS_OWN));
    assert_eq!(s.list_ids().len(), 1);
    // nor a name that would break the file
    let o = s.keys(&["create", "--yes", "--profile", "x]\n[y"]);
    assert_eq!(code(&o), Some(2));
    assert_eq!(s.list_ids().len(), 1);
}

#[test]
fn rotate_replaces_the_key_and_the_old_one_is_refused() {
    let s = scene();
    assert_ok(&s.keys(&["create", "--yes"]), "keys create");
    let (old_id, old_secret) = s.permanent();
    assert_ok(
        &s.s3_mb_with(&old_id, &old_secret, "before-rotate"),
        "the old key works",
    );

    let o = s.keys(&["rotate"]);
    assert_eq!(
        code(&o),
        Some(2),
        "no --yes without a terminal: {:?}",
        common::text(&o)
    );
    assert_eq!(s.permanent().0, old_id);

    let o = s.keys(&["rotate", "--yes"]);
    assert_ok(&o, "keys rotate --yes");
    let (out, _) = common::text(&o);
    let (new_id, new_secret) = s.permanent();
    assert_ne!(new_id, old_id);
    assert!(out.contains(&new_id) && out.contains(&old_id), "{out}");
    assert!(!out.contains(&new_secret));
    assert!(s.env.creds_text().starts_with(USERS_OWN));

    assert_ok(
        &s.s3_mb("astran-permanent", "after-rotate"),
        "the new key works",
    );
    let o = s.s3_mb_with(&old_id, &old_secret, "old-key-after-rotate");
    assert!(!o.status.success(), "the old key still works");
    let (_, err) = common::text(&o);
    assert!(err.contains("InvalidAccessKeyId"), "{err}");
    assert_eq!(s.list_ids(), vec![new_id]);
}

#[test]
fn the_two_key_limit_and_delete() {
    let s = scene();
    assert_ok(&s.keys(&["create", "--yes"]), "keys create");
    let (ours, _) = s.permanent();
    // a second key made elsewhere (the tutorial's way, with the temporary profile)
    let o = s.env.aws(&[
        "--profile",
        "astran",
        "--endpoint-url",
        &s.moto,
        "iam",
        "create-access-key",
    ]);
    assert_ok(&o, "aws iam create-access-key");
    let made: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let other = made["AccessKey"]["AccessKeyId"]
        .as_str()
        .unwrap()
        .to_owned();
    s.env
        .add_secret(made["AccessKey"]["SecretAccessKey"].as_str().unwrap());
    let before = s.env.creds_text();

    // rotate needs a free slot: refused before anything, naming the key no profile holds
    let o = s.keys(&["rotate", "--yes"]);
    let (_, err) = common::text(&o);
    assert_eq!(code(&o), Some(2), "{err}");
    assert!(err.contains(&other) && err.contains("keys delete"), "{err}");
    assert_eq!(s.env.creds_text(), before);
    let mut ids = s.list_ids();
    ids.sort();
    let mut both = vec![ours.clone(), other.clone()];
    both.sort();
    assert_eq!(ids, both, "nothing was created or deleted");
    let l = s.list();
    let held: Vec<&serde_json::Value> = l["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| &k["profile"])
        .collect();
    assert!(
        held.contains(&&serde_json::Value::Null)
            && held.contains(&&serde_json::json!("astran-permanent"))
    );

    // a create now meets IAM's LimitExceeded, in words
    let o = s.keys(&["create", "--yes", "--profile", "second-permanent"]);
    let (_, err) = common::text(&o);
    assert_eq!(code(&o), Some(2), "{err}");
    assert!(err.contains("two access keys"), "{err}");
    assert!(!s.env.creds_text().contains("[second-permanent]"));

    // bad ids are refused before any call
    let o = s.keys(&["delete", "not-a-key", "--yes"]);
    assert_eq!(code(&o), Some(2));
    // a key of no profile: deleted, no profile touched
    let o = s.keys(&["delete", &other]);
    assert_eq!(code(&o), Some(2), "no --yes without a terminal");
    let o = s.keys(&["delete", &other, "--yes"]);
    assert_ok(&o, "keys delete (other)");
    assert!(
        common::text(&o).0.contains("no profile of ours"),
        "{:?}",
        common::text(&o)
    );
    assert_eq!(s.env.creds_text(), before);
    assert_eq!(s.list_ids(), vec![ours.clone()]);
    // deleting it again: IAM's NoSuchEntity, in words
    let o = s.keys(&["delete", &other, "--yes"]);
    assert_eq!(code(&o), Some(2), "{:?}", common::text(&o));

    // our key: deleted, and our profile with it (in both files); the user's stays
    let o = s.keys(&["delete", &ours, "--yes"]);
    assert_ok(&o, "keys delete (ours)");
    assert!(common::text(&o).0.contains("astran-permanent"));
    let text = s.env.creds_text();
    assert!(!text.contains("[astran-permanent]"), "{text}");
    assert!(text.starts_with(USERS_OWN), "{text}");
    let cfg = std::fs::read_to_string(&s.env.aws_config).unwrap();
    assert!(!cfg.contains("astran-permanent"), "{cfg}");
    assert!(s.list_ids().is_empty());
    // and the temporary profile is as it was
    assert_ok(
        &s.s3_mb("astran", "temporary-still-works"),
        "the temporary profile still works",
    );
}

#[test]
fn iam_refusals_have_their_exit_codes() {
    let s = scene();
    // an IAM that refuses the signature (the credentials of another moto's account)
    let other = MotoIam::start();
    let o = s
        .env
        .cmd(&["keys", "list"])
        .env("ASTRAN_IAM_ENDPOINT", &other.url)
        .output()
        .unwrap();
    let (_, err) = common::text(&o);
    assert_eq!(code(&o), Some(6), "{err}");
    assert!(err.contains("InvalidClientTokenId"), "{err}");
    // an IAM that is not there
    let port = free_port();
    let o = s
        .env
        .cmd(&["keys", "list"])
        .env("ASTRAN_IAM_ENDPOINT", format!("http://127.0.0.1:{port}"))
        .output()
        .unwrap();
    assert_eq!(code(&o), Some(5), "{:?}", common::text(&o));
    // no login: exit 4
    let fresh = Env::new(Idp::start(&[], &[])).with_env("ASTRAN_IAM_ENDPOINT", &s.moto);
    let o = fresh.run(&["keys", "list"], None);
    assert_eq!(code(&o), Some(4), "{:?}", common::text(&o));
}

#[test]
fn rotate_waits_for_a_new_key_that_iam_has_not_spread_yet() {
    let s = scene();
    assert_ok(&s.keys(&["create", "--yes"]), "keys create");
    let (old, _) = s.permanent();
    // IAM refuses a new key for 2 seconds: rotation proves it before it writes it
    s.iam.faults(serde_json::json!({ "new_key_delay_secs": 2 }));
    let t0 = std::time::Instant::now();
    let o = s.keys(&["rotate", "--yes"]);
    assert_ok(&o, "keys rotate (eventually consistent)");
    assert!(
        t0.elapsed() >= std::time::Duration::from_secs(2),
        "it did not wait for the key"
    );
    let (new, _) = s.permanent();
    assert_ne!(new, old);
    assert_eq!(s.list_ids(), vec![new]);
}

#[test]
fn a_new_key_that_never_works_is_taken_back_and_the_profile_keeps_the_old_one() {
    let s = scene();
    assert_ok(&s.keys(&["create", "--yes"]), "keys create");
    let (old, old_secret) = s.permanent();
    let before = s.env.creds_text();
    s.iam
        .faults(serde_json::json!({ "new_key_delay_secs": 3600 }));
    let o = s
        .env
        .cmd(&["keys", "rotate", "--yes"])
        .env("ASTRAN_KEY_PROBE_SECS", "2")
        .output()
        .unwrap();
    let (_, err) = common::text(&o);
    assert_eq!(code(&o), Some(5), "{err}");
    assert!(err.contains("deleted again") && err.contains(&old), "{err}");
    assert_eq!(s.env.creds_text(), before, "the profile changed");
    assert_eq!(
        s.list_ids(),
        vec![old.clone()],
        "the new key was left at IAM"
    );
    s.iam.faults(serde_json::json!({}));
    assert_ok(
        &s.s3_mb_with(&old, &old_secret, "old-still-works"),
        "the old key",
    );
}

#[test]
fn when_the_old_key_cannot_be_deleted_the_profile_holds_the_new_one_and_says_so() {
    let s = scene();
    assert_ok(&s.keys(&["create", "--yes"]), "keys create");
    let (old, _) = s.permanent();
    s.iam.faults(serde_json::json!({
        "fail": { "DeleteAccessKey": { "status": 500, "code": "ServiceFailure" } }
    }));
    let o = s.keys(&["rotate", "--yes"]);
    let (_, err) = common::text(&o);
    assert_eq!(code(&o), Some(5), "{err}");
    let (new, _) = s.permanent();
    assert_ne!(new, old, "the profile does not hold the new key");
    assert!(
        err.contains(&new) && err.contains(&old) && err.contains(&format!("keys delete {old}")),
        "{err}"
    );
    assert_ok(&s.s3_mb("astran-permanent", "new-key-works"), "the new key");
    s.iam.faults(serde_json::json!({}));
    let mut ids = s.list_ids();
    ids.sort();
    let mut both = vec![old.clone(), new];
    both.sort();
    assert_eq!(ids, both);
    // what the message said to do works
    assert_ok(&s.keys(&["delete", &old, "--yes"]), "keys delete OLD");
}

#[test]
fn expired_temporary_credentials_are_renewed_and_the_call_made_once_more() {
    let s = scene();
    let before = s.env.profile_value("astran", "aws_access_key_id").unwrap();
    s.iam.faults(serde_json::json!({
        "fail": { "ListAccessKeys": { "status": 403, "code": "ExpiredToken", "message": "The security token included in the request is expired", "times": 1 } }
    }));
    let o = s.keys(&["list"]);
    assert_ok(&o, "keys list after ExpiredToken");
    let after = s.env.profile_value("astran", "aws_access_key_id").unwrap();
    assert_ne!(before, after, "the temporary credentials were not renewed");
    // a token that stays expired: exit 4
    s.iam.faults(serde_json::json!({
        "fail": { "ListAccessKeys": { "status": 403, "code": "ExpiredToken" } }
    }));
    let o = s.keys(&["list"]);
    assert_eq!(code(&o), Some(4), "{:?}", common::text(&o));
}

#[test]
fn throttling_is_retried_then_unavailable() {
    let s = scene();
    s.iam.faults(serde_json::json!({
        "fail": { "ListAccessKeys": { "status": 400, "code": "Throttling", "message": "Rate exceeded", "times": 2 } }
    }));
    assert_ok(&s.keys(&["list"]), "keys list after two throttles");
    s.iam.faults(serde_json::json!({
        "fail": { "CreateAccessKey": { "status": 503, "code": "ServiceUnavailable" } }
    }));
    let before = s.env.creds_text();
    let o = s.keys(&["create", "--yes"]);
    assert_eq!(code(&o), Some(5), "{:?}", common::text(&o));
    assert_eq!(s.env.creds_text(), before);
}

/// Make the recorded key of `profile` `days` old (the records file is ours: it is where the
/// creation date is kept, so this is how a test ages a key).
fn age_key(s: &Scene, days: i64) {
    let path = s.env.config.parent().unwrap().join("permanent-keys.json");
    let mut doc: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    let created = time::OffsetDateTime::now_utc() - time::Duration::days(days);
    doc["keys"][0]["created"] = created
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap()
        .into();
    std::fs::write(&path, doc.to_string()).unwrap();
}

fn start_daemon(s: &Scene) -> Guard {
    let mut cmd = s.env.cmd(&["daemon"]);
    cmd.stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null());
    let g = Guard(cmd.spawn().unwrap());
    wait_for(
        "the daemon's socket",
        std::time::Duration::from_secs(10),
        || s.env.control_socket().exists(),
    );
    g
}

#[test]
fn the_daemon_reminds_once_a_day_of_a_key_older_than_max_key_age_days() {
    let s = scene();
    s.env
        .write_config("[accounts.default]\nmax_key_age_days = 30\n");
    assert_ok(&s.keys(&["create", "--yes"]), "keys create");
    let (id, _) = s.permanent();
    let about = || notifications_about(&id);

    // a young key: no reminder
    let d = start_daemon(&s);
    std::thread::sleep(std::time::Duration::from_millis(1500));
    drop(d);
    assert!(
        about().is_empty(),
        "a reminder for a new key: {:?}",
        about()
    );

    // 31 days old with a limit of 30: one reminder, with the profile and what to do
    age_key(&s, 31);
    let d = start_daemon(&s);
    wait_for(
        "the key's age reminder",
        std::time::Duration::from_secs(10),
        || !about().is_empty(),
    );
    let n = about();
    assert_eq!(n.len(), 1, "{n:?}");
    assert!(
        n[0]["summary"].as_str().unwrap().contains("31 days"),
        "{n:?}"
    );
    let body = n[0]["body"].as_str().unwrap();
    assert!(
        body.contains("astran-permanent") && body.contains("keys rotate"),
        "{body}"
    );
    drop(d);
    // not again the same day, even from a new daemon
    let d = start_daemon(&s);
    std::thread::sleep(std::time::Duration::from_millis(1500));
    drop(d);
    assert_eq!(about().len(), 1, "reminded twice in a day");
    // a rotated key is young again: the list says so
    assert_ok(&s.keys(&["rotate", "--yes"]), "keys rotate");
    assert_eq!(s.list()["keys"][0]["age_days"], 0);
}
