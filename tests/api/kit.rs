//! The partner's commands (`keygen`, `sign`, `send`), run as the real binary
//! against a running server, the way a partner would use them.

use std::path::Path;
use std::process::{Command, Output};

use serde_json::{Value, json};

use crate::cli::{assert_quiet_success, cli, json_of, with_stdout_closed};
use crate::helpers::*;

const SECRET_VAR: &str = "TEST_PARTNER_SECRET";

fn partner_command(args: &[&str], secret: Option<&str>) -> Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_sales-order-api"));
    command.args(args).env_remove(SECRET_VAR);
    if let Some(secret) = secret {
        command.env(SECRET_VAR, secret);
    }
    command.output().unwrap()
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// `keygen --out DIR --json`, then `partner create` with the public key it
/// wrote; returns the partner's secret.
fn keygen_and_register(app: &TestApp, dir: &Path, client_id: &str) -> String {
    let generated = json_of(&partner_command(
        &["keygen", "--out", dir.to_str().unwrap(), "--json"],
        None,
    ));
    let created = json_of(&cli(
        &app.database_url,
        &[
            "partner",
            "create",
            "--name",
            "Kit",
            "--client-id",
            client_id,
            "--public-key",
            generated["public_key"].as_str().unwrap(),
            "--json",
        ],
    ));
    // The operator reads back the fingerprint the partner was shown.
    assert_eq!(created["fingerprint"], generated["fingerprint"]);
    created["client_secret"].as_str().unwrap().to_owned()
}

#[cfg(unix)]
#[tokio::test(flavor = "multi_thread")]
async fn keygen_writes_a_private_key_only_its_owner_can_read_and_refuses_to_overwrite_it() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("keys");
    let first = json_of(&partner_command(
        &[
            "keygen",
            "--bits",
            "3072",
            "--out",
            out.to_str().unwrap(),
            "--json",
        ],
        None,
    ));
    assert_eq!(first["bits"], 3072);
    let private = std::fs::read_to_string(out.join("private.pem")).unwrap();
    assert!(private.starts_with("-----BEGIN PRIVATE KEY-----"));
    let mode = std::fs::metadata(out.join("private.pem"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600);
    let public = std::fs::read_to_string(out.join("public.pem")).unwrap();
    assert!(public.starts_with("-----BEGIN PUBLIC KEY-----"));

    let again = partner_command(&["keygen", "--out", out.to_str().unwrap()], None);
    assert!(!again.status.success());
    assert!(text(&again.stderr).contains("already exists"));
    assert_eq!(
        std::fs::read_to_string(out.join("private.pem")).unwrap(),
        private
    );
    let bad_size = partner_command(&["keygen", "--bits", "1024", "--out", "x"], None);
    assert!(!bad_size.status.success());
}

#[cfg(unix)]
#[tokio::test(flavor = "multi_thread")]
async fn keygen_refuses_to_write_through_a_symbolic_link_and_leaves_its_target_alone() {
    let dir = tempfile::tempdir().unwrap();
    let victim = dir.path().join("victim.txt");
    std::fs::write(&victim, "precious").unwrap();
    for planted in ["private.pem", "public.pem"] {
        let out = dir.path().join(format!("keys-{planted}"));
        std::fs::create_dir(&out).unwrap();
        std::os::unix::fs::symlink(&victim, out.join(planted)).unwrap();
        let output = partner_command(&["keygen", "--out", out.to_str().unwrap(), "--force"], None);
        let stderr = text(&output.stderr);
        assert!(!output.status.success(), "{planted}: {stderr}");
        let link = out.join(planted).display().to_string();
        assert!(
            stderr.contains(&link) && stderr.contains("is a symbolic link"),
            "{planted}: {stderr}"
        );
        assert_eq!(std::fs::read_to_string(&victim).unwrap(), "precious");
        assert!(
            std::fs::symlink_metadata(out.join(planted))
                .unwrap()
                .file_type()
                .is_symlink(),
            "{planted}: the link itself is left too"
        );
        // Nothing half done: no key is written when either file is refused.
        let other = if planted == "private.pem" {
            "public.pem"
        } else {
            "private.pem"
        };
        assert!(!out.join(other).exists(), "{planted}: {other} was written");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn headers_printed_by_sign_are_accepted_by_the_server_as_printed() {
    let app = TestApp::spawn().await;
    let dir = tempfile::tempdir().unwrap();
    let secret = keygen_and_register(&app, dir.path(), "kit-sign");
    let private = dir.path().join("private.pem");
    let token = app
        .login("kit-sign", &secret)
        .await
        .json::<Value>()
        .await
        .unwrap()["token"]
        .as_str()
        .unwrap()
        .to_owned();
    let body_file = dir.path().join("order.json");
    std::fs::write(&body_file, order_body("PO-KIT-SIGN").to_string()).unwrap();

    for version_2 in [false, true] {
        let mut args = vec![
            "sign",
            "--client-id",
            "kit-sign",
            "--private-key",
            private.to_str().unwrap(),
        ];
        if version_2 {
            args.extend([
                "--body",
                body_file.to_str().unwrap(),
                "--method",
                "POST",
                "--path",
                "/api/v1/sales-orders",
            ]);
        }
        let output = partner_command(&args, None);
        assert!(output.status.success(), "{}", text(&output.stderr));
        let mut request = app
            .client
            .post(app.url("/api/v1/sales-orders"))
            .bearer_auth(&token)
            .header("content-type", "application/json")
            .body(std::fs::read(&body_file).unwrap());
        let printed = text(&output.stdout);
        assert_eq!(printed.lines().count(), 4, "{printed}");
        for line in printed.lines() {
            let (name, value) = line.split_once(": ").unwrap();
            request = request.header(name, value);
        }
        let (status, code) = status_and_code(request.send().await.unwrap()).await;
        // The second time the same purchase order is a duplicate: signed fine.
        let expected = if version_2 {
            (409, "DUPLICATE_PURCHASE_ORDER")
        } else {
            (201, "")
        };
        assert_eq!((status, code.as_str()), expected, "v2: {version_2}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn send_logs_in_signs_posts_and_keeps_its_token_for_the_next_run() {
    let app = TestApp::spawn().await;
    let dir = tempfile::tempdir().unwrap();
    let secret = keygen_and_register(&app, dir.path(), "kit-send");
    let private = dir.path().join("private.pem");
    let token_file = dir.path().join("token.json");
    let send = |po: &str, extra: &[&str]| {
        let order = dir.path().join(format!("{po}.json"));
        std::fs::write(&order, order_body(po).to_string()).unwrap();
        let mut args = vec![
            "send",
            "--base-url",
            &app.base_url,
            "--client-id",
            "kit-send",
            "--client-secret-env",
            SECRET_VAR,
            "--private-key",
            private.to_str().unwrap(),
            "--token-file",
            token_file.to_str().unwrap(),
            "--verbose",
        ];
        args.extend(extra);
        args.push(order.to_str().unwrap());
        partner_command(&args, Some(&secret))
    };

    let first = send("PO-KIT-1", &[]);
    assert!(first.status.success(), "{}", text(&first.stderr));
    let answer: Value = serde_json::from_slice(&first.stdout).unwrap();
    assert_eq!(answer["data"]["purchase_order_no"], "PO-KIT-1");
    let log = text(&first.stderr);
    assert!(log.contains("string to sign: kit-send|"), "{log}");
    assert!(log.contains("X-SIGNATURE-VERSION: 1"), "{log}");
    let kept: Value = serde_json::from_slice(&std::fs::read(&token_file).unwrap()).unwrap();
    let token = kept["token"].as_str().unwrap();
    // Neither the secret nor the token is ever shown.
    for output in [&first.stdout, &first.stderr] {
        assert!(!text(output).contains(&secret) && !text(output).contains(token));
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&token_file).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }

    let second = send("PO-KIT-2", &["--v2"]);
    assert!(second.status.success(), "{}", text(&second.stderr));
    let log = text(&second.stderr);
    assert!(log.contains("using the cached access token"), "{log}");
    assert!(log.contains("X-SIGNATURE-VERSION: 2"), "{log}");

    // A token about to expire is refreshed, and the refreshed one kept.
    let stale = json!({"token": token, "expired_at": app.now() + 10});
    std::fs::write(&token_file, stale.to_string()).unwrap();
    let third = send("PO-KIT-3", &[]);
    assert!(third.status.success(), "{}", text(&third.stderr));
    assert!(text(&third.stderr).contains("refreshing it"));
    let kept: Value = serde_json::from_slice(&std::fs::read(&token_file).unwrap()).unwrap();
    assert_ne!(kept["token"], token);

    // A refused order: the answer is printed and the exit status says so.
    let duplicate = send("PO-KIT-3", &[]);
    assert!(!duplicate.status.success());
    let answer: Value = serde_json::from_slice(&duplicate.stdout).unwrap();
    assert_eq!(answer["error"]["code"], "DUPLICATE_PURCHASE_ORDER");
    assert!(text(&duplicate.stderr).contains("409"));
}

#[tokio::test(flavor = "multi_thread")]
async fn send_piped_into_a_reader_that_has_gone_ends_quietly() {
    let app = TestApp::spawn().await;
    let dir = tempfile::tempdir().unwrap();
    let secret = keygen_and_register(&app, dir.path(), "kit-pipe");
    let order = dir.path().join("order.json");
    std::fs::write(&order, order_body("PO-KIT-PIPE").to_string()).unwrap();
    let output = with_stdout_closed(
        Command::new(env!("CARGO_BIN_EXE_sales-order-api"))
            .args([
                "send",
                "--base-url",
                &app.base_url,
                "--client-id",
                "kit-pipe",
            ])
            .args(["--client-secret-env", SECRET_VAR, "--no-token-file"])
            .arg("--private-key")
            .arg(dir.path().join("private.pem"))
            .arg(&order)
            .env(SECRET_VAR, &secret),
    );
    assert_quiet_success(&output, "send");
}

#[cfg(unix)]
#[tokio::test(flavor = "multi_thread")]
async fn send_refuses_a_token_file_that_is_a_symbolic_link_and_replaces_a_loose_one_with_mode_0600()
{
    use std::os::unix::fs::PermissionsExt;
    let app = TestApp::spawn().await;
    let dir = tempfile::tempdir().unwrap();
    let secret = keygen_and_register(&app, dir.path(), "kit-link");
    let token_file = dir.path().join("token.json");
    let send = |po: &str| {
        let order = dir.path().join(format!("{po}.json"));
        std::fs::write(&order, order_body(po).to_string()).unwrap();
        let private = dir.path().join("private.pem");
        let args = [
            "send",
            "--base-url",
            &app.base_url,
            "--client-id",
            "kit-link",
            "--client-secret-env",
            SECRET_VAR,
            "--private-key",
            private.to_str().unwrap(),
            "--token-file",
            token_file.to_str().unwrap(),
            order.to_str().unwrap(),
        ];
        partner_command(&args, Some(&secret))
    };
    let victim = dir.path().join("victim.txt");
    std::fs::write(&victim, "precious").unwrap();
    std::os::unix::fs::symlink(&victim, &token_file).unwrap();

    let refused = send("PO-LINK-1");
    let stderr = text(&refused.stderr);
    assert!(!refused.status.success(), "{stderr}");
    assert!(
        stderr.contains(&token_file.display().to_string()) && stderr.contains("is a symbolic link"),
        "{stderr}"
    );
    assert_eq!(std::fs::read_to_string(&victim).unwrap(), "precious");

    // A token file readable by others is replaced by one that is not.
    std::fs::remove_file(&token_file).unwrap();
    std::fs::write(&token_file, "{}").unwrap();
    std::fs::set_permissions(&token_file, std::fs::Permissions::from_mode(0o644)).unwrap();
    let sent = send("PO-LINK-2");
    assert!(sent.status.success(), "{}", text(&sent.stderr));
    let mode = std::fs::metadata(&token_file).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600);
    let kept: Value = serde_json::from_slice(&std::fs::read(&token_file).unwrap()).unwrap();
    assert!(kept["token"].is_string());
    let leftovers: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|entry| entry.unwrap().file_name())
        .filter(|name| name.to_string_lossy().starts_with(".tmp"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn send_without_its_secret_variable_says_which_variable_is_missing() {
    let output = partner_command(
        &[
            "send",
            "--base-url",
            "http://127.0.0.1:9",
            "--client-id",
            "kit",
            "--client-secret-env",
            SECRET_VAR,
            "--private-key",
            "missing.pem",
            "order.json",
        ],
        None,
    );
    assert!(!output.status.success());
    assert!(text(&output.stderr).contains(SECRET_VAR));
}
