//! `order`: the operator's side of orders. List and show them (with their
//! history), move them through the state machine, export them for the ERP.

use std::io::Write;

use anyhow::{Context, bail};
use clap::{Args, Subcommand, ValueEnum};
use serde_json::json;
use time::OffsetDateTime;

use super::terminal::{Output, operator_name, parse_time, shown};
use crate::domain::{Actor, ClientId, Order, OrderStatus};
use crate::store::{OrderQuery, OrderRef, StatusChange, Store, Transition};

/// Orders per database round trip in `list` and `export`.
const PAGE: u32 = 500;

#[derive(Debug, Args)]
pub struct OrderArgs {
    /// Print machine-readable JSON instead of text.
    #[arg(long, global = true)]
    json: bool,
    #[command(subcommand)]
    command: OrderCommand,
}

#[derive(Debug, Subcommand)]
enum OrderCommand {
    /// List orders, newest first.
    List {
        #[command(flatten)]
        filter: Filter,
        /// Show at most this many.
        #[arg(long, default_value_t = 50)]
        limit: u32,
    },
    /// Show one order, by id or order number (SO-00000042), with its history.
    Show { order: String },
    /// Move an order: received → accepted → fulfilled, or received → rejected.
    SetStatus {
        /// The order's id or order number.
        order: String,
        status: OperatorStatus,
        /// Why; required for `rejected`, and shown to the partner.
        #[arg(long)]
        reason: Option<String>,
    },
    /// Write every matching order, oldest first, for an ERP import. Streams:
    /// memory stays flat however many orders there are.
    Export {
        #[arg(long, value_enum)]
        format: ExportFormat,
        #[command(flatten)]
        filter: Filter,
    },
}

#[derive(Debug, Args)]
struct Filter {
    /// Only this partner's orders (client id).
    #[arg(long)]
    partner: Option<ClientId>,
    /// Only orders in this status.
    #[arg(long, value_parser = parse_status)]
    status: Option<OrderStatus>,
    /// Only orders created at or after this time (RFC 3339, e.g. 2026-11-24T00:00:00Z).
    #[arg(long, value_parser = parse_time)]
    since: Option<OffsetDateTime>,
    /// Only orders created before this time (RFC 3339).
    #[arg(long, value_parser = parse_time)]
    until: Option<OffsetDateTime>,
    /// Also sandbox (test-mode) partners' orders, left out otherwise unless
    /// `--partner` names a sandbox partner.
    #[arg(long)]
    include_sandbox: bool,
}

impl Filter {
    fn query(&self, oldest_first: bool) -> OrderQuery {
        OrderQuery {
            client_id: self.partner.clone(),
            status: self.status,
            created_from: self.since,
            created_to: self.until,
            live_only: !self.include_sandbox && self.partner.is_none(),
            oldest_first,
            limit: PAGE,
            ..OrderQuery::default()
        }
    }
}

/// The statuses an operator may set; `cancelled` is the partner's.
#[derive(Debug, Clone, Copy, ValueEnum)]
enum OperatorStatus {
    Accepted,
    Rejected,
    Fulfilled,
}

impl From<OperatorStatus> for OrderStatus {
    fn from(status: OperatorStatus) -> Self {
        match status {
            OperatorStatus::Accepted => Self::Accepted,
            OperatorStatus::Rejected => Self::Rejected,
            OperatorStatus::Fulfilled => Self::Fulfilled,
        }
    }
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum ExportFormat {
    /// One JSON order per line, as the API returns it.
    Jsonl,
    /// One row per order line, with the order's fields repeated, and a header.
    Csv,
}

fn parse_status(text: &str) -> Result<OrderStatus, String> {
    OrderStatus::parse(text)
        .ok_or_else(|| "expected received, accepted, fulfilled, rejected or cancelled".into())
}

pub async fn run(args: OrderArgs, store: &Store) -> anyhow::Result<()> {
    let output = Output { json: args.json };
    match args.command {
        OrderCommand::List { filter, limit } => {
            let mut query = filter.query(false);
            query.limit = limit.clamp(1, 10_000);
            let orders = store.orders(&query).await?.orders;
            let mut text = format!(
                "{:<12} {:<36} {:<24} {:<10} {:<24} {}",
                "NUMBER", "ID", "PARTNER", "STATUS", "CREATED", "PO"
            );
            for order in &orders {
                text.push_str(&format!(
                    "\n{:<12} {:<36} {:<24} {:<10} {:<24} {}",
                    order.order_number,
                    order.id,
                    order.client_id,
                    order.status,
                    order.created_at,
                    shown(order.purchase_order_no.as_deref().unwrap_or("-"))
                ));
            }
            output.print(&json!(orders), &text);
        }
        OrderCommand::Show { order } => {
            let found = store
                .order(OrderRef::operator(&order))
                .await?
                .with_context(|| format!("no order {order}"))?;
            let history = store.history(&found.id).await?;
            let mut text = format!(
                "{} ({}), version {}\npartner:  {}\nstatus:   {}{}\nPO:       {}\ncustomer: {} / site {}\ncurrency: {}\ncreated:  {}\nupdated:  {}\nlines:",
                found.order_number,
                found.id,
                found.version,
                found.client_id,
                found.status,
                found
                    .status_reason
                    .as_deref()
                    .map(|reason| format!(" ({})", shown(reason)))
                    .unwrap_or_default(),
                shown(found.purchase_order_no.as_deref().unwrap_or("-")),
                shown(&found.customer_code),
                shown(&found.site_code),
                found.currency,
                found.created_at,
                found.updated_at,
            );
            for line in &found.products {
                text.push_str(&format!(
                    "\n  {:>4}  {:<20} {:>14} {:<6} {}",
                    line.line_no,
                    shown(&line.product_code),
                    line.quantity.to_string(),
                    shown(line.uom.as_deref().unwrap_or("")),
                    line.line_amount
                        .as_ref()
                        .map(ToString::to_string)
                        .unwrap_or_default()
                ));
            }
            text.push_str("\nhistory:");
            for event in &history {
                let what = match &event.changes {
                    Some(_) => "amended".to_owned(),
                    None => format!(
                        "{} -> {}",
                        event.from.map_or("-", OrderStatus::as_str),
                        event.to
                    ),
                };
                text.push_str(&format!(
                    "\n  {}  {} {:<24} {}{}{}",
                    event.at,
                    event.actor.as_str(),
                    event.actor_name,
                    what,
                    event
                        .version
                        .map(|version| format!(" (version {version})"))
                        .unwrap_or_default(),
                    event
                        .reason
                        .as_deref()
                        .map(|reason| format!(" ({})", shown(reason)))
                        .unwrap_or_default()
                ));
                if let Some(changes) = &event.changes {
                    for change in changes.to_string().lines() {
                        text.push_str(&format!("\n      {}", shown(change)));
                    }
                }
            }
            output.print(&json!({"order": found, "history": history}), &text);
        }
        OrderCommand::SetStatus {
            order,
            status,
            reason,
        } => {
            let to = OrderStatus::from(status);
            let reason = reason
                .as_deref()
                .map(str::trim)
                .filter(|reason| !reason.is_empty());
            if to == OrderStatus::Rejected && reason.is_none() {
                bail!("a rejection needs --reason: the partner sees it");
            }
            if reason.is_some_and(|reason| reason.chars().count() > 500) {
                bail!("--reason must be at most 500 characters");
            }
            let operator = operator_name();
            let change = StatusChange {
                to,
                reason,
                actor: Actor::Operator,
                actor_name: &operator,
                if_version: None,
            };
            let now = OffsetDateTime::now_utc();
            match store
                .change_status(OrderRef::operator(&order), change, now)
                .await?
            {
                Transition::Changed(changed) => output.print(
                    &json!(changed),
                    &format!("{} is now {}", changed.order_number, changed.status),
                ),
                Transition::NotFound => bail!("no order {order}"),
                // No version was asked for; kept for completeness.
                Transition::VersionMismatch { current } => {
                    bail!("order {order} changed meanwhile (now version {current}); try again")
                }
                Transition::Refused { current } => {
                    bail!("order {order} is {current}; it cannot become {to}")
                }
            }
        }
        OrderCommand::Export { format, filter } => {
            export(store, format, &filter).await?;
        }
    }
    Ok(())
}

/// New columns go at the end, so an import that reads columns by position
/// keeps working.
const CSV_HEADER: [&str; 23] = [
    "order_id",
    "order_number",
    "client_id",
    "status",
    "status_reason",
    "customer_code",
    "site_code",
    "sales_name",
    "address",
    "purchase_order_no",
    "total_amount",
    "created_at",
    "updated_at",
    "line_no",
    "product_code",
    "quantity",
    "uom",
    "unit_price",
    "line_amount",
    "notes",
    "currency",
    "version",
    "livemode",
];

/// Pages through the orders by position, so memory holds one page at a time.
/// A reader that stops early (`| head`) ends the export quietly.
async fn export(store: &Store, format: ExportFormat, filter: &Filter) -> anyhow::Result<()> {
    let stdout = std::io::BufWriter::new(std::io::stdout().lock());
    let mut sink = match format {
        ExportFormat::Jsonl => Sink::Jsonl(stdout),
        ExportFormat::Csv => {
            let mut csv = csv::Writer::from_writer(stdout);
            csv.write_record(CSV_HEADER)?;
            Sink::Csv(Box::new(csv))
        }
    };
    let result: anyhow::Result<()> = async {
        let mut query = filter.query(true);
        loop {
            let page = store.orders(&query).await?;
            for order in &page.orders {
                sink.write(order)?;
            }
            match page.next_after_seq {
                Some(seq) => query.after_seq = Some(seq),
                None => break,
            }
        }
        sink.flush()
    }
    .await;
    match result {
        Err(error) if is_broken_pipe(&error) => Ok(()),
        other => other,
    }
}

enum Sink<W: Write> {
    Jsonl(W),
    Csv(Box<csv::Writer<W>>),
}

impl<W: Write> Sink<W> {
    fn write(&mut self, order: &Order) -> anyhow::Result<()> {
        match self {
            Self::Jsonl(out) => {
                serde_json::to_writer(&mut *out, order)?;
                out.write_all(b"\n")?;
            }
            Self::Csv(csv) => write_csv(csv, order)?,
        }
        Ok(())
    }

    fn flush(&mut self) -> anyhow::Result<()> {
        match self {
            Self::Jsonl(out) => out.flush()?,
            Self::Csv(csv) => csv.flush()?,
        }
        Ok(())
    }
}

fn write_csv<W: Write>(csv: &mut csv::Writer<W>, order: &Order) -> anyhow::Result<()> {
    let number = |value: Option<String>| value.unwrap_or_default();
    let partner = |value: &str| neutralise_formula(value).into_owned();
    let optional = |value: &Option<String>| value.as_deref().map(partner).unwrap_or_default();
    for line in &order.products {
        csv.write_record([
            order.id.clone(),
            order.order_number.clone(),
            order.client_id.clone(),
            order.status.to_string(),
            optional(&order.status_reason),
            partner(&order.customer_code),
            partner(&order.site_code),
            partner(&order.sales_name),
            partner(&order.address),
            optional(&order.purchase_order_no),
            number(order.total_amount.as_ref().map(ToString::to_string)),
            order.created_at.clone(),
            order.updated_at.clone(),
            line.line_no.to_string(),
            partner(&line.product_code),
            line.quantity.to_string(),
            optional(&line.uom),
            number(line.unit_price.as_ref().map(ToString::to_string)),
            number(line.line_amount.as_ref().map(ToString::to_string)),
            optional(&line.notes),
            order.currency.clone(),
            order.version.to_string(),
            // With --include-sandbox, what tells a test order from a real one.
            order.livemode.to_string(),
        ])?;
    }
    Ok(())
}

/// OWASP's rule against CSV injection: a spreadsheet opening the export runs
/// a cell that starts with `=`, `+`, `-`, `@`, tab or carriage return as a
/// formula, and partners choose that text. A leading `'` makes the cell text.
/// Only for text people type: the numbers are the server's own exact decimals,
/// which an ERP must read unchanged (and which are never negative).
fn neutralise_formula(text: &str) -> std::borrow::Cow<'_, str> {
    if text.starts_with(['=', '+', '-', '@', '\t', '\r']) {
        format!("'{text}").into()
    } else {
        text.into()
    }
}

fn is_broken_pipe(error: &anyhow::Error) -> bool {
    error.chain().any(|cause| {
        let io = cause
            .downcast_ref::<std::io::Error>()
            .map(std::io::Error::kind)
            .or_else(|| match cause.downcast_ref::<csv::Error>()?.kind() {
                csv::ErrorKind::Io(io) => Some(io.kind()),
                _ => None,
            });
        io == Some(std::io::ErrorKind::BrokenPipe)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{Decimal, OrderLine};

    #[test]
    fn cells_starting_like_a_formula_get_a_quote_and_others_stay_as_they_are() {
        for formula in ["=1+1", "+1", "-1", "@A1", "\tcmd", "\r=1+1"] {
            assert_eq!(neutralise_formula(formula), format!("'{formula}"));
        }
        for plain in ["PO-1", "", "1=1", " =1", "'quoted", "Jl. \"Merdeka\""] {
            assert_eq!(neutralise_formula(plain), plain);
        }
    }

    /// Tab and carriage return cannot reach a stored order (the API trims
    /// text and refuses controls in codes), so they are shown here.
    #[test]
    fn a_csv_row_quotes_partner_text_starting_with_tab_or_carriage_return() {
        let order = Order {
            id: "so_1".into(),
            order_number: "SO-00000001".into(),
            client_id: "acme".into(),
            livemode: true,
            status: OrderStatus::Rejected,
            status_reason: Some("\r=1+1".into()),
            customer_code: "CUST-001".into(),
            site_code: "SITE-001".into(),
            sales_name: "\t=cmd".into(),
            address: "\r\n@SUM(1)".into(),
            purchase_order_no: None,
            currency: "IDR".into(),
            version: 2,
            products: vec![OrderLine {
                line_no: 1,
                product_code: "P-1".into(),
                quantity: Decimal::from_integer(2),
                uom: None,
                unit_price: None,
                line_amount: None,
                notes: Some("\t-1".into()),
            }],
            total_amount: None,
            created_at: "2026-11-24T00:00:00.000Z".into(),
            updated_at: "2026-11-24T00:00:00.000Z".into(),
        };
        let mut csv = csv::Writer::from_writer(Vec::new());
        write_csv(&mut csv, &order).unwrap();
        let written = csv.into_inner().unwrap();
        let row = csv::ReaderBuilder::new()
            .has_headers(false)
            .from_reader(written.as_slice())
            .records()
            .next()
            .unwrap()
            .unwrap();
        let cell = |name: &str| &row[CSV_HEADER.iter().position(|h| *h == name).unwrap()];
        assert_eq!(cell("status_reason"), "'\r=1+1");
        assert_eq!(cell("sales_name"), "'\t=cmd");
        assert_eq!(cell("address"), "'\r\n@SUM(1)");
        assert_eq!(cell("notes"), "'\t-1");
        assert_eq!(cell("customer_code"), "CUST-001");
        assert_eq!(cell("purchase_order_no"), "");
        assert_eq!(cell("quantity"), "2");
    }
}
