//! Stratum V1's JSON-RPC: one JSON object per line, three shapes.
//!
//! - A request: `{"id": 1, "method": "mining.subscribe", "params": [...]}`. Both sides send them
//!   (the server's `client.get_version` and `client.reconnect` carry ids too).
//! - A notification: a request whose `id` is `null` or absent (`mining.notify`,
//!   `mining.set_difficulty`, ...).
//! - A response: `{"id": 1, "result": ..., "error": null}`. SV1 errors are usually the legacy triple
//!   `[code, "message", data]`; objects `{"code", "message", "data"}` (JSON-RPC 2.0) and pairs are
//!   accepted too, and anything else non-null becomes an error with code 0 and its JSON as message.
//!
//! Parsing never panics: every line that is not one of these is an [`Sv1Error`] naming what is wrong.
//! Requests written here always have numeric ids (what SV1 servers such as SRI's expect).

use serde_json::{Map, Value};

/// Longest line accepted (a `mining.notify` with a large coinbase and a deep merkle branch is a few
/// tens of kilobytes).
pub const MAX_LINE: usize = 1 << 20;

/// Why a line is not an SV1 message, or its parameters are not what the method needs.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Sv1Error {
    #[error("not JSON: {0}")]
    Json(String),
    #[error("not a JSON object")]
    NotAnObject,
    #[error("neither a request (method) nor a response (result/error)")]
    NotJsonRpc,
    #[error("{field}: {reason}")]
    Field { field: &'static str, reason: String },
    #[error("line of {0} bytes exceeds the limit")]
    LineTooLong(usize),
}

impl Sv1Error {
    /// A refusal of one field (or parameter), with the reason.
    pub fn field(field: &'static str, reason: impl Into<String>) -> Self {
        Sv1Error::Field {
            field,
            reason: reason.into(),
        }
    }
}

/// A JSON-RPC id.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Id {
    Number(u64),
    /// A string id, or a number that is not a u64 (kept as its JSON text).
    Text(String),
    Null,
}

impl Id {
    fn from_value(v: Option<&Value>) -> Id {
        match v {
            None | Some(Value::Null) => Id::Null,
            Some(Value::Number(n)) => n
                .as_u64()
                .map(Id::Number)
                .unwrap_or_else(|| Id::Text(n.to_string())),
            Some(Value::String(s)) => Id::Text(s.clone()),
            Some(other) => Id::Text(other.to_string()),
        }
    }

    fn to_value(&self) -> Value {
        match self {
            Id::Number(n) => Value::from(*n),
            Id::Text(s) => Value::from(s.clone()),
            Id::Null => Value::Null,
        }
    }
}

/// An error of a response.
#[derive(Debug, Clone, PartialEq)]
pub struct RpcError {
    pub code: i64,
    pub message: String,
    pub data: Option<Value>,
}

impl RpcError {
    fn from_value(v: &Value) -> Option<RpcError> {
        match v {
            Value::Null => None,
            Value::Array(items) => Some(RpcError {
                code: items.first().and_then(Value::as_i64).unwrap_or(0),
                message: items
                    .get(1)
                    .map(|m| m.as_str().map_or_else(|| m.to_string(), str::to_owned))
                    .unwrap_or_default(),
                data: items.get(2).filter(|d| !d.is_null()).cloned(),
            }),
            Value::Object(o) => Some(RpcError {
                code: o.get("code").and_then(Value::as_i64).unwrap_or(0),
                message: o
                    .get("message")
                    .map(|m| m.as_str().map_or_else(|| m.to_string(), str::to_owned))
                    .unwrap_or_default(),
                data: o.get("data").filter(|d| !d.is_null()).cloned(),
            }),
            Value::String(s) => Some(RpcError {
                code: 0,
                message: s.clone(),
                data: None,
            }),
            other => Some(RpcError {
                code: 0,
                message: other.to_string(),
                data: None,
            }),
        }
    }

    /// The legacy triple `[code, message, data]`.
    fn to_value(&self) -> Value {
        Value::Array(vec![
            Value::from(self.code),
            Value::from(self.message.clone()),
            self.data.clone().unwrap_or(Value::Null),
        ])
    }
}

impl std::fmt::Display for RpcError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} ({})", self.message, self.code)
    }
}

/// One SV1 message.
#[derive(Debug, Clone, PartialEq)]
pub enum Sv1Message {
    /// A call that expects a response.
    Request {
        id: Id,
        method: String,
        params: Value,
    },
    /// A call without id.
    Notification { method: String, params: Value },
    /// The answer to a request.
    Response {
        id: Id,
        result: Value,
        error: Option<RpcError>,
    },
}

impl Sv1Message {
    /// A request with a numeric id and array params.
    pub fn request(id: u64, method: &str, params: Vec<Value>) -> Sv1Message {
        Sv1Message::Request {
            id: Id::Number(id),
            method: method.to_owned(),
            params: Value::Array(params),
        }
    }

    /// A notification with array params.
    pub fn notification(method: &str, params: Vec<Value>) -> Sv1Message {
        Sv1Message::Notification {
            method: method.to_owned(),
            params: Value::Array(params),
        }
    }

    /// A successful response.
    pub fn ok(id: Id, result: Value) -> Sv1Message {
        Sv1Message::Response {
            id,
            result,
            error: None,
        }
    }

    /// An error response (result null).
    pub fn error(id: Id, code: i64, message: &str) -> Sv1Message {
        Sv1Message::Response {
            id,
            result: Value::Null,
            error: Some(RpcError {
                code,
                message: message.to_owned(),
                data: None,
            }),
        }
    }

    /// The method of a request or notification.
    pub fn method(&self) -> Option<&str> {
        match self {
            Sv1Message::Request { method, .. } | Sv1Message::Notification { method, .. } => {
                Some(method)
            }
            Sv1Message::Response { .. } => None,
        }
    }

    /// Parses one line (without its newline; surrounding whitespace is ignored).
    pub fn parse(line: &str) -> Result<Sv1Message, Sv1Error> {
        if line.len() > MAX_LINE {
            return Err(Sv1Error::LineTooLong(line.len()));
        }
        let value: Value =
            serde_json::from_str(line.trim()).map_err(|e| Sv1Error::Json(e.to_string()))?;
        Self::from_value(value)
    }

    /// Classifies a parsed JSON value.
    pub fn from_value(value: Value) -> Result<Sv1Message, Sv1Error> {
        let Value::Object(mut o) = value else {
            return Err(Sv1Error::NotAnObject);
        };
        if let Some(method) = o.remove("method") {
            let Value::String(method) = method else {
                return Err(Sv1Error::field("method", "not a string"));
            };
            let params = o.remove("params").unwrap_or(Value::Array(Vec::new()));
            return Ok(match Id::from_value(o.get("id")) {
                Id::Null => Sv1Message::Notification { method, params },
                id => Sv1Message::Request { id, method, params },
            });
        }
        if o.contains_key("result") || o.contains_key("error") {
            let error = o.get("error").and_then(RpcError::from_value);
            return Ok(Sv1Message::Response {
                id: Id::from_value(o.get("id")),
                result: o.remove("result").unwrap_or(Value::Null),
                error,
            });
        }
        Err(Sv1Error::NotJsonRpc)
    }

    /// The JSON object.
    pub fn to_value(&self) -> Value {
        let mut o = Map::new();
        match self {
            Sv1Message::Request { id, method, params } => {
                o.insert("id".into(), id.to_value());
                o.insert("method".into(), Value::from(method.clone()));
                o.insert("params".into(), params.clone());
            }
            Sv1Message::Notification { method, params } => {
                o.insert("id".into(), Value::Null);
                o.insert("method".into(), Value::from(method.clone()));
                o.insert("params".into(), params.clone());
            }
            Sv1Message::Response { id, result, error } => {
                o.insert("id".into(), id.to_value());
                o.insert("result".into(), result.clone());
                o.insert(
                    "error".into(),
                    error.as_ref().map_or(Value::Null, RpcError::to_value),
                );
            }
        }
        Value::Object(o)
    }

    /// One line of compact JSON, without the newline.
    pub fn to_line(&self) -> String {
        self.to_value().to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn classifies_the_three_shapes() {
        let r =
            Sv1Message::parse(r#"{"id":3,"method":"mining.subscribe","params":["x"]}"#).unwrap();
        assert_eq!(
            r,
            Sv1Message::request(3, "mining.subscribe", vec![json!("x")])
        );
        let n = Sv1Message::parse(r#"{"id":null,"method":"mining.set_difficulty","params":[2]}"#)
            .unwrap();
        assert_eq!(
            n,
            Sv1Message::notification("mining.set_difficulty", vec![json!(2)])
        );
        let n = Sv1Message::parse(r#"{"method":"mining.notify"}"#).unwrap();
        assert_eq!(n.method(), Some("mining.notify"));
        let ok = Sv1Message::parse(r#" {"id":"a","result":true,"error":null} "#).unwrap();
        assert_eq!(ok, Sv1Message::ok(Id::Text("a".into()), json!(true)));
    }

    #[test]
    fn error_shapes() {
        let e = |s: &str| match Sv1Message::parse(s).unwrap() {
            Sv1Message::Response { error, .. } => error,
            other => panic!("{other:?}"),
        };
        assert_eq!(
            e(r#"{"id":1,"result":null,"error":[23,"Low difficulty share",null]}"#),
            Some(RpcError {
                code: 23,
                message: "Low difficulty share".into(),
                data: None
            })
        );
        assert_eq!(
            e(r#"{"id":1,"result":null,"error":{"code":-32601,"message":"nope","data":{"a":1}}}"#)
                .map(|e| (e.code, e.message, e.data)),
            Some((-32601, "nope".into(), Some(json!({"a":1}))))
        );
        assert_eq!(
            e(r#"{"id":1,"error":"boom"}"#).map(|e| (e.code, e.message)),
            Some((0, "boom".into()))
        );
        assert_eq!(e(r#"{"id":1,"result":false}"#), None);
    }

    #[test]
    fn garbage_is_a_typed_error() {
        assert!(matches!(Sv1Message::parse("hello"), Err(Sv1Error::Json(_))));
        assert_eq!(Sv1Message::parse("[1,2]"), Err(Sv1Error::NotAnObject));
        assert_eq!(Sv1Message::parse(r#"{"id":1}"#), Err(Sv1Error::NotJsonRpc));
        assert!(matches!(
            Sv1Message::parse(r#"{"id":1,"method":5}"#),
            Err(Sv1Error::Field {
                field: "method",
                ..
            })
        ));
        assert!(matches!(
            Sv1Message::parse(&"x".repeat(MAX_LINE + 1)),
            Err(Sv1Error::LineTooLong(_))
        ));
        // Odd ids survive.
        let m = Sv1Message::parse(r#"{"id":-5,"result":true}"#).unwrap();
        assert!(matches!(m, Sv1Message::Response { id: Id::Text(t), .. } if t == "-5"));
    }

    #[test]
    fn lines_round_trip() {
        for m in [
            Sv1Message::request(7, "mining.authorize", vec![json!("u"), json!("p")]),
            Sv1Message::notification("mining.set_version_mask", vec![json!("1fffe000")]),
            Sv1Message::ok(Id::Number(2), json!([1, "a"])),
            Sv1Message::error(Id::Number(4), 21, "Job not found"),
        ] {
            let line = m.to_line();
            assert!(!line.contains('\n'));
            assert_eq!(Sv1Message::parse(&line).unwrap(), m);
        }
        assert_eq!(
            Sv1Message::error(Id::Number(4), 21, "Job not found").to_line(),
            r#"{"id":4,"result":null,"error":[21,"Job not found",null]}"#
        );
    }
}
