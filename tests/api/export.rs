//! `order export` and `order list`: what the operator hands to the ERP.

use std::process::{Command, Stdio};
use std::time::Duration;

use serde_json::{Value, json};
use sqlx::{AssertSqlSafe, Connection, PgConnection, SqliteConnection};

use crate::cli::{cli, json_of};
use crate::helpers::*;

fn stdout_of(args: &[&str], app: &TestApp) -> String {
    let output = cli(&app.database_url, args);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn the_exports_carry_every_order_exactly_as_the_api_shows_it() {
    let app = TestApp::spawn().await;
    let partner = app.register("versuni-client-001", TestKey::vectors()).await;
    let session = app.session(&partner).await;
    let mut tricky = order_body("PO-1");
    tricky["address"] = json!("Jl. \"Merdeka\", No. 5\nJakarta");
    tricky["products"][1]["notes"] = json!("fragile, handle with care");
    let mut orders = Vec::new();
    for body in [tricky, order_body("PO-2")] {
        let response = app.create_order(&session, &body).await;
        assert_eq!(response.status(), 201);
        orders.push(response.json::<Value>().await.unwrap()["data"].clone());
    }

    let jsonl = stdout_of(&["order", "export", "--format", "jsonl"], &app);
    let exported: Vec<Value> = jsonl
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect();
    assert_eq!(exported, orders, "oldest first, as the API returns them");

    let csv_text = stdout_of(&["order", "export", "--format", "csv"], &app);
    let mut reader = csv::Reader::from_reader(csv_text.as_bytes());
    let header: Vec<String> = reader.headers().unwrap().iter().map(String::from).collect();
    assert_eq!(header[0], "order_id");
    assert_eq!(header[13], "line_no");
    let rows: Vec<csv::StringRecord> = reader.records().map(Result::unwrap).collect();
    assert_eq!(rows.len(), 4, "one row per order line");
    let column = |name: &str| header.iter().position(|h| h == name).unwrap();
    assert_eq!(
        &rows[0][column("address")],
        "Jl. \"Merdeka\", No. 5\nJakarta"
    );
    assert_eq!(&rows[1][column("notes")], "fragile, handle with care");
    assert_eq!(&rows[1][column("quantity")], "0.5");
    assert_eq!(&rows[0][column("line_amount")], "300001");
    assert_eq!(&rows[0][column("total_amount")], "300006");
    assert_eq!(&rows[2][column("order_number")], orders[1]["order_number"]);

    // Filters: status and creation time.
    let id = orders[0]["id"].as_str().unwrap();
    stdout_of(&["order", "set-status", id, "accepted"], &app);
    let accepted = stdout_of(
        &[
            "order", "export", "--format", "jsonl", "--status", "accepted",
        ],
        &app,
    );
    assert_eq!(accepted.lines().count(), 1);
    let since = orders[1]["created_at"].as_str().unwrap();
    let recent = stdout_of(
        &["order", "export", "--format", "jsonl", "--since", since],
        &app,
    );
    assert_eq!(recent.lines().count(), 1);

    let listed = json_of(&cli(
        &app.database_url,
        &["order", "list", "--partner", "versuni-client-001", "--json"],
    ));
    assert_eq!(listed.as_array().unwrap().len(), 2);
    assert_eq!(listed[0]["id"], orders[1]["id"], "newest first");
}

/// Writes `count` one-line orders for `client_id` straight into the database.
async fn seed_orders(database_url: &str, client_id: &str, count: u32) {
    let sql = match crate::BACKEND {
        Backend::Sqlite => format!(
            "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < {count})
             INSERT INTO sales_orders (id, client_id, status, customer_code, site_code, sales_name, address,
                                       purchase_order_no, currency, total_amount, version, created_at, updated_at)
             SELECT 'so_seed_' || i, '{client_id}', 'received', 'CUST-001', 'SITE-001', 'John Doe',
                    'Jl. Sudirman No. 1, Jakarta', 'PO-' || i, 'IDR', '300001', 1,
                    '2026-11-24T00:00:00.000Z', '2026-11-24T00:00:00.000Z' FROM n;
             INSERT INTO sales_order_lines (order_seq, line_no, product_code, quantity, uom, unit_price, line_amount)
             SELECT seq, 1, 'PRD-001', '2', 'PCS', '150000.5', '300001' FROM sales_orders;"
        ),
        Backend::Postgres => format!(
            "INSERT INTO sales_orders (id, client_id, status, customer_code, site_code, sales_name, address,
                                       purchase_order_no, currency, total_amount, version, created_at, updated_at)
             SELECT 'so_seed_' || i, '{client_id}', 'received', 'CUST-001', 'SITE-001', 'John Doe',
                    'Jl. Sudirman No. 1, Jakarta', 'PO-' || i, 'IDR', 300001, 1,
                    '2026-11-24T00:00:00Z', '2026-11-24T00:00:00Z' FROM generate_series(1, {count}) AS i;
             INSERT INTO sales_order_lines (order_seq, line_no, product_code, quantity, uom, unit_price, line_amount)
             SELECT seq, 1, 'PRD-001', 2, 'PCS', 150000.5, 300001 FROM sales_orders;"
        ),
    };
    // The values are the test's own constants.
    let sql = AssertSqlSafe(sql);
    match crate::BACKEND {
        Backend::Sqlite => {
            let mut connection = SqliteConnection::connect(database_url).await.unwrap();
            sqlx::raw_sql(sql).execute(&mut connection).await.unwrap();
        }
        Backend::Postgres => {
            let mut connection = PgConnection::connect(database_url).await.unwrap();
            sqlx::raw_sql(sql).execute(&mut connection).await.unwrap();
        }
    }
}

/// Runs the binary with stdout to a file, sampling its peak resident memory
/// (VmHWM) until it exits. Returns the output and the peak in KiB.
fn run_measuring_memory(database_url: &str, args: &[&str]) -> (String, u64) {
    let out = tempfile::NamedTempFile::new().unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_sales-order-api"))
        .arg("--database-url")
        .arg(database_url)
        .args(args)
        .stdout(Stdio::from(out.reopen().unwrap()))
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let status_file = format!("/proc/{}/status", child.id());
    let mut peak_kib = 0;
    let status = loop {
        if let Ok(text) = std::fs::read_to_string(&status_file) {
            let hwm = text
                .lines()
                .find_map(|line| line.strip_prefix("VmHWM:"))
                .and_then(|value| value.trim().trim_end_matches("kB").trim().parse().ok());
            peak_kib = peak_kib.max(hwm.unwrap_or(0));
        }
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    assert!(status.success());
    (std::fs::read_to_string(out.path()).unwrap(), peak_kib)
}

#[tokio::test(flavor = "multi_thread")]
async fn exporting_100_000_orders_streams_in_bounded_memory() {
    let app = TestApp::spawn().await;
    app.register("versuni-client-001", TestKey::vectors()).await;
    seed_orders(&app.database_url, "versuni-client-001", 100_000).await;

    let url = app.database_url.clone();
    let (csv_text, peak_kib) = tokio::task::spawn_blocking(move || {
        run_measuring_memory(&url, &["order", "export", "--format", "csv"])
    })
    .await
    .unwrap();
    assert_eq!(
        csv_text.lines().count(),
        100_001,
        "a header and a row per order"
    );
    assert!(
        csv_text
            .lines()
            .nth(100_000)
            .unwrap()
            .starts_with("so_seed_100000,")
    );
    // The output alone is ~25 MB; a streaming export holds one page of 500.
    println!("peak RSS exporting 100 000 orders as CSV: {peak_kib} KiB");
    assert!(peak_kib < 64 * 1024, "peak RSS {peak_kib} KiB");
}

#[tokio::test(flavor = "multi_thread")]
async fn partner_text_a_spreadsheet_would_run_as_a_formula_is_quoted_in_csv_and_exact_in_jsonl() {
    let app = TestApp::spawn().await;
    let partner = app.register("versuni-client-001", TestKey::vectors()).await;
    let session = app.session(&partner).await;
    // The four classic payloads, one in each kind of partner text.
    let hyperlink = r#"=HYPERLINK("http://evil","x")"#;
    let dde = "+cmd|' /C calc'!A0";
    let arithmetic = "-2+3+cmd|' /C calc'!A0";
    let function = "@SUM(1+1)*cmd|' /C calc'!A0";
    let mut body = order_body(hyperlink);
    body["customer_code"] = json!(dde);
    body["site_code"] = json!(arithmetic);
    body["sales_name"] = json!(function);
    body["address"] = json!(hyperlink);
    body["products"][0]["product_code"] = json!(function);
    body["products"][0]["uom"] = json!("=1+1");
    body["products"][0]["notes"] = json!(arithmetic);
    let response = app.create_order(&session, &body).await;
    assert_eq!(response.status(), 201);
    let order = response.json::<Value>().await.unwrap()["data"].clone();
    let reason = "=cmd|' /C calc'!A0";
    stdout_of(
        &[
            "order",
            "set-status",
            order["id"].as_str().unwrap(),
            "rejected",
            "--reason",
            reason,
        ],
        &app,
    );

    let csv_text = stdout_of(&["order", "export", "--format", "csv"], &app);
    let mut reader = csv::Reader::from_reader(csv_text.as_bytes());
    let header: Vec<String> = reader.headers().unwrap().iter().map(String::from).collect();
    let rows: Vec<csv::StringRecord> = reader.records().map(Result::unwrap).collect();
    let cell = |row: usize, name: &str| {
        let column = header.iter().position(|h| h == name).unwrap();
        rows[row][column].to_owned()
    };
    let quoted = |text: &str| format!("'{text}");
    for (name, sent) in [
        ("purchase_order_no", hyperlink),
        ("customer_code", dde),
        ("site_code", arithmetic),
        ("sales_name", function),
        ("address", hyperlink),
        ("status_reason", reason),
        ("product_code", function),
        ("uom", "=1+1"),
        ("notes", arithmetic),
    ] {
        assert_eq!(cell(0, name), quoted(sent), "{name}");
    }
    // Harmless text and the numbers the server writes itself stay as they are.
    assert_eq!(cell(1, "product_code"), "PRD-002");
    assert_eq!(cell(1, "quantity"), "0.5");
    assert_eq!(cell(0, "line_amount"), "300001");

    let jsonl = stdout_of(&["order", "export", "--format", "jsonl"], &app);
    let exported: Value = serde_json::from_str(jsonl.lines().next().unwrap()).unwrap();
    assert_eq!(exported["purchase_order_no"], hyperlink);
    assert_eq!(exported["customer_code"], dde);
    assert_eq!(exported["sales_name"], function);
    assert_eq!(exported["status_reason"], reason);
    assert_eq!(exported["products"][0]["notes"], arithmetic);
}
