//! Teleport Auth simulator.
