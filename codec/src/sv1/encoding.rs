//! Stratum V1's field encodings and the typed parameters of the methods a miner uses.
//!
//! SV1 has no written byte-order rules; these are the conventions every deployed pool and miner
//! shares (slush's original pool, cgminer/bfgminer, ckpool, and SRI's `sv1_api`):
//!
//! - **prevhash** (`mining.notify` param 1): 64 hex digits. Take the 32 header bytes of the previous
//!   block hash (internal order, as in the header), cut them into 8 four-byte words, and reverse the
//!   bytes *within* each word; the word order stays. Equivalently: each word is the big-endian hex of
//!   the little-endian `u32` read from the header. (Neither the header bytes nor the display order.)
//! - **coinb1, coinb2, extranonce1, extranonce2**: plain hex of the bytes in serialization order. The
//!   coinbase is `coinb1 || extranonce1 || extranonce2 || coinb2`.
//! - **merkle_branch** entries: hex of the 32 bytes in internal order (as they are concatenated for
//!   hashing: `root = sha256d(root || branch[i])`), no reversal and no word swap.
//! - **version, nbits, ntime** (`mining.notify`) and **ntime, nonce, version_bits**
//!   (`mining.submit`): 8 hex digits, the big-endian hex of the `u32` value (`format!("{:08x}")`); the
//!   header stores each of them little-endian. The nonce is the `u32` whose little-endian bytes are
//!   the header's last four (cgminer reads the nonce word out of its byte-swapped work data, which
//!   yields the same big-endian hex of the value).
//! - **version_bits** (`mining.submit` param 5, BIP310): the rolled version ANDed with the negotiated
//!   mask; the server rebuilds `(job_version & !mask) | (version_bits & mask)`.
//! - **version-rolling.mask** (`mining.configure`, `mining.set_version_mask`): 8 hex digits of the
//!   `u32` value.
//! - **difficulty** (`mining.set_difficulty`): a JSON number; the share target is
//!   `0x00000000ffff0000...0000 / difficulty` (Bitcoin's difficulty-1 target, "bdiff"), computed by
//!   `sv2_chain::target::target_from_difficulty`.

use serde_json::{json, Value};

use super::json::Sv1Error;

/// The prevhash as `mining.notify` carries it, from header byte order.
pub fn prevhash_to_sv1(prev_hash: &[u8; 32]) -> String {
    let mut swapped = *prev_hash;
    for word in swapped.chunks_exact_mut(4) {
        word.reverse();
    }
    hex::encode(swapped)
}

/// The header byte order of a `mining.notify` prevhash.
pub fn prevhash_from_sv1(s: &str) -> Result<[u8; 32], Sv1Error> {
    let bytes = hex::decode(s).map_err(|e| Sv1Error::field("prevhash", e.to_string()))?;
    let mut out: [u8; 32] = bytes
        .try_into()
        .map_err(|b: Vec<u8>| Sv1Error::field("prevhash", format!("{} bytes, not 32", b.len())))?;
    for word in out.chunks_exact_mut(4) {
        word.reverse();
    }
    Ok(out)
}

/// A `u32` as SV1 writes it: 8 hex digits of the value, big-endian.
pub fn u32_to_hex(value: u32) -> String {
    format!("{value:08x}")
}

/// A `u32` from SV1 hex (1 to 8 digits, big-endian value; shorter forms are zero-padded on the left,
/// as some pools send them).
pub fn u32_from_hex(field: &'static str, s: &str) -> Result<u32, Sv1Error> {
    if s.is_empty() || s.len() > 8 || !s.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(Sv1Error::field(
            field,
            format!("{s:?} is not 1 to 8 hex digits"),
        ));
    }
    u32::from_str_radix(s, 16).map_err(|e| Sv1Error::field(field, e.to_string()))
}

fn str_param<'a>(params: &'a [Value], i: usize, field: &'static str) -> Result<&'a str, Sv1Error> {
    params
        .get(i)
        .ok_or_else(|| Sv1Error::field(field, "missing"))?
        .as_str()
        .ok_or_else(|| Sv1Error::field(field, "not a string"))
}

fn hex_param(
    params: &[Value],
    i: usize,
    field: &'static str,
    max: usize,
) -> Result<Vec<u8>, Sv1Error> {
    let s = str_param(params, i, field)?;
    if s.len() > 2 * max {
        return Err(Sv1Error::field(
            field,
            format!("{} hex digits, at most {}", s.len(), 2 * max),
        ));
    }
    hex::decode(s).map_err(|e| Sv1Error::field(field, e.to_string()))
}

fn array<'a>(params: &'a Value, what: &'static str) -> Result<&'a [Value], Sv1Error> {
    params
        .as_array()
        .map(Vec::as_slice)
        .ok_or_else(|| Sv1Error::field(what, "params are not an array"))
}

/// Most bytes accepted in coinb1 or coinb2.
pub const MAX_COINBASE_PART: usize = 100_000;
/// Most merkle branch entries accepted.
pub const MAX_BRANCH: usize = 64;

/// `mining.notify` parameters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Notify {
    pub job_id: String,
    /// Header byte order (decoded from SV1's word-swapped form).
    pub prev_hash: [u8; 32],
    pub coinb1: Vec<u8>,
    pub coinb2: Vec<u8>,
    /// Internal byte order.
    pub merkle_branch: Vec<[u8; 32]>,
    pub version: u32,
    pub nbits: u32,
    pub ntime: u32,
    pub clean_jobs: bool,
}

impl Notify {
    pub fn from_params(params: &Value) -> Result<Notify, Sv1Error> {
        let p = array(params, "mining.notify")?;
        if p.len() < 9 {
            return Err(Sv1Error::field(
                "mining.notify",
                format!("{} params, expected 9", p.len()),
            ));
        }
        let job_id = match &p[0] {
            Value::String(s) => s.clone(),
            // A few pools send numeric job ids; they are echoed back as text.
            Value::Number(n) => n.to_string(),
            _ => return Err(Sv1Error::field("job_id", "not a string")),
        };
        if job_id.len() > 256 {
            return Err(Sv1Error::field("job_id", "longer than 256 bytes"));
        }
        let branch = p[4]
            .as_array()
            .ok_or_else(|| Sv1Error::field("merkle_branch", "not an array"))?;
        if branch.len() > MAX_BRANCH {
            return Err(Sv1Error::field(
                "merkle_branch",
                format!("{} entries, at most {MAX_BRANCH}", branch.len()),
            ));
        }
        let merkle_branch = branch
            .iter()
            .map(|h| {
                let bytes = h
                    .as_str()
                    .ok_or_else(|| Sv1Error::field("merkle_branch", "entry not a string"))
                    .and_then(|s| {
                        hex::decode(s).map_err(|e| Sv1Error::field("merkle_branch", e.to_string()))
                    })?;
                <[u8; 32]>::try_from(bytes.as_slice())
                    .map_err(|_| Sv1Error::field("merkle_branch", "entry not 32 bytes"))
            })
            .collect::<Result<Vec<_>, _>>()?;
        let clean_jobs = match &p[8] {
            Value::Bool(b) => *b,
            _ => return Err(Sv1Error::field("clean_jobs", "not a boolean")),
        };
        Ok(Notify {
            job_id,
            prev_hash: prevhash_from_sv1(str_param(p, 1, "prevhash")?)?,
            coinb1: hex_param(p, 2, "coinb1", MAX_COINBASE_PART)?,
            coinb2: hex_param(p, 3, "coinb2", MAX_COINBASE_PART)?,
            merkle_branch,
            version: u32_from_hex("version", str_param(p, 5, "version")?)?,
            nbits: u32_from_hex("nbits", str_param(p, 6, "nbits")?)?,
            ntime: u32_from_hex("ntime", str_param(p, 7, "ntime")?)?,
            clean_jobs,
        })
    }

    pub fn to_params(&self) -> Vec<Value> {
        vec![
            json!(self.job_id),
            json!(prevhash_to_sv1(&self.prev_hash)),
            json!(hex::encode(&self.coinb1)),
            json!(hex::encode(&self.coinb2)),
            Value::Array(
                self.merkle_branch
                    .iter()
                    .map(|h| json!(hex::encode(h)))
                    .collect(),
            ),
            json!(u32_to_hex(self.version)),
            json!(u32_to_hex(self.nbits)),
            json!(u32_to_hex(self.ntime)),
            json!(self.clean_jobs),
        ]
    }
}

/// `mining.submit` parameters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Submit {
    pub worker: String,
    pub job_id: String,
    pub extranonce2: Vec<u8>,
    pub ntime: u32,
    pub nonce: u32,
    /// BIP310's version_bits (`version & mask`), when version rolling was negotiated.
    pub version_bits: Option<u32>,
}

impl Submit {
    pub fn to_params(&self) -> Vec<Value> {
        let mut p = vec![
            json!(self.worker),
            json!(self.job_id),
            json!(hex::encode(&self.extranonce2)),
            json!(u32_to_hex(self.ntime)),
            json!(u32_to_hex(self.nonce)),
        ];
        if let Some(bits) = self.version_bits {
            p.push(json!(u32_to_hex(bits)));
        }
        p
    }

    pub fn from_params(params: &Value) -> Result<Submit, Sv1Error> {
        let p = array(params, "mining.submit")?;
        if !(5..=6).contains(&p.len()) {
            return Err(Sv1Error::field(
                "mining.submit",
                format!("{} params, expected 5 or 6", p.len()),
            ));
        }
        Ok(Submit {
            worker: str_param(p, 0, "worker")?.to_owned(),
            job_id: str_param(p, 1, "job_id")?.to_owned(),
            extranonce2: hex_param(p, 2, "extranonce2", 32)?,
            ntime: u32_from_hex("ntime", str_param(p, 3, "ntime")?)?,
            nonce: u32_from_hex("nonce", str_param(p, 4, "nonce")?)?,
            version_bits: match p.get(5) {
                Some(v) => Some(u32_from_hex(
                    "version_bits",
                    v.as_str()
                        .ok_or_else(|| Sv1Error::field("version_bits", "not a string"))?,
                )?),
                None => None,
            },
        })
    }
}

/// The result of `mining.subscribe`: `[subscriptions, extranonce1, extranonce2_size]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Subscribed {
    pub extranonce1: Vec<u8>,
    pub extranonce2_size: usize,
}

impl Subscribed {
    pub fn from_result(result: &Value) -> Result<Subscribed, Sv1Error> {
        let r = result
            .as_array()
            .ok_or_else(|| Sv1Error::field("mining.subscribe result", "not an array"))?;
        let extranonce1 = hex_param(r, 1, "extranonce1", 32)?;
        let size = r
            .get(2)
            .and_then(Value::as_u64)
            .ok_or_else(|| Sv1Error::field("extranonce2_size", "not a non-negative integer"))?;
        let extranonce2_size = usize::try_from(size)
            .ok()
            .filter(|s| *s <= 32)
            .ok_or_else(|| Sv1Error::field("extranonce2_size", format!("{size} above 32")))?;
        Ok(Subscribed {
            extranonce1,
            extranonce2_size,
        })
    }

    pub fn to_result(&self, subscription_id: &str) -> Value {
        json!([
            [
                ["mining.set_difficulty", subscription_id],
                ["mining.notify", subscription_id]
            ],
            hex::encode(&self.extranonce1),
            self.extranonce2_size
        ])
    }
}

/// `mining.set_extranonce` parameters: `[extranonce1, extranonce2_size]`.
pub fn set_extranonce_from_params(params: &Value) -> Result<Subscribed, Sv1Error> {
    // Same shape as the subscribe result without the subscriptions.
    let p = array(params, "mining.set_extranonce")?;
    let mut shifted = vec![Value::Null];
    shifted.extend_from_slice(p);
    Subscribed::from_result(&Value::Array(shifted))
}

/// The version-rolling part of a `mining.configure` result: the mask the server granted, or `None`
/// when it refused (or did not answer the extension).
pub fn configure_mask(result: &Value) -> Result<Option<u32>, Sv1Error> {
    let Some(o) = result.as_object() else {
        return Err(Sv1Error::field("mining.configure result", "not an object"));
    };
    match o.get("version-rolling") {
        Some(Value::Bool(true)) => {
            let mask = o
                .get("version-rolling.mask")
                .and_then(Value::as_str)
                .ok_or_else(|| {
                    Sv1Error::field("version-rolling.mask", "missing or not a string")
                })?;
            Ok(Some(u32_from_hex("version-rolling.mask", mask)?))
        }
        Some(Value::Bool(false)) | None => Ok(None),
        Some(_) => Err(Sv1Error::field("version-rolling", "not a boolean")),
    }
}

/// The first parameter of `mining.set_difficulty`.
pub fn difficulty_from_params(params: &Value) -> Result<f64, Sv1Error> {
    let d = array(params, "mining.set_difficulty")?
        .first()
        .and_then(Value::as_f64)
        .ok_or_else(|| Sv1Error::field("difficulty", "not a number"))?;
    if d.is_finite() && d > 0.0 {
        Ok(d)
    } else {
        Err(Sv1Error::field(
            "difficulty",
            format!("{d} is not positive"),
        ))
    }
}

/// The first parameter of `mining.set_version_mask`.
pub fn version_mask_from_params(params: &Value) -> Result<u32, Sv1Error> {
    let p = array(params, "mining.set_version_mask")?;
    u32_from_hex("version mask", str_param(p, 0, "version mask")?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prevhash_words_are_byte_swapped_in_place() {
        let mut header_order = [0u8; 32];
        for (i, b) in header_order.iter_mut().enumerate() {
            *b = i as u8;
        }
        let s = prevhash_to_sv1(&header_order);
        assert_eq!(
            s,
            "03020100070605040b0a09080f0e0d0c13121110171615141b1a19181f1e1d1c"
        );
        assert_eq!(prevhash_from_sv1(&s).unwrap(), header_order);
        assert!(prevhash_from_sv1("00").is_err());
        assert!(prevhash_from_sv1(&"zz".repeat(32)).is_err());
    }

    #[test]
    fn u32_hex_is_the_big_endian_value() {
        assert_eq!(u32_to_hex(0x2000_0000), "20000000");
        assert_eq!(u32_to_hex(1), "00000001");
        assert_eq!(u32_from_hex("x", "1d00ffff").unwrap(), 0x1d00_ffff);
        assert_eq!(u32_from_hex("x", "ff").unwrap(), 0xff);
        for bad in ["", "123456789", "0x12", "12 4", "-1", "+1"] {
            assert!(u32_from_hex("x", bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn notify_and_submit_round_trip() {
        let n = Notify {
            job_id: "1a".into(),
            prev_hash: [7; 32],
            coinb1: vec![1, 2],
            coinb2: vec![3],
            merkle_branch: vec![[9; 32]],
            version: 0x2000_0000,
            nbits: 0x1d00_ffff,
            ntime: 0x6553_0000,
            clean_jobs: true,
        };
        assert_eq!(
            Notify::from_params(&Value::Array(n.to_params())).unwrap(),
            n
        );
        let s = Submit {
            worker: "w".into(),
            job_id: "1a".into(),
            extranonce2: vec![0, 0, 0, 1],
            ntime: 0x6553_0000,
            nonce: 0xdead_beef,
            version_bits: Some(0x0000_2000),
        };
        let p = s.to_params();
        assert_eq!(
            Value::Array(p.clone()),
            json!(["w", "1a", "00000001", "65530000", "deadbeef", "00002000"])
        );
        assert_eq!(Submit::from_params(&Value::Array(p)).unwrap(), s);
    }

    #[test]
    fn malformed_params_are_typed_errors() {
        let good = json!([
            "j",
            "00".repeat(32),
            "01",
            "02",
            [],
            "20000000",
            "1d00ffff",
            "65530000",
            false
        ]);
        assert!(Notify::from_params(&good).is_ok());
        let mut bad = good.clone();
        bad[4] = json!(["00"]);
        assert!(Notify::from_params(&bad).is_err());
        let mut bad = good.clone();
        bad[8] = json!("yes");
        assert!(Notify::from_params(&bad).is_err());
        assert!(Notify::from_params(&json!({"a": 1})).is_err());
        assert!(Notify::from_params(&json!(["j"])).is_err());
        assert!(Subscribed::from_result(&json!([[], "ab", 40])).is_err());
        assert!(Subscribed::from_result(&json!([[], "ab", -1])).is_err());
        assert_eq!(
            Subscribed::from_result(&json!([[["mining.notify", "x"]], "abcd", 4])).unwrap(),
            Subscribed {
                extranonce1: vec![0xab, 0xcd],
                extranonce2_size: 4
            }
        );
        assert_eq!(
            configure_mask(&json!({"version-rolling": true, "version-rolling.mask": "1fffe000"})),
            Ok(Some(0x1fff_e000))
        );
        assert_eq!(configure_mask(&json!({"version-rolling": false})), Ok(None));
        assert!(configure_mask(&json!({"version-rolling": true})).is_err());
        assert!(difficulty_from_params(&json!([0])).is_err());
        assert!(difficulty_from_params(&json!(["1"])).is_err());
        assert_eq!(difficulty_from_params(&json!([0.5])), Ok(0.5));
        assert_eq!(
            version_mask_from_params(&json!(["00fff000"])),
            Ok(0x00ff_f000)
        );
        assert_eq!(
            set_extranonce_from_params(&json!(["0102", 2])).unwrap(),
            Subscribed {
                extranonce1: vec![1, 2],
                extranonce2_size: 2
            }
        );
    }
}
