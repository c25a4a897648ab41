//! One module per subcommand; each exposes `run(args) -> anyhow::Result<()>`.

pub mod bench;
pub mod disasm;
pub mod explain;
pub mod scan;
pub mod trace;
