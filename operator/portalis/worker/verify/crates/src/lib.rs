// The crate set of the worker's Rust check (see Cargo.toml); no code of its own.
