//! axum's `Query`, `Path` and `Form`, with their refusals answered like every other
//! invalid input: as JSON (`{"error": …}`, 400) on the API and `/metrics`,
//! as the error page elsewhere. axum's own answer is a `text/plain` line
//! ("Failed to deserialize query string: …") that an API client parsing
//! JSON cannot read.

use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::StatusCode;
use axum::http::request::Parts;
use axum::response::Response;
use serde::de::DeserializeOwned;

/// The query string, as `axum::extract::Query`.
pub struct Query<T>(pub T);

/// The path's parameters, as `axum::extract::Path`.
pub struct Path<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequestParts<S> for Query<T> {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Response> {
        match axum::extract::Query::<T>::from_request_parts(parts, state).await {
            Ok(axum::extract::Query(v)) => Ok(Query(v)),
            Err(e) => Err(refused(parts, "query string", &e.body_text())),
        }
    }
}

impl<T: DeserializeOwned + Send, S: Send + Sync> FromRequestParts<S> for Path<T> {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Response> {
        match axum::extract::Path::<T>::from_request_parts(parts, state).await {
            Ok(axum::extract::Path(v)) => Ok(Path(v)),
            Err(e) => Err(refused(parts, "path", &e.body_text())),
        }
    }
}

/// A form's body, as `axum::extract::Form`: a body that is not a form
/// (another `Content-Type`, none) or lacks a field it needs is the error
/// page (400), not axum's 415 or 422 in `text/plain`.
pub struct Form<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for Form<T> {
    type Rejection = Response;

    async fn from_request(req: Request, state: &S) -> Result<Self, Response> {
        let (parts, body) = req.into_parts();
        let req = Request::from_parts(parts.clone(), body);
        match axum::extract::Form::<T>::from_request(req, state).await {
            Ok(axum::extract::Form(v)) => Ok(Form(v)),
            Err(e) => Err(refused(&parts, "form", &e.body_text())),
        }
    }
}

/// `invalid query string: limit: invalid digit found in string`, without
/// axum's "Failed to deserialize query string: " (or "Invalid URL: ").
fn refused(parts: &Parts, what: &str, text: &str) -> Response {
    let detail = text
        .strip_prefix("Failed to deserialize query string: ")
        .or_else(|| text.strip_prefix("Failed to deserialize form body: "))
        .or_else(|| text.strip_prefix("Invalid URL: "))
        .unwrap_or(text);
    let message = format!(
        "invalid {what}: {}",
        jobctl::output::escape(detail, jobctl::output::Lines::Escape)
    );
    let path = parts.uri.path();
    if path.starts_with("/api/") || path == "/metrics" {
        crate::api::json_error(StatusCode::BAD_REQUEST, &message)
    } else {
        crate::pages::error_page(StatusCode::BAD_REQUEST, &message)
    }
}
