//! `deferscope profile BINARY PROFILE...`: read the profiles (in
//! parallel with the analysis of the binary), match and attribute them,
//! print the attribution (text, JSON, the HTML page) or write the merged
//! profile with machinery frames (`--format pprof`).

use std::fs::File;
use std::io::{self, BufWriter, Write};

use anyhow::{Context, Result};
use deferscope_analyze::cost;
use deferscope_analyze::Request;
use deferscope_profile::{Attributor, Options};

use crate::cli::{ProfileArgs, ProfileFormat, ReportFormat};

pub fn run(args: ProfileArgs) -> Result<()> {
    // The attribution matches the profile's files with the recorded
    // paths; they are spelled for showing after it.
    let mut filter = args.filter.filter()?;
    let full_paths = std::mem::replace(&mut filter.full_paths, true);
    let cost = cost::load();
    let req = Request {
        explain: Some(&cost),
        verify: None,
    };
    // Decoding the profiles does not need the binary: it runs beside the
    // binary's analysis.
    let paths = args.profiles.clone();
    let labels = args.format == ProfileFormat::Pprof;
    let decoding = std::thread::spawn(move || {
        paths
            .iter()
            .map(|p| deferscope_profile::decode::read_with(p, labels))
            .collect::<Result<Vec<_>, _>>()
    });
    let opts = Options {
        sample_index: args.sample_index.clone(),
        force: args.force,
    };
    let shown = args.binary.display().to_string();
    super::analyze(&args.binary, &shown, &filter, req, |img, ix, mut a| {
        let profiles = decoding
            .join()
            .map_err(|_| anyhow::anyhow!("profile decoder failed"))??;
        let at = Attributor::new(img, ix, &a, &profiles, &opts)?;
        if args.format == ProfileFormat::Pprof {
            let mut out: Box<dyn Write> = match &args.output {
                Some(p) => Box::new(BufWriter::new(
                    File::create(p).with_context(|| format!("{}", p.display()))?,
                )),
                None => Box::new(BufWriter::new(io::stdout().lock())),
            };
            deferscope_profile::write::pprof(&at, &profiles, &mut out)?;
            out.flush()?;
            return Ok(());
        }
        let attribution = at.attribution(&profiles);
        drop(at);
        a.profile = Some(attribution);
        if !full_paths {
            deferscope_analyze::paths::PathMap::new(ix).apply(&mut a);
        }
        let format = match args.format {
            ProfileFormat::Text => ReportFormat::Text,
            ProfileFormat::Json => ReportFormat::Json,
            _ => ReportFormat::Html,
        };
        match &args.output {
            Some(p) => {
                let mut f =
                    BufWriter::new(File::create(p).with_context(|| format!("{}", p.display()))?);
                super::print_to(&a, format, img, ix, &mut f)?;
                f.flush()?;
                Ok(())
            }
            None => super::print(&a, format, img, ix),
        }
    })
}
