//! The partner documentation, served by the binary itself (no CDN, works
//! offline): `/docs` a Redoc page like the seeds' (the guide, every
//! operation, a "Download OpenAPI specification" button), `/docs/try` the
//! interactive Swagger UI, and `/docs/guide` the guide as plain HTML for
//! readers without JavaScript.

use std::sync::LazyLock;

use axum::Router;
use axum::extract::Request;
use axum::http::{HeaderValue, header};
use axum::middleware::Next;
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use utoipa::openapi::OpenApi;
use utoipa_swagger_ui::{Config, SwaggerUi};

/// Redoc 2.5.4's standalone bundle as vendored (assets/redoc/README.md).
const REDOC_BUNDLE: &str = include_str!("../../assets/redoc/redoc.standalone.js");
/// The one thing in the bundle that reaches another host: its sidebar's
/// Redocly logo, fetched from cdn.redoc.ly. Served with a blank image
/// instead, so the page asks nothing of any host but this one.
const REDOC_LOGO: &str = r#"src:"https://cdn.redoc.ly/redoc/logo-mini.svg""#;
const BLANK_IMAGE: &str = r#"src:"data:image/svg+xml,%3Csvg xmlns='http://www.w3.org/2000/svg' width='1' height='1'/%3E""#;
/// What a docs page may load: this server only. Redoc and Swagger UI set
/// styles from script (`'unsafe-inline'` styles, never scripts), and Redoc
/// runs its search in a worker made from a `blob:`.
const CONTENT_SECURITY_POLICY: &str = "default-src 'self'; script-src 'self'; \
    style-src 'self' 'unsafe-inline'; img-src 'self' data:; font-src 'self' data:; \
    worker-src 'self' blob:; object-src 'none'; base-uri 'none'; frame-ancestors 'none'";
const GUIDE_MARKDOWN: &str = include_str!("../../docs/api-guide.md");
const TITLE: &str = "Sales Order API (1.0)";

/// The docs routes (`/docs`, `/docs/guide`, `/docs/try` and the
/// `/openapi.json` it reads), each answer confined to this server by its
/// Content-Security-Policy.
pub fn router<S: Clone + Send + Sync + 'static>(document: OpenApi) -> Router<S> {
    Router::new()
        .route("/docs", get(reference))
        .route("/docs/", get(reference))
        .route("/docs/guide", get(guide))
        .route("/docs/redoc.standalone.js", get(redoc_script))
        .merge(
            SwaggerUi::new("/docs/try")
                .url("/openapi.json", document)
                // Swagger UI's default would draw a badge from validator.swagger.io.
                .config(Config::default().validator_url("none")),
        )
        .layer(axum::middleware::from_fn(this_server_only))
}

async fn this_server_only(request: Request, next: Next) -> Response {
    let mut response = next.run(request).await;
    response.headers_mut().insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CONTENT_SECURITY_POLICY),
    );
    response
}

/// `/docs`: Redoc renders `/openapi.json`, whose description is the guide.
async fn reference() -> Html<String> {
    Html(format!(
        r#"<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{TITLE}</title>
<style>
  body {{ margin: 0; font-family: system-ui, sans-serif; }}
  nav {{ padding: 8px 16px; background: #263238; font-size: 14px; }}
  nav a {{ color: #fff; margin-right: 20px; }}
</style>
</head>
<body>
<nav>
  <a href="/docs/guide">Guide (plain HTML)</a>
  <a href="/docs/try">Try it (interactive)</a>
  <a href="/openapi.json" download="sales-order-api.json">Download OpenAPI specification</a>
</nav>
<noscript><p style="padding: 16px">This reference needs JavaScript. Without it, read the
<a href="/docs/guide">guide as plain HTML</a> or the
<a href="/openapi.json">OpenAPI specification</a>.</p></noscript>
<redoc spec-url="/openapi.json" hide-hostname="false" expand-responses="200,201"></redoc>
<script src="/docs/redoc.standalone.js"></script>
</body>
</html>
"#
    ))
}

/// `/docs/redoc.standalone.js`, cached for a day (it changes only with a release).
async fn redoc_script() -> impl IntoResponse {
    static SCRIPT: LazyLock<String> =
        LazyLock::new(|| REDOC_BUNDLE.replace(REDOC_LOGO, BLANK_IMAGE));
    (
        [
            (
                header::CONTENT_TYPE,
                "application/javascript; charset=utf-8",
            ),
            (header::CACHE_CONTROL, "public, max-age=86400"),
        ],
        SCRIPT.as_str(),
    )
}

/// `/docs/guide`: the guide rendered once, as a page without scripts.
async fn guide() -> Html<&'static str> {
    static PAGE: LazyLock<String> = LazyLock::new(|| {
        use pulldown_cmark::{Options, Parser, html};
        let mut body = String::new();
        html::push_html(
            &mut body,
            Parser::new_ext(GUIDE_MARKDOWN, Options::ENABLE_TABLES),
        );
        format!(
            r#"<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{TITLE}: partner guide</title>
<style>
  body {{ max-width: 60rem; margin: 2rem auto; padding: 0 1rem; font-family: system-ui, sans-serif; line-height: 1.5; color: #222; }}
  code, pre {{ font-family: ui-monospace, monospace; font-size: 0.9em; }}
  pre {{ background: #f4f4f4; padding: 0.8rem; overflow-x: auto; }}
  table {{ border-collapse: collapse; }}
  th, td {{ border: 1px solid #ccc; padding: 0.3rem 0.5rem; vertical-align: top; text-align: left; }}
</style>
</head>
<body>
<p><a href="/docs">API reference</a> · <a href="/docs/try">Try it (interactive)</a> · <a href="/openapi.json">OpenAPI specification</a></p>
<h1>{TITLE}: partner guide</h1>
{body}
</body>
</html>
"#
        )
    });
    Html(PAGE.as_str())
}

#[cfg(test)]
mod tests {
    #[tokio::test]
    async fn the_guide_page_is_the_guide_in_html_without_scripts() {
        let page = super::guide().await.0;
        assert!(page.contains("<h2>Quick start: your first order in five minutes</h2>"));
        assert!(page.contains("<table>"));
        assert!(!page.contains("<script"));
        // How to read amounts exactly, in each language the guide serves a client for.
        assert!(page.contains("<h2>Amounts are exact decimals</h2>"));
        for advice in [
            "<code>lossless-json</code>",
            "<code>json.loads(text, parse_float=decimal.Decimal)</code>",
            "<code>DeserializationFeature.USE_BIG_DECIMAL_FOR_FLOATS</code>",
        ] {
            assert!(page.contains(advice), "{advice}");
        }
    }

    #[test]
    fn the_redoc_bundle_is_served_without_its_one_outside_image() {
        assert_eq!(super::REDOC_BUNDLE.matches(super::REDOC_LOGO).count(), 1);
        let served = super::REDOC_BUNDLE.replace(super::REDOC_LOGO, super::BLANK_IMAGE);
        assert!(!served.contains("cdn.redoc.ly"));
        assert_eq!(
            served.len() - super::REDOC_BUNDLE.len(),
            super::BLANK_IMAGE.len() - super::REDOC_LOGO.len()
        );
    }
}
