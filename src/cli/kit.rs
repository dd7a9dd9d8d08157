//! The partner's commands, `keygen`, `sign` and `send`: none of them touches
//! the database, so a partner can run the same binary on its own machines.

use std::path::PathBuf;

use anyhow::{Context, bail};
use clap::Args;
use clap::builder::{PossibleValuesParser, TypedValueParser};
use serde_json::json;

use super::terminal::{Output, print_line};
use crate::client::{
    Client, PrivateKey, SignatureHeaders, SignedPart, public_key_pem, refuse_symbolic_link,
    timestamp_now, write_private, write_public,
};
use crate::domain::ClientId;

#[derive(Debug, Args)]
pub struct KeygenArgs {
    /// RSA key size.
    #[arg(long, default_value_t = 2048, value_parser = PossibleValuesParser::new(["2048", "3072", "4096"]).try_map(|bits| bits.parse::<u32>()))]
    bits: u32,
    /// Directory for private.pem and public.pem (created if missing).
    #[arg(long)]
    out: PathBuf,
    /// Replace a private.pem already in --out.
    #[arg(long)]
    force: bool,
    #[arg(long)]
    json: bool,
}

#[derive(Debug, Args)]
pub struct SignArgs {
    #[arg(long)]
    client_id: String,
    /// PEM private key (PKCS#8 or PKCS#1).
    #[arg(long)]
    private_key: PathBuf,
    /// X-TIMESTAMP to sign and send; default now, in unix seconds.
    #[arg(long)]
    timestamp: Option<String>,
    /// Sign with version 2 over this file's exact bytes (with --method and --path).
    #[arg(long, requires_all = ["method", "path"])]
    body: Option<PathBuf>,
    /// For version 2: the request method, e.g. POST.
    #[arg(long, requires = "body")]
    method: Option<String>,
    /// For version 2: the path and query exactly as sent, e.g. /api/v1/sales-orders.
    #[arg(long, requires = "body")]
    path: Option<String>,
    /// Also print the string that was signed (to stderr).
    #[arg(long)]
    verbose: bool,
    #[arg(long)]
    json: bool,
}

#[derive(Debug, Args)]
pub struct SendArgs {
    /// Where the API is, e.g. https://orders.example.com
    #[arg(long)]
    base_url: String,
    #[arg(long)]
    client_id: String,
    /// Name of the environment variable holding the client secret (never a
    /// flag: flags show up in shell history and process lists).
    #[arg(long)]
    client_secret_env: String,
    /// PEM private key (PKCS#8 or PKCS#1).
    #[arg(long)]
    private_key: PathBuf,
    /// The order: a JSON file, sent byte for byte.
    order: PathBuf,
    /// Sign with version 2 (method, path and body covered).
    #[arg(long)]
    v2: bool,
    /// Idempotency-Key: send the same file again with the same key and the
    /// server answers with the first result instead of a duplicate.
    #[arg(long)]
    idempotency_key: Option<String>,
    /// Where to keep the access token between runs (mode 0600); default in
    /// the user's cache directory.
    #[arg(long)]
    token_file: Option<PathBuf>,
    /// Do not keep the token: log in on every run.
    #[arg(long, conflicts_with = "token_file")]
    no_token_file: bool,
    /// Show each step, the string to sign and each header (to stderr).
    #[arg(long)]
    verbose: bool,
}

pub fn keygen(args: KeygenArgs) -> anyhow::Result<()> {
    let private_path = args.out.join("private.pem");
    let public_path = args.out.join("public.pem");
    // Both before writing either: a refused public.pem must not leave a new
    // private key behind.
    refuse_symbolic_link(&private_path)?;
    refuse_symbolic_link(&public_path)?;
    if private_path.exists() && !args.force {
        bail!(
            "{} already exists; choose another --out, or pass --force to replace it \
             (the partner's registered public key then no longer matches)",
            private_path.display()
        );
    }
    let key = PrivateKey::generate(args.bits)?;
    let public = key.public_key()?;
    write_private(&private_path, key.to_pem()?.as_bytes())
        .with_context(|| format!("cannot write {}", private_path.display()))?;
    write_public(&public_path, public_key_pem(&public).as_bytes())
        .with_context(|| format!("cannot write {}", public_path.display()))?;
    Output { json: args.json }.print(
        &json!({
            "private_key": private_path,
            "public_key": public_path,
            "bits": args.bits,
            "fingerprint": public.fingerprint(),
        }),
        &format!(
            "RSA-{bits} key pair written.\n  {private} (PKCS#8, mode 0600): keep it secret; it never leaves your systems.\n  {public_file} (SPKI): send this file to the integration team.\n  fingerprint: {fingerprint}\n\nThe integration team will read the same fingerprint back when they register the key.",
            bits = args.bits,
            private = private_path.display(),
            public_file = public_path.display(),
            fingerprint = public.fingerprint(),
        ),
    );
    Ok(())
}

pub fn sign(args: SignArgs) -> anyhow::Result<()> {
    let key = PrivateKey::read(&args.private_key)?;
    let timestamp = args.timestamp.unwrap_or_else(timestamp_now);
    let body = match &args.body {
        Some(path) => {
            Some(std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?)
        }
        None => None,
    };
    let method = args
        .method
        .as_deref()
        .unwrap_or_default()
        .to_ascii_uppercase();
    let part = body.as_deref().map(|body| SignedPart {
        method: &method,
        path_and_query: args.path.as_deref().unwrap_or_default(),
        body,
    });
    if let Some(part) = &part
        && !part.path_and_query.starts_with('/')
    {
        bail!("--path is the path and query as sent, starting with '/', e.g. /api/v1/sales-orders");
    }
    let headers = SignatureHeaders::new(&key, &args.client_id, &timestamp, part.as_ref());
    if args.verbose {
        eprintln!("string to sign: {}", headers.string_to_sign);
    }
    let lines: Vec<String> = headers
        .pairs()
        .iter()
        .map(|(name, value)| format!("{name}: {value}"))
        .collect();
    Output { json: args.json }.print(&json!(headers), &lines.join("\n"));
    Ok(())
}

pub async fn send(args: SendArgs) -> anyhow::Result<()> {
    // It also names the token file, so it must be a client id and nothing else.
    ClientId::parse(&args.client_id).map_err(anyhow::Error::msg)?;
    let secret = std::env::var(&args.client_secret_env).map_err(|_| {
        anyhow::anyhow!(
            "the environment variable {} (--client-secret-env) is not set",
            args.client_secret_env
        )
    })?;
    let key = PrivateKey::read(&args.private_key)?;
    let body = std::fs::read(&args.order)
        .with_context(|| format!("cannot read the order {}", args.order.display()))?;
    let mut client = Client::new(&args.base_url, &args.client_id, secret, key)?;
    let token_file = match (args.no_token_file, args.token_file) {
        (true, _) => None,
        (false, Some(file)) => Some(file),
        (false, None) => Client::default_token_file(&args.base_url, &args.client_id),
    };
    if let Some(file) = token_file {
        client = client.with_token_file(file);
    }
    if args.verbose {
        client = client.with_trace(|line| eprintln!("> {line}"));
    }
    let answer = client
        .create_order(&body, args.v2, args.idempotency_key.as_deref())
        .await?;
    print_line(&format!("{:#}", answer.body));
    if !answer.status.is_success() {
        bail!("the server answered {}", answer.status);
    }
    Ok(())
}
