//! Teleport Auth simulator.

pub mod pki;
