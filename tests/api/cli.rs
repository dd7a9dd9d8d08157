//! The operator's command line, run as the real binary against a real database.

use std::process::{Command, Output, Stdio};

use serde_json::Value;

use crate::helpers::*;

pub fn cli(database_url: &str, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_sales-order-api"))
        .arg("--database-url")
        .arg(database_url)
        .args(args)
        .output()
        .unwrap()
}

/// Runs `command` with its stdout a pipe that nobody reads any more, as after
/// `… | head` has its lines: the reading end is closed before the binary
/// writes anything.
pub fn with_stdout_closed(command: &mut Command) -> Output {
    let mut child = command
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stdout.take());
    child.wait_with_output().unwrap()
}

/// Asserts that a command whose reader went away ended quietly and well.
pub fn assert_quiet_success(output: &Output, what: &str) {
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "{what}: {:?}\n{stderr}",
        output.status
    );
    assert!(
        !stderr.contains("panicked") && !stderr.contains("failed printing"),
        "{what}: {stderr}"
    );
}

pub fn json_of(output: &Output) -> Value {
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).unwrap()
}

fn stderr_of(output: &Output) -> String {
    assert!(!output.status.success(), "expected failure");
    String::from_utf8_lossy(&output.stderr).into_owned()
}

fn key(path: &str) -> String {
    fixture(path).display().to_string()
}

/// `partner create --client-id ID --public-key FIXTURE --json`, which must succeed.
pub fn create_partner(database_url: &str, client_id: &str, key_fixture: &str) -> Value {
    json_of(&cli(
        database_url,
        &[
            "partner",
            "create",
            "--name",
            "V",
            "--client-id",
            client_id,
            "--public-key",
            &key(key_fixture),
            "--json",
        ],
    ))
}

#[tokio::test(flavor = "multi_thread")]
async fn a_partner_created_on_the_command_line_can_log_in_and_order_at_once() {
    let app = TestApp::spawn().await;
    let created = create_partner(
        &app.database_url,
        "versuni-client-001",
        "vectors/published-sample-public-key.pem",
    );
    assert_eq!(created["client_id"], "versuni-client-001");
    assert!(created["key_id"].as_str().unwrap().starts_with("key_"));
    let secret = created["client_secret"].as_str().unwrap().to_owned();
    assert!(secret.len() >= 43);
    let partner = Partner {
        client_id: "versuni-client-001".into(),
        secret,
        key: TestKey::vectors(),
    };
    let session = app.session(&partner).await;
    assert_eq!(
        app.create_order(&session, &order_body("PO-1"))
            .await
            .status(),
        201
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_duplicate_client_id_is_refused() {
    let app = TestApp::spawn().await;
    let args = [
        "partner",
        "create",
        "--name",
        "V",
        "--client-id",
        "dup",
        "--public-key",
        &key("keys/partner-b-public.pem"),
    ];
    assert!(cli(&app.database_url, &args).status.success());
    assert!(stderr_of(&cli(&app.database_url, &args)).contains("already exists"));
}

#[tokio::test(flavor = "multi_thread")]
async fn key_registration_refuses_private_small_foreign_and_junk_keys() {
    let app = TestApp::spawn().await;
    let junk = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(junk.path(), "not a key").unwrap();
    let junk = junk.path().display().to_string();
    for (file, expected) in [
        (
            key("vectors/published-sample-private-key.pem"),
            "PRIVATE key",
        ),
        (key("keys/rsa-1024-public.pem"), "at least 2048 bits"),
        (key("keys/ec-p256-public.pem"), "only RSA"),
        (junk, "no PEM block"),
    ] {
        let output = cli(
            &app.database_url,
            &["partner", "create", "--name", "V", "--public-key", &file],
        );
        let message = stderr_of(&output);
        assert!(message.contains(expected), "{file}: {message}");
    }
    let listed = json_of(&cli(&app.database_url, &["partner", "list", "--json"]));
    assert_eq!(listed, serde_json::json!([]), "nothing was registered");
}

#[tokio::test(flavor = "multi_thread")]
async fn pkcs1_public_keys_are_accepted_and_keys_rotate_with_overlap() {
    let app = TestApp::spawn().await;
    let created = create_partner(&app.database_url, "p1", "keys/rotated-public-pkcs1.pem");
    let first_key = created["key_id"].as_str().unwrap().to_owned();
    let added = json_of(&cli(
        &app.database_url,
        &[
            "partner",
            "add-key",
            "p1",
            "--public-key",
            &key("keys/partner-b-public.pem"),
            "--json",
        ],
    ));
    assert!(
        stderr_of(&cli(
            &app.database_url,
            &[
                "partner",
                "add-key",
                "p1",
                "--public-key",
                &key("keys/partner-b-public.pem")
            ]
        ))
        .contains("already registered")
    );
    assert!(
        cli(
            &app.database_url,
            &["partner", "revoke-key", "p1", &first_key]
        )
        .status
        .success()
    );
    let shown = json_of(&cli(
        &app.database_url,
        &["partner", "show", "p1", "--json"],
    ));
    let keys = shown["keys"].as_array().unwrap();
    assert_eq!(keys.len(), 2);
    assert_eq!(keys.iter().filter(|k| k["revoked_at"].is_null()).count(), 1);
    assert!(
        keys.iter()
            .any(|k| k["key_id"] == added["key_id"] && k["revoked_at"].is_null())
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn disable_enable_and_rotate_secret_take_effect_on_the_running_server() {
    let app = TestApp::spawn().await;
    let partner = app.register("versuni-client-001", TestKey::vectors()).await;
    let session = app.session(&partner).await;

    let output = cli(
        &app.database_url,
        &["partner", "disable", "versuni-client-001"],
    );
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    within_a_second("the disabled partner is refused", || async {
        status_and_code(app.get(&session, "/api/v1/sales-orders").await).await
            == (401, "PARTNER_DISABLED".into())
    })
    .await;
    assert!(
        cli(
            &app.database_url,
            &["partner", "enable", "versuni-client-001"]
        )
        .status
        .success()
    );
    // Disabling ended the login behind the old token: it stays dead.
    within_a_second(
        "the enabled partner is served after a new login",
        || async {
            app.login(&partner.client_id, &partner.secret)
                .await
                .status()
                == 200
        },
    )
    .await;
    within_a_second(
        "the token from before the disable stays refused",
        || async {
            status_and_code(app.get(&session, "/api/v1/sales-orders").await).await
                == (401, "TOKEN_REVOKED".into())
        },
    )
    .await;
    let session = app.session(&partner).await;
    assert_eq!(
        app.get(&session, "/api/v1/sales-orders").await.status(),
        200
    );

    let rotated = json_of(&cli(
        &app.database_url,
        &["partner", "rotate-secret", "versuni-client-001", "--json"],
    ));
    let new_secret = rotated["client_secret"].as_str().unwrap();
    within_a_second("tokens from before the rotation are refused", || async {
        status_and_code(app.get(&session, "/api/v1/sales-orders").await).await
            == (401, "TOKEN_REVOKED".into())
    })
    .await;
    expect_error(
        app.login("versuni-client-001", &partner.secret).await,
        401,
        "INVALID_CREDENTIALS",
    )
    .await;
    assert_eq!(
        app.login("versuni-client-001", new_secret).await.status(),
        200
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn commands_on_an_unknown_partner_fail_with_a_message() {
    let app = TestApp::spawn().await;
    for args in [
        ["partner", "show", "ghost"],
        ["partner", "disable", "ghost"],
        ["partner", "rotate-secret", "ghost"],
    ] {
        assert!(
            stderr_of(&cli(&app.database_url, &args)).contains("no partner with client id ghost")
        );
    }
}

/// A SQLite database as the previous release leaves it: its migrations only.
async fn previous_release_database(url: &str) {
    let migrations = tempfile::tempdir().unwrap();
    let source = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("migrations/sqlite");
    for entry in std::fs::read_dir(source).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_str().unwrap().to_owned();
        if name.as_str() < "0007" {
            std::fs::copy(&path, migrations.path().join(name)).unwrap();
        }
    }
    let options: sqlx::sqlite::SqliteConnectOptions = url.parse().unwrap();
    let pool = sqlx::SqlitePool::connect_with(options.create_if_missing(true))
        .await
        .unwrap();
    sqlx::migrate::Migrator::new(migrations.path())
        .await
        .unwrap()
        .run(&pool)
        .await
        .unwrap();
    pool.close().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn an_operator_command_leaves_an_earlier_release_database_alone_until_migrate_is_run() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("old.db").display());
    previous_release_database(&url).await;

    // A server of that release may still be using it: no command upgrades it
    // on the side.
    let refused = stderr_of(&cli(&url, &["partner", "list", "--json"]));
    assert!(refused.contains("earlier release"), "{refused}");
    assert!(refused.contains("sales-order-api migrate"), "{refused}");
    assert!(stderr_of(&cli(&url, &["order", "list", "--json"])).contains("earlier release"));

    let migrated = cli(&url, &["migrate"]);
    assert!(
        migrated.status.success(),
        "{}",
        String::from_utf8_lossy(&migrated.stderr)
    );
    assert_eq!(
        json_of(&cli(&url, &["partner", "list", "--json"])),
        serde_json::json!([])
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn an_operator_command_on_a_missing_sqlite_file_says_it_creates_a_new_database() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("elsewhere.db").display());
    let first = cli(&url, &["partner", "list", "--json"]);
    assert!(first.status.success());
    assert!(String::from_utf8_lossy(&first.stderr).contains("creating a new database"));
    let second = cli(&url, &["partner", "list", "--json"]);
    assert!(!String::from_utf8_lossy(&second.stderr).contains("creating a new database"));
}

#[tokio::test(flavor = "multi_thread")]
async fn printing_commands_end_quietly_when_their_reader_has_gone() {
    let app = TestApp::spawn().await;
    let partner = app.register("versuni-client-001", TestKey::vectors()).await;
    let session = app.session(&partner).await;
    let created: Value = app
        .create_order(&session, &order_body("PO-1"))
        .await
        .json()
        .await
        .unwrap();
    let id = created["data"]["id"].as_str().unwrap();
    let keys = tempfile::tempdir().unwrap();
    let keys = keys.path().display().to_string();
    let commands: [&[&str]; 7] = [
        &["partner", "list"],
        &["partner", "list", "--json"],
        &["partner", "show", "versuni-client-001"],
        &["order", "list"],
        &["order", "show", id, "--json"],
        &["order", "export", "--format", "csv"],
        &["keygen", "--out", &keys, "--json"],
    ];
    for args in commands {
        let output = with_stdout_closed(
            Command::new(env!("CARGO_BIN_EXE_sales-order-api"))
                .arg("--database-url")
                .arg(&app.database_url)
                .args(args),
        );
        assert_quiet_success(&output, &args.join(" "));
    }
}
