//! One integration-test binary (link time on 2 cores): the real service and simulators over
//! real sockets on port 0.

mod cli;
mod mattermost;
mod mattermost_conformance;
mod mattermost_sim;
