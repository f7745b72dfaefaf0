//! One integration-test binary (link time on 2 cores): the real service and simulators over
//! real sockets on port 0.

mod access_lists;
mod bridge;
mod chaos;
mod check;
mod cli;
mod dashboard;
mod delivery;
mod demo;
mod edge;
mod harness;
mod mattermost;
mod mattermost_conformance;
mod mattermost_pacer;
mod mattermost_sim;
mod playground;
mod proxy;
mod proxy_client;
mod race;
mod reminders;
mod review;
mod review_command;
mod review_refusals;
mod review_users;
mod security;
mod teleport;
mod teleport_faults;
mod teleport_identity;
mod teleport_plugin_data;
mod teleport_review;
mod teleport_wire;
