//! The RocketMQ 4.x Remoting protocol's wire format: frames and the commands they carry.
//!
//! A frame is `total length (u32 BE)`, then `serialize type (1 byte) + header length (3 bytes)`,
//! the header (JSON, or the ROCKETMQ binary layout), and the body. `total length` counts
//! everything after itself. Requests and responses are matched by `opaque`; flag bit 0 marks a
//! response, bit 1 a one-way request.

pub mod codes;
mod command;
mod error;
mod frame;
mod header;
pub mod message;

pub use command::{Command, FLAG_ONEWAY, FLAG_RESPONSE, SerializeType};
pub use error::{Error, Result};
pub use frame::{decode_frame, encode_frame};
