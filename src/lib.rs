//! # veza-stream
//!
//! The Veza Stream server and its command line. This crate holds the I/O around the pure cores
//! (`veza-codecs` for audio, `veza-hls` for packaging): files, sockets, the database, object
//! storage, threads and the clock.
//!
//! - [`package()`] turns one audio file into a directory of HLS renditions (`veza-stream package`).
//! - [`Server`] is `veza-stream serve`: uploads go to object storage, durable jobs in the metadata
//!   store package them, and HLS is delivered with signed playback tokens.
//!
//! ```no_run
//! # async fn start() -> anyhow::Result<()> {
//! let config = veza_stream::Config::load(None, std::env::vars())?;
//! let server = veza_stream::Server::load(config).await?;
//! println!("{}", server.banner());
//! server.run().await
//! # }
//! ```
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod app;
pub mod auth;
pub mod catalog;
pub mod cluster;
pub mod config;
pub mod cover;
pub mod dispatch;
pub mod http;
#[cfg(feature = "http3")]
pub mod http3;
pub mod icecast;
pub mod jobs;
pub mod layout;
pub mod listen;
pub mod listeners;
pub mod live;
pub mod metrics;
pub mod objects;
pub mod outbox;
pub mod package;
pub mod queue;
pub mod rendition;
pub mod server;
pub mod storage;
pub mod store;
pub mod sweep;
pub mod telemetry;
pub mod tls;
pub mod util;
pub mod webrtc;

pub use app::App;
pub use config::Config;
pub use package::{package, Error, Options, Rendition, Stage, Summary};
pub use server::Server;
