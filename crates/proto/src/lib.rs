//! Generated protobuf messages and gRPC stubs (client and server) from the repository's
//! `proto/`: the one piece of wire code the service and the simulators share. Module nesting
//! mirrors the proto packages because prost refers across packages with `super::`.

#![allow(clippy::all, missing_docs, unreachable_pub)]

/// `package proto`: AuthService, Ping, Watch, Event.
pub mod proto {
    tonic::include_proto!("proto");
}

/// `package types`: access requests, reviews, plugin data, watch kinds, users.
pub mod types {
    tonic::include_proto!("types");
}

/// `package teleport.*`: access monitoring rules, access lists, users and the v1 resource header.
pub mod teleport {
    pub mod header {
        pub mod v1 {
            tonic::include_proto!("teleport.header.v1");
        }
    }
    pub mod accessmonitoringrules {
        pub mod v1 {
            tonic::include_proto!("teleport.accessmonitoringrules.v1");
        }
    }
    pub mod accesslist {
        pub mod v1 {
            tonic::include_proto!("teleport.accesslist.v1");
        }
    }
    pub mod users {
        pub mod v1 {
            tonic::include_proto!("teleport.users.v1");
        }
    }
}
