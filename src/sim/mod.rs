//! Simulators of the external systems (used by tests, the benchmark and `demo`).

pub mod teleport;
