//! Runnable examples of embedding WaddleBot live in `examples/`. This crate also compiles and
//! runs the README's Rust snippets, so the README cannot drift from the API.
#![doc = include_str!("../../README.md")]
