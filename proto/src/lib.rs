//! Generated protobuf types and gRPC services.
//!
//! `v2` is apache.rocketmq.v2 (the RocketMQ 5.x gRPC protocol, Apache-2.0, see `apache/LICENSE`);
//! `wal` is the StrataMQ WAL object format; `admin` is the StrataMQ admin service.
//! Modules nest as the proto packages do, because generated code refers across packages by
//! relative paths.

#[allow(clippy::all, missing_docs)]
pub mod apache {
    pub mod rocketmq {
        pub mod v2 {
            tonic::include_proto!("apache.rocketmq.v2");
        }
    }
}

#[allow(clippy::all, missing_docs)]
pub mod strata {
    pub mod wal {
        tonic::include_proto!("strata.wal");
    }
    pub mod admin {
        tonic::include_proto!("strata.admin");
    }
}

pub use apache::rocketmq::v2;
pub use strata::{admin, wal};
