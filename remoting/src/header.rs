//! A command's header in its two serializations: JSON and the ROCKETMQ binary layout.

use std::collections::BTreeMap;

use bytes::{Buf, BufMut, Bytes};
use serde_json::{Map, Value};

use crate::command::{Command, SerializeType};
use crate::error::{Error, Result};

/// Language codes of the binary header, by position.
const LANGUAGES: [&str; 13] = [
    "JAVA", "CPP", "DOTNET", "PYTHON", "DELPHI", "ERLANG", "RUBY", "OTHER", "HTTP", "GO", "PHP", "OMS", "RUST",
];

/// Decodes a header; the command's body is left empty.
pub(crate) fn decode(serialize: SerializeType, header: &[u8]) -> Result<Command> {
    match serialize {
        SerializeType::Json => decode_json(header),
        SerializeType::RocketMq => decode_binary(header),
    }
}

pub(crate) fn encode(c: &Command) -> Vec<u8> {
    match c.serialize {
        SerializeType::Json => encode_json(c),
        SerializeType::RocketMq => encode_binary(c),
    }
}

fn decode_json(header: &[u8]) -> Result<Command> {
    let v: Map<String, Value> = serde_json::from_slice(header)?;
    let int = |k: &str| -> Result<i32> {
        match v.get(k) {
            None | Some(Value::Null) => Ok(0),
            Some(n) => n
                .as_i64()
                .and_then(|n| i32::try_from(n).ok())
                .ok_or(Error::Header("a numeric field is not a 32-bit integer")),
        }
    };
    // Clients send some fields as JSON numbers (queueId, sysFlag…), the rest as strings.
    let mut ext_fields = BTreeMap::new();
    if let Some(fields) = v.get("extFields") {
        let fields = match fields {
            Value::Object(f) => f,
            Value::Null => &Map::new(),
            _ => return Err(Error::Header("extFields is not an object")),
        };
        for (k, value) in fields {
            let text = match value {
                Value::String(s) => s.clone(),
                Value::Number(n) => n.to_string(),
                Value::Bool(b) => b.to_string(),
                Value::Null => continue,
                _ => return Err(Error::Header("an extFields value is not a scalar")),
            };
            ext_fields.insert(k.clone(), text);
        }
    }
    Ok(Command {
        code: int("code")?,
        language: v.get("language").and_then(Value::as_str).unwrap_or("OTHER").to_string(),
        version: int("version")?,
        opaque: int("opaque")?,
        flag: int("flag")?,
        remark: v.get("remark").and_then(Value::as_str).map(str::to_string),
        ext_fields,
        body: Bytes::new(),
        serialize: SerializeType::Json,
    })
}

/// Every ext field as a JSON string.
fn encode_json(c: &Command) -> Vec<u8> {
    let fields: Map<String, Value> = c
        .ext_fields
        .iter()
        .map(|(k, v)| (k.clone(), Value::String(v.clone())))
        .collect();
    let mut m = Map::new();
    m.insert("code".into(), c.code.into());
    m.insert("language".into(), c.language.clone().into());
    m.insert("version".into(), c.version.into());
    m.insert("opaque".into(), c.opaque.into());
    m.insert("flag".into(), c.flag.into());
    if let Some(r) = &c.remark {
        m.insert("remark".into(), r.clone().into());
    }
    m.insert("extFields".into(), Value::Object(fields));
    m.insert("serializeTypeCurrentRPC".into(), "JSON".into());
    Value::Object(m).to_string().into_bytes()
}

fn decode_binary(mut h: &[u8]) -> Result<Command> {
    fn need(h: &[u8], n: usize) -> Result<()> {
        if h.remaining() < n {
            return Err(Error::Header("binary header cut short"));
        }
        Ok(())
    }
    fn text(h: &mut &[u8], len: usize) -> Result<String> {
        need(h, len)?;
        let s = String::from_utf8(h[..len].to_vec()).map_err(|_| Error::Header("binary header text is not UTF-8"))?;
        h.advance(len);
        Ok(s)
    }
    fn len(n: i32) -> Result<usize> {
        usize::try_from(n).map_err(|_| Error::Header("negative length in binary header"))
    }
    need(h, 2 + 1 + 2 + 4 + 4 + 4)?;
    let code = i32::from(h.get_i16());
    let language = LANGUAGES
        .get(usize::from(h.get_u8()))
        .copied()
        .unwrap_or("OTHER")
        .to_string();
    let version = i32::from(h.get_i16());
    let opaque = h.get_i32();
    let flag = h.get_i32();
    let remark_len = len(h.get_i32())?;
    let remark = if remark_len > 0 {
        Some(text(&mut h, remark_len)?)
    } else {
        None
    };
    need(h, 4)?;
    let fields_len = len(h.get_i32())?;
    need(h, fields_len)?;
    let (mut fields, rest) = h.split_at(fields_len);
    if !rest.is_empty() {
        return Err(Error::Header("bytes after the binary header's fields"));
    }
    let mut ext_fields = BTreeMap::new();
    while fields.has_remaining() {
        need(fields, 2)?;
        let k_len = len(i32::from(fields.get_i16()))?;
        let key = text(&mut fields, k_len)?;
        need(fields, 4)?;
        let v_len = len(fields.get_i32())?;
        ext_fields.insert(key, text(&mut fields, v_len)?);
    }
    Ok(Command {
        code,
        language,
        version,
        opaque,
        flag,
        remark,
        ext_fields,
        body: Bytes::new(),
        serialize: SerializeType::RocketMq,
    })
}

fn encode_binary(c: &Command) -> Vec<u8> {
    let mut out = Vec::new();
    // Codes and versions fit 16 bits in this layout; larger ones are cut as Apache's encoder does.
    out.put_i16(c.code as i16);
    out.put_u8(LANGUAGES.iter().position(|l| *l == c.language).unwrap_or(7) as u8);
    out.put_i16(c.version as i16);
    out.put_i32(c.opaque);
    out.put_i32(c.flag);
    let remark = c.remark.as_deref().unwrap_or("").as_bytes();
    out.put_i32(remark.len() as i32);
    out.put_slice(remark);
    let mut fields = Vec::new();
    for (k, v) in &c.ext_fields {
        fields.put_i16(k.len() as i16);
        fields.put_slice(k.as_bytes());
        fields.put_i32(v.len() as i32);
        fields.put_slice(v.as_bytes());
    }
    out.put_i32(fields.len() as i32);
    out.put_slice(&fields);
    out
}
