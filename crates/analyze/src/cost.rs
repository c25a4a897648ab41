//! Where the cost table lives: `deferscope bench` saves a measured
//! [`CostTable`] under the user's cache directory, and every command that
//! prices defers loads it from there, or uses the published figures when
//! none was saved (or it does not parse).

use std::io;
use std::path::PathBuf;

pub use deferscope_model::cost::{CostTable, PendingCost, SiteCostFacts};

/// Where `deferscope bench` saves its table:
/// `${DEFERSCOPE_CACHE:-~/.cache/deferscope}/cost-table.json`.
pub fn path() -> Option<PathBuf> {
    if let Some(c) = std::env::var_os("DEFERSCOPE_CACHE") {
        return Some(PathBuf::from(c).join("cost-table.json"));
    }
    let home = std::env::var_os("HOME")?;
    Some(PathBuf::from(home).join(".cache/deferscope/cost-table.json"))
}

/// The measured table if one was saved and parses, else the published one.
pub fn load() -> CostTable {
    path()
        .and_then(|p| std::fs::read_to_string(p).ok())
        .and_then(|t| serde_json::from_str(&t).ok())
        .unwrap_or_else(CostTable::published)
}

/// Save a measured table where [`load`] finds it.
pub fn save(t: &CostTable) -> io::Result<PathBuf> {
    let p = path()
        .ok_or_else(|| io::Error::new(io::ErrorKind::NotFound, "no HOME or DEFERSCOPE_CACHE"))?;
    if let Some(d) = p.parent() {
        std::fs::create_dir_all(d)?;
    }
    std::fs::write(&p, serde_json::to_string_pretty(t)? + "\n")?;
    Ok(p)
}
