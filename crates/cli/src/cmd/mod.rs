//! One module per subcommand; each exposes `run(args) -> anyhow::Result<()>`.

pub mod scan;
