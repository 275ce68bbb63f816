//! Ballast's own resources: how many client connections it holds open, and the file
//! descriptor budget behind that.
//!
//! - [`fds`]: the file descriptor limit (raised to the hard limit at start) and the `maxconn`
//!   derived from it. (Telling "Ballast ran out of file descriptors" from "the member refused"
//!   is [`crate::error::is_local_exhaustion`].)
//! - [`admission`]: the checks every accepted connection passes, in order: `[ballast] maxconn`
//!   (all vservers together), the vserver's `maxclientpersource`, its `maxclient`. A connection
//!   over a limit is refused (HTTP: `503`; TCP: closed) and counted by vserver and limit.
//! - [`sources`]: open connections per client address, for `maxclientpersource`.
//! - [`backoff`]: an accept loop out of descriptors pauses instead of spinning, and logs the
//!   episode once.

pub mod admission;
pub mod backoff;
pub mod fds;
pub mod sources;

pub use admission::{Admitted, Connections, Limit, admit};
pub use backoff::AcceptBackoff;
