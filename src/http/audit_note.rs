//! What an answer means for the audit, decided where the request is judged
//! (the login and refresh handlers, the signed-request extractor) and carried
//! on the response to the envelope, which records it with the request's
//! facts (who, from where, which request id).

use axum::response::{IntoResponse, Response};

use crate::domain::AuditKind;

/// The audit kind of a response, in its extensions.
#[derive(Debug, Clone, Copy)]
pub struct AuditNote(pub AuditKind);

/// An answer, and what it means for the audit (`None`: nothing to record).
pub struct Audited<T>(pub Option<AuditKind>, pub T);

impl<T: IntoResponse> IntoResponse for Audited<T> {
    fn into_response(self) -> Response {
        let mut response = self.1.into_response();
        if let Some(kind) = self.0 {
            response.extensions_mut().insert(AuditNote(kind));
        }
        response
    }
}
