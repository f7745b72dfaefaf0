//! A Mattermost REST v4 simulator.
