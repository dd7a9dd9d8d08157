//! The partner documentation, served by the binary itself (no CDN, works
//! offline): `/docs` a Redoc page like the seeds' (the guide, every
//! operation, a "Download OpenAPI specification" button), `/docs/try` the
//! interactive Swagger UI, and `/docs/guide` the guide as plain HTML for
//! readers without JavaScript.

use std::sync::LazyLock;

use axum::http::header;
use axum::response::{Html, IntoResponse};

/// Redoc 2.5.4's standalone bundle, unchanged (assets/redoc/README.md).
const REDOC_JS: &str = include_str!("../../assets/redoc/redoc.standalone.js");
const GUIDE_MARKDOWN: &str = include_str!("../../docs/api-guide.md");
const TITLE: &str = "Sales Order API (1.0)";

/// `/docs`: Redoc renders `/openapi.json`, whose description is the guide.
pub async fn reference() -> Html<String> {
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
pub async fn redoc_script() -> impl IntoResponse {
    (
        [
            (
                header::CONTENT_TYPE,
                "application/javascript; charset=utf-8",
            ),
            (header::CACHE_CONTROL, "public, max-age=86400"),
        ],
        REDOC_JS,
    )
}

/// `/docs/guide`: the guide rendered once, as a page without scripts.
pub async fn guide() -> Html<&'static str> {
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
    }
}
