//! MongoDB adapters.
