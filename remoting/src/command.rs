//! A Remoting command: a request or a response.

use std::collections::BTreeMap;

use bytes::Bytes;

/// Flag bit of a response.
pub const FLAG_RESPONSE: i32 = 1;
/// Flag bit of a one-way request (no response expected).
pub const FLAG_ONEWAY: i32 = 2;

/// How a command's header is serialized.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SerializeType {
    Json = 0,
    RocketMq = 1,
}

/// One request or response. `ext_fields` hold the request's or reply's named fields as
/// strings (the 4.x C++ client reads reply fields only as JSON strings).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Command {
    /// Request code, or response code in a response.
    pub code: i32,
    pub language: String,
    pub version: i32,
    pub opaque: i32,
    pub flag: i32,
    pub remark: Option<String>,
    pub ext_fields: BTreeMap<String, String>,
    pub body: Bytes,
    /// How the header came, or is to go.
    pub serialize: SerializeType,
}

impl Command {
    pub fn is_response(&self) -> bool {
        self.flag & FLAG_RESPONSE != 0
    }

    pub fn is_oneway(&self) -> bool {
        self.flag & FLAG_ONEWAY != 0
    }

    /// A request (JSON header) with no fields yet.
    pub fn request(code: i32, opaque: i32) -> Self {
        Self {
            code,
            language: "JAVA".into(),
            version: 0,
            opaque,
            flag: 0,
            remark: None,
            ext_fields: BTreeMap::new(),
            body: Bytes::new(),
            serialize: SerializeType::Json,
        }
    }

    /// The response to `request` with `code` and `remark`: same opaque, header serialized as
    /// the request's was.
    pub fn response_to(request: &Command, code: i32, remark: Option<String>) -> Self {
        Self {
            code,
            language: "JAVA".into(),
            version: request.version,
            opaque: request.opaque,
            flag: FLAG_RESPONSE,
            remark,
            ext_fields: BTreeMap::new(),
            body: Bytes::new(),
            serialize: request.serialize,
        }
    }
}
