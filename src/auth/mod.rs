//! Who is calling: client secrets, access tokens, request signatures and the
//! checks a signed request must pass (`request`), as pure functions and types
//! that know nothing of HTTP; `http::authenticate` is their adapter.

pub mod cache;
pub mod diagnosis;
mod error;
pub mod jwt;
pub mod rate_limit;
pub mod request;
pub mod secret;
pub mod signature;
pub mod throttle;
pub mod timestamp;

pub use error::AuthError;
