//! The project's tasks as a library, for `cargo xtask` and for the tests of what the tasks
//! make (the Linux package).

pub mod kmod;
pub mod linux_pkg;
