//! CloudStack API for Ballast: a signed client with async-job polling, and the embedded
//! CloudStack-compatible local cloud whose VMs are local processes on 127.x.y.z.
//!
//! Status: empty. The CloudStack issue fills it.
