//! One module per subcommand; each exposes `run(args) -> anyhow::Result<()>`.

pub mod disasm;
pub mod scan;
pub mod trace;
