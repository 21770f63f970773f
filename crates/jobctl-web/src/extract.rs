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

/// `invalid query string: zzz: unknown field `zzz`, expected one of …`,
/// without axum's "Failed to deserialize query string: " (or "Invalid URL:
/// ").
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

/// A whole number in a query string (`limit`, `tail`), from `MIN` to `MAX`:
/// a smaller or larger one is taken as `MIN` or `MAX`, and what is not a
/// whole number is refused naming what was given and the numbers taken
/// (`limit: "-1" is not a whole number; send 1 to 1000 (0 is taken as 1,
/// more than 1000 as 1000)`), not with the parser's "invalid digit found in
/// string". The parameter's name comes before it from the extractor.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Count<const MIN: usize, const MAX: usize>(pub usize);

/// `limit`: how many runs or notifications, 1 to 1000.
pub type Limit = Count<1, 1000>;

/// `tail`: how many lines, any number.
pub type LineCount = Count<0, { usize::MAX }>;

impl<const MIN: usize, const MAX: usize> Count<MIN, MAX> {
    /// The numbers taken, as the refusal says them.
    fn range() -> String {
        match (MIN, MAX) {
            (_, usize::MAX) => format!("{MIN} or more"),
            (0, _) => format!("0 to {MAX} (more than {MAX} is taken as {MAX})"),
            _ => format!(
                "{MIN} to {MAX} (0{} is taken as {MIN}, more than {MAX} as {MAX})",
                if MIN > 1 {
                    format!(" to {}", MIN - 1)
                } else {
                    String::new()
                }
            ),
        }
    }

    fn parse(text: &str) -> Result<Self, String> {
        if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
            return Err(format!(
                "{text:?} is not a whole number; send {}",
                Self::range()
            ));
        }
        // All digits: only too large to hold can fail, and that is more
        // than MAX.
        let n = text.parse::<usize>().unwrap_or(usize::MAX);
        Ok(Count(n.clamp(MIN, MAX)))
    }
}

impl<'de, const MIN: usize, const MAX: usize> serde::Deserialize<'de> for Count<MIN, MAX> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        // A query string's values are text; read every value as text so
        // that the refusal can say what was given.
        let text = std::borrow::Cow::<'de, str>::deserialize(d)?;
        Self::parse(&text).map_err(serde::de::Error::custom)
    }
}

/// The query of a page that takes no parameters: any is refused, named
/// (`unknown parameter `zzz`: this page takes none`), as the API refuses a
/// parameter it does not take.
#[derive(Debug, Default)]
pub struct NoParams;

impl<'de> serde::Deserialize<'de> for NoParams {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Visitor;
        impl<'de> serde::de::Visitor<'de> for Visitor {
            type Value = NoParams;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("no parameters")
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                mut map: A,
            ) -> Result<NoParams, A::Error> {
                match map.next_key::<std::borrow::Cow<'de, str>>()? {
                    None => Ok(NoParams),
                    Some(name) => Err(serde::de::Error::custom(format!(
                        "unknown parameter `{name}`: this page takes none"
                    ))),
                }
            }
        }
        d.deserialize_map(Visitor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_count_is_a_whole_number_taken_within_its_bounds() {
        type Limit = Count<1, 1000>;
        type Tail = Count<0, { usize::MAX }>;
        assert_eq!(Limit::parse("50"), Ok(Count(50)));
        assert_eq!(Limit::parse("0"), Ok(Count(1)));
        assert_eq!(Limit::parse("5000"), Ok(Count(1000)));
        assert_eq!(Limit::parse("99999999999999999999999"), Ok(Count(1000)));
        assert_eq!(Tail::parse("0"), Ok(Count(0)));
        for bad in ["-1", "", "1e3", "+5", " 5", "abc"] {
            assert_eq!(
                Limit::parse(bad),
                Err(format!(
                    "{bad:?} is not a whole number; send 1 to 1000 \
                     (0 is taken as 1, more than 1000 as 1000)"
                ))
            );
        }
        assert_eq!(
            Tail::parse("-5"),
            Err("\"-5\" is not a whole number; send 0 or more".into())
        );
        assert_eq!(
            Count::<0, 10>::parse("x"),
            Err("\"x\" is not a whole number; send 0 to 10 (more than 10 is taken as 10)".into())
        );
    }
}
