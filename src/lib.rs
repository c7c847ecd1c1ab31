//! # veza-stream
//!
//! The Veza Stream server and its command line. This crate holds the I/O around the pure cores
//! (`veza-codecs` for audio, `veza-hls` for packaging): reading files, running encoders on threads,
//! writing packages atomically.
//!
//! [`package()`] turns one audio file into a directory of HLS renditions; `veza-stream package`
//! is its command-line face.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod package;

pub use package::{package, Error, Options, Rendition, Stage, Summary};
