//! The pages (server-rendered HTML, no script): not built yet; see
//! docs/dashboard.md.

use axum::Router;

pub fn router() -> Router<crate::api::Shared> {
    Router::new()
}
