//! The `jobctl` library: everything of the `jobctl` binary but its `main`.
//!
//! A library target of the root package so that a second binary, `jobctl-web`
//! (crates/jobctl-web), reuses the CLI's readers and JSON views without the
//! run shim linking the HTTP server (docs/design.md, "The web server: a
//! second binary"). All logic lives in the `jobctl-*` crates; this crate owns
//! the command line ([`cli`], [`commands`]), what people read ([`view`]), the
//! one way to stdout and stderr ([`output`]) and the exit statuses ([`exit`]).

// These modules were the binary's, whose documentation rustdoc builds with
// its private items; their docs link to private items freely.
#![allow(rustdoc::private_intra_doc_links)]

pub mod cache;
pub mod cli;
pub mod commands;
pub mod env;
pub mod error;
pub mod exit;
pub mod files;
pub mod groups;
pub mod history_db;
pub mod host;
pub mod journal;
pub mod linger;
pub mod load;
pub mod manual;
pub mod notify_send;
pub mod origin;
pub mod output;
pub mod overview;
pub mod paths;
pub mod poke;
pub mod rendering;
pub mod systemd;
pub mod view;
pub mod zones;
