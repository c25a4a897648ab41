//! The pprof wire format: our own message definitions, decoded and
//! encoded by `prost`'s derive (no `.proto` file, no build script).
//!
//! Field numbers are those of `perftools.profiles` in google/pprof's
//! `proto/profile.proto`, which Go's `runtime/pprof` writes by hand
//! (`runtime/pprof/proto.go`, its `tag*` constants). Every string in a
//! profile is an index into `string_table`, whose entry 0 is `""`.
//!
//! The top-level [`Profile`] is never decoded by `prost` in one piece: a
//! profile can hold millions of samples, so [`split`] walks its fields
//! once (varint keys and lengths only), counts them against the limits
//! before anything is allocated, and hands back the byte ranges of each
//! repeated message. Samples are then decoded in parallel, one message at
//! a time, into flat arrays (`crate::decode`).

use prost::Message;

/// `ValueType`: what a sample value measures (`cpu`/`nanoseconds`,
/// `alloc_objects`/`count`).
#[derive(Clone, PartialEq, Message)]
pub struct ValueType {
    #[prost(int64, tag = "1")]
    pub r#type: i64,
    #[prost(int64, tag = "2")]
    pub unit: i64,
}

/// `Sample`: a stack (location ids, leaf first) and its values.
#[derive(Clone, PartialEq, Message)]
pub struct Sample {
    #[prost(uint64, repeated, tag = "1")]
    pub location_id: Vec<u64>,
    #[prost(int64, repeated, tag = "2")]
    pub value: Vec<i64>,
    #[prost(message, repeated, tag = "3")]
    pub label: Vec<Label>,
}

/// `Sample` without its labels (prost skips them as unknown fields):
/// what attribution reads, without a vector per label.
#[derive(Clone, PartialEq, Message)]
pub struct SampleStack {
    #[prost(uint64, repeated, tag = "1")]
    pub location_id: Vec<u64>,
    #[prost(int64, repeated, tag = "2")]
    pub value: Vec<i64>,
}

/// `Label`: a key with a string or numeric value.
#[derive(Clone, PartialEq, Message)]
pub struct Label {
    #[prost(int64, tag = "1")]
    pub key: i64,
    #[prost(int64, tag = "2")]
    pub str: i64,
    #[prost(int64, tag = "3")]
    pub num: i64,
    #[prost(int64, tag = "4")]
    pub num_unit: i64,
}

/// `Mapping`: an object file mapped at `[memory_start, memory_limit)`
/// from `file_offset`.
#[derive(Clone, PartialEq, Message)]
pub struct Mapping {
    #[prost(uint64, tag = "1")]
    pub id: u64,
    #[prost(uint64, tag = "2")]
    pub memory_start: u64,
    #[prost(uint64, tag = "3")]
    pub memory_limit: u64,
    #[prost(uint64, tag = "4")]
    pub file_offset: u64,
    #[prost(int64, tag = "5")]
    pub filename: i64,
    #[prost(int64, tag = "6")]
    pub build_id: i64,
    #[prost(bool, tag = "7")]
    pub has_functions: bool,
    #[prost(bool, tag = "8")]
    pub has_filenames: bool,
    #[prost(bool, tag = "9")]
    pub has_line_numbers: bool,
    #[prost(bool, tag = "10")]
    pub has_inline_frames: bool,
}

/// `Location`: one address, with the (inlined) functions at it, innermost
/// first.
#[derive(Clone, PartialEq, Message)]
pub struct Location {
    #[prost(uint64, tag = "1")]
    pub id: u64,
    #[prost(uint64, tag = "2")]
    pub mapping_id: u64,
    #[prost(uint64, tag = "3")]
    pub address: u64,
    #[prost(message, repeated, tag = "4")]
    pub line: Vec<Line>,
    #[prost(bool, tag = "5")]
    pub is_folded: bool,
}

/// `Line`: a function and a source line.
#[derive(Clone, PartialEq, Message)]
pub struct Line {
    #[prost(uint64, tag = "1")]
    pub function_id: u64,
    #[prost(int64, tag = "2")]
    pub line: i64,
    #[prost(int64, tag = "3")]
    pub column: i64,
}

/// `Function`: names and file, as string table indices.
#[derive(Clone, PartialEq, Message)]
pub struct Function {
    #[prost(uint64, tag = "1")]
    pub id: u64,
    #[prost(int64, tag = "2")]
    pub name: i64,
    #[prost(int64, tag = "3")]
    pub system_name: i64,
    #[prost(int64, tag = "4")]
    pub filename: i64,
    #[prost(int64, tag = "5")]
    pub start_line: i64,
}

/// The scalar fields of `Profile` and the string table; its repeated
/// messages are kept as byte ranges by [`split`]. Only used to encode
/// (the `--format pprof` writer), where everything is in memory anyway.
#[derive(Clone, PartialEq, Message)]
pub struct Profile {
    #[prost(message, repeated, tag = "1")]
    pub sample_type: Vec<ValueType>,
    #[prost(message, repeated, tag = "2")]
    pub sample: Vec<Sample>,
    #[prost(message, repeated, tag = "3")]
    pub mapping: Vec<Mapping>,
    #[prost(message, repeated, tag = "4")]
    pub location: Vec<Location>,
    #[prost(message, repeated, tag = "5")]
    pub function: Vec<Function>,
    #[prost(string, repeated, tag = "6")]
    pub string_table: Vec<String>,
    #[prost(int64, tag = "7")]
    pub drop_frames: i64,
    #[prost(int64, tag = "8")]
    pub keep_frames: i64,
    #[prost(int64, tag = "9")]
    pub time_nanos: i64,
    #[prost(int64, tag = "10")]
    pub duration_nanos: i64,
    #[prost(message, optional, tag = "11")]
    pub period_type: Option<ValueType>,
    #[prost(int64, tag = "12")]
    pub period: i64,
    #[prost(int64, repeated, tag = "13")]
    pub comment: Vec<i64>,
    #[prost(int64, tag = "14")]
    pub default_sample_type: i64,
}

/// Field numbers of `Profile`.
pub mod tag {
    pub const SAMPLE_TYPE: u32 = 1;
    pub const SAMPLE: u32 = 2;
    pub const MAPPING: u32 = 3;
    pub const LOCATION: u32 = 4;
    pub const FUNCTION: u32 = 5;
    pub const STRING_TABLE: u32 = 6;
    pub const TIME_NANOS: u32 = 9;
    pub const DURATION_NANOS: u32 = 10;
    pub const PERIOD_TYPE: u32 = 11;
    pub const PERIOD: u32 = 12;
    pub const DEFAULT_SAMPLE_TYPE: u32 = 14;
}

/// Why bytes are not a profile.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum WireError {
    #[error("not a protocol buffer (bad field key at byte {0})")]
    BadKey(usize),
    #[error("truncated (a field at byte {0} runs past the end)")]
    Truncated(usize),
    #[error("a varint at byte {0} is longer than 10 bytes")]
    LongVarint(usize),
    #[error("unsupported wire type {1} at byte {0}")]
    WireType(usize, u8),
    #[error("too many {0} ({1}, at most {2})")]
    TooMany(&'static str, u64, u64),
    #[error("damaged {0} message: {1}")]
    Message(&'static str, String),
}

/// Read a varint at `*at`, advancing it.
pub fn varint(b: &[u8], at: &mut usize) -> Result<u64, WireError> {
    let start = *at;
    let mut v = 0u64;
    for i in 0..10 {
        let Some(&c) = b.get(*at) else {
            return Err(WireError::Truncated(start));
        };
        *at += 1;
        v |= u64::from(c & 0x7f) << (7 * i);
        if c & 0x80 == 0 {
            return Ok(v);
        }
    }
    Err(WireError::LongVarint(start))
}

/// The top-level fields of a profile, as ranges of the input.
#[derive(Clone, Debug, Default)]
pub struct Parts {
    pub sample_type: Vec<std::ops::Range<usize>>,
    pub sample: Vec<std::ops::Range<usize>>,
    pub mapping: Vec<std::ops::Range<usize>>,
    pub location: Vec<std::ops::Range<usize>>,
    pub function: Vec<std::ops::Range<usize>>,
    pub string_table: Vec<std::ops::Range<usize>>,
    pub period_type: Option<std::ops::Range<usize>>,
    pub period: i64,
    pub time_nanos: i64,
    pub duration_nanos: i64,
    pub default_sample_type: i64,
}

/// Most entries of any one repeated field: far above any real profile
/// (a 10^6-sample profile has 10^6), and a bound on what the ranges
/// alone cost (16 bytes each).
pub const MAX_ENTRIES: u64 = 1 << 26;

/// Walk the top-level fields of `b`. Every length is checked against the
/// bytes left before it is used, and the number of entries of each
/// repeated field is counted in a first pass and bounded by
/// [`MAX_ENTRIES`] before any vector is allocated.
pub fn split(b: &[u8]) -> Result<Parts, WireError> {
    let mut counts = [0u64; 16];
    walk(b, |field, _| {
        if let Some(c) = counts.get_mut(field as usize) {
            *c += 1;
        }
        Ok(())
    })?;
    let names = [
        (tag::SAMPLE_TYPE, "sample types"),
        (tag::SAMPLE, "samples"),
        (tag::MAPPING, "mappings"),
        (tag::LOCATION, "locations"),
        (tag::FUNCTION, "functions"),
        (tag::STRING_TABLE, "strings"),
    ];
    for (t, name) in names {
        if counts[t as usize] > MAX_ENTRIES {
            return Err(WireError::TooMany(name, counts[t as usize], MAX_ENTRIES));
        }
    }
    let cap = |t: u32| counts[t as usize] as usize;
    let mut p = Parts {
        sample_type: Vec::with_capacity(cap(tag::SAMPLE_TYPE)),
        sample: Vec::with_capacity(cap(tag::SAMPLE)),
        mapping: Vec::with_capacity(cap(tag::MAPPING)),
        location: Vec::with_capacity(cap(tag::LOCATION)),
        function: Vec::with_capacity(cap(tag::FUNCTION)),
        string_table: Vec::with_capacity(cap(tag::STRING_TABLE)),
        ..Parts::default()
    };
    walk(b, |field, v| {
        match (field, v) {
            (tag::SAMPLE_TYPE, Field::Bytes(r)) => p.sample_type.push(r),
            (tag::SAMPLE, Field::Bytes(r)) => p.sample.push(r),
            (tag::MAPPING, Field::Bytes(r)) => p.mapping.push(r),
            (tag::LOCATION, Field::Bytes(r)) => p.location.push(r),
            (tag::FUNCTION, Field::Bytes(r)) => p.function.push(r),
            (tag::STRING_TABLE, Field::Bytes(r)) => p.string_table.push(r),
            (tag::PERIOD_TYPE, Field::Bytes(r)) => p.period_type = Some(r),
            (tag::PERIOD, Field::Varint(v)) => p.period = v as i64,
            (tag::TIME_NANOS, Field::Varint(v)) => p.time_nanos = v as i64,
            (tag::DURATION_NANOS, Field::Varint(v)) => p.duration_nanos = v as i64,
            (tag::DEFAULT_SAMPLE_TYPE, Field::Varint(v)) => p.default_sample_type = v as i64,
            (
                tag::SAMPLE_TYPE
                | tag::SAMPLE
                | tag::MAPPING
                | tag::LOCATION
                | tag::FUNCTION
                | tag::STRING_TABLE
                | tag::PERIOD_TYPE,
                _,
            ) => {
                return Err(WireError::Message(
                    "profile",
                    format!("field {field} is not length-delimited"),
                ))
            }
            _ => {}
        }
        Ok(())
    })?;
    Ok(p)
}

/// One top-level field's value.
enum Field {
    Varint(u64),
    Bytes(std::ops::Range<usize>),
    Other,
}

/// Call `f(field number, value)` for every field of the message `b`.
fn walk(b: &[u8], mut f: impl FnMut(u32, Field) -> Result<(), WireError>) -> Result<(), WireError> {
    let mut at = 0usize;
    while at < b.len() {
        let key_at = at;
        let key = varint(b, &mut at)?;
        let field = key >> 3;
        if field == 0 || field > u64::from(u32::MAX >> 3) {
            return Err(WireError::BadKey(key_at));
        }
        let field = field as u32;
        let value = match (key & 7) as u8 {
            0 => Field::Varint(varint(b, &mut at)?),
            1 => {
                at = at
                    .checked_add(8)
                    .filter(|&e| e <= b.len())
                    .ok_or(WireError::Truncated(key_at))?;
                Field::Other
            }
            2 => {
                let n = varint(b, &mut at)?;
                let end = usize::try_from(n)
                    .ok()
                    .and_then(|n| at.checked_add(n))
                    .filter(|&e| e <= b.len())
                    .ok_or(WireError::Truncated(key_at))?;
                let r = at..end;
                at = end;
                Field::Bytes(r)
            }
            5 => {
                at = at
                    .checked_add(4)
                    .filter(|&e| e <= b.len())
                    .ok_or(WireError::Truncated(key_at))?;
                Field::Other
            }
            w => return Err(WireError::WireType(key_at, w)),
        };
        f(field, value)?;
    }
    Ok(())
}

/// Decode one message of type `M` from `b[r]`, naming it `what` in the
/// error.
pub fn one<M: Message + Default>(
    b: &[u8],
    r: &std::ops::Range<usize>,
    what: &'static str,
) -> Result<M, WireError> {
    M::decode(&b[r.clone()]).map_err(|e| WireError::Message(what, e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_split() {
        let p = Profile {
            sample_type: vec![ValueType { r#type: 1, unit: 2 }],
            sample: vec![Sample {
                location_id: vec![1, 2],
                value: vec![5],
                label: vec![],
            }],
            string_table: vec!["".into(), "samples".into(), "count".into()],
            period: 7,
            ..Profile::default()
        };
        let b = p.encode_to_vec();
        let parts = split(&b).unwrap();
        assert_eq!(parts.sample.len(), 1);
        assert_eq!(parts.string_table.len(), 3);
        assert_eq!(parts.period, 7);
        let s: Sample = one(&b, &parts.sample[0], "sample").unwrap();
        assert_eq!(s.location_id, vec![1, 2]);
    }

    #[test]
    fn rejects_truncation_and_garbage() {
        let p = Profile {
            string_table: vec!["".into(), "x".repeat(100)],
            ..Profile::default()
        };
        let b = p.encode_to_vec();
        for n in 1..b.len() {
            // Every strict prefix that cuts a field is an error, never a
            // panic; a prefix ending on a field boundary is a (shorter)
            // valid message.
            let _ = split(&b[..n]);
        }
        assert!(matches!(
            split(&b[..b.len() - 1]),
            Err(WireError::Truncated(_))
        ));
        assert!(split(b"\x00\x01").is_err());
        assert!(split(&[0xff; 12]).is_err());
    }
}
