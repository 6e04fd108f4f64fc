//! Fuzz targets for every parser that takes outside input, run by bolero's test engine as
//! ordinary tests: each replays its seed corpus (`tests/fuzz/__fuzz__/<target>/corpus`), then a
//! bounded number of random inputs, each also applied as mutations to a seed (see `kit`).
//! An input fails its target by a panic, by taking longer than the watchdog allows, or by making
//! the process grow past its memory bound.
//!
//! One target for longer: `BOLERO_RANDOM_ITERATIONS=200000 cargo test -p tests --test fuzz --
//! templates --nocapture` (bolero reads the variable before the targets' own bound; add
//! `BOLERO_RANDOM_TEST_TIME_MS` to stop earlier). A failure prints the input and the
//! `BOLERO_RANDOM_SEED` that replays it; a failing input belongs in the target's corpus.
//!
//! bolero is pinned below 0.13.5 in the workspace: `bolero-generator-derive` 0.13.5 requires
//! exactly `indexmap` 2.11.2, which `toml` 1.2 (newer `indexmap`) rules out.

mod kit;

mod http;
mod payloads;
mod text;
