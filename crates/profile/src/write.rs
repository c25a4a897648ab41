//! `--format pprof`: the input profiles, merged, with the defer machinery
//! as frames of its own.
//!
//! Every machinery sample gets one synthetic frame between the frame
//! that caused it and the runtime's machinery frames (or as its leaf when
//! it was taken in a function's own open-coded bookkeeping), named
//! `defer machinery: main.inLoop loops.go:10` after the site (or the
//! function alone, when no one site can be charged); every sample in a
//! deferred call gets `deferred call: main.inLoop loops.go:10` above
//! the call. `go tool pprof`, speedscope and continuous profilers then
//! show the machinery per site without knowing about it. Everything else
//! (values, labels, mappings, addresses, the profile's own names) is
//! copied; ids are renumbered so several profiles merge into one. The
//! output is gzipped, as `runtime/pprof` writes.

use std::collections::HashMap;
use std::io::{self, Write};

use prost::Message;

use crate::attribute::frames_of;
use crate::classify::{classify_sample, Outcome};
use crate::decode::Decoded;
use crate::pb;
use crate::Attributor;

/// Strings of the profile being written.
#[derive(Default)]
struct Strings {
    list: Vec<String>,
    index: HashMap<String, i64>,
}

impl Strings {
    fn id(&mut self, s: &str) -> i64 {
        if let Some(&i) = self.index.get(s) {
            return i;
        }
        let i = self.list.len() as i64;
        self.list.push(s.to_owned());
        self.index.insert(s.to_owned(), i);
        i
    }
}

/// The synthetic frames: label -> location id.
struct Synthetic {
    locs: HashMap<String, u64>,
    next_loc: u64,
    next_func: u64,
}

impl Attributor<'_> {
    /// The synthetic frame's name for `o`, if it gets one.
    fn label(&self, o: &Outcome) -> Option<String> {
        let (what, func, site) = match *o {
            Outcome::Other => return None,
            Outcome::Machinery { func, site, .. } => ("defer machinery", func, site),
            Outcome::Deferred { func, site, .. } => ("deferred call", func, site),
        };
        let scan = self.sites.scan;
        Some(match (func, site) {
            (Some(f), Some(s)) => {
                let s = &scan.sites[s as usize];
                let base = s.file.rsplit('/').next().unwrap_or(&s.file);
                format!(
                    "{what}: {} {base}:{}",
                    scan.functions[f as usize].name, s.line
                )
            }
            (Some(f), None) => format!("{what}: {}", scan.functions[f as usize].name),
            _ => what.to_owned(),
        })
    }
}

/// Write `profiles`, merged, with the synthetic frames, gzipped, to `w`.
pub fn pprof(a: &Attributor<'_>, profiles: &[Decoded], w: &mut impl Write) -> io::Result<()> {
    let mut st = Strings::default();
    st.id("");
    let mut out = pb::Profile::default();
    let first = &profiles[0];
    for t in &first.sample_types {
        out.sample_type.push(pb::ValueType {
            r#type: st.id(&t.r#type),
            unit: st.id(&t.unit),
        });
    }
    if let Some(t) = &first.period_type {
        out.period_type = Some(pb::ValueType {
            r#type: st.id(&t.r#type),
            unit: st.id(&t.unit),
        });
    }
    out.period = first.period;
    out.time_nanos = profiles.iter().map(|d| d.time_nanos).min().unwrap_or(0);
    out.duration_nanos = profiles.iter().map(|d| d.duration_nanos).sum();
    if let Some(t) = &first.default_sample_type {
        out.default_sample_type = st.id(t);
    }
    // Renumber: profile k's ids become base + index + 1.
    let (mut mbase, mut lbase, mut fbase) = (0u64, 0u64, 0u64);
    let mut bases = Vec::new();
    for d in profiles {
        bases.push((mbase, lbase, fbase));
        mbase += d.mappings.len() as u64;
        lbase += d.locations.len() as u64;
        fbase += d.functions.len() as u64;
    }
    let mut syn = Synthetic {
        locs: HashMap::new(),
        next_loc: lbase + 1,
        next_func: fbase + 1,
    };
    for ((d, p), &(mb, lb, fb)) in profiles.iter().zip(&a.per).zip(&bases) {
        let fid: HashMap<u64, u64> = d
            .functions
            .iter()
            .enumerate()
            .map(|(i, f)| (f.id, fb + i as u64 + 1))
            .collect();
        for (i, m) in d.mappings.iter().enumerate() {
            out.mapping.push(pb::Mapping {
                id: mb + i as u64 + 1,
                filename: st.id(d.string(m.filename)),
                build_id: st.id(d.string(m.build_id)),
                ..m.clone()
            });
        }
        for (i, f) in d.functions.iter().enumerate() {
            out.function.push(pb::Function {
                id: fb + i as u64 + 1,
                name: st.id(d.string(f.name)),
                system_name: st.id(d.string(f.system_name)),
                filename: st.id(d.string(f.filename)),
                start_line: f.start_line,
            });
        }
        for (i, l) in d.locations.iter().enumerate() {
            out.location.push(pb::Location {
                id: lb + i as u64 + 1,
                mapping_id: d.loc_mapping[i].map_or(0, |m| mb + u64::from(m) + 1),
                address: l.address,
                line: l
                    .line
                    .iter()
                    .map(|ln| pb::Line {
                        function_id: fid.get(&ln.function_id).copied().unwrap_or(0),
                        ..*ln
                    })
                    .collect(),
                is_folded: l.is_folded,
            });
        }
        let nv = d.sample_types.len();
        let mut labels = d.labels.iter().peekable();
        let (mut buf, mut pos) = (Vec::new(), Vec::new());
        for i in 0..d.len() {
            let mut ids: Vec<u64> = d.stack(i).iter().map(|&l| lb + u64::from(l) + 1).collect();
            frames_of(d, p, i, &mut buf, &mut pos);
            let o = classify_sample(&buf, &a.sites, &p.deferred);
            if let Some(name) = a.label(&o) {
                let at = match o {
                    Outcome::Machinery { above: None, .. } => 0,
                    Outcome::Machinery { above: Some(k), .. }
                    | Outcome::Deferred { above: k, .. } => pos[k] as usize + 1,
                    Outcome::Other => 0,
                };
                let id = synthetic(&mut syn, &mut st, &mut out, &name);
                ids.insert(at.min(ids.len()), id);
            }
            let mut lab = Vec::new();
            while let Some((_, l)) = labels.next_if(|(s, _)| *s as usize == i) {
                lab.push(pb::Label {
                    key: st.id(d.string(l.key)),
                    str: st.id(d.string(l.str)),
                    num: l.num,
                    num_unit: st.id(d.string(l.num_unit)),
                });
            }
            out.sample.push(pb::Sample {
                location_id: ids,
                value: d.values[i * nv..(i + 1) * nv].to_vec(),
                label: lab,
            });
        }
    }
    out.string_table = st.list;
    let mut gz = flate2::write::GzEncoder::new(w, flate2::Compression::fast());
    gz.write_all(&out.encode_to_vec())?;
    gz.finish()?.flush()
}

/// The location of the synthetic frame `name`, made on first use.
fn synthetic(syn: &mut Synthetic, st: &mut Strings, out: &mut pb::Profile, name: &str) -> u64 {
    if let Some(&id) = syn.locs.get(name) {
        return id;
    }
    let (fid, lid) = (syn.next_func, syn.next_loc);
    syn.next_func += 1;
    syn.next_loc += 1;
    let n = st.id(name);
    out.function.push(pb::Function {
        id: fid,
        name: n,
        system_name: n,
        filename: 0,
        start_line: 0,
    });
    out.location.push(pb::Location {
        id: lid,
        mapping_id: 0,
        address: 0,
        line: vec![pb::Line {
            function_id: fid,
            line: 0,
            column: 0,
        }],
        is_folded: false,
    });
    syn.locs.insert(name.to_owned(), lid);
    lid
}
