//! Reading a profile file: gzip or not, bounded, validated, into flat
//! arrays.
//!
//! - The file is read whole (at most [`MAX_FILE`] bytes); gzip input
//!   (`1f 8b`, what `runtime/pprof` writes) is inflated at once by
//!   libdeflate when it is one member ([`crate::gunzip`]), else streamed
//!   through `flate2`, into at most [`MAX_INFLATED`] bytes, so a gzip bomb ends
//!   in an error, not in an out-of-memory kill.
//! - [`crate::pb::split`] walks the top-level fields and bounds their
//!   counts before anything is allocated.
//! - Samples are decoded in parallel (rayon, in chunks) into one array of
//!   values and one array of location indices with per-sample offsets:
//!   no vector per sample is kept. Location ids are turned into indices
//!   once, through a table.
//! - Everything a later stage indexes is checked here: each sample has
//!   one value per sample type, every location id and mapping id exists,
//!   every string index is in the table. A profile with no sample is an
//!   error ("empty"), and so is anything whose fields are not a profile's.

use std::collections::HashMap;
use std::io::Read;
use std::path::Path;

use prost::Message;
use rayon::prelude::*;

use crate::pb::{self, WireError};
use crate::ProfileError;

/// Largest profile file read.
pub const MAX_FILE: u64 = 1 << 30;
/// Largest profile after inflating.
pub const MAX_INFLATED: u64 = 2 << 30;

/// A sample type: what the values of one column measure.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ValueType {
    pub r#type: String,
    pub unit: String,
}

/// One decoded profile.
#[derive(Clone, Debug, Default)]
pub struct Decoded {
    /// The file it came from (shown in messages).
    pub path: String,
    pub strings: Vec<String>,
    pub sample_types: Vec<ValueType>,
    pub default_sample_type: Option<String>,
    pub period_type: Option<ValueType>,
    pub period: i64,
    pub time_nanos: i64,
    pub duration_nanos: i64,
    pub mappings: Vec<pb::Mapping>,
    pub locations: Vec<pb::Location>,
    pub functions: Vec<pb::Function>,
    /// Index of each location's mapping in `mappings`, if it has one.
    pub loc_mapping: Vec<Option<u32>>,
    /// Values: `sample_types.len()` per sample, sample after sample.
    pub values: Vec<i64>,
    /// Sample `i`'s stack is `stack[starts[i]..starts[i + 1]]`: location
    /// indices, leaf first.
    pub starts: Vec<u32>,
    pub stack: Vec<u32>,
    /// Labels of the samples that have any: (sample index, label).
    pub labels: Vec<(u32, pb::Label)>,
}

impl Decoded {
    /// Number of samples.
    pub fn len(&self) -> usize {
        self.starts.len().saturating_sub(1)
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Sample `i`'s location indices, leaf first.
    pub fn stack(&self, i: usize) -> &[u32] {
        &self.stack[self.starts[i] as usize..self.starts[i + 1] as usize]
    }

    /// Sample `i`'s value in column `col`.
    pub fn value(&self, i: usize, col: usize) -> i64 {
        self.values[i * self.sample_types.len() + col]
    }

    /// String `i` of the table ("" when out of range: checked at decode
    /// time for every index the profile uses).
    pub fn string(&self, i: i64) -> &str {
        usize::try_from(i)
            .ok()
            .and_then(|i| self.strings.get(i))
            .map_or("", String::as_str)
    }
}

/// Read and decode the profile at `path`, without the samples' labels
/// (see [`read_with`]).
pub fn read(path: &Path) -> Result<Decoded, ProfileError> {
    read_with(path, false)
}

/// Read and decode the profile at `path`; `labels`: keep the samples'
/// labels (only the pprof writer needs them).
pub fn read_with(path: &Path, labels: bool) -> Result<Decoded, ProfileError> {
    let shown = path.display().to_string();
    let err = |why: String| ProfileError::Profile(shown.clone(), why);
    let meta = std::fs::metadata(path).map_err(|e| err(e.to_string()))?;
    if meta.is_dir() {
        return Err(err("is a directory".into()));
    }
    if meta.len() > MAX_FILE {
        return Err(err(format!(
            "{} bytes: larger than the {MAX_FILE}-byte limit",
            meta.len()
        )));
    }
    let raw = std::fs::read(path).map_err(|e| err(e.to_string()))?;
    decode_with(&shown, &raw, labels)
}

/// Decode profile bytes (gzipped or not), labels included; `path` names
/// them in errors.
pub fn decode(path: &str, raw: &[u8]) -> Result<Decoded, ProfileError> {
    decode_with(path, raw, true)
}

/// [`decode`], keeping the samples' labels or not.
pub fn decode_with(path: &str, raw: &[u8], labels: bool) -> Result<Decoded, ProfileError> {
    let err = |why: String| ProfileError::Profile(path.to_owned(), why);
    if raw.is_empty() {
        return Err(err("empty file".into()));
    }
    let inflated;
    let bytes: &[u8] = if raw.starts_with(&[0x1f, 0x8b]) {
        inflated = inflate(raw).map_err(err)?;
        &inflated
    } else {
        raw
    };
    let mut d = decode_bytes(bytes, labels).map_err(|e| match e {
        Bad::Wire(w) => err(format!("not a pprof profile: {w}")),
        Bad::Why(s) => err(s),
    })?;
    d.path = path.to_owned();
    Ok(d)
}

fn inflate(raw: &[u8]) -> Result<Vec<u8>, String> {
    // The gzip trailer's ISIZE: the inflated size modulo 2^32, exact for
    // one member of at most MAX_INFLATED (< 4 GiB) bytes.
    let hint = raw
        .len()
        .checked_sub(4)
        .and_then(|i| raw.get(i..))
        .map_or(0, |t| u32::from_le_bytes([t[0], t[1], t[2], t[3]]) as usize);
    // One member whose size the trailer gives: inflated at once.
    if hint > 0 && hint as u64 <= MAX_INFLATED {
        if let Some(out) = crate::gunzip::one_member(raw, hint) {
            return Ok(out);
        }
    }
    let mut out = Vec::with_capacity(hint.min(MAX_INFLATED as usize));
    let mut gz = flate2::read::MultiGzDecoder::new(raw).take(MAX_INFLATED + 1);
    gz.read_to_end(&mut out)
        .map_err(|e| format!("bad gzip data: {e}"))?;
    if out.len() as u64 > MAX_INFLATED {
        return Err(format!(
            "inflates to more than {MAX_INFLATED} bytes; not read"
        ));
    }
    Ok(out)
}

enum Bad {
    Wire(WireError),
    Why(String),
}

impl From<WireError> for Bad {
    fn from(w: WireError) -> Bad {
        Bad::Wire(w)
    }
}

/// Samples decoded per rayon task.
const CHUNK: usize = 4096;

fn decode_bytes(b: &[u8], labels: bool) -> Result<Decoded, Bad> {
    let parts = pb::split(b)?;
    let strings: Vec<String> = parts
        .string_table
        .iter()
        .map(|r| String::from_utf8_lossy(&b[r.clone()]).into_owned())
        .collect();
    if strings.first().map(String::as_str) != Some("") || parts.sample_type.is_empty() {
        return Err(Bad::Why(
            "not a pprof profile (no string table starting with \"\", or no sample type)".into(),
        ));
    }
    let nstr = strings.len() as i64;
    let check_str = |i: i64, what: &str| -> Result<(), Bad> {
        if (0..nstr).contains(&i) {
            Ok(())
        } else {
            Err(Bad::Why(format!(
                "damaged profile: {what} names string {i} of {nstr}"
            )))
        }
    };
    let value_type = |r: &std::ops::Range<usize>, what: &'static str| -> Result<ValueType, Bad> {
        let v: pb::ValueType = pb::one(b, r, what)?;
        check_str(v.r#type, what)?;
        check_str(v.unit, what)?;
        Ok(ValueType {
            r#type: strings[v.r#type as usize].clone(),
            unit: strings[v.unit as usize].clone(),
        })
    };
    let sample_types = parts
        .sample_type
        .iter()
        .map(|r| value_type(r, "a sample type"))
        .collect::<Result<Vec<_>, _>>()?;
    let period_type = parts
        .period_type
        .as_ref()
        .map(|r| value_type(r, "the period type"))
        .transpose()?;
    check_str(parts.default_sample_type, "the default sample type")?;
    let mut mappings = Vec::with_capacity(parts.mapping.len());
    for r in &parts.mapping {
        let m: pb::Mapping = pb::one(b, r, "mapping")?;
        check_str(m.filename, "a mapping")?;
        check_str(m.build_id, "a mapping")?;
        mappings.push(m);
    }
    let mut functions = Vec::with_capacity(parts.function.len());
    for r in &parts.function {
        let f: pb::Function = pb::one(b, r, "function")?;
        for s in [f.name, f.system_name, f.filename] {
            check_str(s, "a function")?;
        }
        functions.push(f);
    }
    let func_ids: HashMap<u64, ()> = functions.iter().map(|f| (f.id, ())).collect();
    let map_index: HashMap<u64, u32> = mappings
        .iter()
        .enumerate()
        .map(|(i, m)| (m.id, i as u32))
        .collect();
    let one_loc = |r: &std::ops::Range<usize>| pb::one::<pb::Location>(b, r, "location");
    let locations: Vec<pb::Location> = if parts.location.len() > CHUNK {
        parts
            .location
            .par_iter()
            .map(one_loc)
            .collect::<Result<_, _>>()?
    } else {
        parts
            .location
            .iter()
            .map(one_loc)
            .collect::<Result<_, _>>()?
    };
    let (loc_index, loc_mapping) = index_locations(&locations, &map_index, &func_ids)?;
    let nv = sample_types.len();
    // Small profiles stay on this thread.
    let chunks: Vec<Chunk> = if parts.sample.len() > CHUNK {
        parts
            .sample
            .par_chunks(CHUNK)
            .enumerate()
            .map(|(k, rs)| decode_chunk(b, rs, k * CHUNK, nv, &loc_index, labels))
            .collect::<Result<_, _>>()?
    } else {
        vec![decode_chunk(b, &parts.sample, 0, nv, &loc_index, labels)?]
    };
    let total_locs: usize = chunks.iter().map(|c| c.stack.len()).sum();
    if total_locs > u32::MAX as usize {
        return Err(Bad::Why("too many frames in all samples".into()));
    }
    let mut d = Decoded {
        default_sample_type: (parts.default_sample_type != 0)
            .then(|| strings[parts.default_sample_type as usize].clone()),
        strings,
        sample_types,
        period_type,
        period: parts.period,
        time_nanos: parts.time_nanos,
        duration_nanos: parts.duration_nanos,
        mappings,
        locations,
        functions,
        loc_mapping,
        values: Vec::with_capacity(parts.sample.len() * nv),
        starts: Vec::with_capacity(parts.sample.len() + 1),
        stack: Vec::with_capacity(total_locs),
        labels: Vec::new(),
        path: String::new(),
    };
    d.starts.push(0);
    for c in chunks {
        let base = d.stack.len() as u32;
        d.starts.extend(c.ends.iter().map(|e| base + e));
        d.stack.extend_from_slice(&c.stack);
        d.values.extend_from_slice(&c.values);
        d.labels.extend(c.labels);
    }
    if d.is_empty() {
        return Err(Bad::Why("empty profile: it has no samples".into()));
    }
    Ok(d)
}

/// Location id -> index, and each location's mapping index.
type LocationIndex = (HashMap<u64, u32>, Vec<Option<u32>>);

/// Each location's index by id, and its mapping's index; every id a
/// location names must exist.
fn index_locations(
    locations: &[pb::Location],
    map_index: &HashMap<u64, u32>,
    func_ids: &HashMap<u64, ()>,
) -> Result<LocationIndex, Bad> {
    let mut loc_index: HashMap<u64, u32> = HashMap::with_capacity(locations.len());
    let mut loc_mapping = Vec::with_capacity(locations.len());
    for (i, l) in locations.iter().enumerate() {
        if loc_index.insert(l.id, i as u32).is_some() {
            return Err(Bad::Why(format!(
                "damaged profile: location id {} used twice",
                l.id
            )));
        }
        loc_mapping.push(match l.mapping_id {
            0 => None,
            id => Some(*map_index.get(&id).ok_or_else(|| {
                Bad::Why(format!(
                    "damaged profile: location {} names mapping {id}, which does not exist",
                    l.id
                ))
            })?),
        });
        for ln in &l.line {
            if !func_ids.contains_key(&ln.function_id) {
                return Err(Bad::Why(format!(
                    "damaged profile: location {} names function {}, which does not exist",
                    l.id, ln.function_id
                )));
            }
        }
    }
    Ok((loc_index, loc_mapping))
}

/// A run of decoded samples.
struct Chunk {
    values: Vec<i64>,
    /// End of each sample's stack in `stack`.
    ends: Vec<u32>,
    stack: Vec<u32>,
    labels: Vec<(u32, pb::Label)>,
}

fn decode_chunk(
    b: &[u8],
    rs: &[std::ops::Range<usize>],
    first: usize,
    nv: usize,
    loc_index: &HashMap<u64, u32>,
    labels: bool,
) -> Result<Chunk, Bad> {
    let mut c = Chunk {
        values: Vec::with_capacity(rs.len() * nv),
        ends: Vec::with_capacity(rs.len()),
        stack: Vec::with_capacity(rs.len() * 16),
        labels: Vec::new(),
    };
    // One message, cleared and merged into for every sample: its vectors
    // keep their capacity, so no sample allocates.
    let mut s = pb::Sample::default();
    let mut st = pb::SampleStack::default();
    for (k, r) in rs.iter().enumerate() {
        let bad = |e: prost::DecodeError| Bad::Wire(WireError::Message("sample", e.to_string()));
        if labels {
            s.clear();
            s.merge(&b[r.clone()]).map_err(bad)?;
        } else {
            st.clear();
            st.merge(&b[r.clone()]).map_err(bad)?;
            std::mem::swap(&mut s.location_id, &mut st.location_id);
            std::mem::swap(&mut s.value, &mut st.value);
        }
        if s.value.len() != nv {
            return Err(Bad::Why(format!(
                "damaged profile: sample {} has {} values for {nv} sample types",
                first + k,
                s.value.len()
            )));
        }
        c.values.extend_from_slice(&s.value);
        for id in &s.location_id {
            let i = loc_index.get(id).ok_or_else(|| {
                Bad::Why(format!(
                    "damaged profile: sample {} names location {id}, which does not exist",
                    first + k
                ))
            })?;
            c.stack.push(*i);
        }
        c.ends.push(c.stack.len() as u32);
        for l in s.label.drain(..) {
            c.labels.push(((first + k) as u32, l));
        }
        if !labels {
            std::mem::swap(&mut s.location_id, &mut st.location_id);
            std::mem::swap(&mut s.value, &mut st.value);
        }
    }
    Ok(c)
}

#[cfg(test)]
mod tests {
    use super::*;
    use prost::Message;

    fn tiny() -> pb::Profile {
        pb::Profile {
            sample_type: vec![pb::ValueType { r#type: 1, unit: 2 }],
            sample: vec![pb::Sample {
                location_id: vec![7],
                value: vec![3],
                label: vec![],
            }],
            location: vec![pb::Location {
                id: 7,
                address: 0x1000,
                ..Default::default()
            }],
            string_table: vec!["".into(), "samples".into(), "count".into()],
            ..Default::default()
        }
    }

    #[test]
    fn decodes_plain_and_gzip() {
        let b = tiny().encode_to_vec();
        let d = decode("t", &b).unwrap();
        assert_eq!(d.len(), 1);
        assert_eq!(d.stack(0), &[0]);
        assert_eq!(d.value(0, 0), 3);
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        std::io::Write::write_all(&mut gz, &b).unwrap();
        let z = gz.finish().unwrap();
        assert_eq!(decode("t", &z).unwrap().len(), 1);
        // Truncated gzip: an error.
        assert!(decode("t", &z[..z.len() - 6]).is_err());
    }

    #[test]
    fn errors() {
        let mut p = tiny();
        p.sample.clear();
        let e = decode("t", &p.encode_to_vec()).unwrap_err().to_string();
        assert!(e.contains("empty profile"), "{e}");
        let mut p = tiny();
        p.sample[0].location_id = vec![8];
        assert!(decode("t", &p.encode_to_vec()).is_err());
        let mut p = tiny();
        p.sample[0].value = vec![1, 2];
        assert!(decode("t", &p.encode_to_vec()).is_err());
        assert!(decode("t", b"hello, world\n").is_err());
        assert!(decode("t", b"").is_err());
    }
}
